// AVX-512 instantiation of the kernels in ops_impl.h (16 lanes; compiled with -mavx512f -mavx512bw
// -mavx512vl -mavx512dq -mavx2 -mfma; only called when dispatch.cc found those features). The
// vector math (exp, log, tanh, erfc) is the AVX2 file's polynomials at twice the width, with
// mask registers for compares, blends and tails.
#include <immintrin.h>

#include "vreg.h"  // TF_VREG: the probes' chains kept in vector registers

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

#define TF_AI __attribute__((always_inline)) inline

namespace tfree {
namespace avx512ops {
namespace {

#include "transpose8_avx2.h"  // the attention's key transpose (this file is built with -mavx2 too)

struct Avx512 {
  typedef __m512 V;
  typedef __mmask16 M;
  static constexpr long W = 16;
  // attention register tiles: 4 rows x 4 vectors (16 accumulators of the 32 zmm registers)
  static constexpr long kAttnNV = 4;
  static constexpr int kAttnR = 4;
  // transpose8x8 below: the AVX2 8 x 8 block transpose (element by element the transposes of keys
  // and values took 0.7 % of a small-preset HAT training step; docs/results/engine.md)
  static constexpr bool kAttnT8 = true;
  // dst[d * ldd + j] = src[j * lds + d] for j, d < 8 (a copy: the same bits as element by element)
  static TF_AI void transpose8x8(const float* src, long lds, float* dst, long ldd) {
    tfree::avx512ops::transpose8x8(src, lds, dst, ldd);
  }

