// A small pool of sleeping worker threads (no spinning: idle workers wait on a condition
// variable, so a loaded machine or a tiny input costs nothing). One job at a time; a
// caller that finds the pool busy runs its job alone, which gives the same bits because
// every result is combined in a fixed order whatever the number of threads.
#pragma once
#include <cstdint>
#include <functional>

namespace xent {

// Runs fn(task, worker) for every task in [0, n_tasks) using up to n_workers threads
// (the caller is worker 0). Blocks until all tasks are done. fn must not throw.
void parallel_for(int64_t n_tasks, int n_workers, const std::function<void(int64_t, int)>& fn);

// Number of hardware threads available to this process (at least 1).
int hardware_threads();

}  // namespace xent
