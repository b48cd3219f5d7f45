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
  // attention register tiles: 4 rows x 4 scalars
  static constexpr long kAttnNV = 4;
  static constexpr int kAttnR = 4;
  static constexpr bool kAttnT8 = false;  // no transpose8x8: the key transpose goes element by element
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
  static constexpr long kReadAlign = 1;  // read probe chunks are multiples of this
  static constexpr double kFmaFlopsPerIter = 12.0 * 2.0;  // flops per thread per iteration
  // the read probe's loop over x[i0, i1) of one thread (ops_impl.h drives it)
  static double read_range(const float* x, long i0, long i1) {
    float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    long i = i0;
    for (; i + 4 <= i1; i += 4) {
      a0 += x[i];
      a1 += x[i + 1];
      a2 += x[i + 2];
      a3 += x[i + 3];
    }
    double s = (a0 + a1) + (a2 + a3);
    for (; i < i1; ++i) s += x[i];
    return s;
  }
  // the FMA probe's chains of thread t (ops_impl.h drives them); returns a sink value. Scalar
  // chains: 12 "FMA" chains of one lane each; the caller reports 8-lane GFLOP/s units, so on this
  // path the number is only indicative.
  static float fma_chains(long iters, long t) {
    float acc[12];
    for (int k = 0; k < 12; ++k) acc[k] = 1.0f + 0.1f * k + t;
    for (long i = 0; i < iters; ++i)
      for (int k = 0; k < 12; ++k) acc[k] = acc[k] * 0.999999f + 1e-7f;
    float s = 0;
    for (int k = 0; k < 12; ++k) s += acc[k];
    return s;
  }
};

typedef Scalar B;
#include "ops_impl.h"

}  // namespace
}  // namespace genops

const OpsTable* ops_generic() {
  static const OpsTable* t = genops::make_table("generic");
  return t;
}

}  // namespace tfree
