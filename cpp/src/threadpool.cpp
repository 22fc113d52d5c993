#include "threadpool.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#include <unistd.h>
#elif defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace xent {
namespace {

// The spin time in nanoseconds (spin_us), XENT_SPIN_US's or the default, and the reason
// XENT_SPIN_US was rejected (empty if it was not).
std::string& spin_error() {
  static std::string e;
  return e;
}
int64_t initial_spin_ns() {
  const char* env = std::getenv("XENT_SPIN_US");
  if (!env || !*env) return static_cast<int64_t>(kDefaultSpinUs * 1000.0);
  char* end = nullptr;
  const double us = std::strtod(env, &end);
  if (*end != '\0' || !(us >= 0.0 && us <= kMaxSpinUs)) {
    spin_error() = std::string("XENT_SPIN_US=") + env + " is not a number of microseconds in [0, " +
                   std::to_string(static_cast<int>(kMaxSpinUs)) + "]";
    return static_cast<int64_t>(kDefaultSpinUs * 1000.0);
  }
  return static_cast<int64_t>(std::llround(us * 1000.0));
}
std::atomic<int64_t>& spin_ns() {
  static std::atomic<int64_t> ns{initial_spin_ns()};
  return ns;
}

// Spins until ready() or about spin_ns() have passed; returns ready(). The clock is read
// every 64 polls (a pause each: the core's sibling, if any, keeps its issue slots).
template <class F>
bool spin_until(F&& ready) {
  const int64_t ns = spin_ns().load(std::memory_order_relaxed);
  if (ns <= 0) return ready();
  const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns);
  for (;;) {
    for (int k = 0; k < 64; ++k) {
      if (ready()) return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#elif defined(__aarch64__)
      asm volatile("yield");
#endif
    }
    if (std::chrono::steady_clock::now() >= until) return ready();
  }
}

class Pool {
 public:
  // Returns false if another job is running (the caller then runs its job alone).
  bool run(int64_t n_tasks, int n_workers, const std::function<void(int64_t, int)>& fn) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    ensure_workers(n_workers - 1);
    {
      std::lock_guard<std::mutex> g(m_);
      fn_ = &fn;
      n_tasks_ = n_tasks;
      next_.store(0);
      helpers_wanted_ = n_workers - 1;
      helpers_joined_ = 0;
      helpers_done_ = 0;
      generation_.fetch_add(1);
    }
    cv_.notify_all();  // (no system call when every helper is spinning)
    work(0);
    // the helpers still at work usually finish within the spin: no sleep and wake-up then
    spin_until([&] { return helpers_done_.load() == helpers_joined_.load(); });
    std::unique_lock<std::mutex> lk(m_);
    // (a helper that wakes late joins, finds no task left and reports done at once; after
    // this wait, under the lock, no helper can join this job any more)
    done_cv_.wait(lk, [&] { return helpers_done_ == helpers_joined_; });
    helpers_wanted_ = 0;
    fn_ = nullptr;
    return true;
  }

 private:
  void work(int worker) {
    for (;;) {
      const int64_t t = next_.fetch_add(1);
      if (t >= n_tasks_) return;
      (*fn_)(t, worker);
    }
  }

  void ensure_workers(int n) {
    while (static_cast<int>(threads_.size()) < n) {
      // helpers beyond the cores (n_threads above hardware_threads()) do not spin: they
      // would take the time of the threads they wait beside
      const bool spins = static_cast<int>(threads_.size()) + 1 < hardware_threads();
      threads_.emplace_back([this, spins] { loop(spins); });
      threads_.back().detach();
    }
  }

  // A helper: after each job (and before its first), it polls for the next one for
  // spin_us() before sleeping on cv_, so that calls in quick succession find it awake
  // (a wake-up from the condition variable took 10-20 us on this project's VM).
  void loop(bool spins) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      if (spins && generation_.load() == seen) {
        lk.unlock();
        spin_until([&] { return generation_.load() != seen; });
        lk.lock();
      }
      cv_.wait(lk, [&] { return generation_.load() != seen; });
      seen = generation_.load();
      if (helpers_joined_ >= helpers_wanted_) continue;
      const int worker = ++helpers_joined_;
      lk.unlock();
      work(worker);
      lk.lock();
      ++helpers_done_;
      done_cv_.notify_all();
    }
  }

  std::mutex busy_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> threads_;
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_{0};
  int helpers_wanted_ = 0;
  // changed under m_; atomic so that spinning threads may read them without it
  std::atomic<int> helpers_joined_{0}, helpers_done_{0};
  std::atomic<uint64_t> generation_{0};
};

Pool* pool_for_this_process() {
  // After fork() the child has none of the parent's threads: give it a fresh pool (the
  // parent's is deliberately leaked, its mutexes may be held by threads that are gone).
  static Pool* pool = nullptr;
  static long owner = -1;
  static std::mutex mu;
  std::lock_guard<std::mutex> g(mu);
#if defined(__unix__) || defined(__APPLE__)
  const long pid = static_cast<long>(getpid());
#else
  const long pid = 0;
#endif
  if (!pool || owner != pid) {
    pool = new Pool();
    owner = pid;
  }
  return pool;
}

void run_serial(int64_t n_tasks, const std::function<void(int64_t, int)>& fn) {
  for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
}

}  // namespace

void parallel_for(int64_t n_tasks, int n_workers, const std::function<void(int64_t, int)>& fn) {
  if (n_workers > n_tasks) n_workers = static_cast<int>(n_tasks);
  if (n_workers <= 1) return run_serial(n_tasks, fn);
  if (!pool_for_this_process()->run(n_tasks, n_workers, fn)) run_serial(n_tasks, fn);
}

double spin_us() { return static_cast<double>(spin_ns().load()) / 1000.0; }

bool set_spin_us(double us) {
  if (!(us >= 0.0 && us <= kMaxSpinUs)) return false;
  spin_ns().store(static_cast<int64_t>(std::llround(us * 1000.0)));
  return true;
}

std::string spin_env_error() {
  spin_ns();
  return spin_error();
}

int hardware_threads() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

}  // namespace xent
