// In-process A/B of two builds of the AVX2 LUT kernel (issue 13): OLD as packed_lut_matmul_avx2,
// NEW renamed to packed_lut_matmul_avx2_new by a macro, both linked into one binary with one thread
// pool; calls alternate (the order flips every round), each after a 128 MiB read (cold; arg cold 0:
// after a call of its own, warm), on one copy of random codes and scales (MADV_HUGEPAGE unless
// huge 0); prints min / p25 / median per build, new/old of min, median and the median per-round
// ratio, and whether the outputs are the same bits. Args: bits N K rounds [huge 1] [cold 1] [M 1]
// [threads 2]. Both builds read the same codes: across a change of the in-memory layout (2-bit
// codes in two streams per tile since 2026-12-05) the outputs differ unless NEW's copy is converted.
//
// Build (OLD, NEW: checkouts; extra -D flags per side allowed):
//   echo 'void lut_trace_hook(int ev, long task, int tid);' > /tmp/lut_trace.h
//   F="-O3 -std=c++17 -pthread -mavx2 -mfma -ffp-contract=off -include /tmp/lut_trace.h -DLUT_TRACE=lut_trace_hook"
//   g++ $F -INEW/native -c NEW/native/packed_lut_avx2.cc -Dpacked_lut_matmul_avx2=packed_lut_matmul_avx2_new -o /tmp/new.o
//   g++ $F -IOLD/native -c OLD/native/packed_lut_avx2.cc -o /tmp/old.o
//   g++ $F -INEW/native experiments/native/lut_ab.cc /tmp/new.o /tmp/old.o NEW/native/packed_lut_generic.cc \
//     NEW/native/packed_generic.cc NEW/native/threadpool.cc -o /tmp/lut_ab
//   flock /work/bench.lock /tmp/lut_ab 2 4096 4096 300
// In-process A/B of two builds of packed_lut_matmul_avx2 (old, new = _new), cold calls alternating.
#include <immintrin.h>
#include <x86intrin.h>
#include <sys/mman.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>
#include <chrono>
#include "kernels.h"
#include "threadpool.h"
namespace tfree { void packed_lut_matmul_avx2_new(const PackedLutArgs& a); }
using namespace tfree;
void lut_trace_hook(int, long, int) {}
struct RC { const float* x; long n; int parts; double sums[8]; };
static void read_task(void* c, long t, int) {
  RC* r = (RC*)c; long per = (r->n / r->parts + 63) / 64 * 64; long a = t * per, b = std::min(r->n, a + per);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0;
  for (long i = a; i + 16 <= b; i += 16) { s0 = _mm256_add_ps(s0, _mm256_load_ps(r->x + i)); s1 = _mm256_add_ps(s1, _mm256_load_ps(r->x + i + 8)); }
  float o[8]; _mm256_storeu_ps(o, _mm256_add_ps(s0, s1)); r->sums[t] = o[0];
}
static void readsum(const float* x, long n) { RC r{x, n, 2, {}}; pool_run_static(2, read_task, &r); }
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
static void* alloc(size_t n, bool huge) {
  if (!huge) return aligned_alloc(4096, (n + 4095) / 4096 * 4096);
  size_t sz = (n + (2 << 20) - 1) / (2 << 20) * (2 << 20);
  void* p = aligned_alloc(2 << 20, sz); madvise(p, sz, MADV_HUGEPAGE); return p;
}
int main(int argc, char** argv) {
  int bits = atoi(argv[1]); long N = atol(argv[2]), K = atol(argv[3]); int rounds = atoi(argv[4]); int huge = argc > 5 ? atoi(argv[5]) : 1;
  int cold = argc > 6 ? atoi(argv[6]) : 1; long M = argc > 7 ? atol(argv[7]) : 1;
  pool_set_threads(argc > 8 ? atoi(argv[8]) : 2);
  long rb = K * bits / 8, nT = (N + 31) / 32, B = 64, nB = K / B;
  uint8_t* codes = (uint8_t*)alloc(nT * 32 * rb, huge); uint16_t* scales = (uint16_t*)alloc(nT * 32 * nB * 2, huge);
  srand(1); for (long i = 0; i < nT * 32 * rb; ++i) codes[i] = rand() & 255;
  for (long i = 0; i < nT * 32 * nB; ++i) scales[i] = 0x3c00 + (rand() & 255);
  std::vector<float> x(K * M), y0(N * M), y1(N * M);
  for (auto& v : x) v = (rand() / (float)RAND_MAX) - 0.5f;
  float lv2[4] = {-1.3f, -0.4f, 0.45f, 1.2f}, lv1[2] = {-1.f, 1.f};
  long fl = 32L << 20; float* flush = (float*)aligned_alloc(64, fl * 4); for (long i = 0; i < fl; ++i) flush[i] = 1;
  std::vector<double> t[2]; bool same = true;
  for (int r = 0; r < rounds; ++r)
    for (int k = 0; k < 2; ++k) {
      int h = (r + k) % 2;
      std::vector<float>& y = h ? y1 : y0; std::fill(y.begin(), y.end(), NAN);
      PackedLutArgs a{M, N, K, x.data(), codes, bits, bits == 1 ? lv1 : lv2, scales, B, y.data()};
      if (cold) readsum(flush, fl); else (h ? packed_lut_matmul_avx2_new : packed_lut_matmul_avx2)(a);
      double s = now(); (h ? packed_lut_matmul_avx2_new : packed_lut_matmul_avx2)(a); t[h].push_back(now() - s);
      if (h == 1 && memcmp(y0.data(), y1.data(), N * M * 4) != 0 && r > 0) same = false;
    }
  for (int h = 0; h < 2; ++h) { auto v = t[h]; std::sort(v.begin(), v.end()); printf("  %s: min %.1f us p25 %.1f med %.1f\n", h ? "new" : "old", v[0] * 1e6, v[v.size() / 4] * 1e6, v[v.size() / 2] * 1e6); }
  auto a = t[0], b = t[1]; std::vector<double> q; for (size_t i = 0; i < a.size(); ++i) q.push_back(b[i] / a[i]); std::sort(q.begin(), q.end());
  auto mn = [](std::vector<double> v) { return *std::min_element(v.begin(), v.end()); };
  auto md = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; };
  printf("bits %d %ldx%ld M %ld %s %s: new/old min %.3f median %.3f, per-round median %.3f; same bits %s\n", bits, K, N, M, huge ? "huge" : "4K", cold ? "cold" : "warm", mn(b) / mn(a), md(b) / md(a), q[q.size() / 2], same ? "yes" : "NO");
}
