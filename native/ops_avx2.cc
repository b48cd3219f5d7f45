// AVX2/FMA instantiation of the kernels in ops_impl.h (compiled with -mavx2 -mfma; only called
// after the runtime CPU check). Vector math (exp, log, tanh, erfc) are polynomial approximations
// accurate to a few ulp.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

#define TF_AI __attribute__((always_inline)) inline

namespace tfree {
namespace avx2ops {
namespace {

#include "transpose8_avx2.h"

struct Avx2 {
  typedef __m256 V;
  typedef __m256 M;
  static constexpr long W = 8;
  // attention register tiles: 6 rows x 2 vectors (12 accumulators + 2 loads + 1 broadcast fit
  // the 16 ymm registers, as in the SGEMM microkernel; 4 x 4 spilled accumulators to the stack,
  // 4 x 2 left the two FMA pipes short of independent chains)
  static constexpr long kAttnNV = 2;
  static constexpr int kAttnR = 6;
  static constexpr bool kAttnT8 = true;  // transpose8x8 below
  // dst[d * ldd + j] = src[j * lds + d] for j, d < 8 (the attention's key transpose, 8 x 8 at a time)
  static TF_AI void transpose8x8(const float* src, long lds, float* dst, long ldd) {
    tfree::avx2ops::transpose8x8(src, lds, dst, ldd);
  }

