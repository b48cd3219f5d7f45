// ARM64 NEON instantiation of the kernels in ops_impl.h (4-lane float32x4_t backend). NEON (ASIMD)
// is part of the ARMv8-A base, so this file needs no extra -march flag and no runtime check.
// Vector math (exp, log, tanh, erfc) uses the same polynomial approximations as ops_avx2.cc,
// accurate to a few ulp; comparisons and selects keep the portable path's NaN semantics.
// Compiled to nothing on other architectures (binding.gyp also keeps it out of x86 builds).
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

#define TF_AI __attribute__((always_inline)) inline

namespace tfree {
namespace neonops {
namespace {

struct Neon {
  typedef float32x4_t V;
  typedef uint32x4_t M;
  static constexpr long W = 4;
  // attention register tiles: 4 rows x 4 vectors (16 accumulators of the 32 q registers)
  static constexpr long kAttnNV = 4;
  static constexpr int kAttnR = 4;
  static constexpr bool kAttnT8 = false;  // no transpose8x8: the key transpose goes element by element

  static TF_AI V load(const float* p) { return vld1q_f32(p); }
  static TF_AI V loadn(const float* p, long n) {
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    std::memcpy(t, p, sizeof(float) * n);
    return vld1q_f32(t);
  }
  static TF_AI void store(float* p, V v) { vst1q_f32(p, v); }
  static TF_AI void storen(float* p, V v, long n) {
    float t[4];
    vst1q_f32(t, v);
    std::memcpy(p, t, sizeof(float) * n);
  }
  static TF_AI V set1(float f) { return vdupq_n_f32(f); }
  static TF_AI V zero() { return vdupq_n_f32(0.0f); }
  static TF_AI V lane_index() {
    static const float idx[4] = {0.0f, 1.0f, 2.0f, 3.0f};
    return vld1q_f32(idx);
  }
  static TF_AI V add(V a, V b) { return vaddq_f32(a, b); }
  static TF_AI V sub(V a, V b) { return vsubq_f32(a, b); }
  static TF_AI V mul(V a, V b) { return vmulq_f32(a, b); }
  static TF_AI V div(V a, V b) { return vdivq_f32(a, b); }
  static TF_AI V fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
  static TF_AI V neg(V a) { return vnegq_f32(a); }
  static TF_AI V abs(V a) { return vabsq_f32(a); }
  static TF_AI V sqrt(V a) { return vsqrtq_f32(a); }
  static TF_AI M isnan(V a) { return vmvnq_u32(vceqq_f32(a, a)); }
  // a >= b ? a : b and a <= b ? a : b (the JS twin's semantics, NaN included)
  static TF_AI V maxp(V a, V b) { return vbslq_f32(vcgeq_f32(a, b), a, b); }
  static TF_AI V minp(V a, V b) { return vbslq_f32(vcleq_f32(a, b), a, b); }
  // plain max with the portable/x86 semantics (b when either is NaN); vmaxq_f32 would return NaN
  static TF_AI V maxf(V a, V b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
  static TF_AI M gt(V a, V b) { return vcgtq_f32(a, b); }
  static TF_AI M eq(V a, V b) { return vceqq_f32(a, b); }
  static TF_AI V sel(M m, V a, V b) { return vbslq_f32(m, a, b); }
  static TF_AI float hsum(V v) { return vaddvq_f32(v); }
  static TF_AI float hmax(V v) {
    const float32x2_t h = vget_high_f32(v), l = vget_low_f32(v);
    const float32x2_t m2 = vbsl_f32(vcgt_f32(l, h), l, h);
    const float a = vget_lane_f32(m2, 0), b = vget_lane_f32(m2, 1);
    return a > b ? a : b;
  }
  // x86 minps/maxps semantics (the second operand when either is NaN), used for clamping
  static TF_AI V min_(V a, V b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
  static TF_AI V max_(V a, V b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }

  // exp: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial (Cephes expf coefficients), 2^n applied
  // in two halves so results down to the denormal range and overflow to +inf come out right.
  static TF_AI V exp(V x) {
    // clamp with NaN passing through (x86 min/max return the second operand when one is NaN)
    x = min_(vdupq_n_f32(89.0f), max_(vdupq_n_f32(-104.0f), x));
    const V n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    V r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    V p = vdupq_n_f32(1.9875691500E-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507E-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073E-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894E-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459E-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201E-1f), p, r);
    const V r2 = vmulq_f32(r, r);
    const V y = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, r2);
    const int32x4_t ni = vcvtnq_s32_f32(n);  // n is integral; NaN lanes give 0 (y is NaN there)
    const int32x4_t n1 = vshrq_n_s32(ni, 1);
    const int32x4_t n2 = vsubq_s32(ni, n1);
    const int32x4_t bias = vdupq_n_s32(127);
    const V s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, bias), 23));
    const V s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, bias), 23));
    return vmulq_f32(vmulq_f32(y, s1), s2);
  }

  // log: Cephes logf (mantissa in [sqrt(1/2), sqrt 2), degree-8 polynomial); handles 0, <0, inf,
  // NaN and denormals.
  static TF_AI V log(V x) {
    const V one = vdupq_n_f32(1.0f);
    const M isDen = vcltq_f32(x, vdupq_n_f32(1.17549435e-38f));
    const V xs = vbslq_f32(isDen, vmulq_f32(x, vdupq_n_f32(8388608.0f)), x);  // * 2^23
    const V eadj = vbslq_f32(isDen, vdupq_n_f32(23.0f), vdupq_n_f32(0.0f));
    const uint32x4_t xi = vreinterpretq_u32_f32(xs);
    const int32x4_t ei = vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(xi, 23)), vdupq_n_s32(126));
    V m = vreinterpretq_f32_u32(vorrq_u32(vandq_u32(xi, vdupq_n_u32(0x007fffff)), vdupq_n_u32(0x3f000000)));
    V e = vsubq_f32(vcvtq_f32_s32(ei), eadj);
    const M small = vcltq_f32(m, vdupq_n_f32(0.707106781186547524f));
    e = vsubq_f32(e, vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(one), small)));
    m = vaddq_f32(vsubq_f32(m, one), vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(m), small)));
    const V z = vmulq_f32(m, m);
    V p = vdupq_n_f32(7.0376836292E-2f);
    p = vfmaq_f32(vdupq_n_f32(-1.1514610310E-1f), p, m);
    p = vfmaq_f32(vdupq_n_f32(1.1676998740E-1f), p, m);
    p = vfmaq_f32(vdupq_n_f32(-1.2420140846E-1f), p, m);
    p = vfmaq_f32(vdupq_n_f32(1.4249322787E-1f), p, m);
    p = vfmaq_f32(vdupq_n_f32(-1.6668057665E-1f), p, m);
    p = vfmaq_f32(vdupq_n_f32(2.0000714765E-1f), p, m);
    p = vfmaq_f32(vdupq_n_f32(-2.4999993993E-1f), p, m);
    p = vfmaq_f32(vdupq_n_f32(3.3333331174E-1f), p, m);
    V y = vmulq_f32(vmulq_f32(p, m), z);
    y = vfmaq_f32(y, e, vdupq_n_f32(-2.12194440e-4f));
    y = vfmsq_f32(y, vdupq_n_f32(0.5f), z);
    V r = vaddq_f32(m, y);
    r = vfmaq_f32(r, e, vdupq_n_f32(0.693359375f));
    // specials
    r = vbslq_f32(vceqq_f32(x, vdupq_n_f32(__builtin_inff())), vdupq_n_f32(__builtin_inff()), r);
    r = vbslq_f32(vceqq_f32(x, vdupq_n_f32(0.0f)), vdupq_n_f32(-__builtin_inff()), r);
    r = vbslq_f32(vcltq_f32(x, vdupq_n_f32(0.0f)), vdupq_n_f32(__builtin_nanf("")), r);
    r = vbslq_f32(isnan(x), x, r);
    return r;
  }

  static TF_AI V sigmoid(V x) { return vdivq_f32(vdupq_n_f32(1.0f), vaddq_f32(vdupq_n_f32(1.0f), exp(vnegq_f32(x)))); }

  // tanh: odd polynomial for |x| < 0.625 (Cephes tanhf), 1 - 2 / (exp(2|x|) + 1) above.
  static TF_AI V tanh(V x) {
    const V ax = vabsq_f32(x);
    const V z = vmulq_f32(x, x);
    V p = vdupq_n_f32(-5.70498872745E-3f);
    p = vfmaq_f32(vdupq_n_f32(2.06390887954E-2f), p, z);
    p = vfmaq_f32(vdupq_n_f32(-5.37397155531E-2f), p, z);
    p = vfmaq_f32(vdupq_n_f32(1.33314422036E-1f), p, z);
    p = vfmaq_f32(vdupq_n_f32(-3.33332819422E-1f), p, z);
    const V small = vfmaq_f32(x, vmulq_f32(p, z), x);
    const V e = exp(vaddq_f32(ax, ax));
    V big = vsubq_f32(vdupq_n_f32(1.0f), vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, vdupq_n_f32(1.0f))));
    big = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(big),
                                          vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u))));  // copy sign
    return vbslq_f32(vcltq_f32(ax, vdupq_n_f32(0.625f)), small, big);
  }

  // expm1 (for elu): Taylor series for |x| < 0.5 (no cancellation), exp(x) - 1 above.
  static TF_AI V expm1(V x) {
    V p = vdupq_n_f32(1.0f / 40320.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 5040.0f), p, x);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, x);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, x);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, x);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, x);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, x);
    const V small = vfmaq_f32(x, vmulq_f32(p, x), x);
    const V big = vsubq_f32(exp(x), vdupq_n_f32(1.0f));
    return vbslq_f32(vcltq_f32(vabsq_f32(x), vdupq_n_f32(0.5f)), small, big);
  }

  // Standard normal CDF Phi(x) = 0.5 erfc(-x / sqrt 2), as in ops_avx2.cc (Chebyshev fit of erfc,
  // fractional error < 1.2e-7, both tails keep their relative accuracy).
  static TF_AI V phi(V x) {
    const V z = min_(vmulq_f32(vabsq_f32(x), vdupq_n_f32(0.70710678118654752f)), vdupq_n_f32(11.0f));
    const V t = vdivq_f32(vdupq_n_f32(1.0f), vfmaq_f32(vdupq_n_f32(1.0f), vdupq_n_f32(0.5f), z));
    V p = vdupq_n_f32(0.17087277f);
    p = vfmaq_f32(vdupq_n_f32(-0.82215223f), p, t);
    p = vfmaq_f32(vdupq_n_f32(1.48851587f), p, t);
    p = vfmaq_f32(vdupq_n_f32(-1.13520398f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0.27886807f), p, t);
    p = vfmaq_f32(vdupq_n_f32(-0.18628806f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0.09678418f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0.37409196f), p, t);
    p = vfmaq_f32(vdupq_n_f32(1.00002368f), p, t);
    p = vfmaq_f32(vdupq_n_f32(-1.26551223f), p, t);
    const V z2 = vmulq_f32(z, z);
    const V z2lo = vnegq_f32(vfmsq_f32(z2, z, z));  // exact remainder z*z - z2
    const V e = vmulq_f32(exp(vnegq_f32(z2)), exp(vsubq_f32(p, z2lo)));
    const V half = vmulq_f32(vdupq_n_f32(0.5f), vmulq_f32(t, e));  // 0.5 erfc(z)
    const V r = vbslq_f32(vcltq_f32(x, vdupq_n_f32(0.0f)), half, vsubq_f32(vdupq_n_f32(1.0f), half));
    return vbslq_f32(isnan(x), x, r);
  }

  static TF_AI float exp1(float x) { return vgetq_lane_f32(exp(vdupq_n_f32(x)), 0); }
  static TF_AI float log1(float x) { return vgetq_lane_f32(log(vdupq_n_f32(x)), 0); }

  static double sumsq_d(const float* x, long n) {
    float64x2_t s0 = vdupq_n_f64(0), s1 = vdupq_n_f64(0), s2 = vdupq_n_f64(0), s3 = vdupq_n_f64(0);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
      const float32x4_t a = vld1q_f32(x + i), b = vld1q_f32(x + i + 4);
      const float64x2_t a0 = vcvt_f64_f32(vget_low_f32(a)), a1 = vcvt_high_f64_f32(a);
      const float64x2_t b0 = vcvt_f64_f32(vget_low_f32(b)), b1 = vcvt_high_f64_f32(b);
      s0 = vfmaq_f64(s0, a0, a0);
      s1 = vfmaq_f64(s1, a1, a1);
      s2 = vfmaq_f64(s2, b0, b0);
      s3 = vfmaq_f64(s3, b1, b1);
    }
    double s = vaddvq_f64(vaddq_f64(vaddq_f64(s0, s1), vaddq_f64(s2, s3)));
    for (; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
    return s;
  }

  static constexpr long kReadAlign = 16;  // read probe chunks are multiples of this
  static constexpr double kFmaFlopsPerIter = 12.0 * 8.0;  // flops per thread per iteration
  // the read probe's loop over x[i0, i1) of one thread (ops_impl.h drives it)
  static double read_range(const float* x, long i0, long i1) {
    // four concurrent streams per thread, as in ops_avx2.cc
    const long len = i1 > i0 ? i1 - i0 : 0;
    const long q = (len / 4) & ~31L;
    const float* p0 = x + i0;
    const float* p1 = p0 + q;
    const float* p2 = p1 + q;
    const float* p3 = p2 + q;
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (long j = 0; j < q; j += 8) {
      a0 = vaddq_f32(a0, vld1q_f32(p0 + j));
      b0 = vaddq_f32(b0, vld1q_f32(p0 + j + 4));
      a1 = vaddq_f32(a1, vld1q_f32(p1 + j));
      b1 = vaddq_f32(b1, vld1q_f32(p1 + j + 4));
      a2 = vaddq_f32(a2, vld1q_f32(p2 + j));
      b2 = vaddq_f32(b2, vld1q_f32(p2 + j + 4));
      a3 = vaddq_f32(a3, vld1q_f32(p3 + j));
      b3 = vaddq_f32(b3, vld1q_f32(p3 + j + 4));
    }
    a0 = vaddq_f32(vaddq_f32(a0, b0), vaddq_f32(a1, b1));
    a2 = vaddq_f32(vaddq_f32(a2, b2), vaddq_f32(a3, b3));
    double s = vaddvq_f32(vaddq_f32(a0, a2));
    for (long i = i0 + 4 * q; i < i1; ++i) s += x[i];
    return s;
  }

  // the FMA probe's chains of thread t (ops_impl.h drives them); returns a sink value
  static float fma_chains(long iters, long t) {
    const float32x4_t m = vdupq_n_f32(0.999999f), a = vdupq_n_f32(1e-7f);
    float32x4_t c0 = vdupq_n_f32(1.0f + t), c1 = vdupq_n_f32(1.1f), c2 = vdupq_n_f32(1.2f), c3 = vdupq_n_f32(1.3f),
                c4 = vdupq_n_f32(1.4f), c5 = vdupq_n_f32(1.5f), c6 = vdupq_n_f32(1.6f), c7 = vdupq_n_f32(1.7f),
                c8 = vdupq_n_f32(1.8f), c9 = vdupq_n_f32(1.9f), c10 = vdupq_n_f32(2.0f), c11 = vdupq_n_f32(2.1f);
    for (long i = 0; i < iters; ++i) {
      c0 = vfmaq_f32(a, c0, m);
      c1 = vfmaq_f32(a, c1, m);
      c2 = vfmaq_f32(a, c2, m);
      c3 = vfmaq_f32(a, c3, m);
      c4 = vfmaq_f32(a, c4, m);
      c5 = vfmaq_f32(a, c5, m);
      c6 = vfmaq_f32(a, c6, m);
      c7 = vfmaq_f32(a, c7, m);
      c8 = vfmaq_f32(a, c8, m);
      c9 = vfmaq_f32(a, c9, m);
      c10 = vfmaq_f32(a, c10, m);
      c11 = vfmaq_f32(a, c11, m);
      __asm__ volatile("" : "+w"(c0), "+w"(c1), "+w"(c2), "+w"(c3), "+w"(c4), "+w"(c5));
    }
    float32x4_t s = vaddq_f32(vaddq_f32(vaddq_f32(c0, c1), vaddq_f32(c2, c3)), vaddq_f32(vaddq_f32(c4, c5), vaddq_f32(c6, c7)));
    s = vaddq_f32(s, vaddq_f32(vaddq_f32(c8, c9), vaddq_f32(c10, c11)));
    return vaddvq_f32(s);
  }
};

typedef Neon B;
#include "ops_impl.h"

}  // namespace
}  // namespace neonops

const OpsTable* ops_neon() {
  static const OpsTable* t = neonops::make_table("neon");
  return t;
}

}  // namespace tfree
#endif  // __aarch64__
