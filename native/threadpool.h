// Persistent worker pool shared by all kernels.
//
// The calling (JS) thread is thread 0 and always participates. Workers 1..n-1 spin for a short
// while after each job and then sleep on a futex (Linux) or condition variable, so back-to-back
// kernel calls do not pay a wake-up. Tasks are handed out dynamically through an atomic counter,
// so a worker that is late to wake up simply finds no work left: the caller never waits for a
// sleeping worker to arrive (only for workers already running a task).
//
// Keep this header free of non-template inline functions: it is included by translation units
// compiled with -mavx2, and an inline function emitted there could be picked by the linker for
// the generic path as well.
#pragma once
#include <cstdint>

namespace tfree {

typedef void (*TaskFn)(void* ctx, long task, int tid);

// Runs fn(ctx, t, tid) for t in [0, ntasks) on up to maxThreads threads (0: pool size).
// tid is in [0, pool_threads()). Runs inline when the pool is busy (e.g. a call from a second
// JS thread) or when ntasks == 1.
void pool_run(long ntasks, TaskFn fn, void* ctx, int maxThreads);
// Like pool_run but task t is executed by thread t (t < nthreads <= pool_threads()); waits for
// every worker. For the bandwidth / FMA probes only.
void pool_run_static(int nthreads, TaskFn fn, void* ctx);
// Runs fn(ctx, tid, nteam) once on each of nteam threads AT ONCE (tid 0 is the caller), for kernels
// whose threads cooperate (the SGEMM team waits on shared counters with pool_relax); waits for all of them. nteam = min(nthreads,
// pool_threads()), or 1 when the pool is busy (a call from a second JS thread): then fn(ctx, 0, 1)
// runs inline, and the callee must not wait for other threads.
typedef void (*TeamFn)(void* ctx, int tid, int nteam);
void pool_run_team(int nthreads, TeamFn fn, void* ctx);
// Starts fn(ctx, t, tid) for t in [0, ntasks) on the pool's workers only and returns at once (true);
// the caller joins with pool_finish(), which takes the tasks left, waits for the workers' and
// releases the pool. Until then the pool is held: every pool_run / pool_run_team / pool_start of any
// thread runs inline on its caller (or, for pool_start, returns false), so the caller can run other
// kernels single-threaded meanwhile. Returns false and runs nothing when the pool has one thread or
// is busy: the caller then runs the tasks itself. fn and ctx must live until pool_finish().
bool pool_start(long ntasks, TaskFn fn, void* ctx);
// Finishes the job of the last successful pool_start (called once per such start, by any thread).
void pool_finish();
// One step of a wait loop (it = steps so far): a pause, and after 4096 of them a yield of the core
// (the pool's own waits use it too).
void pool_relax(long it);
int pool_threads();
void pool_set_threads(int n);

template <class F>
inline void parallel_tasks(long ntasks, int maxThreads, F& f) {
  struct T {
    static void call(void* c, long t, int tid) { (*static_cast<F*>(c))(t, tid); }
  };
  pool_run(ntasks, &T::call, &f, maxThreads);
}

template <class F>
inline void parallel_team(int maxThreads, F& f) {
  struct T {
    static void call(void* c, int tid, int nteam) { (*static_cast<F*>(c))(tid, nteam); }
  };
  pool_run_team(maxThreads, &T::call, &f);
}

}  // namespace tfree
