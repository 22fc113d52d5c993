#include "threadpool.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
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
      ++generation_;
    }
    cv_.notify_all();
    work(0);
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
      threads_.emplace_back([this] { loop(); });
      threads_.back().detach();
    }
  }

  void loop() {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      cv_.wait(lk, [&] { return generation_ != seen; });
      seen = generation_;
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
  int helpers_wanted_ = 0, helpers_joined_ = 0, helpers_done_ = 0;
  uint64_t generation_ = 0;
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
