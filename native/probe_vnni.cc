// int8 dot-product peak probes (bench only): 16 independent vpdpbusd chains per thread, zmm
// (AVX-512 VNNI) or ymm (AVX-VNNI, VEX-encoded). Compiled with -mavx512f -mavx512vnni -mavxvnni
// (binding.gyp target tfree_probe_vnni); dispatch.cc calls a probe only when the CPU has its
// feature. Each vpdpbusd does 4 multiply-adds per 32-bit lane = 8 integer ops per lane.
#include <immintrin.h>

#include "vreg.h"  // TF_VREG: the probes' chains kept in vector registers

#include "kernels.h"
#include "threadpool.h"

namespace tfree {
namespace {

struct Ctx {
  long iters;
  int sink[256];
};

#define TF_CHAINS(T, ZERO, DP, X)                                                                   \
  T c0 = ZERO, c1 = ZERO, c2 = ZERO, c3 = ZERO, c4 = ZERO, c5 = ZERO, c6 = ZERO, c7 = ZERO, c8 = ZERO, \
    c9 = ZERO, c10 = ZERO, c11 = ZERO, c12 = ZERO, c13 = ZERO, c14 = ZERO, c15 = ZERO;               \
  for (long i = 0; i < f->iters; ++i) {                                                             \
    c0 = DP(c0, a, b);                                                                              \
    c1 = DP(c1, a, b);                                                                              \
    c2 = DP(c2, a, b);                                                                              \
    c3 = DP(c3, a, b);                                                                              \
    c4 = DP(c4, a, b);                                                                              \
    c5 = DP(c5, a, b);                                                                              \
    c6 = DP(c6, a, b);                                                                              \
    c7 = DP(c7, a, b);                                                                              \
    c8 = DP(c8, a, b);                                                                              \
    c9 = DP(c9, a, b);                                                                              \
    c10 = DP(c10, a, b);                                                                            \
    c11 = DP(c11, a, b);                                                                            \
    c12 = DP(c12, a, b);                                                                            \
    c13 = DP(c13, a, b);                                                                            \
    c14 = DP(c14, a, b);                                                                            \
    c15 = DP(c15, a, b);                                                                            \
    __asm__ volatile("" : TF_VREG(c0), TF_VREG(c1), TF_VREG(c2), TF_VREG(c3), TF_VREG(c4), TF_VREG(c5), TF_VREG(c6), TF_VREG(c7)); \
  }                                                                                                 \
  X

void task512(void* c, long t, int) {
  Ctx* f = static_cast<Ctx*>(c);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(static_cast<char>(t + 1));
  TF_CHAINS(__m512i, _mm512_setzero_si512(), _mm512_dpbusd_epi32, {
    __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
                                 _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)));
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11)));
    s = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_add_epi32(c12, c13), _mm512_add_epi32(c14, c15)));
    f->sink[t] = _mm512_reduce_add_epi32(s);
  })
}

void task256(void* c, long t, int) {
  Ctx* f = static_cast<Ctx*>(c);
  const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(static_cast<char>(t + 1));
#define TF_DP256(acc, x, y) _mm256_dpbusd_avx_epi32(acc, x, y)
  TF_CHAINS(__m256i, _mm256_setzero_si256(), TF_DP256, {
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(c0, c1), _mm256_add_epi32(c2, c3)),
                                 _mm256_add_epi32(_mm256_add_epi32(c4, c5), _mm256_add_epi32(c6, c7)));
    s = _mm256_add_epi32(s, _mm256_add_epi32(_mm256_add_epi32(c8, c9), _mm256_add_epi32(c10, c11)));
    s = _mm256_add_epi32(s, _mm256_add_epi32(_mm256_add_epi32(c12, c13), _mm256_add_epi32(c14, c15)));
    alignas(32) int v[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(v), s);
    f->sink[t] = v[0] + v[7];
  })
#undef TF_DP256
}

double run(void (*task)(void*, long, int), long iters, int threads, double opsPerIter) {
  Ctx c;
  c.iters = iters < 1 ? 1 : iters;
  int nt = threads < 1 ? 1 : threads;
  const int pt = pool_threads();
  if (nt > pt) nt = pt;
  pool_run_static(nt, task, &c);
  volatile int sink = 0;
  for (int t = 0; t < nt; ++t) sink = sink + c.sink[t];
  return static_cast<double>(c.iters) * nt * 16.0 * opsPerIter;
}

}  // namespace

double int8_peak_avx512vnni(long iters, int threads) { return run(task512, iters, threads, 16 * 8); }
double int8_peak_avxvnni(long iters, int threads) { return run(task256, iters, threads, 8 * 8); }

}  // namespace tfree
