// Portable (scalar, libm) instantiation of the kernels in ops_impl.h: used on CPUs without
// AVX2+FMA and when TFREE_SIMD=generic.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

namespace tfree {
namespace genops {
namespace {

struct Scalar {
  typedef float V;
  typedef bool M;
  static constexpr long W = 1;
  static inline V load(const float* p) { return *p; }
  static inline V loadn(const float* p, long) { return *p; }  // never called with n < 1
  static inline void store(float* p, V v) { *p = v; }
  static inline void storen(float* p, V v, long) { *p = v; }
  static inline V set1(float f) { return f; }
  static inline V zero() { return 0.0f; }
  static inline V lane_index() { return 0.0f; }
  static inline V add(V a, V b) { return a + b; }
  static inline V sub(V a, V b) { return a - b; }
  static inline V mul(V a, V b) { return a * b; }
  static inline V div(V a, V b) { return a / b; }
  static inline V fma(V a, V b, V c) { return a * b + c; }
  static inline V neg(V a) { return -a; }
  static inline V abs(V a) { return std::fabs(a); }
  static inline V sqrt(V a) { return std::sqrt(a); }
  static inline V maxp(V a, V b) { return a >= b ? a : b; }
  static inline V minp(V a, V b) { return a <= b ? a : b; }
  static inline V maxf(V a, V b) { return a > b ? a : b; }
  static inline M gt(V a, V b) { return a > b; }
  static inline M eq(V a, V b) { return a == b; }
  static inline V sel(M m, V a, V b) { return m ? a : b; }
  static inline float hsum(V v) { return v; }
  static inline float hmax(V v) { return v; }
  static inline V exp(V x) { return std::exp(x); }
  static inline V log(V x) { return std::log(x); }
  static inline V tanh(V x) { return std::tanh(x); }
  static inline V sigmoid(V x) { return 1.0f / (1.0f + std::exp(-x)); }
  static inline V expm1(V x) { return std::expm1(x); }
  static inline V phi(V x) { return 0.5f * std::erfc(-x * 0.70710678118654752f); }
  static inline float exp1(float x) { return std::exp(x); }
  static inline float log1(float x) { return std::log(x); }
  static double sumsq_d(const float* x, long n) {
    double s0 = 0, s1 = 0;
    long i = 0;
    for (; i + 2 <= n; i += 2) {
      s0 += static_cast<double>(x[i]) * x[i];
      s1 += static_cast<double>(x[i + 1]) * x[i + 1];
    }
    if (i < n) s0 += static_cast<double>(x[i]) * x[i];
    return s0 + s1;
  }
  struct ReadCtx {
    const float* x;
    long n;
    int parts;
    double sums[256];
  };
  static void read_task(void* c, long t, int) {
    ReadCtx* r = static_cast<ReadCtx*>(c);
    const long chunk = (r->n + r->parts - 1) / r->parts;
    const long i0 = t * chunk, i1 = i0 + chunk < r->n ? i0 + chunk : r->n;
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    long i = i0;
    for (; i + 4 <= i1; i += 4) {
      a0 += r->x[i];
      a1 += r->x[i + 1];
      a2 += r->x[i + 2];
      a3 += r->x[i + 3];
    }
    double s = (a0 + a1) + (a2 + a3);
    for (; i < i1; ++i) s += r->x[i];
    r->sums[t] = i0 < i1 ? s : 0.0;
  }
  static double read_sum(const float* x, long n, int threads) {
    ReadCtx c;
    c.x = x;
    c.n = n;
    c.parts = threads < 1 ? 1 : (threads > 256 ? 256 : threads);
    const int pt = pool_threads();
    if (c.parts > pt) c.parts = pt;
    pool_run_static(c.parts, read_task, &c);
    double s = 0;
    for (int t = 0; t < c.parts; ++t) s += c.sums[t];
    return s;
  }
  struct FmaCtx {
    long iters;
    float sink[256];
  };
  static void fma_task(void* c, long t, int) {
    FmaCtx* f = static_cast<FmaCtx*>(c);
    float acc[12];
    for (int k = 0; k < 12; ++k) acc[k] = 1.0f + 0.1f * k + t;
    for (long i = 0; i < f->iters; ++i)
      for (int k = 0; k < 12; ++k) acc[k] = acc[k] * 0.999999f + 1e-7f;
    float s = 0;
    for (int k = 0; k < 12; ++k) s += acc[k];
    f->sink[t] = s;
  }
  // Scalar chains: 12 "FMA" chains of one lane each; the caller reports 8-lane GFLOP/s units, so
  // on this path the number is only indicative.
  static double fma_peak(long iters, int threads) {
    FmaCtx c;
    c.iters = iters < 1 ? 1 : iters;
    int nt = threads < 1 ? 1 : threads;
    const int pt = pool_threads();
    if (nt > pt) nt = pt;
    pool_run_static(nt, fma_task, &c);
    volatile float sink = 0;
    for (int t = 0; t < nt; ++t) sink = sink + c.sink[t];
    return static_cast<double>(c.iters) * nt * 12.0 * 2.0;  // flops executed
  }
};

typedef Scalar B;
#include "ops_impl.h"

}  // namespace
}  // namespace genops

const OpsTable* ops_generic() {
  static const OpsTable* t = genops::make_table("generic", gemm_generic);
  return t;
}

}  // namespace tfree
