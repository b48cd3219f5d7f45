// Persistent thread pool: see threadpool.h for the protocol overview.
#include "threadpool.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <condition_variable>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TFREE_PAUSE() _mm_pause()
#else
#define TFREE_PAUSE() ((void)0)
#endif

namespace tfree {
namespace {

constexpr int kClosed = 1 << 30;

struct Job {
  unsigned id = 0;  // generation number of this job
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  long ntasks = 0;
  int maxThreads = 0;
  bool isStatic = false;
};

// All globals are trivially destructible (or leaked on purpose) so that worker threads still
// running at process exit never touch a destroyed object.
Job g_job;
std::atomic<long> g_next{0};
std::atomic<unsigned> g_gen{0};
std::atomic<int> g_state{kClosed};  // kClosed bit | number of workers inside the current job
std::atomic<int> g_staticDone{0};
std::atomic<int> g_sleepers{0};
std::atomic<bool> g_stop{false};
std::atomic<bool> g_busy{false};
std::atomic<int> g_nthreads{0};
std::vector<std::thread>* g_workers = nullptr;
std::mutex* g_cfgMutex = new std::mutex();
long g_spinNs = 200000;

#if !defined(__linux__)
std::mutex* g_sleepMutex = new std::mutex();
std::condition_variable* g_sleepCv = new std::condition_variable();
#endif

void sleep_while_gen(unsigned seen) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<unsigned*>(&g_gen), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
#else
  std::unique_lock<std::mutex> lk(*g_sleepMutex);
  g_sleepCv->wait_for(lk, std::chrono::milliseconds(50), [&] { return g_gen.load() != seen; });
#endif
}

void wake_all() {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<unsigned*>(&g_gen), FUTEX_WAKE_PRIVATE, 0x7fffffff, nullptr, nullptr, 0);
#else
  { std::lock_guard<std::mutex> lk(*g_sleepMutex); }
  g_sleepCv->notify_all();
#endif
}

// `seen` is the generation current when the worker was created (read before any job of the new
// pool could be opened): reading it inside the thread instead would race with a job opened before
// the thread got to run, and the worker would then wait for the next job instead of joining.
void worker_main(int tid, unsigned seen) {
  unsigned lastDone = seen;
  for (;;) {
    // Wait for a new generation: spin first, then sleep.
    if (g_gen.load(std::memory_order_acquire) == seen) {
      auto t0 = std::chrono::steady_clock::now();
      bool changed = false;
      for (long it = 0;; ++it) {
        for (int k = 0; k < 32; ++k) {
          if (g_gen.load(std::memory_order_acquire) != seen) { changed = true; break; }
          TFREE_PAUSE();
        }
        if (changed) break;
        if (std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count() > g_spinNs) break;
      }
      while (!changed) {
        g_sleepers.fetch_add(1);
        if (g_gen.load() == seen) sleep_while_gen(seen);
        g_sleepers.fetch_sub(1);
        changed = g_gen.load(std::memory_order_acquire) != seen;
      }
    }
    if (g_stop.load(std::memory_order_acquire)) return;
    // Read the generation BEFORE trying to enter: main opens a job (state = 0) before publishing
    // its generation, so a closed state here means the job of generation `seen` is already over
    // (a later job will bump the generation again and wake us).
    seen = g_gen.load(std::memory_order_acquire);
    int s = g_state.load(std::memory_order_acquire);
    bool entered = false;
    while (!(s & kClosed)) {
      if (g_state.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) { entered = true; break; }
    }
    if (!entered) continue;
    // Inside: the job cannot change until we leave. We may have entered a job opened but not yet
    // published (id == seen + 1) or re-entered one we already served: job ids prevent running a
    // job twice (which matters for static jobs).
    if (g_stop.load(std::memory_order_acquire)) { g_state.fetch_sub(1, std::memory_order_release); return; }
    if (g_job.id == lastDone) { g_state.fetch_sub(1, std::memory_order_release); continue; }
    lastDone = g_job.id;
    const Job job = g_job;
    if (job.isStatic) {
      if (tid < job.ntasks) {
        job.fn(job.ctx, tid, tid);
        g_staticDone.fetch_add(1, std::memory_order_release);
      }
    } else if (tid < job.maxThreads) {
      for (;;) {
        long t = g_next.fetch_add(1, std::memory_order_relaxed);
        if (t >= job.ntasks) break;
        job.fn(job.ctx, t, tid);
      }
    }
    g_state.fetch_sub(1, std::memory_order_release);
  }
}

// Waits until done() holds: spins first (the threads waited for are running and normally finish
// within microseconds), then yields the core: on a loaded machine the thread waited for may itself
// be waiting for a core, which a spinning waiter would hold.
template <class Pred>
void spin_wait(Pred done) {
  for (long it = 0; !done(); ++it) pool_relax(it);
}

void open_job() {
  const unsigned id = g_gen.load() + 1;
  g_job.id = id;
  g_state.store(0, std::memory_order_release);  // open first, then publish the generation
  g_gen.store(id);
  if (g_sleepers.load() > 0) wake_all();
}

void close_job() {
  g_state.fetch_or(kClosed, std::memory_order_acq_rel);
  spin_wait([] { return (g_state.load(std::memory_order_acquire) & ~kClosed) == 0; });
}

