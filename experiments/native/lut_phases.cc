// C++ probe of the LUT kernel's phases (issue 13): per cold call of packed_lut_matmul_avx2, the
// time (from the call) at which each thread starts its task, has the tables, and ends its tiles,
// with rdtsc timestamps from the LUT_TRACE hooks of native/packed_lut_driver.h (compiled in only
// here), and the time of each thread's first tile pair vs its later ones; codes and scales on
// MADV_HUGEPAGE memory as weightBuffer gives them; a 128 MiB read between calls (cold), and a
// 64 MiB 2-thread read probe every 4 calls. Prints the 5 fastest calls.
//
// Build and run (from the repo root; args: bits N K calls cold):
//   echo 'void lut_trace_hook(int ev, long task, int tid);' > /tmp/lut_trace.h
//   g++ -O3 -std=c++17 -pthread -mavx2 -mfma -ffp-contract=off -Inative -include /tmp/lut_trace.h \
//     -DLUT_TRACE=lut_trace_hook experiments/native/lut_phases.cc native/packed_lut_avx2.cc \
//     native/packed_lut_generic.cc native/packed_generic.cc native/threadpool.cc -o /tmp/lut_phases
//   flock /work/bench.lock /tmp/lut_phases 2 4096 4096 200 1
#include <immintrin.h>
#include <x86intrin.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <sys/mman.h>
#include <algorithm>
#include <chrono>
#include <thread>
#include "kernels.h"
#include "threadpool.h"
using namespace tfree;