  static TF_AI __mmask16 tmask(long n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static TF_AI V load(const float* p) { return _mm512_loadu_ps(p); }
  static TF_AI V loadn(const float* p, long n) { return _mm512_maskz_loadu_ps(tmask(n), p); }
  static TF_AI void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static TF_AI void storen(float* p, V v, long n) { _mm512_mask_storeu_ps(p, tmask(n), v); }
  static TF_AI V set1(float f) { return _mm512_set1_ps(f); }
  static TF_AI V zero() { return _mm512_setzero_ps(); }
  static TF_AI V lane_index() { return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
  static TF_AI V add(V a, V b) { return _mm512_add_ps(a, b); }
  static TF_AI V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static TF_AI V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static TF_AI V div(V a, V b) { return _mm512_div_ps(a, b); }
  static TF_AI V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static TF_AI V neg(V a) { return _mm512_xor_ps(a, _mm512_set1_ps(-0.0f)); }
  static TF_AI V abs(V a) { return _mm512_andnot_ps(_mm512_set1_ps(-0.0f), a); }
  static TF_AI V sqrt(V a) { return _mm512_sqrt_ps(a); }
  static TF_AI M isnan(V a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  // a >= b ? a : b and a <= b ? a : b (exactly the JS twin's semantics, NaN included)
  static TF_AI V maxp(V a, V b) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_GE_OQ), b, a); }
  static TF_AI V minp(V a, V b) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LE_OQ), b, a); }
  static TF_AI V maxf(V a, V b) { return _mm512_max_ps(a, b); }
  static TF_AI M gt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static TF_AI M eq(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static TF_AI V sel(M m, V a, V b) { return _mm512_mask_blend_ps(m, b, a); }
  // fixed pairwise order (halves, then the AVX2 file's 8-lane order)
  static TF_AI float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static TF_AI float hsum(V v) {
    return hsum8(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
  }
  static TF_AI float hmax(V v) {
    __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  // exp: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial (Cephes expf coefficients), 2^n applied
  // in two halves so results down to the denormal range and overflow to +inf come out right.
  static TF_AI V exp(V x) {
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));  // NaN passes through
    const V n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    V p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    const V r2 = _mm512_mul_ps(r, r);
    V y = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512i ni = _mm512_cvtps_epi32(n);
    const __m512i n1 = _mm512_srai_epi32(ni, 1);
    const __m512i n2 = _mm512_sub_epi32(ni, n1);
    const __m512i bias = _mm512_set1_epi32(127);
    const V s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
    const V s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
    return _mm512_mul_ps(_mm512_mul_ps(y, s1), s2);
  }

  // log: Cephes logf (mantissa in [sqrt(1/2), sqrt 2), degree-8 polynomial); handles 0, <0, inf,
  // NaN and denormals.
  static TF_AI V log(V x) {
    const V one = _mm512_set1_ps(1.0f);
    const M isDen = _mm512_cmp_ps_mask(x, _mm512_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
    V xs = _mm512_mask_mul_ps(x, isDen, x, _mm512_set1_ps(8388608.0f));  // * 2^23
    const V eadj = _mm512_maskz_mov_ps(isDen, _mm512_set1_ps(23.0f));
    const __m512i xi = _mm512_castps_si512(xs);
    __m512i ei = _mm512_sub_epi32(_mm512_srli_epi32(xi, 23), _mm512_set1_epi32(126));
    V m = _mm512_castsi512_ps(
        _mm512_or_si512(_mm512_and_si512(xi, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x3f000000)));
    V e = _mm512_sub_ps(_mm512_cvtepi32_ps(ei), eadj);
    const M small = _mm512_cmp_ps_mask(m, _mm512_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm512_sub_ps(e, _mm512_maskz_mov_ps(small, one));
    m = _mm512_add_ps(_mm512_sub_ps(m, one), _mm512_maskz_mov_ps(small, m));
    const V z = _mm512_mul_ps(m, m);
    V p = _mm512_set1_ps(7.0376836292E-2f);
    p = _mm512_fmadd_ps(p, m, _mm512_set1_ps(-1.1514610310E-1f));
    p = _mm512_fmadd_ps(p, m, _mm512_set1_ps(1.1676998740E-1f));
    p = _mm512_fmadd_ps(p, m, _mm512_set1_ps(-1.2420140846E-1f));
    p = _mm512_fmadd_ps(p, m, _mm512_set1_ps(1.4249322787E-1f));
    p = _mm512_fmadd_ps(p, m, _mm512_set1_ps(-1.6668057665E-1f));
    p = _mm512_fmadd_ps(p, m, _mm512_set1_ps(2.0000714765E-1f));
    p = _mm512_fmadd_ps(p, m, _mm512_set1_ps(-2.4999993993E-1f));
    p = _mm512_fmadd_ps(p, m, _mm512_set1_ps(3.3333331174E-1f));
    V y = _mm512_mul_ps(_mm512_mul_ps(p, m), z);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(-2.12194440e-4f), y);
    y = _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), z, y);
    V r = _mm512_add_ps(m, y);
    r = _mm512_fmadd_ps(e, _mm512_set1_ps(0.693359375f), r);
    // specials
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, _mm512_set1_ps(__builtin_inff()), _CMP_EQ_OQ),
                           _mm512_set1_ps(__builtin_inff()));
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_EQ_OQ), _mm512_set1_ps(-__builtin_inff()));
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_set1_ps(__builtin_nanf("")));
    r = _mm512_mask_mov_ps(r, isnan(x), x);
    return r;
  }

  static TF_AI V sigmoid(V x) { return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), exp(neg(x)))); }

  // tanh: odd polynomial for |x| < 0.625 (Cephes tanhf), 1 - 2 / (exp(2|x|) + 1) above.
  static TF_AI V tanh(V x) {
    const V ax = abs(x);
    const V z = _mm512_mul_ps(x, x);
    V p = _mm512_set1_ps(-5.70498872745E-3f);
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.06390887954E-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.37397155531E-2f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.33314422036E-1f));
    p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.33332819422E-1f));
    const V small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
    const V e = exp(_mm512_add_ps(ax, ax));
    V big = _mm512_sub_ps(_mm512_set1_ps(1.0f), _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    big = _mm512_or_ps(big, _mm512_and_ps(x, _mm512_set1_ps(-0.0f)));  // copy sign
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ), big, small);
  }

  // expm1 (for elu): Taylor series for |x| < 0.5 (no cancellation), exp(x) - 1 above.
  static TF_AI V expm1(V x) {
    V p = _mm512_set1_ps(1.0f / 40320.0f);
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.0f / 5040.0f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(0.5f));
    const V small = _mm512_fmadd_ps(_mm512_mul_ps(p, x), x, x);
    const V big = _mm512_sub_ps(exp(x), _mm512_set1_ps(1.0f));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(abs(x), _mm512_set1_ps(0.5f), _CMP_LT_OQ), big, small);
  }

  // Standard normal CDF Phi(x) = 0.5 erfc(-x / sqrt 2); see ops_avx2.cc for the method.
  static TF_AI V phi(V x) {
    const V z = _mm512_min_ps(_mm512_mul_ps(abs(x), _mm512_set1_ps(0.70710678118654752f)), _mm512_set1_ps(11.0f));
    const V t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.5f), z, _mm512_set1_ps(1.0f)));
    V p = _mm512_set1_ps(0.17087277f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
    const V z2 = _mm512_mul_ps(z, z);
    const V z2lo = _mm512_fmsub_ps(z, z, z2);  // exact remainder of z*z
    const V e = _mm512_mul_ps(exp(neg(z2)), exp(_mm512_sub_ps(p, z2lo)));
    const V half = _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_mul_ps(t, e));  // 0.5 erfc(z)
    const V r = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ),
                                     _mm512_sub_ps(_mm512_set1_ps(1.0f), half), half);
    return _mm512_mask_mov_ps(r, isnan(x), x);
  }

  static TF_AI float exp1(float x) { return _mm512_cvtss_f32(exp(_mm512_set1_ps(x))); }
  static TF_AI float log1(float x) { return _mm512_cvtss_f32(log(_mm512_set1_ps(x))); }

  static double sumsq_d(const float* x, long n) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd(), s2 = _mm512_setzero_pd(), s3 = _mm512_setzero_pd();
    long i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m512d a = _mm512_cvtps_pd(_mm256_loadu_ps(x + i)), b = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
      const __m512d c = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 16)), d = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 24));
      s0 = _mm512_fmadd_pd(a, a, s0);
      s1 = _mm512_fmadd_pd(b, b, s1);
      s2 = _mm512_fmadd_pd(c, c, s2);
      s3 = _mm512_fmadd_pd(d, d, s3);
    }
    alignas(64) double t[8];
    _mm512_store_pd(t, _mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3)));
    double s = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
    for (; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
    return s;
  }

  static constexpr long kReadAlign = 32;  // read probe chunks are multiples of this
  static constexpr double kFmaFlopsPerIter = 16.0 * 32.0;  // flops per thread per iteration
  // the read probe's loop over x[i0, i1) of one thread (ops_impl.h drives it)
  static double read_range(const float* x, long i0, long i1) {
    // four concurrent streams per thread, as in ops_avx2.cc
    const long len = i1 > i0 ? i1 - i0 : 0;
    const long q = (len / 4) & ~31L;
    const float* p0 = x + i0;
    const float* p1 = p0 + q;
    const float* p2 = p1 + q;
    const float* p3 = p2 + q;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
    for (long j = 0; j < q; j += 32) {
      a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p0 + j));
      b0 = _mm512_add_ps(b0, _mm512_loadu_ps(p0 + j + 16));
      a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p1 + j));
      b1 = _mm512_add_ps(b1, _mm512_loadu_ps(p1 + j + 16));
      a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p2 + j));
      b2 = _mm512_add_ps(b2, _mm512_loadu_ps(p2 + j + 16));
      a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p3 + j));
      b3 = _mm512_add_ps(b3, _mm512_loadu_ps(p3 + j + 16));
    }
    a0 = _mm512_add_ps(_mm512_add_ps(a0, b0), _mm512_add_ps(a1, b1));
    a2 = _mm512_add_ps(_mm512_add_ps(a2, b2), _mm512_add_ps(a3, b3));
    double s = hsum(_mm512_add_ps(a0, a2));
    for (long i = i0 + 4 * q; i < i1; ++i) s += x[i];
    return s;
  }

  // FMA probe: 16 independent zmm chains per thread (enough for 2 FMA pipes x 4-cycle latency x
  // 2 halves on CPUs that split 512-bit operations).
  // the FMA probe's chains of thread t (ops_impl.h drives them); returns a sink value
  static float fma_chains(long iters, long t) {
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    __m512 c0 = _mm512_set1_ps(1.0f + t), c1 = _mm512_set1_ps(1.1f), c2 = _mm512_set1_ps(1.2f),
           c3 = _mm512_set1_ps(1.3f), c4 = _mm512_set1_ps(1.4f), c5 = _mm512_set1_ps(1.5f),
           c6 = _mm512_set1_ps(1.6f), c7 = _mm512_set1_ps(1.7f), c8 = _mm512_set1_ps(1.8f),
           c9 = _mm512_set1_ps(1.9f), c10 = _mm512_set1_ps(2.0f), c11 = _mm512_set1_ps(2.1f),
           c12 = _mm512_set1_ps(2.2f), c13 = _mm512_set1_ps(2.3f), c14 = _mm512_set1_ps(2.4f),
           c15 = _mm512_set1_ps(2.5f);
    for (long i = 0; i < iters; ++i) {
      c0 = _mm512_fmadd_ps(c0, m, a);
      c1 = _mm512_fmadd_ps(c1, m, a);
      c2 = _mm512_fmadd_ps(c2, m, a);
      c3 = _mm512_fmadd_ps(c3, m, a);
      c4 = _mm512_fmadd_ps(c4, m, a);
      c5 = _mm512_fmadd_ps(c5, m, a);
      c6 = _mm512_fmadd_ps(c6, m, a);
      c7 = _mm512_fmadd_ps(c7, m, a);
      c8 = _mm512_fmadd_ps(c8, m, a);
      c9 = _mm512_fmadd_ps(c9, m, a);
      c10 = _mm512_fmadd_ps(c10, m, a);
      c11 = _mm512_fmadd_ps(c11, m, a);
      c12 = _mm512_fmadd_ps(c12, m, a);
      c13 = _mm512_fmadd_ps(c13, m, a);
      c14 = _mm512_fmadd_ps(c14, m, a);
      c15 = _mm512_fmadd_ps(c15, m, a);
      __asm__ volatile("" : TF_VREG(c0), TF_VREG(c1), TF_VREG(c2), TF_VREG(c3), TF_VREG(c4), TF_VREG(c5), TF_VREG(c6), TF_VREG(c7));
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15)));
    return hsum(s);
  }
};

typedef Avx512 B;
#include "ops_impl.h"

}  // namespace
}  // namespace avx512ops

const OpsTable* ops_avx512() {
  static const OpsTable* t = avx512ops::make_table("avx512");
  return t;
}

}  // namespace tfree