void start_workers(int n) {
  if (!g_workers) g_workers = new std::vector<std::thread>();
  g_stop.store(false);
  const unsigned gen = g_gen.load();
  for (int t = 1; t < n; ++t) g_workers->emplace_back(worker_main, t, gen);
  g_nthreads.store(n);
}

void stop_workers() {
  if (!g_workers) return;
  g_stop.store(true, std::memory_order_release);
  g_gen.fetch_add(1);
  wake_all();
  for (auto& th : *g_workers) th.join();
  g_workers->clear();
  g_stop.store(false);
}

void ensure_init() {
  if (g_nthreads.load(std::memory_order_acquire) > 0) return;
  std::lock_guard<std::mutex> lk(*g_cfgMutex);
  if (g_nthreads.load() > 0) return;
  int n = 0;
  if (const char* e = std::getenv("TFREE_THREADS")) n = std::atoi(e);
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  if (n > 256) n = 256;
  if (const char* e = std::getenv("TFREE_SPIN_US")) {
    long us = std::atol(e);
    if (us >= 0) g_spinNs = us * 1000;
  }
  start_workers(n);
}

bool try_lock_busy() {
  bool expected = false;
  return g_busy.compare_exchange_strong(expected, true, std::memory_order_acquire);
}

}  // namespace

int pool_threads() {
  ensure_init();
  return g_nthreads.load();
}

void pool_set_threads(int n) {
  ensure_init();
  if (n < 1) n = 1;
  if (n > 256) n = 256;
  std::lock_guard<std::mutex> lk(*g_cfgMutex);
  while (!try_lock_busy()) std::this_thread::yield();
  if (n != g_nthreads.load()) {
    stop_workers();
    start_workers(n);
  }
  g_busy.store(false, std::memory_order_release);
}

void pool_run(long ntasks, TaskFn fn, void* ctx, int maxThreads) {
  if (ntasks <= 0) return;
  int nt = pool_threads();
  if (maxThreads > 0 && maxThreads < nt) nt = maxThreads;
  if (ntasks == 1 || nt <= 1 || !try_lock_busy()) {
    for (long t = 0; t < ntasks; ++t) fn(ctx, t, 0);
    return;
  }
  g_job.fn = fn;
  g_job.ctx = ctx;
  g_job.ntasks = ntasks;
  g_job.maxThreads = nt;
  g_job.isStatic = false;
  g_next.store(0, std::memory_order_relaxed);
  open_job();
  for (;;) {
    long t = g_next.fetch_add(1, std::memory_order_relaxed);
    if (t >= ntasks) break;
    fn(ctx, t, 0);
  }
  close_job();
  g_busy.store(false, std::memory_order_release);
}

bool pool_start(long ntasks, TaskFn fn, void* ctx) {
  if (ntasks <= 0 || pool_threads() <= 1 || !try_lock_busy()) return false;
  g_job.fn = fn;
  g_job.ctx = ctx;
  g_job.ntasks = ntasks;
  g_job.maxThreads = pool_threads();
  g_job.isStatic = false;
  g_next.store(0, std::memory_order_relaxed);
  open_job();
  return true;
}

void pool_finish() {
  const long ntasks = g_job.ntasks;
  for (;;) {
    long t = g_next.fetch_add(1, std::memory_order_relaxed);
    if (t >= ntasks) break;
    g_job.fn(g_job.ctx, t, 0);
  }
  close_job();
  g_busy.store(false, std::memory_order_release);
}

namespace {
// Runs fn(ctx, t, t) on threads 0..nthreads-1 (each worker its own tid); the pool is held (g_busy).
void run_static_held(int nthreads, TaskFn fn, void* ctx) {
  g_job.fn = fn;
  g_job.ctx = ctx;
  g_job.ntasks = nthreads;
  g_job.maxThreads = nthreads;
  g_job.isStatic = true;
  g_staticDone.store(0);
  open_job();
  fn(ctx, 0, 0);
  spin_wait([nthreads] { return g_staticDone.load(std::memory_order_acquire) >= nthreads - 1; });
  close_job();
  g_busy.store(false, std::memory_order_release);
}

struct TeamCall {
  TeamFn fn;
  void* ctx;
  int n;
};
void team_trampoline(void* c, long t, int) {
  const TeamCall* tc = static_cast<const TeamCall*>(c);
  tc->fn(tc->ctx, static_cast<int>(t), tc->n);
}
}  // namespace

void pool_run_static(int nthreads, TaskFn fn, void* ctx) {
  int nt = pool_threads();
  if (nthreads > nt) nthreads = nt;
  if (nthreads <= 1 || !try_lock_busy()) {
    for (int t = 0; t < (nthreads < 1 ? 1 : nthreads); ++t) fn(ctx, t, 0);
    return;
  }
  run_static_held(nthreads, fn, ctx);
}

void pool_run_team(int nthreads, TeamFn fn, void* ctx) {
  const int nt = pool_threads();
  if (nthreads <= 0 || nthreads > nt) nthreads = nt;
  if (nthreads <= 1 || !try_lock_busy()) {
    fn(ctx, 0, 1);
    return;
  }
  TeamCall tc{fn, ctx, nthreads};
  run_static_held(nthreads, &team_trampoline, &tc);
}

void pool_relax(long it) {
  if (it < 4096) TFREE_PAUSE();
  else std::this_thread::yield();
}

}  // namespace tfree