  static TF_AI __m256i tmask(long n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static TF_AI V load(const float* p) { return _mm256_loadu_ps(p); }
  static TF_AI V loadn(const float* p, long n) { return _mm256_maskload_ps(p, tmask(n)); }
  static TF_AI void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static TF_AI void storen(float* p, V v, long n) { _mm256_maskstore_ps(p, tmask(n), v); }
  static TF_AI V set1(float f) { return _mm256_set1_ps(f); }
  static TF_AI V zero() { return _mm256_setzero_ps(); }
  static TF_AI V lane_index() { return _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7); }
  static TF_AI V add(V a, V b) { return _mm256_add_ps(a, b); }
  static TF_AI V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static TF_AI V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static TF_AI V div(V a, V b) { return _mm256_div_ps(a, b); }
  static TF_AI V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static TF_AI V neg(V a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
  static TF_AI V abs(V a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static TF_AI V sqrt(V a) { return _mm256_sqrt_ps(a); }
  static TF_AI M isnan(V a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  // a >= b ? a : b and a <= b ? a : b (exactly the JS twin's semantics, NaN included)
  static TF_AI V maxp(V a, V b) { return _mm256_blendv_ps(b, a, _mm256_cmp_ps(a, b, _CMP_GE_OQ)); }
  static TF_AI V minp(V a, V b) { return _mm256_blendv_ps(b, a, _mm256_cmp_ps(a, b, _CMP_LE_OQ)); }
  static TF_AI V maxf(V a, V b) { return _mm256_max_ps(a, b); }
  static TF_AI M gt(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static TF_AI M eq(V a, V b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static TF_AI V sel(M m, V a, V b) { return _mm256_blendv_ps(b, a, m); }
  static TF_AI float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static TF_AI float hmax(V v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  // exp: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial (Cephes expf coefficients), 2^n applied
  // in two halves so results down to the denormal range and overflow to +inf come out right.
  static TF_AI V exp(V x) {
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));  // NaN passes through
    const V n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    V p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    const V r2 = _mm256_mul_ps(r, r);
    V y = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const V s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const V s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
  }

  // log: Cephes logf (mantissa in [sqrt(1/2), sqrt 2), degree-8 polynomial); handles 0, <0, inf,
  // NaN and denormals.
  static TF_AI V log(V x) {
    const V one = _mm256_set1_ps(1.0f);
    const M isDen = _mm256_cmp_ps(x, _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
    V xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(8388608.0f)), isDen);  // * 2^23
    const V eadj = _mm256_blendv_ps(_mm256_setzero_ps(), _mm256_set1_ps(23.0f), isDen);
    const __m256i xi = _mm256_castps_si256(xs);
    __m256i ei = _mm256_sub_epi32(_mm256_srli_epi32(xi, 23), _mm256_set1_epi32(126));
    V m = _mm256_castsi256_ps(
        _mm256_or_si256(_mm256_and_si256(xi, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
    V e = _mm256_sub_ps(_mm256_cvtepi32_ps(ei), eadj);
    const M small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm256_sub_ps(e, _mm256_and_ps(one, small));
    m = _mm256_add_ps(_mm256_sub_ps(m, one), _mm256_and_ps(m, small));
    const V z = _mm256_mul_ps(m, m);
    V p = _mm256_set1_ps(7.0376836292E-2f);
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(-1.1514610310E-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(1.1676998740E-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(-1.2420140846E-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(1.4249322787E-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(-1.6668057665E-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(2.0000714765E-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(-2.4999993993E-1f));
    p = _mm256_fmadd_ps(p, m, _mm256_set1_ps(3.3333331174E-1f));
    V y = _mm256_mul_ps(_mm256_mul_ps(p, m), z);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, y);
    V r = _mm256_add_ps(m, y);
    r = _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), r);
    // specials
    r = _mm256_blendv_ps(r, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, _mm256_set1_ps(__builtin_inff()), _CMP_EQ_OQ));
    r = _mm256_blendv_ps(r, _mm256_set1_ps(-__builtin_inff()), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ));
    r = _mm256_blendv_ps(r, _mm256_set1_ps(__builtin_nanf("")), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
    r = _mm256_blendv_ps(r, x, isnan(x));
    return r;
  }

  static TF_AI V sigmoid(V x) { return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), exp(neg(x)))); }

  // tanh: odd polynomial for |x| < 0.625 (Cephes tanhf), 1 - 2 / (exp(2|x|) + 1) above.
  static TF_AI V tanh(V x) {
    const V ax = abs(x);
    const V z = _mm256_mul_ps(x, x);
    V p = _mm256_set1_ps(-5.70498872745E-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954E-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531E-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036E-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422E-1f));
    const V small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    const V e = exp(_mm256_add_ps(ax, ax));
    V big = _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    big = _mm256_or_ps(big, _mm256_and_ps(x, _mm256_set1_ps(-0.0f)));  // copy sign
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
  }

  // expm1 (for elu): Taylor series for |x| < 0.5 (no cancellation), exp(x) - 1 above.
  static TF_AI V expm1(V x) {
    V p = _mm256_set1_ps(1.0f / 40320.0f);
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 5040.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(0.5f));
    const V small = _mm256_fmadd_ps(_mm256_mul_ps(p, x), x, x);
    const V big = _mm256_sub_ps(exp(x), _mm256_set1_ps(1.0f));
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(abs(x), _mm256_set1_ps(0.5f), _CMP_LT_OQ));
  }

  // Standard normal CDF Phi(x) = 0.5 erfc(-x / sqrt 2). erfc(z), z >= 0, uses the Chebyshev fit
  // t exp(-z^2 + P(t)), t = 1 / (1 + z/2) (fractional error < 1.2e-7), so both tails keep their
  // relative accuracy: Phi = 0.5 E for x < 0 and 1 - 0.5 E for x >= 0.
  static TF_AI V phi(V x) {
    // |x| / sqrt 2, clamped at 11 (erfc(11) ~ 1e-54 is 0 in f32) so +-Infinity gives 0 / 1, not NaN
    const V z = _mm256_min_ps(_mm256_mul_ps(abs(x), _mm256_set1_ps(0.70710678118654752f)), _mm256_set1_ps(11.0f));
    const V t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.5f), z, _mm256_set1_ps(1.0f)));
    V p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    const V z2 = _mm256_mul_ps(z, z);
    const V z2lo = _mm256_fmsub_ps(z, z, z2);  // exact remainder of z*z
    const V e = _mm256_mul_ps(exp(neg(z2)), exp(_mm256_sub_ps(p, z2lo)));
    const V half = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_mul_ps(t, e));  // 0.5 erfc(z)
    const V r = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), half), half,
                                 _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
    return _mm256_blendv_ps(r, x, isnan(x));
  }

  static TF_AI float exp1(float x) { return _mm_cvtss_f32(_mm256_castps256_ps128(exp(_mm256_set1_ps(x)))); }
  static TF_AI float log1(float x) { return _mm_cvtss_f32(_mm256_castps256_ps128(log(_mm256_set1_ps(x)))); }

  static double sumsq_d(const float* x, long n) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), s2 = _mm256_setzero_pd(), s3 = _mm256_setzero_pd();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), b = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
      const __m256d c = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)), d = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12));
      s0 = _mm256_fmadd_pd(a, a, s0);
      s1 = _mm256_fmadd_pd(b, b, s1);
      s2 = _mm256_fmadd_pd(c, c, s2);
      s3 = _mm256_fmadd_pd(d, d, s3);
    }
    alignas(32) double t[4];
    _mm256_store_pd(t, _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
    double s = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
    return s;
  }

  static constexpr long kReadAlign = 16;  // read probe chunks are multiples of this
  static constexpr double kFmaFlopsPerIter = 12.0 * 16.0;  // flops per thread per iteration
  // the read probe's loop over x[i0, i1) of one thread (ops_impl.h drives it)
  static double read_range(const float* x, long i0, long i1) {
    // Four concurrent streams per thread (as a GEMV reads four weight rows at once): one
    // sequential stream alone leaves the hardware prefetchers short of the machine's bandwidth.
    const long len = i1 > i0 ? i1 - i0 : 0;
    const long q = (len / 4) & ~31L;
    const float* p0 = x + i0;
    const float* p1 = p0 + q;
    const float* p2 = p1 + q;
    const float* p3 = p2 + q;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
    for (long j = 0; j < q; j += 16) {
      a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p0 + j));
      b0 = _mm256_add_ps(b0, _mm256_loadu_ps(p0 + j + 8));
      a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p1 + j));
      b1 = _mm256_add_ps(b1, _mm256_loadu_ps(p1 + j + 8));
      a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p2 + j));
      b2 = _mm256_add_ps(b2, _mm256_loadu_ps(p2 + j + 8));
      a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p3 + j));
      b3 = _mm256_add_ps(b3, _mm256_loadu_ps(p3 + j + 8));
    }
    a0 = _mm256_add_ps(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1));
    a2 = _mm256_add_ps(_mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3));
    double s = hsum(_mm256_add_ps(a0, a2));
    for (long i = i0 + 4 * q; i < i1; ++i) s += x[i];
    return s;
  }

  // the FMA probe's chains of thread t (ops_impl.h drives them); returns a sink value
  static float fma_chains(long iters, long t) {
    const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    __m256 c0 = _mm256_set1_ps(1.0f + t), c1 = _mm256_set1_ps(1.1f), c2 = _mm256_set1_ps(1.2f),
           c3 = _mm256_set1_ps(1.3f), c4 = _mm256_set1_ps(1.4f), c5 = _mm256_set1_ps(1.5f),
           c6 = _mm256_set1_ps(1.6f), c7 = _mm256_set1_ps(1.7f), c8 = _mm256_set1_ps(1.8f),
           c9 = _mm256_set1_ps(1.9f), c10 = _mm256_set1_ps(2.0f), c11 = _mm256_set1_ps(2.1f);
    for (long i = 0; i < iters; ++i) {
      c0 = _mm256_fmadd_ps(c0, m, a);
      c1 = _mm256_fmadd_ps(c1, m, a);
      c2 = _mm256_fmadd_ps(c2, m, a);
      c3 = _mm256_fmadd_ps(c3, m, a);
      c4 = _mm256_fmadd_ps(c4, m, a);
      c5 = _mm256_fmadd_ps(c5, m, a);
      c6 = _mm256_fmadd_ps(c6, m, a);
      c7 = _mm256_fmadd_ps(c7, m, a);
      c8 = _mm256_fmadd_ps(c8, m, a);
      c9 = _mm256_fmadd_ps(c9, m, a);
      c10 = _mm256_fmadd_ps(c10, m, a);
      c11 = _mm256_fmadd_ps(c11, m, a);
      __asm__ volatile("" : "+x"(c0), "+x"(c1), "+x"(c2), "+x"(c3), "+x"(c4), "+x"(c5));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    return hsum(s);
  }
};

typedef Avx2 B;
#include "ops_impl.h"

}  // namespace
}  // namespace avx2ops

const OpsTable* ops_avx2() {
  static const OpsTable* t = avx2ops::make_table("avx2");
  return t;
}

}  // namespace tfree