struct Ev { uint64_t ts; int ev; long task; int tid; };
static Ev g_ev[4096];
static int g_nev = 0;
void lut_trace_hook(int ev, long task, int tid) {
  int i = __atomic_fetch_add(&g_nev, 1, __ATOMIC_RELAXED);
  if (i < 4096) g_ev[i] = {__rdtsc(), ev, task, tid};
}
struct RC { const float* x; long n; int parts; double sums[8]; };
static void read_task(void* c, long t, int) {
  RC* r = (RC*)c;
  long per = (r->n / r->parts + 63) / 64 * 64;
  long a = t * per, b = std::min(r->n, a + per);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (long i = a; i + 32 <= b; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_load_ps(r->x + i)); s1 = _mm256_add_ps(s1, _mm256_load_ps(r->x + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_load_ps(r->x + i + 16)); s3 = _mm256_add_ps(s3, _mm256_load_ps(r->x + i + 24));
  }
  float o[8]; _mm256_storeu_ps(o, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  r->sums[t] = o[0] + o[7];
}
static double readsum(const float* x, long n) { RC r{x, n, 2, {}}; pool_run_static(2, read_task, &r); return r.sums[0] + r.sums[1]; }
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
static double med(std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; }
static double mn(std::vector<double> v) { return *std::min_element(v.begin(), v.end()); }

int main(int argc, char** argv) {
  int bits = argc > 1 ? atoi(argv[1]) : 2;
  long N = argc > 2 ? atol(argv[2]) : 4096, K = argc > 3 ? atol(argv[3]) : 4096;
  int iters = argc > 4 ? atoi(argv[4]) : 100;
  int cold = argc > 5 ? atoi(argv[5]) : 1;
  pool_set_threads(2);
  long rb = K * bits / 8, nT = (N + 31) / 32, B = 64, nB = K / B;
  auto halloc = [](size_t n) { size_t sz = (n + (2 << 20) - 1) / (2 << 20) * (2 << 20); void* p = aligned_alloc(2 << 20, sz); madvise(p, sz, MADV_HUGEPAGE); return p; };
  uint8_t* codes = (uint8_t*)halloc(nT * 32 * rb);
  uint16_t* scales = (uint16_t*)halloc(nT * 32 * nB * 2);
  srand(1);
  for (long i = 0; i < nT * 32 * rb; ++i) codes[i] = rand() & 255;
  for (long i = 0; i < nT * 32 * nB; ++i) scales[i] = 0x3c00 + (rand() & 255);
  std::vector<float> x(K), y(N);
  for (auto& v : x) v = (rand() / (float)RAND_MAX) - 0.5f;
  float lv2[4] = {-1.3f, -0.4f, 0.45f, 1.2f}, lv1[2] = {-1.f, 1.f};
  PackedLutArgs a{1, N, K, x.data(), codes, bits, bits == 1 ? lv1 : lv2, scales, B, y.data()};
  long fl = 32L << 20, pn = 16L << 20;
  float* flush = (float*)aligned_alloc(64, fl * 4); for (long i = 0; i < fl; ++i) flush[i] = 1;
  float* big = (float*)aligned_alloc(64, pn * 4); for (long i = 0; i < pn; ++i) big[i] = 1;
  // tsc freq
  uint64_t c0 = __rdtsc(); double w0 = now(); while (now() - w0 < 0.05) {} double tscGHz = (__rdtsc() - c0) / (now() - w0) / 1e9;
  std::vector<double> firstPair[2], laterPair[2];
  std::vector<double> tot, startA, startB, tabA, tabB, endA, endB, lastEnd, probe;
  packed_lut_matmul_avx2(a);
  for (int it = 0; it < iters; ++it) {
    if (cold) readsum(flush, fl);
    g_nev = 0;
    uint64_t s = __rdtsc();
    packed_lut_matmul_avx2(a);
    uint64_t e = __rdtsc();
    auto us = [&](uint64_t t) { return (double)(t - s) / tscGHz / 1e3; };
    tot.push_back(us(e));
    double st[2] = {1e9, 1e9}, tb[2] = {0, 0}, en[2] = {0, 0};
    for (int i = 0; i < std::min(g_nev, 4096); ++i) {
      Ev& v = g_ev[i]; int th = v.tid ? 1 : 0; double u = us(v.ts);
      if (v.ev == 0) st[th] = std::min(st[th], u);
      if (v.ev == 1) tb[th] = std::max(tb[th], u);
      if (v.ev == 2) en[th] = std::max(en[th], u);
    }
    {
      double prev[2] = {tb[0], tb[1]}; int cnt[2] = {0, 0}; double sumLater[2] = {0, 0}; int nl[2] = {0, 0};
      for (int i = 0; i < std::min(g_nev, 4096); ++i) {
        Ev& v = g_ev[i]; if (v.ev != 3) continue; int th = v.tid ? 1 : 0; double u = us(v.ts);
        if (cnt[th] == 0) firstPair[th].push_back(u - prev[th]); else { sumLater[th] += u - prev[th]; nl[th]++; }
        cnt[th]++; prev[th] = u;
      }
      for (int th = 0; th < 2; ++th) if (nl[th]) laterPair[th].push_back(sumLater[th] / nl[th]);
    }
    startA.push_back(st[0]); startB.push_back(st[1]); tabA.push_back(tb[0]); tabB.push_back(tb[1]); endA.push_back(en[0]); endB.push_back(en[1]);
    if (it % 4 == 0) { double t0 = now(); readsum(big, pn); probe.push_back(now() - t0); }
  }
  double bytes = nT * 32 * rb + nT * 32 * nB * 2;
  printf("bits %d %ldx%ld %s: bytes %.2f MB, tsc %.2f GHz\n", bits, K, N, cold ? "cold" : "warm", bytes / 1e6, tscGHz);
  printf("total us min %.1f med %.1f  -> %.1f GB/s (min)\n", mn(tot), med(tot), bytes / mn(tot) / 1e3);
  printf("probe 64MiB min %.1f us -> %.1f GB/s; LUT %% of probe (min/min) %.0f%%\n", mn(probe) * 1e6, 4.0 * pn / mn(probe) / 1e9, 100 * (bytes / mn(tot) / 1e3) / (4.0 * pn / mn(probe) / 1e9));
  printf("median: start thr0 %.1f thr1 %.1f | tables done thr0 %.1f thr1 %.1f | last task end thr0 %.1f thr1 %.1f | total %.1f\n", med(startA), med(startB), med(tabA), med(tabB), med(endA), med(endB), med(tot));
  {
    std::vector<size_t> idx(tot.size()); for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](size_t p, size_t q) { return tot[p] < tot[q]; });
    printf("fastest calls: total | start0 start1 | tab0 tab1 | end0 end1\n");
    for (size_t k = 0; k < std::min<size_t>(5, idx.size()); ++k) { size_t i = idx[k];
      printf("  %.1f | %.1f %.1f | %.1f %.1f | %.1f %.1f\n", tot[i], startA[i], startB[i] > 1e8 ? -1 : startB[i], tabA[i], tabB[i], endA[i], endB[i]); }
    int both = 0; for (size_t i = 0; i < tot.size(); ++i) both += startB[i] < 1e8;
    printf("calls where the worker joined: %d / %zu\n", both, tot.size());
  }
  for (int th = 0; th < 2; ++th) if (!firstPair[th].empty() && !laterPair[th].empty())
    printf("thread %d: first pair min %.2f med %.2f us, later pairs (mean per call) min %.2f med %.2f us\n", th, mn(firstPair[th]), med(firstPair[th]), mn(laterPair[th]), med(laterPair[th]));
  std::vector<double> imb; for (size_t i = 0; i < tot.size(); ++i) imb.push_back(std::abs(endA[i] - endB[i]));
  std::vector<double> after; for (size_t i = 0; i < tot.size(); ++i) after.push_back(tot[i] - std::max(endA[i], endB[i]));
  printf("median |end0-end1| %.1f us, after last end %.1f us\n", med(imb), med(after));
  return 0;
}
