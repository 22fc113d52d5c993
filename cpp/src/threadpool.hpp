// A small pool of worker threads. Idle workers poll for the next job for spin_us() (100 us
// by default, XENT_SPIN_US to change it), then sleep on a condition variable, so calls in
// quick succession skip the wake-up and an idle process costs nothing. One job at a time; a
// caller that finds the pool busy runs its job alone, which gives the same bits because
// every result is combined in a fixed order whatever the number of threads.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace xent {

constexpr double kDefaultSpinUs = 100.0;
constexpr double kMaxSpinUs = 1e6;

// How long idle workers, and a caller waiting for its helpers, poll before they sleep
// (microseconds); set_spin_us changes it for the process (false, unchanged, if us is not
// in [0, kMaxSpinUs]).
double spin_us();
bool set_spin_us(double us);
// Empty if XENT_SPIN_US is unset or valid; otherwise the reason it was rejected.
std::string spin_env_error();

// Runs fn(task, worker) for every task in [0, n_tasks) using up to n_workers threads
// (the caller is worker 0). Blocks until all tasks are done. fn must not throw.
void parallel_for(int64_t n_tasks, int n_workers, const std::function<void(int64_t, int)>& fn);

// Number of hardware threads available to this process (at least 1).
int hardware_threads();

}  // namespace xent
