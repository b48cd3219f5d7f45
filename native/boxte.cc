// Native BoxTE kernels (twins of src/models/boxte/kernel.ts; see there for the semantics):
//
//   boxteScoreBatch   scores of Q queries against all E entities (evaluation); candidate blocks of
//                     256 entities are the parallel tasks, so each block's rows stay in cache while
//                     every query of the batch is scored against them.
//   boxteTrainGroups  forward + backward of the cross-entropy over B groups of (1 + n) candidates.
//                     Groups are split into one contiguous chunk per thread; chunk 0 accumulates into
//                     the output gradients, the others into scratch buffers added afterwards in chunk
//                     order, so results are deterministic for a given thread count.
//
// The inner loops over the d dimensions have an AVX-512 version (16 lanes, masked tails), an AVX2+FMA
// version (vector tanh through a polynomial exp, |error| < 2e-7) and a portable scalar version, chosen
// by dispatch.cc (family "boxte"; TFREE_ISA=generic|avx2|avx512 caps it). Registered into the addon's exports by tfree_boxte_register (called from addon.cc).
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <vector>
#include <memory>
#if defined(__linux__)
#include <mutex>
#include <sys/mman.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BOXTE_X86 1
#endif

#include "dispatch.h"
#include "napi_args.h"
#include "threadpool.h"

using namespace tfree;

namespace {

// ---- per-relation box geometry for one side (d floats each) -------------------------------------
struct Box {
  const float *l, *u, *c, *w;
  const float *invw, *kappa, *dkappa;  // 1/w, (w-1)(w-1/w)/2, d kappa / d w
};

// one side's forward (side_fwd_scalar / _avx2 / _avx512)
typedef float (*FwdFn)(const float*, const float*, const float*, const Box&, float*, long, bool, bool);

// A function the compiler neither inlines nor clones with its constant arguments (GCC's IPA constant
// propagation would otherwise specialise it, and the specialised copy may contract other fmas).
#if defined(__clang__) || !defined(__GNUC__)
#define BOXTE_NOIPA __attribute__((noinline))
#else
#define BOXTE_NOIPA __attribute__((noipa))
#endif

// ---- scalar (portable) inner loops ----------------------------------------------------------------

inline float dist1(float p, const Box& b, long k) {
  const float a = std::fabs(p - b.c[k]);
  return (p >= b.l[k] && p <= b.u[k]) ? a * b.invw[k] : a * b.w[k] - b.kappa[k];
}

// points p = tanh(x1 + x2 + x3) (x3 may be null) stored in P (may be null); returns sum of dist^2 (l2) or dist
float side_fwd_scalar(const float* x1, const float* x2, const float* x3, const Box& b, float* P, long d, bool useTanh,
                      bool l2) {
  float s = 0;
  for (long k = 0; k < d; ++k) {
    float x = x1[k] + x2[k] + (x3 ? x3[k] : 0.0f);
    if (useTanh) x = std::tanh(x);
    if (P) P[k] = x;
    const float di = dist1(x, b, k);
    s += l2 ? di * di : di;
  }
  return s;
}

// backward of f * norm-part for one side: f is g/norm (l2) or g (l1). Not inlined: the AVX2 paths
// call it for their scalar remainder and get the portable build's rounding (no fma contraction).
// side_bwd_src_scalar reads the rows' old values at sSelf / sOther (gSelf / gOther themselves, or a
// row of zeros for a row's first addition of the step under lazy zeroing: see TrainGroups).
BOXTE_NOIPA void side_bwd_src_scalar(const float* P, const Box& b, float f, long d, bool useTanh, bool l2, float* gc,
                                     float* gw, float* gSelf, float* gOther, float* gTb, const float* sSelf,
                                     const float* sOther) {
  for (long k = 0; k < d; ++k) {
    const float p = P[k];
    const float diff = p - b.c[k];
    const float a = std::fabs(diff);
    const float sg = diff > 0 ? 1.0f : (diff < 0 ? -1.0f : 0.0f);
    float dist, dp, dw;
    if (p >= b.l[k] && p <= b.u[k]) {
      dist = a * b.invw[k];
      dp = sg * b.invw[k];
      dw = -a * b.invw[k] * b.invw[k];
    } else {
      dist = a * b.w[k] - b.kappa[k];
      dp = sg * b.w[k];
      dw = a - b.dkappa[k];
    }
    const float gd = l2 ? f * dist : f;
    const float gp = gd * dp;
    gc[k] -= gp;
    gw[k] += gd * dw;
    const float gx = useTanh ? gp * (1 - p * p) : gp;
    gSelf[k] = sSelf[k] + gx;
    gOther[k] = sOther[k] + gx;
    gTb[k] += gx;
  }
}
BOXTE_NOIPA void side_bwd_scalar(const float* P, const Box& b, float f, long d, bool useTanh, bool l2, float* gc, float* gw,
                                 float* gSelf, float* gOther, float* gTb) {
  side_bwd_src_scalar(P, b, f, d, useTanh, l2, gc, gw, gSelf, gOther, gTb, gSelf, gOther);
}

// The range of the exponentials of tanh_exp16 (exp_rows, exp_vec_avx512): |x| <= kExpLim.
constexpr float kExpLim = 40.0f;

// ---- AVX2 inner loops -----------------------------------------------------------------------------
#ifdef BOXTE_X86
#define AVX2_FN __attribute__((target("avx2,fma")))

// The Cody-Waite reduction and polynomial (Cephes expf): exp(x) = p 2^n (|r| <= ln2/2); NaN stays NaN.
// exp_neg8 and exp2x8 share it (exp_poly16 is the AVX-512 twin).
AVX2_FN inline __m256 exp_poly8(__m256 x, __m256* nOut) {
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  *nOut = n;
  return _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
}

// exp(x) for x in [-88, 0]
AVX2_FN inline __m256 exp_neg8(__m256 x) {
  // -87 first: max returns its second operand when either is NaN, so a NaN stays NaN
  x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);
  __m256 n;
  const __m256 p = exp_poly8(x, &n);
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// tanh(x) = sign(x) (1 - t) / (1 + t), t = exp(-2|x|); for |x| < 0.0625 a Taylor series (no cancellation)
AVX2_FN inline __m256 tanh8(__m256 x) {
  const __m256 signmask = _mm256_set1_ps(-0.0f);
  const __m256 ax = _mm256_andnot_ps(signmask, x);
  const __m256 t = exp_neg8(_mm256_mul_ps(ax, _mm256_set1_ps(-2.0f)));
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 big = _mm256_div_ps(_mm256_sub_ps(one, t), _mm256_add_ps(one, t));
  // small: x - x^3/3 + 2x^5/15 - 17x^7/315
  const __m256 x2 = _mm256_mul_ps(ax, ax);
  __m256 s = _mm256_set1_ps(-17.0f / 315.0f);
  s = _mm256_fmadd_ps(s, x2, _mm256_set1_ps(2.0f / 15.0f));
  s = _mm256_fmadd_ps(s, x2, _mm256_set1_ps(-1.0f / 3.0f));
  s = _mm256_fmadd_ps(_mm256_mul_ps(s, x2), ax, ax);
  const __m256 res = _mm256_blendv_ps(big, s, _mm256_cmp_ps(ax, _mm256_set1_ps(0.0625f), _CMP_LT_OQ));
  return _mm256_or_ps(res, _mm256_and_ps(x, signmask));
}

AVX2_FN inline float hsum8(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

AVX2_FN float side_fwd_avx2(const float* x1, const float* x2, const float* x3, const Box& b, float* P, long d,
                            bool useTanh, bool l2) {
  const __m256 signmask = _mm256_set1_ps(-0.0f);
  __m256 acc = _mm256_setzero_ps();
  long k = 0;
  for (; k + 8 <= d; k += 8) {
    __m256 x = _mm256_add_ps(_mm256_loadu_ps(x1 + k), _mm256_loadu_ps(x2 + k));
    if (x3) x = _mm256_add_ps(x, _mm256_loadu_ps(x3 + k));
    if (useTanh) x = tanh8(x);
    if (P) _mm256_storeu_ps(P + k, x);
    const __m256 a = _mm256_andnot_ps(signmask, _mm256_sub_ps(x, _mm256_loadu_ps(b.c + k)));
    const __m256 in = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_loadu_ps(b.l + k), _CMP_GE_OQ),
                                    _mm256_cmp_ps(x, _mm256_loadu_ps(b.u + k), _CMP_LE_OQ));
    const __m256 din = _mm256_mul_ps(a, _mm256_loadu_ps(b.invw + k));
    const __m256 dout = _mm256_fmsub_ps(a, _mm256_loadu_ps(b.w + k), _mm256_loadu_ps(b.kappa + k));
    const __m256 di = _mm256_blendv_ps(dout, din, in);
    acc = l2 ? _mm256_fmadd_ps(di, di, acc) : _mm256_add_ps(acc, di);
  }
  float s = hsum8(acc);
  for (; k < d; ++k) {
    float x = x1[k] + x2[k] + (x3 ? x3[k] : 0.0f);
    if (useTanh) x = std::tanh(x);
    if (P) P[k] = x;
    const float di = dist1(x, b, k);
    s += l2 ? di * di : di;
  }
  return s;
}

// One point against its box over the 8 dimensions from k (AVX2, full vectors): the distance and its
// derivatives by the point (dp) and by the box width (dw), with sign(0) = 0. side_bwd_avx2 and
// group_bwd_avx2 share it (their remainder lanes keep side_bwd_scalar's rounding instead).
struct PointDerivs8 {
  __m256 dist, dp, dw;
};
AVX2_FN inline PointDerivs8 point_derivs8(__m256 p, const Box& b, long k) {
  const __m256 signmask = _mm256_set1_ps(-0.0f);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 diff = _mm256_sub_ps(p, _mm256_loadu_ps(b.c + k));
  const __m256 a = _mm256_andnot_ps(signmask, diff);
  const __m256 sg = _mm256_and_ps(_mm256_or_ps(one, _mm256_and_ps(diff, signmask)),
                                  _mm256_cmp_ps(diff, _mm256_setzero_ps(), _CMP_NEQ_OQ));
  const __m256 in = _mm256_and_ps(_mm256_cmp_ps(p, _mm256_loadu_ps(b.l + k), _CMP_GE_OQ),
                                  _mm256_cmp_ps(p, _mm256_loadu_ps(b.u + k), _CMP_LE_OQ));
  const __m256 iw = _mm256_loadu_ps(b.invw + k);
  const __m256 w = _mm256_loadu_ps(b.w + k);
  return {_mm256_blendv_ps(_mm256_fmsub_ps(a, w, _mm256_loadu_ps(b.kappa + k)), _mm256_mul_ps(a, iw), in),
          _mm256_mul_ps(sg, _mm256_blendv_ps(w, iw, in)),
          _mm256_blendv_ps(_mm256_sub_ps(a, _mm256_loadu_ps(b.dkappa + k)),
                           _mm256_xor_ps(_mm256_mul_ps(_mm256_mul_ps(a, iw), iw), signmask), in)};
}

AVX2_FN void side_bwd_avx2(const float* P, const Box& b, float f, long d, bool useTanh, bool l2, float* gc, float* gw,
                           float* gSelf, float* gOther, float* gTb) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 fv = _mm256_set1_ps(f);
  long k = 0;
  for (; k + 8 <= d; k += 8) {
    const __m256 p = _mm256_loadu_ps(P + k);
    const PointDerivs8 pd = point_derivs8(p, b, k);
    const __m256 gd = l2 ? _mm256_mul_ps(fv, pd.dist) : fv;
    const __m256 gp = _mm256_mul_ps(gd, pd.dp);
    _mm256_storeu_ps(gc + k, _mm256_sub_ps(_mm256_loadu_ps(gc + k), gp));
    _mm256_storeu_ps(gw + k, _mm256_fmadd_ps(gd, pd.dw, _mm256_loadu_ps(gw + k)));
    // with tanh: row + gp (1 - p^2) in one fma per row (GCC contracted the product and the three
    // additions of this loop so; written out, group_bwd_avx2 and this loop give the same bits whatever
    // the compiler decides)
    if (useTanh) {
      const __m256 dt = _mm256_fnmadd_ps(p, p, one);
      _mm256_storeu_ps(gSelf + k, _mm256_fmadd_ps(gp, dt, _mm256_loadu_ps(gSelf + k)));
      _mm256_storeu_ps(gOther + k, _mm256_fmadd_ps(gp, dt, _mm256_loadu_ps(gOther + k)));
      _mm256_storeu_ps(gTb + k, _mm256_fmadd_ps(gp, dt, _mm256_loadu_ps(gTb + k)));
    } else {
      _mm256_storeu_ps(gSelf + k, _mm256_add_ps(_mm256_loadu_ps(gSelf + k), gp));
      _mm256_storeu_ps(gOther + k, _mm256_add_ps(_mm256_loadu_ps(gOther + k), gp));
      _mm256_storeu_ps(gTb + k, _mm256_add_ps(_mm256_loadu_ps(gTb + k), gp));
    }
  }
  if (k < d) side_bwd_scalar(P + k, Box{b.l + k, b.u + k, b.c + k, b.w + k, b.invw + k, b.kappa + k, b.dkappa + k}, f,
                             d - k, useTanh, l2, gc + k, gw + k, gSelf + k, gOther + k, gTb + k);
}

// v unchanged, but the compiler cannot see it is a product: it will not contract it with an addition
// into an fma (where the portable code rounds the product and the sum separately)
AVX2_FN inline __m256 opaque(__m256 v) {
  __asm__("" : "+x"(v));
  return v;
}
AVX2_FN inline float opaque1(float v) {
  __asm__("" : "+x"(v));
  return v;
}

// The lanes 0..m-1 (m < 8) of a remainder: mask for _mm256_maskload_ps / _mm256_maskstore_ps.
AVX2_FN inline __m256i tail_mask(long m) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(m)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Both sides of one training candidate in one loop (AVX2): per side exactly the operations of
// side_fwd_avx2 with x3 = the time bump and the points stored (same bits), the flags fixed at
// compile time, the time bump's block loaded once, two independent chains for the core to overlap.
template <bool TANH, bool L2>
AVX2_FN void pair_fwd_avx2(const float* hx1, const float* hx2, const float* tx1, const float* tx2, const float* x3,
                           const Box& bh, const Box& bt, float* P, long d, float* sh, float* st) {
  const __m256 signmask = _mm256_set1_ps(-0.0f);
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  const float* x1s[2] = {hx1, tx1};
  const float* x2s[2] = {hx2, tx2};
  const Box* bs[2] = {&bh, &bt};
  long k = 0;
  for (; k + 8 <= d; k += 8) {
    const __m256 t3 = _mm256_loadu_ps(x3 + k);
    for (int s = 0; s < 2; ++s) {
      const Box& b = *bs[s];
      __m256 x = _mm256_add_ps(_mm256_loadu_ps(x1s[s] + k), _mm256_loadu_ps(x2s[s] + k));
      x = _mm256_add_ps(x, t3);
      if (TANH) x = tanh8(x);
      _mm256_storeu_ps(P + s * d + k, x);
      const __m256 a = _mm256_andnot_ps(signmask, _mm256_sub_ps(x, _mm256_loadu_ps(b.c + k)));
      const __m256 in = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_loadu_ps(b.l + k), _CMP_GE_OQ),
                                      _mm256_cmp_ps(x, _mm256_loadu_ps(b.u + k), _CMP_LE_OQ));
      const __m256 din = _mm256_mul_ps(a, _mm256_loadu_ps(b.invw + k));
      const __m256 dout = _mm256_fmsub_ps(a, _mm256_loadu_ps(b.w + k), _mm256_loadu_ps(b.kappa + k));
      const __m256 di = _mm256_blendv_ps(dout, din, in);
      acc[s] = L2 ? _mm256_fmadd_ps(di, di, acc[s]) : _mm256_add_ps(acc[s], di);
    }
  }
  float sum[2] = {hsum8(acc[0]), hsum8(acc[1])};
  if (k < d) {
    // the remainder lanes k..d-1 as side_fwd_avx2's scalar loop does them: the sums, std::tanh lane by
    // lane, the distance (fmsub outside the box, as GCC contracts dist1 there), then the squares added
    // onto the lane sum one at a time, each rounded on its own
    const long m = d - k;
    const __m256i mk = tail_mask(m);
    const __m256 t3 = _mm256_maskload_ps(x3 + k, mk);
    for (int s = 0; s < 2; ++s) {
      const Box& b = *bs[s];
      __m256 x = _mm256_add_ps(_mm256_add_ps(_mm256_maskload_ps(x1s[s] + k, mk), _mm256_maskload_ps(x2s[s] + k, mk)), t3);
      alignas(32) float v[8];
      if (TANH) {
        _mm256_store_ps(v, x);
        for (long i = 0; i < m; ++i) v[i] = std::tanh(v[i]);
        x = _mm256_load_ps(v);
      }
      _mm256_maskstore_ps(P + s * d + k, mk, x);
      const __m256 a = _mm256_andnot_ps(signmask, _mm256_sub_ps(x, _mm256_maskload_ps(b.c + k, mk)));
      const __m256 in = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_maskload_ps(b.l + k, mk), _CMP_GE_OQ),
                                      _mm256_cmp_ps(x, _mm256_maskload_ps(b.u + k, mk), _CMP_LE_OQ));
      const __m256 din = _mm256_mul_ps(a, _mm256_maskload_ps(b.invw + k, mk));
      const __m256 dout = _mm256_fmsub_ps(a, _mm256_maskload_ps(b.w + k, mk), _mm256_maskload_ps(b.kappa + k, mk));
      _mm256_store_ps(v, _mm256_blendv_ps(dout, din, in));
      for (long i = 0; i < m; ++i) sum[s] += L2 ? opaque1(v[i] * v[i]) : v[i];
    }
  }
  *sh = sum[0];
  *st = sum[1];
}

// row + the gradient of a point's pre-tanh sum: fma(gp, 1 - p^2, row) with tanh, else row + gp.
template <bool TANH>
AVX2_FN inline __m256 add_gx(__m256 gp, __m256 dt, __m256 row) {
  return TANH ? _mm256_fmadd_ps(gp, dt, row) : _mm256_add_ps(row, gp);
}

// One candidate side (factor f != 0, point p: the 8 lanes at the block) on one 8-lane block,
// side_bwd_avx2's operations: the relation's centre / width gradients gc / gw and the time bump's
// gradient gtb in registers, the gradient of the point's pre-tanh sum added to the rows self and
// other (already at the block), whose old values are read at sSelf / sOther (the rows themselves, or
// a row of zeros for a row's first addition of the step: see TrainGroups' lazy zeroing). b at the
// block offset bk (as point_derivs8). The body of group_bwd_avx2's and cands_bwd_tile_avx2's loops
// over candidates.
template <bool TANH, bool L2>
__attribute__((always_inline)) AVX2_FN inline void side_bwd_block8(__m256 p, const Box& b, long bk, float f, __m256& gc,
                                                                   __m256& gw, __m256& gtb, float* self, float* other,
                                                                   const float* sSelf, const float* sOther) {
  const PointDerivs8 pd = point_derivs8(p, b, bk);
  const __m256 fv = _mm256_set1_ps(f);
  const __m256 gd = L2 ? _mm256_mul_ps(fv, pd.dist) : fv;
  // (opaque: without tanh every use of gp is an addition, which the compiler could contract into
  // fmas; side_bwd_avx2's gp also feeds its tanh branch's fmas, so it never does)
  const __m256 gp = opaque(_mm256_mul_ps(gd, pd.dp));
  gc = _mm256_sub_ps(gc, gp);
  gw = _mm256_fmadd_ps(gd, pd.dw, gw);
  const __m256 dt = _mm256_fnmadd_ps(p, p, _mm256_set1_ps(1.0f));
  _mm256_storeu_ps(self, add_gx<TANH>(gp, dt, _mm256_loadu_ps(sSelf)));
  _mm256_storeu_ps(other, add_gx<TANH>(gp, dt, _mm256_loadu_ps(sOther)));
  gtb = add_gx<TANH>(gp, dt, gtb);
}

// ---- the training forward through exponentials (AVX2; the scheme of tanh_exp16 / pair_fwd_exp_avx512) ----
// exp(2x) for |x| <= kExpLim: exp_poly8 of 2x (2x is exact), times 2^n built in the
// exponent bits (|n| <= 116: a normal float, so the product is exact, as _mm512_scalef_ps's). NaN stays NaN.
AVX2_FN inline __m256 exp2x8(__m256 x) {
  __m256 n;
  const __m256 p = exp_poly8(_mm256_add_ps(x, x), &n);
  // lanes outside the range (not used: their rows fall back) must not make n overflow the exponent field
  const __m256i ni = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(n, _mm256_set1_ps(-126.0f)), _mm256_set1_ps(127.0f)));
  return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23)));
}

// e = exp2x8(a + b) (b optional) of a d-vector; true when every |a + b| <= kExpLim (a NaN fails).
AVX2_FN bool exp_vec_avx2(const float* a, const float* b, long d, float* e) {
  const __m256 lim = _mm256_set1_ps(kExpLim), signmask = _mm256_set1_ps(-0.0f);
  __m256 good = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  long k = 0;
  for (; k + 8 <= d; k += 8) {
    __m256 x = _mm256_loadu_ps(a + k);
    if (b) x = _mm256_add_ps(x, _mm256_loadu_ps(b + k));
    good = _mm256_and_ps(good, _mm256_cmp_ps(_mm256_andnot_ps(signmask, x), lim, _CMP_LE_OQ));
    _mm256_storeu_ps(e + k, exp2x8(x));
  }
  if (k < d) {
    const __m256i mk = tail_mask(d - k);
    __m256 x = _mm256_maskload_ps(a + k, mk);
    if (b) x = _mm256_add_ps(x, _mm256_maskload_ps(b + k, mk));
    good = _mm256_and_ps(good, _mm256_cmp_ps(_mm256_andnot_ps(signmask, x), lim, _CMP_LE_OQ));
    _mm256_maskstore_ps(e + k, mk, exp2x8(x));
  }
  return _mm256_movemask_ps(good) == 0xFF;
}
// exp_vec_avx2 (b null) into a row of the exp table (e on a 64-byte boundary, room for d rounded up to
// 8): non-temporal stores, the last block whole (its lanes past d hold exp(0), never read)
AVX2_FN bool exp_row_nt_avx2(const float* a, long d, float* e) {
  const __m256 lim = _mm256_set1_ps(kExpLim), signmask = _mm256_set1_ps(-0.0f);
  __m256 good = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  long k = 0;
  for (; k + 8 <= d; k += 8) {
    const __m256 x = _mm256_loadu_ps(a + k);
    good = _mm256_and_ps(good, _mm256_cmp_ps(_mm256_andnot_ps(signmask, x), lim, _CMP_LE_OQ));
    _mm256_stream_ps(e + k, exp2x8(x));
  }
  if (k < d) {
    const __m256i mk = tail_mask(d - k);
    const __m256 x = _mm256_maskload_ps(a + k, mk);
    good = _mm256_and_ps(good, _mm256_cmp_ps(_mm256_andnot_ps(signmask, x), lim, _CMP_LE_OQ));
    _mm256_stream_ps(e + k, exp2x8(x));
  }
  return _mm256_movemask_ps(good) == 0xFF;
}

// One side's block of pair_fwd_exp_avx2: points tanh(a + b) = 1 - 2 / (1 + e^2a e^2b) from the
// exponentials (see tanh_exp16), stored; returns acc + dist (L2: dist^2). MASKED: lanes of mk only
// (the others load 0 and add 0).
template <bool L2, bool MASKED>
AVX2_FN inline __m256 side_exp_block_avx2(const float* e1, const float* e2, const Box& b, float* P, long k, __m256i mk, __m256 acc) {
  auto ld = [mk](const float* q) __attribute__((target("avx2,fma"))) { return MASKED ? _mm256_maskload_ps(q, mk) : _mm256_loadu_ps(q); };
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 x = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_fmadd_ps(ld(e1 + k), ld(e2 + k), one)));
  if (MASKED) _mm256_maskstore_ps(P + k, mk, x);
  else _mm256_storeu_ps(P + k, x);
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(x, ld(b.c + k)));
  const __m256 in = _mm256_and_ps(_mm256_cmp_ps(x, ld(b.l + k), _CMP_GE_OQ), _mm256_cmp_ps(x, ld(b.u + k), _CMP_LE_OQ));
  __m256 di = _mm256_blendv_ps(_mm256_fmsub_ps(a, ld(b.w + k), ld(b.kappa + k)), _mm256_mul_ps(a, ld(b.invw + k)), in);
  if (MASKED) di = _mm256_and_ps(di, _mm256_castsi256_ps(mk));
  return L2 ? _mm256_fmadd_ps(di, di, acc) : _mm256_add_ps(acc, di);
}

// pair_fwd_avx2<true, L2> through the exponentials (the training forward when the candidate's rows and
// the group's fixed parts are inside the exp range; arguments as pair_fwd_exp_avx512's); the remainder
// lanes are one masked block, lanes summed by hsum8.
// pair_fwd_exp_avx2's blocks over the dimensions k0..k1-1 only (k0 a multiple of 8; the masked
// remainder where k1 = d is not one), the lane sums carried in accH / accT: tiles of d called in
// order give pair_fwd_exp_avx2's lane sums exactly.
template <bool L2>
AVX2_FN inline void pair_fwd_exp_tile_avx2(const float* ecH, const float* fxH, const float* ecT, const float* fxT,
                                           const Box& bh, const Box& bt, float* P, long d, long k0, long k1,
                                           float* accH, float* accT) {
  // the boxes by value: through the references, every store of a point (which may alias the Box
  // structs as far as the compiler knows: -fno-strict-aliasing) made it reload their pointers
  const Box bhl = bh, btl = bt;
  __m256 aH = _mm256_loadu_ps(accH), aT = _mm256_loadu_ps(accT);
  const __m256i all = _mm256_set1_epi32(-1);
  long k = k0;
  for (; k + 8 <= k1; k += 8) {
    aH = side_exp_block_avx2<L2, false>(ecH, fxH, bhl, P, k, all, aH);
    aT = side_exp_block_avx2<L2, false>(ecT, fxT, btl, P + d, k, all, aT);
  }
  if (k < k1) {
    const __m256i mk = tail_mask(k1 - k);
    aH = side_exp_block_avx2<L2, true>(ecH, fxH, bhl, P, k, mk, aH);
    aT = side_exp_block_avx2<L2, true>(ecT, fxT, btl, P + d, k, mk, aT);
  }
  _mm256_storeu_ps(accH, aH);
  _mm256_storeu_ps(accT, aT);
}
// The tiled forward (d > 256 on AVX2) for NC consecutive candidates on the whole 8-lane blocks of
// dimensions k0..k1-1 (k1 - k0 a multiple of 8): per block and candidate both sides'
// side_exp_block_avx2, so each candidate's lane sums get the blocks of pair_fwd_exp_tile_avx2 in the
// same order (the same bits); the box values are read from the tile's stack copy bxt (layout of
// cands_bwd_tile_avx2's) once per block for the NC candidates' sides. src: ecH, fxH, ecT, fxT per
// candidate; P: the first candidate's points (candidate c at P + 2 c d); acc: 16 lane sums per
// candidate (head, tail). Two candidates at a time: kernel 0.977 / 0.975 (min / median) against one at
// d=1000 (boxte_kernel_ab.js --lazy).
template <bool L2, int NC>
AVX2_FN void cands_fwd_tile_avx2(const float* const* src, float* P, long d, const float* bxt, long tile, long k0, long k1,
                                 float* acc) {
  const Box lb[2] = {{bxt + 1 * tile - k0, bxt + 2 * tile - k0, bxt - k0, bxt + 4 * tile - k0, bxt + 3 * tile - k0,
                      bxt + 5 * tile - k0, bxt + 6 * tile - k0},
                     {bxt + 8 * tile - k0, bxt + 9 * tile - k0, bxt + 7 * tile - k0, bxt + 11 * tile - k0,
                      bxt + 10 * tile - k0, bxt + 12 * tile - k0, bxt + 13 * tile - k0}};
  const float* sc[4 * NC];  // (local copies: a point's store cannot alias them)
  for (int q = 0; q < 4 * NC; ++q) sc[q] = src[q];
  __m256 aH[NC], aT[NC];
  for (int c = 0; c < NC; ++c) {
    aH[c] = _mm256_loadu_ps(acc + 16 * c);
    aT[c] = _mm256_loadu_ps(acc + 16 * c + 8);
  }
  const __m256i all = _mm256_set1_epi32(-1);
  for (long k = k0; k < k1; k += 8)
    for (int c = 0; c < NC; ++c) {
      aH[c] = side_exp_block_avx2<L2, false>(sc[4 * c], sc[4 * c + 1], lb[0], P + c * 2 * d, k, all, aH[c]);
      aT[c] = side_exp_block_avx2<L2, false>(sc[4 * c + 2], sc[4 * c + 3], lb[1], P + c * 2 * d + d, k, all, aT[c]);
    }
  for (int c = 0; c < NC; ++c) {
    _mm256_storeu_ps(acc + 16 * c, aH[c]);
    _mm256_storeu_ps(acc + 16 * c + 8, aT[c]);
  }
}
// hsum8 of 8 floats in memory (the tiled forward's lane sums)
AVX2_FN float hsum8_at(const float* a) { return hsum8(_mm256_loadu_ps(a)); }
template <bool L2>
AVX2_FN void pair_fwd_exp_avx2(const float* ecH, const float* fxH, const float* ecT, const float* fxT, const Box& bh,
                               const Box& bt, float* P, long d, float* sh, float* st) {
  alignas(32) float acc[16] = {};
  pair_fwd_exp_tile_avx2<L2>(ecH, fxH, ecT, fxT, bh, bt, P, d, 0, d, acc, acc + 8);
  *sh = hsum8(_mm256_load_ps(acc));
  *st = hsum8(_mm256_load_ps(acc + 8));
}

// The backward of one group's candidates at once (AVX2; group_bwd_avx512's scheme, see there): the
// loop over the candidates inside the loop over the 8-lane blocks of d, per candidate and side the
// operations of side_bwd_avx2. The relation's centre/width gradients of both sides and the group's
// time-bump gradient stay in registers (the boxes are read from L1 per candidate). Each side of a
// candidate adds its point's gradient to two rows, "self" (the base row of the side's entity) and
// "other" (the bump row of the other side's entity); where that entity is the group's true head
// (tail) the addition goes to one of four accumulator rows (zeroed by the caller: base of the head,
// bump of the head, base of the tail, bump of the tail), which the caller adds to the true rows
// afterwards. The destinations are chosen per candidate before the loop over d (rows[4 j + 0..3]:
// the head side's self and other, the tail side's self and other, made by TrainGroups), so the loop
// has no branch on them (a branch per candidate and side on a coin flip, mispredicted about half the
// time, cost ~15 % of the kernel); srcs[4 j + 0..3]: where each destination's old values are read
// (the row itself, or a row of zeros for its first addition of the step: lazy zeroing). Every
// element receives the same additions in the same order as the per-candidate loop (side_bwd_avx2
// per candidate and side, the scalar remainder through side_bwd_scalar, then the accumulators), so
// the results are bit-identical. Other arguments as group_bwd_avx512's.
// row = src + a over d floats (AVX2; the remainder lanes as one masked block); src is row itself or
// a row of zeros (a row's first addition of the step under lazy zeroing: 0 + a, the bits of a
// zeroed row plus a)
AVX2_FN void add_row_avx2(float* row, const float* src, const float* a, long d) {
  long i = 0;
  for (; i + 8 <= d; i += 8) _mm256_storeu_ps(row + i, _mm256_add_ps(_mm256_loadu_ps(src + i), _mm256_loadu_ps(a + i)));
  if (i < d) {
    const __m256i mk = tail_mask(d - i);
    _mm256_maskstore_ps(row + i, mk, _mm256_add_ps(_mm256_maskload_ps(src + i, mk), _mm256_maskload_ps(a + i, mk)));
  }
}

template <bool TANH, bool L2>
AVX2_FN void group_bwd_avx2(long G, long d, const float* P, const Box& bh, const Box& bt, const float* fh,
                            const float* ft, float* gCh, float* gWh, float* gCt, float* gWt, float* gTbi,
                            float* const* rows) {
  const __m256 signmask = _mm256_set1_ps(-0.0f);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 zero = _mm256_setzero_ps();
  const Box* boxes[2] = {&bh, &bt};
  float* gCs[2] = {gCh, gCt};
  float* gWs[2] = {gWh, gWt};
  long k = 0;
  // this block's box values of both sides copied to the stack: the loop over the candidates reads
  // them at fixed stack offsets (through the Boxes it reloaded the 7 pointers after every store to a
  // gradient row, which may alias them as far as the compiler knows: 7 more loads per candidate side)
  alignas(32) float bx[2][7][8];
  const Box lb[2] = {{bx[0][1], bx[0][2], bx[0][0], bx[0][4], bx[0][3], bx[0][5], bx[0][6]},
                     {bx[1][1], bx[1][2], bx[1][0], bx[1][4], bx[1][3], bx[1][5], bx[1][6]}};
  for (; k + 8 <= d; k += 8) {
    __m256 gcv[2] = {_mm256_loadu_ps(gCh + k), _mm256_loadu_ps(gCt + k)};
    __m256 gwv[2] = {_mm256_loadu_ps(gWh + k), _mm256_loadu_ps(gWt + k)};
    __m256 gtb = _mm256_loadu_ps(gTbi + k);
    for (int s = 0; s < 2; ++s) {
      const Box& b = *boxes[s];
      const float* src[7] = {b.c, b.l, b.u, b.invw, b.w, b.kappa, b.dkappa};
      for (int q = 0; q < 7; ++q) _mm256_store_ps(bx[s][q], _mm256_loadu_ps(src[q] + k));
    }
    for (long j = 0; j < G; ++j) {
      for (int s = 0; s < 2; ++s) {
        const float f = s == 0 ? fh[j] : ft[j];
        if (f == 0) continue;
        side_bwd_block8<TANH, L2>(_mm256_loadu_ps(P + (2 * j + s) * d + k), lb[s], 0, f, gcv[s], gwv[s], gtb,
                                  rows[4 * j + 2 * s] + k, rows[4 * j + 2 * s + 1] + k, rows[4 * j + 2 * s] + k,
                                  rows[4 * j + 2 * s + 1] + k);
      }
    }
    for (int s = 0; s < 2; ++s) {
      _mm256_storeu_ps(gCs[s] + k, gcv[s]);
      _mm256_storeu_ps(gWs[s] + k, gwv[s]);
    }
    _mm256_storeu_ps(gTbi + k, gtb);
  }
  if (k < d) {
    // the remainder lanes k..d-1 (fewer than 8) as side_bwd_avx2 does them (side_bwd_scalar per
    // candidate and side) on masked vectors: side_bwd_scalar's operations lane by lane, each product
    // rounded on its own (opaque(): no fma, as in the portable build), in the same order
    const __m256i mk = tail_mask(d - k);
    __m256 gcv[2] = {_mm256_maskload_ps(gCh + k, mk), _mm256_maskload_ps(gCt + k, mk)};
    __m256 gwv[2] = {_mm256_maskload_ps(gWh + k, mk), _mm256_maskload_ps(gWt + k, mk)};
    __m256 gtb = _mm256_maskload_ps(gTbi + k, mk);
    for (long j = 0; j < G; ++j) {
      for (int s = 0; s < 2; ++s) {
        const float f = s == 0 ? fh[j] : ft[j];
        if (f == 0) continue;
        const Box& b = *boxes[s];
        const __m256 p = _mm256_maskload_ps(P + (2 * j + s) * d + k, mk);
        const __m256 diff = _mm256_sub_ps(p, _mm256_maskload_ps(b.c + k, mk));
        const __m256 a = _mm256_andnot_ps(signmask, diff);
        const __m256 sg = _mm256_and_ps(_mm256_or_ps(one, _mm256_and_ps(diff, signmask)), _mm256_cmp_ps(diff, zero, _CMP_NEQ_OQ));
        const __m256 in = _mm256_and_ps(_mm256_cmp_ps(p, _mm256_maskload_ps(b.l + k, mk), _CMP_GE_OQ),
                                        _mm256_cmp_ps(p, _mm256_maskload_ps(b.u + k, mk), _CMP_LE_OQ));
        const __m256 iw = _mm256_maskload_ps(b.invw + k, mk);
        const __m256 w = _mm256_maskload_ps(b.w + k, mk);
        const __m256 din = opaque(_mm256_mul_ps(a, iw));
        const __m256 dist = _mm256_blendv_ps(_mm256_sub_ps(opaque(_mm256_mul_ps(a, w)), _mm256_maskload_ps(b.kappa + k, mk)), din, in);
        const __m256 dp = _mm256_mul_ps(sg, _mm256_blendv_ps(w, iw, in));
        // -a / w^2 inside as the scalar ((-a) w^-1) w^-1: rounding is symmetric, so -((a w^-1) w^-1)
        const __m256 dw = _mm256_blendv_ps(_mm256_sub_ps(a, _mm256_maskload_ps(b.dkappa + k, mk)),
                                           _mm256_xor_ps(opaque(_mm256_mul_ps(din, iw)), signmask), in);
        const __m256 fv = _mm256_set1_ps(f);
        const __m256 gd = L2 ? opaque(_mm256_mul_ps(fv, dist)) : fv;
        const __m256 gp = opaque(_mm256_mul_ps(gd, dp));
        gcv[s] = _mm256_sub_ps(gcv[s], gp);
        gwv[s] = _mm256_add_ps(gwv[s], opaque(_mm256_mul_ps(gd, dw)));
        const __m256 gx = TANH ? opaque(_mm256_mul_ps(gp, _mm256_sub_ps(one, opaque(_mm256_mul_ps(p, p))))) : gp;
        float* self = rows[4 * j + 2 * s] + k;
        float* other = rows[4 * j + 2 * s + 1] + k;
        _mm256_maskstore_ps(self, mk, _mm256_add_ps(_mm256_maskload_ps(self, mk), gx));
        _mm256_maskstore_ps(other, mk, _mm256_add_ps(_mm256_maskload_ps(other, mk), gx));
        gtb = _mm256_add_ps(gtb, gx);
      }
    }
    for (int s = 0; s < 2; ++s) {
      _mm256_maskstore_ps(gCs[s] + k, mk, gcv[s]);
      _mm256_maskstore_ps(gWs[s] + k, mk, gwv[s]);
    }
    _mm256_maskstore_ps(gTbi + k, mk, gtb);
  }
}

// The tiled backward (d > 256 on AVX2) for NC consecutive candidates j0..j0+NC-1 on the whole 8-lane
// blocks of dimensions k0..k1-1 (k1 - k0 a multiple of 8): per block the candidates' sides in the
// order of the per-candidate loop (j0 head, j0 tail, j0 + 1 head, ...), each side exactly
// side_bwd_avx2's operations (point_derivs8, the same products and additions), so every element
// receives the same additions in the same order: the same bits. The relation's centre / width
// gradients of both sides and the time bump's gradient stay in registers across the candidates
// (they are other arrays than the entity rows), and the box values come from the tile's stack copy
// bxt ([side][c, l, u, invw, w, kappa, dkappa][tile] from k0, made once per tile by the caller: through
// the Boxes every store to a row, which may alias them as far as the compiler knows, made
// side_bwd_avx2 reload their 7 pointers per block). A side whose factor is 0 is skipped, as the
// per-candidate loop skips it. rows: the 4 G destination rows (TrainGroups' rowPtrs). Two
// candidates at a time measured best (four: no gain over one).
template <bool TANH, bool L2, int NC>
AVX2_FN void cands_bwd_tile_avx2(long j0, long k0, long k1, long d, const float* P, const float* bxt, long tile,
                                 const float* fh, const float* ft, float* gCh, float* gWh, float* gCt, float* gWt,
                                 float* gTbi, float* const* rows, const float* const* srcs) {
  // the tile's box values of both sides, [side][c, l, u, invw, w, kappa, dkappa][tile] from k0
  const Box lb[2] = {{bxt + 1 * tile - k0, bxt + 2 * tile - k0, bxt - k0, bxt + 4 * tile - k0, bxt + 3 * tile - k0,
                      bxt + 5 * tile - k0, bxt + 6 * tile - k0},
                     {bxt + 8 * tile - k0, bxt + 9 * tile - k0, bxt + 7 * tile - k0, bxt + 11 * tile - k0,
                      bxt + 10 * tile - k0, bxt + 12 * tile - k0, bxt + 13 * tile - k0}};
  float f[NC][2];
  const float* Pc[NC][2];
  float* rs[NC][4];
  const float* ss[NC][4];
  for (int c = 0; c < NC; ++c) {
    f[c][0] = fh[j0 + c];
    f[c][1] = ft[j0 + c];
    Pc[c][0] = P + (j0 + c) * 2 * d;
    Pc[c][1] = Pc[c][0] + d;
    for (int q = 0; q < 4; ++q) {
      rs[c][q] = rows[4 * (j0 + c) + q];
      ss[c][q] = srcs[4 * (j0 + c) + q];
    }
  }
  float* gCs[2] = {gCh, gCt};
  float* gWs[2] = {gWh, gWt};
  for (long k = k0; k < k1; k += 8) {
    __m256 gcv[2] = {_mm256_loadu_ps(gCh + k), _mm256_loadu_ps(gCt + k)};
    __m256 gwv[2] = {_mm256_loadu_ps(gWh + k), _mm256_loadu_ps(gWt + k)};
    __m256 gtb = _mm256_loadu_ps(gTbi + k);
    for (int c = 0; c < NC; ++c) {
      for (int s = 0; s < 2; ++s) {
        if (f[c][s] == 0) continue;
        side_bwd_block8<TANH, L2>(_mm256_loadu_ps(Pc[c][s] + k), lb[s], k, f[c][s], gcv[s], gwv[s], gtb,
                                  rs[c][2 * s] + k, rs[c][2 * s + 1] + k, ss[c][2 * s] + k, ss[c][2 * s + 1] + k);
      }
    }
    for (int s = 0; s < 2; ++s) {
      _mm256_storeu_ps(gCs[s] + k, gcv[s]);
      _mm256_storeu_ps(gWs[s] + k, gwv[s]);
    }
    _mm256_storeu_ps(gTbi + k, gtb);
  }
}

// One side's block of side_fwd_avx2 (x3 = null, no points, L2): acc + dist^2 of lanes k..k+7.
template <bool TANH>
AVX2_FN inline __m256 side_block_sq_avx2(const float* x1, const float* x2, const Box& b, long k, __m256 acc) {
  __m256 x = _mm256_add_ps(_mm256_loadu_ps(x1 + k), _mm256_loadu_ps(x2 + k));
  if (TANH) x = tanh8(x);
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(x, _mm256_loadu_ps(b.c + k)));
  const __m256 in = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_loadu_ps(b.l + k), _CMP_GE_OQ),
                                  _mm256_cmp_ps(x, _mm256_loadu_ps(b.u + k), _CMP_LE_OQ));
  const __m256 di = _mm256_blendv_ps(_mm256_fmsub_ps(a, _mm256_loadu_ps(b.w + k), _mm256_loadu_ps(b.kappa + k)),
                                     _mm256_mul_ps(a, _mm256_loadu_ps(b.invw + k)), in);
  return _mm256_fmadd_ps(di, di, acc);
}

// Candidate x of one ranking query (AVX2, L2 norm): both sides' sums of squared distances over the
// blocks of 8 dimensions exactly as side_fwd_avx2's vector loop computes them, the sides interleaved;
// 0 as soon as sqrt(partial sh) + sqrt(partial st) >= s, checked after every 4 blocks (32 dimensions;
// checking after every block cost more than the earlier exits saved: eval CPU -8 to -14 %) (the lanes,
// their horizontal sums and side_fwd_avx2's scalar remainder only add non-negative terms: exact, as
// settled(), at whichever block it is checked), else the
// comparison of the full scores, taken from side_fwd_avx2 itself through the pointer `fwd` the
// scoring calls (its scalar remainder may be contracted into fmas or not depending on the constants
// the compiler sees: a call it cannot specialise gives the scoring's bits by construction).
template <bool TANH>
AVX2_FN int cand_better_avx2(FwdFn fwd, const float* hx1, const float* hx2, const Box& bh, const float* tx1, const float* tx2,
                             const Box& bt, long d, float s) {
  __m256 accH = _mm256_setzero_ps(), accT = accH;
  long k = 0;
  for (; k + 8 <= d; k += 8) {
    if (k >= 32 && (k & 31) == 0 && std::sqrt(hsum8(accH)) + std::sqrt(hsum8(accT)) >= s) return 0;
    accH = side_block_sq_avx2<TANH>(hx1, hx2, bh, k, accH);
    accT = side_block_sq_avx2<TANH>(tx1, tx2, bt, k, accT);
  }
  if (std::sqrt(hsum8(accH)) + std::sqrt(hsum8(accT)) >= s) return 0;
  const float sh = fwd(hx1, hx2, nullptr, bh, nullptr, d, TANH, true);
  const float st = fwd(tx1, tx2, nullptr, bt, nullptr, d, TANH, true);
  return std::sqrt(sh) + std::sqrt(st) < s ? 1 : 0;
}

// better[x] for the candidates x0..x1-1 of one query (cand_better_avx2); returns their count.
template <bool TANH>
AVX2_FN int32_t rank_block_avx2(FwdFn fwd, const float* headTable, const float* ha, const Box& bh, const float* tailTable,
                                const float* ta, const Box& bt, long d, float s, long x0, long x1, uint8_t* better) {
  int32_t cnt = 0;
  for (long x = x0; x < x1; ++x) {
    better[x] = static_cast<uint8_t>(cand_better_avx2<TANH>(fwd, headTable + x * d, ha, bh, tailTable + x * d, ta, bt, d, s));
    cnt += better[x];
  }
  return cnt;
}

// ---- the evaluation's tanh through precomputed exponentials on AVX2 (the scheme of tanh_exp16,
// eval_dist16, side_sum_avx512<2> and cand2_better_avx512 on 8 lanes; tanh on, L2 ranking) ----
// tanh(a + b) = 1 - 2 / (1 + ea eb) with ea = exp(2a), eb = exp(2b) from ExpTab's tables (see tanh_exp16).
AVX2_FN inline __m256 tanh_exp8(__m256 ea, __m256 eb) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_fmadd_ps(ea, eb, one)));
}

// eval_dist16 on 8 lanes: max(|x - c| / w, |x - c| w - kappa) of the point tanh_exp8(e1, e2) (lanes
// k..k+7; MASKED: the lanes of mk, the others load 0: the point is -1, a = 1, every box load 0: 0).
// A NaN point gives NaN (max returns its second operand when either is NaN).
template <bool MASKED>
AVX2_FN inline __m256 ld8(const float* p, __m256i mk) {
  return MASKED ? _mm256_maskload_ps(p, mk) : _mm256_loadu_ps(p);
}
template <bool MASKED>
AVX2_FN inline __m256 exp_dist8(const float* e1, const float* e2, const Box& b, long k, __m256i mk) {
  const __m256 x = tanh_exp8(ld8<MASKED>(e1 + k, mk), ld8<MASKED>(e2 + k, mk));
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(x, ld8<MASKED>(b.c + k, mk)));
  return _mm256_max_ps(_mm256_mul_ps(a, ld8<MASKED>(b.invw + k, mk)), _mm256_fmsub_ps(a, ld8<MASKED>(b.w + k, mk), ld8<MASKED>(b.kappa + k, mk)));
}

// One side's sum of distances (L2: of squared distances) through the exponentials e1 (the entity's
// row) and e2 (the query's part): lanes accumulated block by block, the last block masked, hsum8.
AVX2_FN float side_sum_exp_avx2(const float* e1, const float* e2, const Box& b, long d, bool l2) {
  __m256 acc = _mm256_setzero_ps();
  const __m256i none = _mm256_setzero_si256();
  long k = 0;
  for (; k + 8 <= d; k += 8) {
    const __m256 di = exp_dist8<false>(e1, e2, b, k, none);
    acc = l2 ? _mm256_fmadd_ps(di, di, acc) : _mm256_add_ps(acc, di);
  }
  if (k < d) {
    const __m256 di = exp_dist8<true>(e1, e2, b, k, tail_mask(d - k));
    acc = l2 ? _mm256_fmadd_ps(di, di, acc) : _mm256_add_ps(acc, di);
  }
  return hsum8(acc);
}

// true when sqrt(hsum8(h)) + sqrt(hsum8(t)) >= s: the partial sums only grow (fmas of squares, monotone
// rounding), so the full score cannot fall below s either (NaN compares false).
AVX2_FN inline bool exp_settled(__m256 h, __m256 t, float s) { return std::sqrt(hsum8(h)) + std::sqrt(hsum8(t)) >= s; }
// the final comparison: the score sqrt(hsum8(h)) + sqrt(hsum8(t)) below s (false for a NaN score or a NaN s)
AVX2_FN inline bool exp_below(__m256 h, __m256 t, float s) { return std::sqrt(hsum8(h)) + std::sqrt(hsum8(t)) < s; }

// Candidate x of one ranking query through the exponentials from dimension k on (a multiple of 8)
// with the sums so far: exactly side_sum_exp_avx2's operations per side (L2); 1 when the score is
// below s, else 0; settled (0) checked after every 32 dimensions.
AVX2_FN int cand_better_exp_avx2(const float* hx, const float* ha, const Box& bh, const float* tx, const float* ta,
                                 const Box& bt, long d, float s, long k, __m256 aH, __m256 aT) {
  const __m256i none = _mm256_setzero_si256();
  for (; k + 8 <= d; k += 8) {
    if (k >= 32 && (k & 31) == 0 && exp_settled(aH, aT, s)) return 0;
    const __m256 dh = exp_dist8<false>(hx, ha, bh, k, none), dt = exp_dist8<false>(tx, ta, bt, k, none);
    aH = _mm256_fmadd_ps(dh, dh, aH);
    aT = _mm256_fmadd_ps(dt, dt, aT);
  }
  if (k < d) {
    const __m256i mk = tail_mask(d - k);
    const __m256 dh = exp_dist8<true>(hx, ha, bh, k, mk), dt = exp_dist8<true>(tx, ta, bt, k, mk);
    aH = _mm256_fmadd_ps(dh, dh, aH);
    aT = _mm256_fmadd_ps(dt, dt, aT);
  }
  return exp_below(aH, aT, s) ? 1 : 0;
}

// Two candidates x, y of one query at once (four independent chains); once one is settled the other
// continues alone. Same results as two cand_better_exp_avx2 calls.
AVX2_FN void cand2_better_exp_avx2(const float* hx, const float* hy, const float* ha, const Box& bh, const float* tx,
                                   const float* ty, const float* ta, const Box& bt, long d, float s, uint8_t* out) {
  __m256 aHx = _mm256_setzero_ps(), aTx = aHx, aHy = aHx, aTy = aHx;
  const __m256i none = _mm256_setzero_si256();
  long k = 0;
  for (; k + 8 <= d; k += 8) {
    if (k >= 32 && (k & 31) == 0) {
      const bool sx = exp_settled(aHx, aTx, s), sy = exp_settled(aHy, aTy, s);
      if (sx || sy) {
        out[0] = sx ? 0 : static_cast<uint8_t>(cand_better_exp_avx2(hx, ha, bh, tx, ta, bt, d, s, k, aHx, aTx));
        out[1] = sy ? 0 : static_cast<uint8_t>(cand_better_exp_avx2(hy, ha, bh, ty, ta, bt, d, s, k, aHy, aTy));
        return;
      }
    }
    const __m256 d0 = exp_dist8<false>(hx, ha, bh, k, none), d1 = exp_dist8<false>(tx, ta, bt, k, none);
    const __m256 d2 = exp_dist8<false>(hy, ha, bh, k, none), d3 = exp_dist8<false>(ty, ta, bt, k, none);
    aHx = _mm256_fmadd_ps(d0, d0, aHx);
    aTx = _mm256_fmadd_ps(d1, d1, aTx);
    aHy = _mm256_fmadd_ps(d2, d2, aHy);
    aTy = _mm256_fmadd_ps(d3, d3, aTy);
  }
  if (k < d) {
    const __m256i mk = tail_mask(d - k);
    const __m256 d0 = exp_dist8<true>(hx, ha, bh, k, mk), d1 = exp_dist8<true>(tx, ta, bt, k, mk);
    const __m256 d2 = exp_dist8<true>(hy, ha, bh, k, mk), d3 = exp_dist8<true>(ty, ta, bt, k, mk);
    aHx = _mm256_fmadd_ps(d0, d0, aHx);
    aTx = _mm256_fmadd_ps(d1, d1, aTx);
    aHy = _mm256_fmadd_ps(d2, d2, aHy);
    aTy = _mm256_fmadd_ps(d3, d3, aTy);
  }
  out[0] = exp_below(aHx, aTx, s) ? 1 : 0;
  out[1] = exp_below(aHy, aTy, s) ? 1 : 0;
}

// ---- AVX-512 inner loops (16 lanes; the tail of d is a masked vector, no scalar remainder) --------
#ifdef TFREE_EMU_AVX512
// the AVX-512 emulation build (scripts/test-avx512-emu.sh): these loops run on AVX2 with the
// intrinsics of native/emu/avx512_emu.h (which are compiled for this target)
#define AVX512_FN __attribute__((target("avx2,fma,f16c")))
#else
#define AVX512_FN __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))
#endif

// The Cody-Waite reduction and polynomial of exp_neg8: exp(x) = p 2^n (|r| <= ln2/2); NaN stays NaN.
AVX512_FN inline __m512 exp_poly16(__m512 x, __m512* nOut) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  *nOut = n;
  return _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
}

// exp(x) for x in [-88, 0] (same polynomial as exp_neg8)
AVX512_FN inline __m512 exp_neg16(__m512 x) {
  // -87 first: max returns its second operand when either is NaN, so a NaN stays NaN (tanh16(NaN) = NaN)
  x = _mm512_max_ps(_mm512_set1_ps(-87.0f), x);
  __m512 n;
  const __m512 p = exp_poly16(x, &n);
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// exp(2x) for |x| <= 40 (2x is exact; the result lies in [e^-80, e^80], normal floats); NaN stays NaN.
AVX512_FN inline __m512 exp2x16(__m512 x) {
  __m512 n;
  const __m512 p = exp_poly16(_mm512_add_ps(x, x), &n);
  return _mm512_scalef_ps(p, n);
}

// tanh as tanh8: sign(x) (1 - t) / (1 + t), t = exp(-2|x|); Taylor series for |x| < 0.0625
AVX512_FN inline __m512 tanh16(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 t = exp_neg16(_mm512_mul_ps(ax, _mm512_set1_ps(-2.0f)));
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 big = _mm512_div_ps(_mm512_sub_ps(one, t), _mm512_add_ps(one, t));
  const __m512 x2 = _mm512_mul_ps(ax, ax);
  __m512 s = _mm512_set1_ps(-17.0f / 315.0f);
  s = _mm512_fmadd_ps(s, x2, _mm512_set1_ps(2.0f / 15.0f));
  s = _mm512_fmadd_ps(s, x2, _mm512_set1_ps(-1.0f / 3.0f));
  s = _mm512_fmadd_ps(_mm512_mul_ps(s, x2), ax, ax);
  const __m512 res = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.0625f), _CMP_LT_OQ), big, s);
  // copy the sign of x (NaN stays NaN)
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(res), _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN))));
}

// Lanes k..k+15 of a d-vector that exist (mask of the last, partial block).
AVX512_FN inline __mmask16 lane_mask(long d, long k) {
  return d - k >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (d - k)) - 1);
}

// BoxE's distance of points x to a box given by its loaded rows (centre c, corners lo / hi, 1 / w,
// w, kappa): |x - c| / w inside the box, |x - c| * w - kappa outside.
AVX512_FN inline __m512 box_dist16_of(__m512 x, __m512 c, __m512 lo, __m512 hi, __m512 iw, __m512 w, __m512 ka) {
  const __m512 a = _mm512_abs_ps(_mm512_sub_ps(x, c));
  const __mmask16 in = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(x, hi, _CMP_LE_OQ);
  return _mm512_mask_blend_ps(in, _mm512_fmsub_ps(a, w, ka), _mm512_mul_ps(a, iw));
}

// box_dist16_of for points x (lanes k..k+15, mask m) and box b; masked-off lanes are 0. (No mask
// needed on the result: in a masked-off lane every box load is 0, so both distances are a * 0 (- 0)
// = +0 for the finite points the callers' masked loads make there: 0, tanh(0) = 0, or -1.)
AVX512_FN inline __m512 box_dist16(__m512 x, const Box& b, long k, __mmask16 m) {
  return box_dist16_of(x, _mm512_maskz_loadu_ps(m, b.c + k), _mm512_maskz_loadu_ps(m, b.l + k), _mm512_maskz_loadu_ps(m, b.u + k),
                       _mm512_maskz_loadu_ps(m, b.invw + k), _mm512_maskz_loadu_ps(m, b.w + k), _mm512_maskz_loadu_ps(m, b.kappa + k));
}

// Both sides of one training candidate in one loop (AVX-512): per side and 16-lane block the point
// x1 + x2 + x3 (x3 = the time bump; tanh16 when on), stored to P (the head side's row, then the
// tail side's at P + ps: TrainGroups' row stride of the points), its box_dist16 added (L2: its
// square through an fma) into one accumulator, reduced once at the end; the flags fixed at compile
// time, two independent chains for the core to overlap. (The AVX-512 level has no per-side forward:
// every training and evaluation caller there takes this, side_sum_avx512 or the exp kernels.)
template <bool TANH, bool L2>
AVX512_FN void pair_fwd_avx512(const float* hx1, const float* hx2, const float* tx1, const float* tx2, const float* x3,
                               const Box& bh, const Box& bt, float* P, long d, long ps, float* sh, float* st) {
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  const float* x1s[2] = {hx1, tx1};
  const float* x2s[2] = {hx2, tx2};
  const Box* bs[2] = {&bh, &bt};
  for (long k = 0; k < d; k += 16) {
    const __mmask16 m = lane_mask(d, k);
    const __m512 t3 = _mm512_maskz_loadu_ps(m, x3 + k);
    for (int s = 0; s < 2; ++s) {
      __m512 x = _mm512_add_ps(_mm512_maskz_loadu_ps(m, x1s[s] + k), _mm512_maskz_loadu_ps(m, x2s[s] + k));
      x = _mm512_add_ps(x, t3);
      if (TANH) x = tanh16(x);
      _mm512_mask_storeu_ps(P + s * ps + k, m, x);
      const __m512 di = box_dist16(x, *bs[s], k, m);
      acc[s] = L2 ? _mm512_fmadd_ps(di, di, acc[s]) : _mm512_add_ps(acc[s], di);
    }
  }
  *sh = _mm512_reduce_add_ps(acc[0]);
  *st = _mm512_reduce_add_ps(acc[1]);
}

// The evaluation's tanh through precomputed exponentials (AVX-512 scoring and ranking, tanh on,
// rows and query parts inside the exp range, see ExpTab): a point is tanh(a + b) with a from the
// candidate's entity row and b from the query; with ea = exp(2a) and eb = exp(2b) (both in
// [e^-80, e^80], so neither is 0 or infinite) tanh(a + b) = 1 - 2 / (1 + ea eb). 1 + ea eb is one
// fma (it may overflow to +inf: 2 / inf = 0, tanh = 1; or be 1: tanh = -1), a NaN stays NaN.
// Against tanh of the float sum the absolute error is within ~2 ulp(1) (the exponentials are
// correctly rounded, the product, division and subtraction round once each), the order of the
// float rounding of the sum a + b itself.
AVX512_FN inline __m512 tanh_exp16(__m512 ea, __m512 eb) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_fmadd_ps(ea, eb, one)));
}

// pair_fwd_avx512<true, L2> through tanh_exp16 (the training forward when the candidate's rows and the
// group's fixed parts are inside the exp range): the head side's points are tanh_exp16(ecH, fxH) with
// ecH the exponentials of the candidate's row and fxH those of the group's fixed part (the true
// entity's row + the time bump), likewise the tail side; points stored for the backward.
template <bool L2>
AVX512_FN void pair_fwd_exp_avx512(const float* ecH, const float* fxH, const float* ecT, const float* fxT, const Box& bh,
                                   const Box& bt, float* P, long d, long ps, float* sh, float* st) {
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  const float* es[2] = {ecH, ecT};
  const float* fs[2] = {fxH, fxT};
  const Box* bs[2] = {&bh, &bt};
  for (long k = 0; k < d; k += 16) {
    const __mmask16 m = lane_mask(d, k);
    for (int s = 0; s < 2; ++s) {
      const __m512 x = tanh_exp16(_mm512_maskz_loadu_ps(m, es[s] + k), _mm512_maskz_loadu_ps(m, fs[s] + k));
      _mm512_mask_storeu_ps(P + s * ps + k, m, x);
      const __m512 di = box_dist16(x, *bs[s], k, m);
      acc[s] = L2 ? _mm512_fmadd_ps(di, di, acc[s]) : _mm512_add_ps(acc[s], di);
    }
  }
  *sh = _mm512_reduce_add_ps(acc[0]);
  *st = _mm512_reduce_add_ps(acc[1]);
}

// Two candidates of pair_fwd_exp_avx512 at once (the training forward's common case: both inside
// the exp range): per 16-lane block the box values loaded once for both, four independent
// accumulator chains; every point, distance and sum has the operations (and the reduction) of
// pair_fwd_exp_avx512, so the same bits. src0 / src1: ecH, fxH, ecT, fxT of each candidate;
// out: head and tail sums of candidate 0, then of candidate 1.
template <bool L2>
AVX512_FN void pair2_fwd_exp_avx512(const float* const* src0, const float* const* src1, const Box& bh, const Box& bt,
                                    float* P0, float* P1, long d, long ps, float* out) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  const float* const* srcs[2] = {src0, src1};
  float* Ps[2] = {P0, P1};
  const Box* bs[2] = {&bh, &bt};
  for (long k = 0; k < d; k += 16) {
    const __mmask16 m = lane_mask(d, k);
    for (int s = 0; s < 2; ++s) {
      const Box& b = *bs[s];
      const __m512 c = _mm512_maskz_loadu_ps(m, b.c + k), lo = _mm512_maskz_loadu_ps(m, b.l + k), hi = _mm512_maskz_loadu_ps(m, b.u + k);
      const __m512 iw = _mm512_maskz_loadu_ps(m, b.invw + k), w = _mm512_maskz_loadu_ps(m, b.w + k), ka = _mm512_maskz_loadu_ps(m, b.kappa + k);
      for (int q = 0; q < 2; ++q) {
        const float* const* sr = srcs[q];
        const __m512 x = tanh_exp16(_mm512_maskz_loadu_ps(m, sr[2 * s] + k), _mm512_maskz_loadu_ps(m, sr[2 * s + 1] + k));
        _mm512_mask_storeu_ps(Ps[q] + s * ps + k, m, x);
        const __m512 di = box_dist16_of(x, c, lo, hi, iw, w, ka);
        acc[2 * q + s] = L2 ? _mm512_fmadd_ps(di, di, acc[2 * q + s]) : _mm512_add_ps(acc[2 * q + s], di);
      }
    }
  }
  for (int q = 0; q < 4; ++q) out[q] = _mm512_reduce_add_ps(acc[q]);
}

// e = exp2x16(a + b) (b optional) of a d-vector; true when every |a + b| <= kExpLim (a NaN fails).
AVX512_FN bool exp_vec_avx512(const float* a, const float* b, long d, float* e) {
  __mmask16 bad = 0;
  for (long k = 0; k < d; k += 16) {
    const __mmask16 m = lane_mask(d, k);
    __m512 x = _mm512_maskz_loadu_ps(m, a + k);
    if (b) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, b + k));
    bad |= static_cast<__mmask16>(m & ~_mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(kExpLim), _CMP_LE_OQ));
    _mm512_mask_storeu_ps(e + k, m, exp2x16(x));
  }
  return bad == 0;
}

// The point of lanes k..k+15 (mask m) of one side: MODE 0 x1 + x2, 1 tanh16(x1 + x2) (as
// pair_fwd_avx512 without a time bump), 2 tanh_exp16(x1, x2) (x1, x2 the exponentials of ExpTab).
template <int MODE>
AVX512_FN inline __m512 side_point16(const float* x1, const float* x2, long k, __mmask16 m) {
  const __m512 a = _mm512_maskz_loadu_ps(m, x1 + k), b = _mm512_maskz_loadu_ps(m, x2 + k);
  if (MODE == 2) return tanh_exp16(a, b);
  const __m512 x = _mm512_add_ps(a, b);
  return MODE == 1 ? tanh16(x) : x;
}

// The sum of the 16 lanes of v by one fixed tree: lane i + lane i+8, then j + j+4, then m + m+2, then
// 0 + 1 (the evaluation's scores use it, and hsum16x4 reduces four vectors by the same tree at once).
AVX512_FN inline float hsum16(__m512 v) {
  const __m256 t = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m128 u = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
  u = _mm_add_ps(u, _mm_movehl_ps(u, u));
  return _mm_cvtss_f32(_mm_add_ss(u, _mm_movehdup_ps(u)));
}

// hsum16 of a, b, c, e (same bits) in lanes 0, 4, 8, 12.
AVX512_FN inline __m512 hsum16x4(__m512 a, __m512 b, __m512 c, __m512 e) {
  // lanes i + i+8: [a' | b'] and [c' | e'] (8 lanes each)
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 ce = _mm512_add_ps(_mm512_shuffle_f32x4(c, e, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_f32x4(c, e, _MM_SHUFFLE(3, 2, 3, 2)));
  // j + j+4: one 128-bit chunk per vector
  const __m512 w = _mm512_add_ps(_mm512_shuffle_f32x4(ab, ce, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(ab, ce, _MM_SHUFFLE(3, 1, 3, 1)));
  // m + m+2, then 0 + 1 within each chunk
  const __m512 x = _mm512_add_ps(w, _mm512_permute_ps(w, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm512_add_ps(x, _mm512_permute_ps(x, _MM_SHUFFLE(2, 3, 0, 1)));
}

// The evaluation's BoxE distance of points x (lanes k..k+15, mask m) to box b: max(|x - c| / w,
// |x - c| w - kappa). With w = u - l + 1 >= 1 (the corners are ordered) and kappa = (w - 1)(w - 1/w)/2
// the two lines meet at |x - c| = (w - 1)/2, the box's half-width: the maximum is |x - c| / w inside
// the box and |x - c| w - kappa outside, box_dist16's distance (up to rounding where a point lies
// within a few ulp of a corner), in fewer operations. Masked-off lanes are 0 (a = |x| <= 1 there, all
// of b's loads 0); a NaN point gives NaN (max returns its second operand, NaN, when either is NaN).
AVX512_FN inline __m512 eval_dist16(__m512 x, const Box& b, long k, __mmask16 m) {
  const __m512 a = _mm512_abs_ps(_mm512_sub_ps(x, _mm512_maskz_loadu_ps(m, b.c + k)));
  const __m512 din = _mm512_mul_ps(a, _mm512_maskz_loadu_ps(m, b.invw + k));
  return _mm512_max_ps(din, _mm512_fmsub_ps(a, _mm512_maskz_loadu_ps(m, b.w + k), _mm512_maskz_loadu_ps(m, b.kappa + k)));
}

// One side's sum of distances (L2: of squared distances) over d, points by side_point16<MODE>, lanes
// summed by hsum16.
template <int MODE>
AVX512_FN float side_sum_avx512(const float* x1, const float* x2, const Box& b, long d, bool l2) {
  __m512 acc = _mm512_setzero_ps();
  for (long k = 0; k < d; k += 16) {
    const __mmask16 m = lane_mask(d, k);
    const __m512 di = eval_dist16(side_point16<MODE>(x1, x2, k, m), b, k, m);
    acc = l2 ? _mm512_fmadd_ps(di, di, acc) : _mm512_add_ps(acc, di);
  }
  return hsum16(acc);
}

// One side's block of side_sum_avx512 (L2): acc + dist^2 of lanes k..k+15 (mask m).
template <int MODE>
AVX512_FN inline __m512 side_block_sq_avx512(const float* x1, const float* x2, const Box& b, long k, __mmask16 m, __m512 acc) {
  const __m512 di = eval_dist16(side_point16<MODE>(x1, x2, k, m), b, k, m);
  return _mm512_fmadd_ps(di, di, acc);
}

// The ranking's comparisons of two candidates x, y with the gold score s from their (partial) sums of
// squared distances, both from score2's lanes 0 (x) and 8 (y): sqrt(hsum16(h)) + sqrt(hsum16(t))
// (sqrt correctly rounded as std::sqrt). not_below2: bit 0 when x's >= s, bit 8 the same for y (NaN
// compares false): each lane's partial sum only grows (fma of a square onto it; rounding is
// monotone) and so do the lane sums, the square roots and their sum: once a bit holds on partial
// sums, the full score of that candidate cannot fall below s. below2, on the full sums: bit 0 when
// x's score < s (the portable path's sc < s: false for a NaN score or a NaN s), bit 8 for y.
AVX512_FN inline __m512 score2(__m512 hx, __m512 tx, __m512 hy, __m512 ty) {
  const __m512 r = _mm512_sqrt_ps(hsum16x4(hx, tx, hy, ty));  // sqrt of x's head, tail sums in lanes 0, 4; y's in 8, 12
  return _mm512_add_ps(r, _mm512_shuffle_f32x4(r, r, _MM_SHUFFLE(2, 3, 0, 1)));
}
AVX512_FN inline __mmask16 not_below2(__m512 hx, __m512 tx, __m512 hy, __m512 ty, float s) {
  return _mm512_cmp_ps_mask(score2(hx, tx, hy, ty), _mm512_set1_ps(s), _CMP_GE_OQ) & static_cast<__mmask16>(0x0101);
}
AVX512_FN inline __mmask16 below2(__m512 hx, __m512 tx, __m512 hy, __m512 ty, float s) {
  return _mm512_cmp_ps_mask(score2(hx, tx, hy, ty), _mm512_set1_ps(s), _CMP_LT_OQ) & static_cast<__mmask16>(0x0101);
}

// The first block after which the ranking checks whether a candidate is settled (checking after
// the first 16 dimensions settles few: it does not pay).
constexpr long kFirstCheck = 2;

// Candidate x of one ranking query (AVX-512, L2 norm), from block `blk` on with the sums so far:
// both sides' sums of squared distances exactly as side_sum_avx512<MODE> computes them (same
// operations per lane, same reduction), the sides interleaved block by block. Returns 1 when
// sqrt(sh) + sqrt(st) < s (the comparison of boxteScoreBatch's score with the gold score s; below2), else
// 0; from block kFirstCheck on it stops with 0 once not_below2 (exact: the result equals the full comparison's).
template <int MH, int MT>
AVX512_FN int cand_better_avx512(const float* hx1, const float* hx2, const Box& bh, const float* tx1, const float* tx2,
                                 const Box& bt, long d, float s, long blk, __m512 accH, __m512 accT) {
  for (long k = blk * 16; k < d; k += 16, ++blk) {
    if (blk >= kFirstCheck && not_below2(accH, accT, accH, accT, s) != 0) return 0;
    const __mmask16 m = lane_mask(d, k);
    accH = side_block_sq_avx512<MH>(hx1, hx2, bh, k, m, accH);
    accT = side_block_sq_avx512<MT>(tx1, tx2, bt, k, m, accT);
  }
  return below2(accH, accT, accH, accT, s) != 0 ? 1 : 0;
}

// Two candidates x, y of the same query at once (four independent chains for the core to overlap);
// once one of them is settled the other continues alone. Same results as two cand_better_avx512 calls.
template <int MODE>
AVX512_FN void cand2_better_avx512(const float* hx, const float* hy, const float* ha, const Box& bh, const float* tx,
                                   const float* ty, const float* ta, const Box& bt, long d, float s, uint8_t* out) {
  __m512 aHx = _mm512_setzero_ps(), aTx = aHx, aHy = aHx, aTy = aHx;
  long blk = 0;
  for (long k = 0; k < d; k += 16, ++blk) {
    if (blk >= kFirstCheck) {
      const __mmask16 nb = not_below2(aHx, aTx, aHy, aTy, s);
      if (nb != 0) {
        out[0] = (nb & 1) ? 0 : static_cast<uint8_t>(cand_better_avx512<MODE, MODE>(hx, ha, bh, tx, ta, bt, d, s, blk, aHx, aTx));
        out[1] = (nb & 0x100) ? 0 : static_cast<uint8_t>(cand_better_avx512<MODE, MODE>(hy, ha, bh, ty, ta, bt, d, s, blk, aHy, aTy));
        return;
      }
    }
    const __mmask16 m = lane_mask(d, k);
    aHx = side_block_sq_avx512<MODE>(hx, ha, bh, k, m, aHx);
    aTx = side_block_sq_avx512<MODE>(tx, ta, bt, k, m, aTx);
    aHy = side_block_sq_avx512<MODE>(hy, ha, bh, k, m, aHy);
    aTy = side_block_sq_avx512<MODE>(ty, ta, bt, k, m, aTy);
  }
  const __mmask16 b = below2(aHx, aTx, aHy, aTy, s);
  out[0] = (b & 1) ? 1 : 0;
  out[1] = (b & 0x100) ? 1 : 0;
}

// The backward of one group's candidates at once (AVX-512). A backward per candidate and side (as
// side_bwd_avx2 / side_bwd_scalar) loads and stores five gradient rows per block; here the loop over the candidates runs inside
// the loop over the 16-lane blocks of d, so the box of each side, the relation's centre/width
// gradients, the group's time-bump gradient and the accumulators of the true head's and tail's rows
// stay in registers and only the rows of the other candidates are read and written. Every element
// receives the same additions in the same order as the per-candidate loop (candidates ascending,
// head side before tail side; the accumulators of the true head/tail rows added last, base of the
// head, bump of the head, base of the tail, bump of the tail), so the results are bit-identical.
// fh[j] / ft[j]: the factor of candidate j's head / tail side (0: skipped); cand[2j], cand[2j+1]:
// its head and tail; P: its points [G, 2] in rows of ps floats (ps >= d); gCh/gWh (gCt/gWt): the
// relation's head (tail) box centre/width gradients; gTbi: the group's time-bump gradient. The tanh
// and norm flags are template parameters (fewer live registers in the loop than as run-time flags:
// no spill left in it).
template <bool useTanh, bool l2>
AVX512_FN void group_bwd_avx512(long G, long d, const float* P, long ps, const Box& bh, const Box& bt, const float* fh,
                                const float* ft, const int32_t* cand, int32_t h0, int32_t t0,
                                float* gCh, float* gWh, float* gCt, float* gWt, float* gTbi, float* gB, float* gU) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 zero = _mm512_setzero_ps();
  const __m512 smask = _mm512_set1_ps(-0.0f);
  for (long k = 0; k < d; k += 16) {
    const __mmask16 m = lane_mask(d, k);
    struct SideRegs {
      __m512 l, u, c, w, iw, kappa, dkappa, gc, gw;
    };
    SideRegs sd[2];
    const Box* boxes[2] = {&bh, &bt};
    float* gCs[2] = {gCh, gCt};
    float* gWs[2] = {gWh, gWt};
    for (int s = 0; s < 2; ++s) {
      const Box& b = *boxes[s];
      sd[s].l = _mm512_maskz_loadu_ps(m, b.l + k);
      sd[s].u = _mm512_maskz_loadu_ps(m, b.u + k);
      sd[s].c = _mm512_maskz_loadu_ps(m, b.c + k);
      sd[s].w = _mm512_maskz_loadu_ps(m, b.w + k);
      sd[s].iw = _mm512_maskz_loadu_ps(m, b.invw + k);
      sd[s].kappa = _mm512_maskz_loadu_ps(m, b.kappa + k);
      sd[s].dkappa = _mm512_maskz_loadu_ps(m, b.dkappa + k);
      sd[s].gc = _mm512_maskz_loadu_ps(m, gCs[s] + k);
      sd[s].gw = _mm512_maskz_loadu_ps(m, gWs[s] + k);
    }
    __m512 gtb = _mm512_maskz_loadu_ps(m, gTbi + k);
    __m512 aBaseH = zero, aBumpH = zero, aBaseT = zero, aBumpT = zero;
    for (long j = 0; j < G; ++j) {
      const int32_t hh = cand[2 * j], tt = cand[2 * j + 1];
      for (int s = 0; s < 2; ++s) {
        const float f = s == 0 ? fh[j] : ft[j];
        if (f == 0) continue;
        SideRegs& b = sd[s];
        const __m512 p = _mm512_maskz_loadu_ps(m, P + (2 * j + s) * ps + k);
        const __m512 diff = _mm512_sub_ps(p, b.c);
        const __m512 a = _mm512_abs_ps(diff);
        // sign(diff): +-1 with diff's sign where diff != 0, else (+-0, NaN) +0: the values of
        // blend(diff > 0, blend(diff < 0, 0, -1), 1) in one compare and a masked or
        const __m512 sg = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(diff, zero, _CMP_NEQ_OQ), _mm512_or_ps(one, _mm512_and_ps(diff, smask)));
        const __mmask16 in = _mm512_cmp_ps_mask(p, b.l, _CMP_GE_OQ) & _mm512_cmp_ps_mask(p, b.u, _CMP_LE_OQ);
        const __m512 dist = _mm512_mask_blend_ps(in, _mm512_fmsub_ps(a, b.w, b.kappa), _mm512_mul_ps(a, b.iw));
        const __m512 dp = _mm512_mul_ps(sg, _mm512_mask_blend_ps(in, b.w, b.iw));
        const __m512 dw = _mm512_mask_blend_ps(in, _mm512_sub_ps(a, b.dkappa), _mm512_sub_ps(zero, _mm512_mul_ps(_mm512_mul_ps(a, b.iw), b.iw)));
        const __m512 fv = _mm512_set1_ps(f);
        const __m512 gd = l2 ? _mm512_mul_ps(fv, dist) : fv;
        const __m512 gp = _mm512_mul_ps(gd, dp);
        b.gc = _mm512_sub_ps(b.gc, gp);
        b.gw = _mm512_fmadd_ps(gd, dw, b.gw);
        const __m512 gx = useTanh ? _mm512_mul_ps(gp, _mm512_fnmadd_ps(p, p, one)) : gp;
        // head side: self = base of the head, other = bump of the tail; tail side: base of the tail, bump of the head
        if (s == 0) {
          if (hh == h0) aBaseH = _mm512_add_ps(aBaseH, gx);
          else _mm512_mask_storeu_ps(gB + hh * d + k, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, gB + hh * d + k), gx));
          if (tt == t0) aBumpT = _mm512_add_ps(aBumpT, gx);
          else _mm512_mask_storeu_ps(gU + tt * d + k, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, gU + tt * d + k), gx));
        } else {
          if (tt == t0) aBaseT = _mm512_add_ps(aBaseT, gx);
          else _mm512_mask_storeu_ps(gB + tt * d + k, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, gB + tt * d + k), gx));
          if (hh == h0) aBumpH = _mm512_add_ps(aBumpH, gx);
          else _mm512_mask_storeu_ps(gU + hh * d + k, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, gU + hh * d + k), gx));
        }
        gtb = _mm512_add_ps(gtb, gx);
      }
    }
    for (int s = 0; s < 2; ++s) {
      _mm512_mask_storeu_ps(gCs[s] + k, m, sd[s].gc);
      _mm512_mask_storeu_ps(gWs[s] + k, m, sd[s].gw);
    }
    _mm512_mask_storeu_ps(gTbi + k, m, gtb);
    float* rows[4] = {gB + h0 * d + k, gU + h0 * d + k, gB + t0 * d + k, gU + t0 * d + k};
    const __m512 accs[4] = {aBaseH, aBumpH, aBaseT, aBumpT};
    for (int q = 0; q < 4; ++q) _mm512_mask_storeu_ps(rows[q], m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, rows[q]), accs[q]));
  }
}
#endif

typedef void (*BwdFn)(const float*, const Box&, float, long, bool, bool, float*, float*, float*, float*, float*);

// The path of this family comes from dispatch.cc (TFREE_ISA / setIsa from JS, CPU features):
// 2 = AVX-512 (F, DQ, BW, VL), 1 = AVX2+FMA, 0 = portable scalar.
int boxte_isa() {
  const Isa i = kernels().boxte;
  return i == Isa::avx512 ? 2 : i == Isa::avx2 ? 1 : 0;
}

const char* boxte_isa_name() {
  const int i = boxte_isa();
  return i == 2 ? "avx512" : i == 1 ? "avx2" : "generic";
}

// The per-side forward / backward for the paths that score or differentiate one side at a time. At
// the AVX-512 level no caller does (training: pair_fwd_avx512 and group_bwd_avx512; evaluation:
// side_sum_avx512 and the exp kernels), so it has no per-side functions of its own and these
// return AVX2's.
FwdFn fwd_fn() {
#ifdef BOXTE_X86
  if (boxte_isa() >= 1) return side_fwd_avx2;
#endif
  return side_fwd_scalar;
}
BwdFn bwd_fn() {
#ifdef BOXTE_X86
  if (boxte_isa() >= 1) return side_bwd_avx2;
#endif
  return side_bwd_scalar;
}



// derived box arrays (invw, kappa, dkappa) for all 2*R*d entries
struct Derived {
  std::vector<float> own;
  float *invw, *kappa, *dkappa;
  // keep: storage reused across calls (the training kernel's, per calling thread), else own
  explicit Derived(const float* w, long n, std::vector<float>* keep = nullptr) {
    std::vector<float>& st = keep ? *keep : own;
    if (static_cast<long>(st.size()) < 3 * n) st.resize(3 * n);
    invw = st.data();
    kappa = invw + n;
    dkappa = kappa + n;
    for (long i = 0; i < n; ++i) {
      const float wi = w[i];
      invw[i] = 1.0f / wi;
      kappa[i] = 0.5f * (wi - 1.0f) * (wi - 1.0f / wi);
      dkappa[i] = 0.5f * (wi - 1.0f / wi + (wi - 1.0f) * (1.0f + 1.0f / (wi * wi)));
    }
  }
  Derived(const Derived&) = delete;
  Derived& operator=(const Derived&) = delete;
};

Box box_at(const float* l, const float* u, const float* c, const float* w, const Derived& dv, long off) {
  return Box{l + off, u + off, c + off, w + off, dv.invw + off, dv.kappa + off, dv.dkappa + off};
}

// Software prefetch of a row into L2 (prefetcht1): the training kernel asks for the rows of several
// candidates ahead (tens of cache lines in flight, more than L1 can track); the loads then hit L2.
inline void prefetch_row(const float* p, long d, bool write) {
  const char* c = reinterpret_cast<const char*>(p);
  const long bytes = d * static_cast<long>(sizeof(float));
  for (long o = 0; o < bytes; o += 64) {
    if (write) __builtin_prefetch(c + o, 1, 2);
    else __builtin_prefetch(c + o, 0, 2);
  }
}

// Large tables touched at random rows every step (the entity tables, their gradients and Adam
// moments): ask Linux for transparent huge pages over their 2 MiB-aligned interior (fewer TLB
// misses); once per address range, best effort (ignored where unsupported).
inline void advise_huge(const void* p, long bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes < (4L << 20)) return;
  static std::mutex mu;
  static std::vector<std::pair<uintptr_t, long>> done;
  const uintptr_t H = 2u << 20;
  const uintptr_t a = (reinterpret_cast<uintptr_t>(p) + H - 1) & ~(H - 1);
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + static_cast<uintptr_t>(bytes)) & ~(H - 1);
  if (e <= a) return;
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& x : done)
    if (x.first == a && x.second == static_cast<long>(e - a)) return;
  if (done.size() > 64) done.clear();
  done.emplace_back(a, static_cast<long>(e - a));
  madvise(reinterpret_cast<void*>(a), e - a, MADV_HUGEPAGE);
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
  madvise(reinterpret_cast<void*>(a), e - a, MADV_COLLAPSE);
#else
  (void)p;
  (void)bytes;
#endif
}

// ---- N-API helpers --------------------------------------------------------------------------------
struct Args {
  napi_env env;
  const char* fn;
  napi_value v[40];
  size_t n = 40;
  bool ok = true;
  Args(napi_env e, napi_callback_info info, const char* name) : env(e), fn(name) {
    napi_get_cb_info(e, info, &n, v, nullptr, nullptr);
  }
};

// finishes a background boxteAdamRowsStart job, if any (every call that reads or writes entity tables)
void adam_bg_finish(napi_env env);
// boxteAdamRowsArm's launch (see there), taken by boxteTrainGroups
struct AdamLaunch;
AdamLaunch* adam_armed_take(napi_env env);
void adam_armed_start(napi_env env, AdamLaunch* L);
void adam_armed_drop(napi_env env, AdamLaunch* L);
// true when the open background job uses bytes of one of the ranges [first, second)
bool adam_bg_overlaps(const std::vector<std::pair<const char*, const char*>>& spans);

void fail(Args& a, const char* what, const char* name) {
  if (!a.ok) return;
  char msg[256];
  std::snprintf(msg, sizeof msg, "tfree native %s: argument '%s' %s", a.fn, name, what);
  napi_throw_type_error(a.env, nullptr, msg);
  a.ok = false;
}

template <class T>
T* arr(Args& a, size_t i, const char* name, napi_typedarray_type type, long need) {
  if (!a.ok) return nullptr;
  napi_typedarray_type t;
  size_t len = 0;
  void* data = nullptr;
  if (i >= a.n || napi_get_typedarray_info(a.env, a.v[i], &t, &len, &data, nullptr, nullptr) != napi_ok || t != type) {
    fail(a, "has the wrong type", name);
    return nullptr;
  }
  if (static_cast<long>(len) < need) {
    fail(a, "is too short", name);
    return nullptr;
  }
  return static_cast<T*>(data);
}

long integer(Args& a, size_t i, const char* name, long lo) {
  if (!a.ok) return 0;
  double d = 0;
  if (i >= a.n || napi_get_value_double(a.env, a.v[i], &d) != napi_ok || d != std::floor(d) || d < lo || d > 1e12) {
    fail(a, "must be an integer in range", name);
    return 0;
  }
  return static_cast<long>(d);
}

double number(Args& a, size_t i, const char* name) {
  if (!a.ok) return 0;
  double d = 0;
  if (i >= a.n || napi_get_value_double(a.env, a.v[i], &d) != napi_ok) fail(a, "must be a number", name);
  return d;
}

bool flag(Args& a, size_t i, const char* name) {
  if (!a.ok) return false;
  bool b = false;
  if (i >= a.n || napi_get_value_bool(a.env, a.v[i], &b) != napi_ok) fail(a, "must be a boolean", name);
  return b;
}

bool ids_ok(Args& a, const int32_t* ids, long n, long rows, const char* name) {
  if (!a.ok) return false;
  for (long i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= rows) {
      fail(a, "holds an id out of range", name);
      return false;
    }
  return true;
}

// ---- evaluation: scoring and ranking ---------------------------------------------------------------
// The exponentials of tanh_exp16: e[i] = exp(2 x[i]) (computed in double, rounded once) for the rows
// x0..x1-1 of a [rows, d] table; ok[r] = 1 when every |x| of row r is <= kExpLim (a NaN fails), else
// 0 and the row's points are tanh16 of the float sum instead (its e values are not used).

void exp_rows(const float* x, long d, long x0, long x1, float* e, uint8_t* ok) {
  for (long r = x0; r < x1; ++r) {
    bool good = true;
    for (long k = r * d; k < (r + 1) * d; ++k) {
      const float v = x[k];
      good = good && std::fabs(v) <= kExpLim;
      e[k] = std::fabs(v) <= kExpLim ? static_cast<float>(std::exp(2.0 * static_cast<double>(v))) : 0.0f;
    }
    ok[r] = good ? 1 : 0;
  }
}

// exp_rows of a whole table, row blocks in parallel (elementwise: the thread count does not matter)
void exp_table(const float* x, long rows, long d, float* e, uint8_t* ok) {
  const long BLK = 256;
  auto task = [&](long blk, int) { exp_rows(x, d, blk * BLK, std::min(rows, (blk + 1) * BLK), e, ok); };
  parallel_tasks((rows + BLK - 1) / BLK, 0, task);
}

// Arguments 0-14 of boxteScoreBatch and boxteRankBatch (read in this order, so the first bad one is
// the one reported): d, E, Q, tanh, order, headTable, headAdd, tailTable, tailAdd, l, u, c, w, R, rel.
struct EvalInputs {
  long d, E, Q, R;
  bool useTanh, l2;
  const float *headTable, *headAdd, *tailTable, *tailAdd, *l, *u, *c, *w;
  const int32_t* rel;
  explicit EvalInputs(Args& a) {
    d = integer(a, 0, "d", 1), E = integer(a, 1, "E", 0), Q = integer(a, 2, "Q", 0);
    useTanh = flag(a, 3, "tanh");
    l2 = integer(a, 4, "order", 1) == 2;
    R = integer(a, 13, "R", 1);
    headTable = arr<float>(a, 5, "headTable", napi_float32_array, E * d);
    headAdd = arr<float>(a, 6, "headAdd", napi_float32_array, Q * d);
    tailTable = arr<float>(a, 7, "tailTable", napi_float32_array, E * d);
    tailAdd = arr<float>(a, 8, "tailAdd", napi_float32_array, Q * d);
    l = arr<float>(a, 9, "l", napi_float32_array, 2 * R * d);
    u = arr<float>(a, 10, "u", napi_float32_array, 2 * R * d);
    c = arr<float>(a, 11, "c", napi_float32_array, 2 * R * d);
    w = arr<float>(a, 12, "w", napi_float32_array, 2 * R * d);
    rel = arr<int32_t>(a, 14, "rel", napi_int32_array, Q);
  }
  Box head_box(const Derived& dv, long q) const { return box_at(l, u, c, w, dv, rel[q] * d); }
  Box tail_box(const Derived& dv, long q) const { return box_at(l, u, c, w, dv, R * d + rel[q] * d); }
};

bool absent(Args& a, size_t i) {
  napi_valuetype t = napi_undefined;
  return i >= a.n || (napi_typeof(a.env, a.v[i], &t) == napi_ok && (t == napi_undefined || t == napi_null));
}

// The scoring function of boxteScoreBatch / boxteRankBatch for one (query, candidate, side): the sum
// over d of the distances (L2: squared) of the points to the query relation's box of that side. The
// points are tanh(table[x] + add[q]) (tanh on) or the sum: on AVX-512 with tanh through tanh_exp16
// from the exponentials of both tables (arguments i0..i0+3: headExp, headOk, tailExp, tailOk of
// boxteExpRows, computed here when absent) and of the query parts, where the row and the query part
// are within kExpLim (else tanh16 of the float sum), lanes summed by hsum16 (side_sum_avx512); on the
// other paths the ISA's side_fwd.
struct EvalSides {
  const EvalInputs& in;
  const Derived dv;
  const FwdFn fwd = fwd_fn();
  const int isa = boxte_isa();
  const bool useExp;
  std::vector<float> ownE;  // the tables' exponentials when not given
  std::vector<uint8_t> ownOk;
  const float* ex[2] = {nullptr, nullptr};  // [E, d] exponentials of headTable / tailTable
  const uint8_t* ok[2] = {nullptr, nullptr};
  std::vector<float> eq;  // [2, Q, d] exponentials of headAdd / tailAdd
  std::vector<uint8_t> qok;  // [2, Q]
  EvalSides(Args& a, const EvalInputs& inputs, size_t i0)
      : in(inputs), dv(inputs.w, 2 * inputs.R * inputs.d), useExp(inputs.useTanh && boxte_isa() >= 1) {
    const long d = in.d, E = in.E, Q = in.Q;
    if (!a.ok || !useExp) return;
    const char* names[4] = {"headExp", "headOk", "tailExp", "tailOk"};
    const float* tabs[2] = {in.headTable, in.tailTable};
    for (int s = 0; s < 2; ++s) {
      if (absent(a, i0 + 2 * s) && absent(a, i0 + 2 * s + 1)) {
        if (ownE.empty()) {
          ownE.resize(2 * E * d);
          ownOk.resize(2 * E);
        }
        exp_table(tabs[s], E, d, ownE.data() + s * E * d, ownOk.data() + s * E);
        ex[s] = ownE.data() + s * E * d;
        ok[s] = ownOk.data() + s * E;
      } else {
        ex[s] = arr<float>(a, i0 + 2 * s, names[2 * s], napi_float32_array, E * d);
        ok[s] = arr<uint8_t>(a, i0 + 2 * s + 1, names[2 * s + 1], napi_uint8_array, E);
      }
    }
    eq.resize(2 * Q * d);
    qok.resize(2 * Q);
    exp_rows(in.headAdd, d, 0, Q, eq.data(), qok.data());
    exp_rows(in.tailAdd, d, 0, Q, eq.data() + Q * d, qok.data() + Q);
  }
  // side s (0 head, 1 tail) uses tanh_exp16 for candidate x of query q
  bool exp_side(int s, long q, long x) const { return useExp && qok[s * in.Q + q] && ok[s][x]; }
  float side(int s, long q, long x, const Box& b) const {
    const long d = in.d;
    const float* tab = s == 0 ? in.headTable : in.tailTable;
    const float* add = s == 0 ? in.headAdd : in.tailAdd;
#ifdef BOXTE_X86
    if (exp_side(s, q, x)) {
      const float *e1 = ex[s] + x * d, *e2 = eq.data() + (s * in.Q + q) * d;
      return isa == 2 ? side_sum_avx512<2>(e1, e2, b, d, in.l2) : side_sum_exp_avx2(e1, e2, b, d, in.l2);
    }
    if (isa == 2) return in.useTanh ? side_sum_avx512<1>(tab + x * d, add + q * d, b, d, in.l2) : side_sum_avx512<0>(tab + x * d, add + q * d, b, d, in.l2);
#endif
    return fwd(tab + x * d, add + q * d, nullptr, b, nullptr, d, in.useTanh, in.l2);
  }
  float score(long q, long x) const {
    const float sh = side(0, q, x, in.head_box(dv, q)), st = side(1, q, x, in.tail_box(dv, q));
    return in.l2 ? std::sqrt(sh) + std::sqrt(st) : sh + st;
  }
};

// boxteExpRows(rows, d, x, outExp, outOk): the exponentials of a [rows, d] table for boxteScoreBatch /
// boxteRankBatch (exp_rows; pass them when one table is scored by many calls).
napi_value ExpRows(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteExpRows");
  adam_bg_finish(env);
  const long rows = integer(a, 0, "rows", 0), d = integer(a, 1, "d", 1);
  const float* x = arr<float>(a, 2, "x", napi_float32_array, rows * d);
  float* e = arr<float>(a, 3, "outExp", napi_float32_array, rows * d);
  uint8_t* ok = arr<uint8_t>(a, 4, "outOk", napi_uint8_array, rows);
  if (!a.ok) return nullptr;
  exp_table(x, rows, d, e, ok);
  return napi::undef(env);
}

// boxteScoreBatch(d, E, Q, tanh, order, headTable, headAdd, tailTable, tailAdd, l, u, c, w, R, rel, out
//                 [, headExp, headOk, tailExp, tailOk]): scores [Q, E] (EvalSides::score)
napi_value ScoreBatch(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteScoreBatch");
  adam_bg_finish(env);
  const EvalInputs in(a);
  const long E = in.E, Q = in.Q, R = in.R;
  float* out = arr<float>(a, 15, "out", napi_float32_array, Q * E);
  if (!ids_ok(a, in.rel, Q, R, "rel")) return nullptr;
  const EvalSides ev(a, in, 16);
  if (!a.ok) return nullptr;
  const long BLK = 256;
  const long nb = (E + BLK - 1) / BLK;
  auto task = [&](long blk, int) {
    const long x0 = blk * BLK, x1 = x0 + BLK < E ? x0 + BLK : E;
    for (long q = 0; q < Q; ++q) {
      const Box bh = in.head_box(ev.dv, q);
      const Box bt = in.tail_box(ev.dv, q);
      float* o = out + q * E;
      for (long x = x0; x < x1; ++x) {
        const float sh = ev.side(0, q, x, bh), st = ev.side(1, q, x, bt);
        o[x] = in.l2 ? std::sqrt(sh) + std::sqrt(st) : sh + st;
      }
    }
  };
  parallel_tasks(nb, 0, task);
  return napi::undef(env);
}

#ifdef BOXTE_X86
// better[x] for the candidates x0..x1-1 of query q (AVX-512, L2; pairs through cand2_better_avx512 where
// both candidates' sides run one mode); returns their count.
AVX512_FN int32_t rank_block_avx512(const EvalSides& ev, long q, const Box& bh, const Box& bt, float s, long x0, long x1,
                                    uint8_t* better) {
  const EvalInputs& in = ev.in;
  const long d = in.d;
  const float *hT = in.headTable, *tT = in.tailTable, *ha = in.headAdd + q * d, *ta = in.tailAdd + q * d;
  const float *hE = ev.ex[0], *tE = ev.ex[1];
  const float *hq = ev.useExp ? ev.eq.data() + q * d : nullptr, *tq = ev.useExp ? ev.eq.data() + (in.Q + q) * d : nullptr;
  auto both = [&](long x) { return ev.exp_side(0, q, x) && ev.exp_side(1, q, x); };
  const __m512 z = _mm512_setzero_ps();
  int32_t cnt = 0;
  long x = x0;
  while (x < x1) {
    if (!in.useTanh && x + 1 < x1) {
      cand2_better_avx512<0>(hT + x * d, hT + (x + 1) * d, ha, bh, tT + x * d, tT + (x + 1) * d, ta, bt, d, s, better + x);
    } else if (in.useTanh && x + 1 < x1 && ev.useExp && both(x) && both(x + 1)) {
      cand2_better_avx512<2>(hE + x * d, hE + (x + 1) * d, hq, bh, tE + x * d, tE + (x + 1) * d, tq, bt, d, s, better + x);
    } else {
      int b;
      if (!in.useTanh) b = cand_better_avx512<0, 0>(hT + x * d, ha, bh, tT + x * d, ta, bt, d, s, 0, z, z);
      else {
        const bool eh = ev.exp_side(0, q, x), et = ev.exp_side(1, q, x);
        const float *h1 = eh ? hE + x * d : hT + x * d, *h2 = eh ? hq : ha;
        const float *t1 = et ? tE + x * d : tT + x * d, *t2 = et ? tq : ta;
        b = eh ? (et ? cand_better_avx512<2, 2>(h1, h2, bh, t1, t2, bt, d, s, 0, z, z) : cand_better_avx512<2, 1>(h1, h2, bh, t1, t2, bt, d, s, 0, z, z))
               : (et ? cand_better_avx512<1, 2>(h1, h2, bh, t1, t2, bt, d, s, 0, z, z) : cand_better_avx512<1, 1>(h1, h2, bh, t1, t2, bt, d, s, 0, z, z));
      }
      better[x] = static_cast<uint8_t>(b);
      cnt += b;
      ++x;
      continue;
    }
    cnt += better[x] + better[x + 1];
    x += 2;
  }
  return cnt;
}
#endif

#ifdef BOXTE_X86
// better[x] for the candidates x0..x1-1 of query q (AVX2, L2, tanh through the exponentials): pairs
// through cand2_better_exp_avx2 where both candidates' sides are in the exp range, single candidates
// through cand_better_exp_avx2, the rest (a side outside the range) by their scores; returns the count.
AVX2_FN int32_t rank_block_exp_avx2(const EvalSides& ev, long q, const Box& bh, const Box& bt, float s, long x0, long x1,
                                    uint8_t* better) {
  const long d = ev.in.d;
  const float *hE = ev.ex[0], *tE = ev.ex[1], *hq = ev.eq.data() + q * d, *tq = ev.eq.data() + (ev.in.Q + q) * d;
  auto both = [&](long x) { return ev.exp_side(0, q, x) && ev.exp_side(1, q, x); };
  int32_t cnt = 0;
  long x = x0;
  while (x < x1) {
    if (x + 1 < x1 && both(x) && both(x + 1)) {
      cand2_better_exp_avx2(hE + x * d, hE + (x + 1) * d, hq, bh, tE + x * d, tE + (x + 1) * d, tq, bt, d, s, better + x);
      cnt += better[x] + better[x + 1];
      x += 2;
      continue;
    }
    const int b = both(x) ? cand_better_exp_avx2(hE + x * d, hq, bh, tE + x * d, tq, bt, d, s, 0, _mm256_setzero_ps(), _mm256_setzero_ps())
                          : (std::sqrt(ev.side(0, q, x, bh)) + std::sqrt(ev.side(1, q, x, bt)) < s ? 1 : 0);
    better[x] = static_cast<uint8_t>(b);
    cnt += b;
    ++x;
  }
  return cnt;
}
#endif

// boxteRankBatch(d, E, Q, tanh, order, headTable, headAdd, tailTable, tailAdd, l, u, c, w, R, rel, gold, better,
//                count, goldScore [, headExp, headOk, tailExp, tailOk]): the evaluation's comparisons without
// the score matrix. For query q the gold candidate's score s = goldScore[q] is computed first, exactly as
// boxteScoreBatch computes it; better[q * E + x] = 1 when candidate x scores strictly below s (0
// otherwise, NaN included) and count[q] = the number of such x. With the L2 norm a candidate is
// settled (0) once the square roots of its partial sums of squared distances, added, reach s: the sums
// only grow and float rounding is monotone, so its full score would be >= s as well (the comparisons,
// counts and ranks are exactly those of the full scores). AVX-512 checks after every 16 dimensions of
// both sides, AVX2 after every 32, the generic path after the head side. Candidate blocks of 256 are the tasks.
napi_value RankBatch(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteRankBatch");
  adam_bg_finish(env);
  const EvalInputs in(a);
  const long E = in.E, Q = in.Q, R = in.R;
  const bool l2 = in.l2;
  const int32_t* gold = arr<int32_t>(a, 15, "gold", napi_int32_array, Q);
  uint8_t* better = arr<uint8_t>(a, 16, "better", napi_uint8_array, Q * E);
  int32_t* count = arr<int32_t>(a, 17, "count", napi_int32_array, Q);
  float* goldScore = arr<float>(a, 18, "goldScore", napi_float32_array, Q);
  if (!ids_ok(a, in.rel, Q, R, "rel") || !ids_ok(a, gold, Q, E, "gold")) return nullptr;
  const EvalSides ev(a, in, 19);
  if (!a.ok) return nullptr;
  for (long q = 0; q < Q; ++q) goldScore[q] = ev.score(q, gold[q]);
  const long BLK = 256;
  const long nb = (E + BLK - 1) / BLK;
  std::vector<int32_t> part(nb * Q, 0);
  auto task = [&](long blk, int) {
    const long x0 = blk * BLK, x1 = x0 + BLK < E ? x0 + BLK : E;
    for (long q = 0; q < Q; ++q) {
      const Box bh = in.head_box(ev.dv, q);
      const Box bt = in.tail_box(ev.dv, q);
      const float s = goldScore[q];
      uint8_t* b = better + q * E;
      int32_t cnt = 0;
#ifdef BOXTE_X86
      if (l2 && ev.isa == 2) {
        part[blk * Q + q] = rank_block_avx512(ev, q, bh, bt, s, x0, x1, b);
        continue;
      }
      if (l2 && ev.isa == 1 && ev.useExp) {
        part[blk * Q + q] = rank_block_exp_avx2(ev, q, bh, bt, s, x0, x1, b);
        continue;
      }
      if (l2 && ev.isa == 1) {
        const long d = in.d;
        const float *ha = in.headAdd + q * d, *ta = in.tailAdd + q * d;
        part[blk * Q + q] = in.useTanh ? rank_block_avx2<true>(ev.fwd, in.headTable, ha, bh, in.tailTable, ta, bt, d, s, x0, x1, b)
                                       : rank_block_avx2<false>(ev.fwd, in.headTable, ha, bh, in.tailTable, ta, bt, d, s, x0, x1, b);
        continue;
      }
#endif
      for (long x = x0; x < x1; ++x) {
        const float sh = ev.side(0, q, x, bh);
        float sc;
        if (l2) {
          const float rh = std::sqrt(sh);
          if (rh >= s) {
            b[x] = 0;
            continue;
          }
          sc = rh + std::sqrt(ev.side(1, q, x, bt));
        } else {
          sc = sh + ev.side(1, q, x, bt);
        }
        const uint8_t bx = sc < s ? 1 : 0;
        b[x] = bx;
        cnt += bx;
      }
      part[blk * Q + q] = cnt;
    }
  };
  parallel_tasks(nb, 0, task);
  for (long q = 0; q < Q; ++q) {
    int32_t cnt = 0;
    for (long blk = 0; blk < nb; ++blk) cnt += part[blk * Q + q];
    count[q] = cnt;
  }
  return napi::undef(env);
}

// boxteTrainGroups(B, n, d, tanh, order, base, bump, E, l, u, c, w, R, tb, h, r, t, negEnt, negTail, gradScale,
//                  gBase, gBump, gc, gw, gTb [, slots, nslots [, stamps, step]]) -> loss summed over groups
// The training kernel's exponentials of every base and bump row ([base E*d | bump E*d], row ok flags
// [base E | bump E]) in blocks of 256 rows: task blk of 2 * exp_blocks(E) (elementwise, so the
// thread count and order do not matter)
long exp_blocks(long E) { return (E + 255) / 256; }
// The table's row stride: d rounded up to whole 64-byte lines (16 floats), the table itself on a line
// boundary (ExpTab), so every row starts on a cache line (d=154: 160 floats, 640 bytes; a 616-byte
// row at an arbitrary offset touches 10 or 11 lines and 3/8 of its 32-byte loads cross one). The pad
// lanes are never written or read.
inline long exp_ld(long d) { return (d + 15) & ~15L; }
// p rounded up to a 64-byte boundary (buffers allocated 16 floats longer)
inline float* align64(float* p) { return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63}); }
// A float buffer kept between calls (grown, never shrunk) on a 64-byte boundary; from 4 MiB on on a
// 2 MiB boundary, so that advise_huge covers all of it but the last partial huge page (the kernel reads
// its rows at random: on 4 KiB pages each row costs a TLB miss).
struct ExpTab {
  std::unique_ptr<float[]> raw;  // (not value-initialised: its pages are first touched after the advice)
  float* p = nullptr;
  long n = 0;
  float* ensure(long want) {
    if (want > n) {
      const long align = want * static_cast<long>(sizeof(float)) >= (4L << 20) ? (2L << 20) : 64;
      raw.reset();
      raw.reset(new float[want + align / static_cast<long>(sizeof(float))]);
      const uintptr_t a = (reinterpret_cast<uintptr_t>(raw.get()) + align - 1) & ~static_cast<uintptr_t>(align - 1);
      p = reinterpret_cast<float*>(a);
      n = want;
      advise_huge(p, want * static_cast<long>(sizeof(float)));
    }
    return p;
  }
};
// rows r0..r1-1 of table s (x: base for s = 0, bump for s = 1) into the table (the fused Adam's tasks call it too)
void exp_rows_range(const float* x, long s, long E, long d, int isa, long r0, long r1, float* eTab, uint8_t* eOk) {
#ifdef BOXTE_X86
  const long ld = exp_ld(d);
  for (long r = r0; r < r1; ++r)
    eOk[s * E + r] = (isa == 2 ? exp_vec_avx512(x + r * d, nullptr, d, eTab + (s * E + r) * ld)
                               : exp_row_nt_avx2(x + r * d, d, eTab + (s * E + r) * ld)) ? 1 : 0;
  if (isa == 1) _mm_sfence();
#else
  (void)x, (void)s, (void)E, (void)d, (void)isa, (void)r0, (void)r1, (void)eTab, (void)eOk;
#endif
}
void exp_rows_block(const float* base, const float* bump, long E, long d, int isa, long blk, float* eTab, uint8_t* eOk) {
  const long nbk = exp_blocks(E), s = blk / nbk, r0 = (blk % nbk) * 256, r1 = std::min(E, r0 + 256);
  exp_rows_range(s == 0 ? base : bump, s, E, d, isa, r0, r1, eTab, eOk);
}

// boxteExpTableStart's table (see there): valid for one boxteTrainGroups call on the same base / bump.
// fused: made by a boxteAdamRowsStart with expD (its tasks write it as they update the rows), not yet
// taken by the boxteExpTableStart on these tables that the trainGroups must come after
struct ExpPre {
  ExpTab tab;  // [base E | bump E] rows of exp_ld(d)
  std::vector<uint8_t> ok;
  const float* base = nullptr;
  const float* bump = nullptr;
  long E = 0, d = 0;
  int isa = 0;
  bool ready = false;
  bool fused = false;
  // the table is no longer valid when rows of [p, p + n) change
  void invalidate_if(const float* p, long n) {
    if (!ready) return;
    const float* e = p + n;
    if ((p < base + E * d && base < e) || (p < bump + E * d && bump < e)) ready = fused = false;
  }
};
ExpPre g_expPre;
std::mutex g_expUseMu;  // held by a boxteTrainGroups reading g_expPre and by a start writing it
void exp_pre_task(void* ctx, long blk, int) {
  ExpPre& p = *static_cast<ExpPre*>(ctx);
  exp_rows_block(p.base, p.bump, p.E, p.d, p.isa, blk, p.tab.p, p.ok.data());
}

napi_value TrainGroups(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteTrainGroups");
  // boxteAdamRowsArm's updates: started after the parallel part below; dropped on any early return
  struct Armed {
    napi_env env;
    AdamLaunch* L;
    ~Armed() { adam_armed_drop(env, L); }
  } armed{env, adam_armed_take(env)};
  const long B = integer(a, 0, "B", 0), n = integer(a, 1, "n", 0), d = integer(a, 2, "d", 1);
  const bool useTanh = flag(a, 3, "tanh");
  const bool l2 = integer(a, 4, "order", 1) == 2;
  const long E = integer(a, 7, "E", 1), R = integer(a, 12, "R", 1);
  const float* base = arr<float>(a, 5, "base", napi_float32_array, E * d);
  const float* bump = arr<float>(a, 6, "bump", napi_float32_array, E * d);
  const float* l = arr<float>(a, 8, "l", napi_float32_array, 2 * R * d);
  const float* u = arr<float>(a, 9, "u", napi_float32_array, 2 * R * d);
  const float* c = arr<float>(a, 10, "c", napi_float32_array, 2 * R * d);
  const float* w = arr<float>(a, 11, "w", napi_float32_array, 2 * R * d);
  const float* tb = arr<float>(a, 13, "tb", napi_float32_array, B * d);
  const int32_t* h = arr<int32_t>(a, 14, "h", napi_int32_array, B);
  const int32_t* r = arr<int32_t>(a, 15, "r", napi_int32_array, B);
  const int32_t* t = arr<int32_t>(a, 16, "t", napi_int32_array, B);
  const int32_t* negEnt = arr<int32_t>(a, 17, "negEnt", napi_int32_array, B * n);
  const uint8_t* negTail = arr<uint8_t>(a, 18, "negTail", napi_uint8_array, B * n);
  const float gradScale = static_cast<float>(number(a, 19, "gradScale"));
  float* gBase = arr<float>(a, 20, "gBase", napi_float32_array, E * d);
  float* gBump = arr<float>(a, 21, "gBump", napi_float32_array, E * d);
  float* gc = arr<float>(a, 22, "gc", napi_float32_array, 2 * R * d);
  float* gw = arr<float>(a, 23, "gw", napi_float32_array, 2 * R * d);
  float* gTb = arr<float>(a, 24, "gTb", napi_float32_array, B * d);
  // The work on arrays a background job (boxteAdamRowsStart / Arm, boxteExpTableStart: the entity
  // tables, their gradients, moments and exponentials) does not touch runs before this call finishes
  // it, beside its last tasks: the checks, the boxes' derived rows, zeroing gTb (~0.1 ms a d=154 step
  // that the worker otherwise spent waiting)
  if (!ids_ok(a, h, B, E, "h") || !ids_ok(a, t, B, E, "t") || !ids_ok(a, r, B, R, "r") || !ids_ok(a, negEnt, B * n, E, "negEnt")) {
    adam_bg_finish(env);
    return nullptr;
  }
  thread_local std::vector<float> dvKeep;  // (per calling thread: no fresh pages every step)
  const Derived dv(w, 2 * R * d, &dvKeep);
  const FwdFn fwd = fwd_fn();
  const BwdFn bwd = bwd_fn();
  // group_bwd_avx512 / group_bwd_avx2 (and pair_fwd_*), else side_fwd / side_bwd per candidate and side
#ifdef BOXTE_X86
  const int isa = boxte_isa();
  const bool grouped = isa >= 1;
  // the group's backward in one pass (group_bwd_*) or per candidate and side (bwd): same bits. On AVX2
  // the grouped pass reads the points and gradient rows of all 2G candidate sides column by column,
  // which pays while they stay in L2 (about 12 G d bytes with the prefetched rows: d <= 256) and
  // costs a third more at d=1000 (kernel 154 -> 206 ms min, boxte_kernel_ab.js, 2 threads)
  const bool groupBwd = grouped && (isa == 2 || d <= 256);
  // above that on AVX2: side_bwd_avx2 per candidate and side on tiles of kBwdTile dimensions, the
  // candidates inside the loop over the tiles (tiledBwd below)
  const bool tiledBwd = isa == 1 && !groupBwd;
#else
  const int isa = 0;
  const bool grouped = false;
  const bool groupBwd = false;
  const bool tiledBwd = false;
#endif
  std::memset(gTb, 0, sizeof(float) * B * d);
  adam_bg_finish(env);
  for (const float* tbl : {base, bump, static_cast<const float*>(gBase), static_cast<const float*>(gBump)})
    advise_huge(tbl, E * d * static_cast<long>(sizeof(float)));
  // grouped with tanh: the forward's points through tanh_exp16 (pair_fwd_exp_avx512): the
  // exponentials of every base and bump row ([base E*d | bump E*d], row ok flags [base E | bump E],
  // row blocks in parallel: elementwise, the thread count does not matter)
  const bool expFwd = grouped && useTanh;
  // (kept per calling thread between calls: a fresh table each step costs its page faults)
  thread_local ExpTab eTabKeep;
  float* eTab = nullptr;
  std::vector<uint8_t> eOkKeep;
  const uint8_t* eOk = nullptr;
  // the table of boxteExpTableStart for these base / bump rows (computed in the background while the
  // caller ran the step's small calls; finished above), used once; held against a new start meanwhile
  std::unique_lock<std::mutex> expUse(g_expUseMu, std::defer_lock);
#ifdef BOXTE_X86
  if (expFwd) {
    expUse.lock();
    ExpPre& pre = g_expPre;
    const bool fresh = pre.ready && !pre.fused && pre.base == base && pre.bump == bump && pre.E == E && pre.d == d && pre.isa == isa;
    pre.ready = pre.fused = false;
    if (fresh) {
      eTab = pre.tab.p;
      eOk = pre.ok.data();
    } else {
      expUse.unlock();
      eTab = eTabKeep.ensure(2 * E * exp_ld(d));
      eOkKeep.resize(2 * E);
      eOk = eOkKeep.data();
      auto etask = [&](long blk, int) { exp_rows_block(base, bump, E, d, isa, blk, eTab, eOkKeep.data()); };
      parallel_tasks(2 * exp_blocks(E), 0, etask);
    }
  }
#endif
  // (rows of eLd floats: see exp_ld)
  const long eLd = exp_ld(d);
  const float* eBase = eTab;
  const float* eBump = expFwd ? eTab + E * eLd : nullptr;
  // the rows a candidate's forward reads (prefetched ahead): its exponentials or its base/bump rows
  const float* candBase = expFwd ? eBase : base;
  const float* candBump = expFwd ? eBump : bump;
  const long candLd = expFwd ? eLd : d;
  const long G = n + 1;
  // optional: slots [nslots, 2, E, d] (zeroed by the caller): chunk c > 0 accumulates its entity
  // gradients into slot c - 1 and the caller adds them (boxteAdamRows); without, into scratch
  // buffers added here. The number of chunks is min(threads, B, nslots + 1).
  float* slots = nullptr;
  long nslots = 0;
  if (a.n > 25) {
    napi_valuetype vt;
    napi_typeof(env, a.v[25], &vt);
    if (vt != napi_undefined && vt != napi_null) {
      nslots = integer(a, 26, "nslots", 0);
      slots = arr<float>(a, 25, "slots", napi_float32_array, nslots * 2 * E * d);
      if (!a.ok) return nullptr;
    }
  }
  if (slots) advise_huge(slots, nslots * 2 * E * d * static_cast<long>(sizeof(float)));
  // optional: lazy zeroing of the entity gradients (stamps [nslots + 1, 2, E], step >= 1): chunk c's
  // row e of table q (base, bump) holds this step's sum only where stamps[(2 c + q) E + e] == step;
  // any other row is stale and is zeroed (and stamped) before the chunk's first addition to it, so
  // nobody zeroes the tables between steps (boxteAdamRows with the same stamps reads only the
  // stamped rows and zeroes nothing). Without slots one chunk runs.
  int32_t* stamps = nullptr;
  int32_t step = 0;
  if (a.n > 27) {
    napi_valuetype vt;
    napi_typeof(env, a.v[27], &vt);
    if (vt != napi_undefined && vt != napi_null) {
      step = static_cast<int32_t>(integer(a, 28, "step", 1));
      stamps = arr<int32_t>(a, 27, "stamps", napi_int32_array, (nslots + 1) * 2 * E);
      if (!a.ok) return nullptr;
    }
  }
  int nth = pool_threads();
  if (nth > B) nth = B > 0 ? static_cast<int>(B) : 1;
  if (slots && nth > nslots + 1) nth = static_cast<int>(nslots + 1);
  if (stamps && !slots) nth = 1;
  const long RD = 2 * R * d;
  // scratch gradients of chunks 1..nth-1: [base E*d | bump E*d] (unless slots) then [gc RD | gw RD]
  // with slots, chunk c > 0 keeps its relation gradients [gc RD | gw RD] in a buffer kept between
  // calls (relScratch) whose relation rows are zeroed at their first use in the call (relUsed) and
  // only those rows are added into gc / gw at the end (the others would add the 0 they held: gc and
  // gw are sums started at +0, never -0, so skipping them keeps the bits)
  static std::mutex relMu;
  static std::vector<std::vector<float>> relScratch;
  std::vector<std::vector<uint8_t>> relUsed(slots && nth > 1 ? nth - 1 : 0, std::vector<uint8_t>(R, 0));
  std::unique_lock<std::mutex> relLock(relMu, std::defer_lock);
  if (slots && nth > 1) {
    relLock.lock();  // (two calls at once from different JS threads: one waits)
    if (static_cast<long>(relScratch.size()) < nth - 1) relScratch.resize(nth - 1);
    for (int ch = 0; ch < nth - 1; ++ch)
      if (static_cast<long>(relScratch[ch].size()) < 2 * RD) relScratch[ch].resize(2 * RD);
  }
  std::vector<std::vector<float>> scratch(nth > 1 && !slots ? nth - 1 : 0);
  std::vector<double> chunkLoss(nth, 0.0);
  auto task = [&](long chunk, int) {
    float *gB = gBase, *gU = gBump, *gC = gc, *gW = gw;
    uint8_t* used = nullptr;
    if (chunk > 0) {
      if (slots) {
        gB = slots + (chunk - 1) * 2 * E * d;
        gU = gB + E * d;
        gC = relScratch[chunk - 1].data();
        used = relUsed[chunk - 1].data();
      } else {
        std::vector<float>& s = scratch[chunk - 1];
        s.assign(2 * E * d + 2 * RD, 0.0f);
        gB = s.data();
        gU = gB + E * d;
        gC = gU + E * d;
      }
      gW = gC + RD;
    }
    thread_local std::vector<float> PKeep;  // (kept per pool thread: no fresh pages every call)
    // P's side rows: of pS floats, on 64-byte boundaries on the AVX-512 path (exp_ld(d): its 16-lane
    // stores and loads of the points then never cross a cache line), else of d floats
    const long pS = isa == 2 ? exp_ld(d) : d;
    if (static_cast<long>(PKeep.size()) < G * 2 * pS + 16) PKeep.resize(G * 2 * pS + 16);
    float* const P = isa == 2 ? align64(PKeep.data()) : PKeep.data();
    std::vector<double> nh(G), nt(G), score(G), ex(G);
    std::vector<int32_t> cand(2 * G);
    std::vector<float> acc(4 * d);
    std::vector<float*> rowPtrs(4 * G);
    // AVX2 backward: where each destination row's old values are read (rowSrc: the row, or zrow at its
    // first addition of the step under lazy zeroing) and its stamp index (rowStamp; -1: an accumulator)
    std::vector<const float*> rowSrc(4 * G);
    std::vector<int32_t> rowStamp(4 * G);
    std::vector<float> zrow(isa == 1 ? d : 0, 0.0f);
    std::vector<float> fhs(G), fts(G);
    // expFwd: the exponentials of the group's fixed parts: [base[h0] + tb | bump[h0] + tb] (a tail
    // candidate's head, tail side), [bump[t0] + tb | base[t0] + tb] (a head candidate's), ok flags
    // (rows of fxLd floats on 64-byte boundaries, as the exp table's: see exp_ld; the forward reads
    // them for every candidate)
    const long fxLd = exp_ld(d);
    std::vector<float> fxBuf(expFwd ? 4 * fxLd + 16 : 0);
    float* const fx = expFwd ? align64(fxBuf.data()) : nullptr;
    bool fxOk[2] = {false, false};
    // the grouped forward / backward (d <= 256 on AVX2, AVX-512): the group's boxes (7 rows a side)
    // copied to rows of fxLd floats on 64-byte boundaries, read from there by every candidate (the
    // relation tables' rows of 616 bytes at d=154 start anywhere in a line: 3/8 of the 32-byte loads
    // crossed one); the same values, so the same bits
    const bool boxCopy = grouped && !tiledBwd;
    std::vector<float> boxBuf(boxCopy ? 14 * fxLd + 16 : 0);
    float* const boxA = boxCopy ? align64(boxBuf.data()) : nullptr;
#ifdef BOXTE_X86
    // the tiled forward (tiledBwd && expFwd): per candidate ecH, fxH, ecT, fxT (ecH null: outside the
    // exp range) and the lane sums of both sides
    std::vector<const float*> tileSrc(4 * G);
    std::vector<float> tileAcc(16 * G);
#endif
    const long i0 = chunk * B / nth, i1 = (chunk + 1) * B / nth;
    double loss = 0;
    for (long i = i0; i < i1; ++i) {
      const long bo = r[i] * d;
      if (used && !used[r[i]]) {
        used[r[i]] = 1;
        for (float* q : {gC + bo, gC + R * d + bo, gW + bo, gW + R * d + bo}) std::memset(q, 0, sizeof(float) * d);
      }
      Box bh = box_at(l, u, c, w, dv, bo);
      Box bt = box_at(l, u, c, w, dv, R * d + bo);
      if (boxCopy) {
        Box* sides[2] = {&bh, &bt};
        for (int sd = 0; sd < 2; ++sd) {
          Box& b = *sides[sd];
          const float* src[7] = {b.l, b.u, b.c, b.w, b.invw, b.kappa, b.dkappa};
          float* dst = boxA + 7 * sd * fxLd;
          for (int q = 0; q < 7; ++q) std::memcpy(dst + q * fxLd, src[q], sizeof(float) * d);
          b = Box{dst, dst + fxLd, dst + 2 * fxLd, dst + 3 * fxLd, dst + 4 * fxLd, dst + 5 * fxLd, dst + 6 * fxLd};
        }
      }
      const float* tbi = tb + i * d;
#ifdef BOXTE_X86
      if (expFwd) {
        auto ev = isa == 2 ? exp_vec_avx512 : exp_vec_avx2;
        fxOk[0] = ev(base + h[i] * d, tbi, d, fx) & ev(bump + h[i] * d, tbi, d, fx + fxLd);
        fxOk[1] = ev(bump + t[i] * d, tbi, d, fx + 2 * fxLd) & ev(base + t[i] * d, tbi, d, fx + 3 * fxLd);
      }
#endif
      bool tiledDone = false;
#ifdef BOXTE_X86
      if (tiledBwd && expFwd) {
        // The forward in tiles of kFwdTile dimensions as the backward (tiledBwd): per candidate, the
        // boxes' six rows of both sides and the group's fixed parts (64 KB at d=1000) were streamed
        // from L2 again for every candidate; here the candidates run inside the loop over the tiles,
        // their lane sums carried between tiles (pair_fwd_exp_tile_avx2: the same blocks in the same
        // order, so the same bits). Candidates outside the exp range take pair_fwd_avx2 in full first.
        for (long j = 0; j < G; ++j) {
          int32_t hh = h[i], tt = t[i];
          bool tailCand = true;
          if (j > 0) {
            const long q = i * n + j - 1;
            if (negTail[q] == 1) tt = negEnt[q];
            else {
              hh = negEnt[q];
              tailCand = false;
            }
          }
          cand[2 * j] = hh;
          cand[2 * j + 1] = tt;
          const int32_t ce = tailCand ? tt : hh;
          tileSrc[4 * j] = nullptr;
          if (fxOk[tailCand ? 0 : 1] && eOk[ce] && eOk[E + ce]) {
            tileSrc[4 * j] = tailCand ? eBump + ce * eLd : eBase + ce * eLd;      // ecH
            tileSrc[4 * j + 1] = fx + (tailCand ? 0 : 2 * fxLd);             // fxH
            tileSrc[4 * j + 2] = tailCand ? eBase + ce * eLd : eBump + ce * eLd;  // ecT
            tileSrc[4 * j + 3] = tileSrc[4 * j + 1] + fxLd;                     // fxT
            std::fill(tileAcc.begin() + 16 * j, tileAcc.begin() + 16 * (j + 1), 0.0f);
          } else {
            float fsh, fst;
            float* pj = P + j * 2 * d;
            const float *hx1 = base + hh * d, *hx2 = bump + tt * d, *tx1 = base + tt * d, *tx2 = bump + hh * d;
            if (l2) pair_fwd_avx2<true, true>(hx1, hx2, tx1, tx2, tbi, bh, bt, pj, d, &fsh, &fst);
            else pair_fwd_avx2<true, false>(hx1, hx2, tx1, tx2, tbi, bh, bt, pj, d, &fsh, &fst);
            nh[j] = l2 ? std::sqrt(static_cast<double>(fsh)) : fsh;
            nt[j] = l2 ? std::sqrt(static_cast<double>(fst)) : fst;
            score[j] = nh[j] + nt[j];
          }
        }
        if (i + 1 < i1)  // the next group's true rows (its fixed parts)
          for (const int32_t x : {h[i + 1], t[i + 1]}) {
            prefetch_row(base + x * d, d, false);
            prefetch_row(bump + x * d, d, false);
          }
        // Two candidates at a time through cands_fwd_tile_avx2 on the tile's whole blocks (the box
        // values from a stack copy, read once per block for both), one alone where its neighbour fell
        // back; the last tile's d mod 8 lanes then as pair_fwd_exp_tile_avx2's masked block.
        constexpr long kFwdTile = 128, kAhead = 3;
        alignas(32) float bxf[2 * 7 * kFwdTile];
        auto cf2 = l2 ? cands_fwd_tile_avx2<true, 2> : cands_fwd_tile_avx2<false, 2>;
        auto cf1 = l2 ? cands_fwd_tile_avx2<true, 1> : cands_fwd_tile_avx2<false, 1>;
        for (long k0 = 0; k0 < d; k0 += kFwdTile) {
          const long k1 = std::min(d, k0 + kFwdTile);
          const long k8 = k0 + ((k1 - k0) & ~7L);
          for (int sd = 0; sd < 2; ++sd) {
            const Box& b = sd == 0 ? bh : bt;
            const float* src[7] = {b.c, b.l, b.u, b.invw, b.w, b.kappa, b.dkappa};
            for (int q = 0; q < 7; ++q) std::memcpy(bxf + (7 * sd + q) * kFwdTile, src[q] + k0, sizeof(float) * (k8 - k0));
          }
          for (long j = 0; j < G; j += 2) {
            for (long ja = j + kAhead; ja < std::min(G, j + kAhead + 2); ++ja)
              if (tileSrc[4 * ja]) {
                prefetch_row(tileSrc[4 * ja] + k0, k1 - k0, false);
                prefetch_row(tileSrc[4 * ja + 2] + k0, k1 - k0, false);
              }
            if (j + 1 < G && tileSrc[4 * j] && tileSrc[4 * j + 4])
              cf2(tileSrc.data() + 4 * j, P + j * 2 * d, d, bxf, kFwdTile, k0, k8, tileAcc.data() + 16 * j);
            else
              for (long jj = j; jj < std::min(G, j + 2); ++jj)
                if (tileSrc[4 * jj]) cf1(tileSrc.data() + 4 * jj, P + jj * 2 * d, d, bxf, kFwdTile, k0, k8, tileAcc.data() + 16 * jj);
          }
          if (k8 < k1)
            for (long j = 0; j < G; ++j) {
              const float* const* sj = tileSrc.data() + 4 * j;
              if (!sj[0]) continue;
              if (l2) pair_fwd_exp_tile_avx2<true>(sj[0], sj[1], sj[2], sj[3], bh, bt, P + j * 2 * d, d, k8, k1, tileAcc.data() + 16 * j, tileAcc.data() + 16 * j + 8);
              else pair_fwd_exp_tile_avx2<false>(sj[0], sj[1], sj[2], sj[3], bh, bt, P + j * 2 * d, d, k8, k1, tileAcc.data() + 16 * j, tileAcc.data() + 16 * j + 8);
            }
        }
        for (long j = 0; j < G; ++j) {
          if (!tileSrc[4 * j]) continue;
          const double sh = hsum8_at(tileAcc.data() + 16 * j), st = hsum8_at(tileAcc.data() + 16 * j + 8);
          nh[j] = l2 ? std::sqrt(sh) : sh;
          nt[j] = l2 ? std::sqrt(st) : st;
          score[j] = nh[j] + nt[j];
        }
        tiledDone = true;
      }
#endif
      // the AVX-512 exp forward's candidate waiting for its partner (pair2_fwd_exp_avx512), -1: none
      long pendJ = -1;
      const float* pendSrc[4] = {nullptr, nullptr, nullptr, nullptr};
      const auto set_score = [&](long jj, double sh, double st) {
        nh[jj] = l2 ? std::sqrt(sh) : sh;
        nt[jj] = l2 ? std::sqrt(st) : st;
        score[jj] = nh[jj] + nt[jj];
      };
      const auto flush_pend = [&]() {
#ifdef BOXTE_X86
        float a0, a1;
        if (l2) pair_fwd_exp_avx512<true>(pendSrc[0], pendSrc[1], pendSrc[2], pendSrc[3], bh, bt, P + pendJ * 2 * pS, d, pS, &a0, &a1);
        else pair_fwd_exp_avx512<false>(pendSrc[0], pendSrc[1], pendSrc[2], pendSrc[3], bh, bt, P + pendJ * 2 * pS, d, pS, &a0, &a1);
        set_score(pendJ, a0, a1);
#else
        (void)pendSrc;  // (x86 only: pendJ stays -1 elsewhere)
#endif
        pendJ = -1;
      };
      for (long j = 0; j < G && !tiledDone; ++j) {
        // the rows of the entity four candidates ahead (random rows of large tables: hide the
        // latency), running on into the chunk's next group, whose true head and tail come with
        // its first negative
        const long q2 = i * n + j + 3;
        if (q2 < i1 * n) {
          const int32_t e = negEnt[q2];
          prefetch_row(candBase + e * candLd, d, false);
          prefetch_row(candBump + e * candLd, d, false);
          if (groupBwd) {  // the gradient rows the group's backward will update
            prefetch_row(gB + e * d, d, true);
            prefetch_row(gU + e * d, d, true);
          }
          if (q2 % n == 0) {
            for (const int32_t x : {h[q2 / n], t[q2 / n]}) {
              prefetch_row(base + x * d, d, false);
              prefetch_row(bump + x * d, d, false);
              if (expFwd) {
                prefetch_row(eBase + x * eLd, d, false);
                prefetch_row(eBump + x * eLd, d, false);
              }
              if (groupBwd) {
                prefetch_row(gB + x * d, d, true);
                prefetch_row(gU + x * d, d, true);
              }
            }
          }
        }
        int32_t hh = h[i], tt = t[i];
        bool tailCand = true;  // the candidate is the tail (the true fact counts as one)
        if (j > 0) {
          const long q = i * n + j - 1;
          if (negTail[q] == 1) tt = negEnt[q];
          else {
            hh = negEnt[q];
            tailCand = false;
          }
        }
        cand[2 * j] = hh;
        cand[2 * j + 1] = tt;
        float* pj = P + j * 2 * pS;
        double sh, st;
#ifdef BOXTE_X86
        if (grouped) {
          float fsh, fst;
          const float *hx1 = base + hh * d, *hx2 = bump + tt * d, *tx1 = base + tt * d, *tx2 = bump + hh * d;
          const int32_t ce = tailCand ? tt : hh;
          const bool viaExp = expFwd && fxOk[tailCand ? 0 : 1] && eOk[ce] && eOk[E + ce];
          if (pendJ >= 0 && !viaExp) flush_pend();  // (its partner is not on the exp path)
          if (isa == 1 && viaExp) {
            const float* f = fx + (tailCand ? 0 : 2 * fxLd);
            const float* ecH = tailCand ? eBump + ce * eLd : eBase + ce * eLd;
            const float* ecT = tailCand ? eBase + ce * eLd : eBump + ce * eLd;
            if (l2) pair_fwd_exp_avx2<true>(ecH, f, ecT, f + fxLd, bh, bt, pj, d, &fsh, &fst);
            else pair_fwd_exp_avx2<false>(ecH, f, ecT, f + fxLd, bh, bt, pj, d, &fsh, &fst);
          } else if (isa == 1) {
            if (useTanh && l2) pair_fwd_avx2<true, true>(hx1, hx2, tx1, tx2, tbi, bh, bt, pj, d, &fsh, &fst);
            else if (useTanh) pair_fwd_avx2<true, false>(hx1, hx2, tx1, tx2, tbi, bh, bt, pj, d, &fsh, &fst);
            else if (l2) pair_fwd_avx2<false, true>(hx1, hx2, tx1, tx2, tbi, bh, bt, pj, d, &fsh, &fst);
            else pair_fwd_avx2<false, false>(hx1, hx2, tx1, tx2, tbi, bh, bt, pj, d, &fsh, &fst);
          } else if (viaExp) {
            // head side: base[hh] + bump[tt] + tb; tail side: base[tt] + bump[hh] + tb
            const float* f = fx + (tailCand ? 0 : 2 * fxLd);
            const float* ecH = tailCand ? eBump + ce * eLd : eBase + ce * eLd;
            const float* ecT = tailCand ? eBase + ce * eLd : eBump + ce * eLd;
            // two candidates at a time (pair2_fwd_exp_avx512, same bits): the first of two waits
            // (pend) for the next; one left alone takes pair_fwd_exp_avx512
            const float* cur[4] = {ecH, f, ecT, f + fxLd};
            if (pendJ >= 0) {
              float o[4];
              if (l2) pair2_fwd_exp_avx512<true>(pendSrc, cur, bh, bt, P + pendJ * 2 * pS, pj, d, pS, o);
              else pair2_fwd_exp_avx512<false>(pendSrc, cur, bh, bt, P + pendJ * 2 * pS, pj, d, pS, o);
              set_score(pendJ, o[0], o[1]);
              pendJ = -1;
              fsh = o[2];
              fst = o[3];
            } else if (j + 1 < G) {
              std::copy(cur, cur + 4, pendSrc);
              pendJ = j;
              continue;
            } else if (l2) pair_fwd_exp_avx512<true>(ecH, f, ecT, f + fxLd, bh, bt, pj, d, pS, &fsh, &fst);
            else pair_fwd_exp_avx512<false>(ecH, f, ecT, f + fxLd, bh, bt, pj, d, pS, &fsh, &fst);
          } else if (useTanh && l2) pair_fwd_avx512<true, true>(hx1, hx2, tx1, tx2, tbi, bh, bt, pj, d, pS, &fsh, &fst);
          else if (useTanh) pair_fwd_avx512<true, false>(hx1, hx2, tx1, tx2, tbi, bh, bt, pj, d, pS, &fsh, &fst);
          else if (l2) pair_fwd_avx512<false, true>(hx1, hx2, tx1, tx2, tbi, bh, bt, pj, d, pS, &fsh, &fst);
          else pair_fwd_avx512<false, false>(hx1, hx2, tx1, tx2, tbi, bh, bt, pj, d, pS, &fsh, &fst);
          sh = fsh;
          st = fst;
        } else
#endif
        {
          sh = fwd(base + hh * d, bump + tt * d, tbi, bh, pj, d, useTanh, l2);
          st = fwd(base + tt * d, bump + hh * d, tbi, bt, pj + d, d, useTanh, l2);
        }
        set_score(j, sh, st);
      }
      if (pendJ >= 0) flush_pend();
      double mx = -INFINITY;
      for (long j = 0; j < G; ++j) mx = -score[j] > mx ? -score[j] : mx;
      // softmax: ex[j] = exp(-score[j] - max), probabilities ex[j] / sum
      double se = 0;
      for (long j = 0; j < G; ++j) se += (ex[j] = std::exp(-score[j] - mx));
      const double lse = mx + std::log(se);
      const double ise = 1.0 / se;
      loss += lse + score[0];
      // each candidate's gradient factor per side: g = -(softmax - [j == 0]) * gradScale, divided by
      // the side's distance for the L2 norm (0 where g is 0); every backward path below reads these
      for (long j = 0; j < G; ++j) {
        const double g = -(ex[j] * ise - (j == 0 ? 1.0 : 0.0)) * gradScale;
        fhs[j] = g == 0 ? 0.0f : static_cast<float>(l2 ? (nh[j] > 0 ? g / nh[j] : 0.0) : g);
        fts[j] = g == 0 ? 0.0f : static_cast<float>(l2 ? (nt[j] > 0 ? g / nt[j] : 0.0) : g);
      }
      // the rows of the true head and tail get most updates (every candidate shares one of them):
      // accumulate those in local buffers, scatter once per group
      std::fill(acc.begin(), acc.end(), 0.0f);
      float* aBaseH = acc.data();
      float* aBumpH = aBaseH + d;
      float* aBaseT = aBumpH + d;
      float* aBumpT = aBaseT + d;
      const int32_t h0 = h[i], t0 = t[i];
      // AVX2 (grouped or tiled backward): the destination rows of every candidate and side, chosen
      // before the loops over d (rowPtrs[4 j + 0..3]: the head side's self and other, the tail side's
      // self and other; the true head's / tail's rows go to the accumulators instead)
      const bool avx2Bwd = isa == 1 && (groupBwd || tiledBwd);
      if (avx2Bwd) {
        for (long j = 0; j < G; ++j) {
          const int32_t hh = cand[2 * j], tt = cand[2 * j + 1];
          rowPtrs[4 * j] = hh == h0 ? aBaseH : gB + hh * d;
          rowPtrs[4 * j + 1] = tt == t0 ? aBumpT : gU + tt * d;
          rowPtrs[4 * j + 2] = tt == t0 ? aBaseT : gB + tt * d;
          rowPtrs[4 * j + 3] = hh == h0 ? aBumpH : gU + hh * d;
          rowStamp[4 * j] = hh == h0 ? -1 : hh;
          rowStamp[4 * j + 1] = tt == t0 ? -1 : static_cast<int32_t>(E) + tt;
          rowStamp[4 * j + 2] = tt == t0 ? -1 : tt;
          rowStamp[4 * j + 3] = hh == h0 ? -1 : static_cast<int32_t>(E) + hh;
        }
        std::copy(rowPtrs.begin(), rowPtrs.end(), rowSrc.begin());
      }
      if (stamps && tiledBwd) {
        // Lazy zeroing without a pass of its own (the tiled AVX2 backward, d > 256; at d <= 256 the
        // same scheme was 2-6 % slower than the memsets below, which bring each row in just before
        // group_bwd_avx2 reads it, so there they stay): a stale row's first addition of the step
        // reads its old values from zrow (0 + x: the bits of the zeroed row plus x) and stamps it; the
        // destinations in the order of their additions (candidates in order, per candidate the head
        // side's self and other, then the tail side's; a side whose factor is 0 adds nothing), so
        // every later addition reads the row. The memset of each stale row (a pass over up to 2 x 152
        // rows per group, each brought into the cache once for the zeros and again for the additions:
        // at d=1000 a fifth of the kernel) is gone; the true rows are stamped where the accumulators
        // are added. A stale row named only by sides whose factor is 0 is zeroed as before.
        int32_t* st = stamps + chunk * 2 * E;
        for (long q = 0; q < 4 * G; ++q) {
          const int32_t x = rowStamp[q];
          if (x < 0 || ((q & 3) < 2 ? fhs[q >> 2] : fts[q >> 2]) == 0 || st[x] == step) continue;
          st[x] = step;
          rowSrc[q] = zrow.data();
        }
        for (long q = 0; q < 4 * G; ++q) {
          const int32_t x = rowStamp[q];
          if (x < 0 || st[x] == step) continue;
          st[x] = step;
          std::memset(rowPtrs[q], 0, sizeof(float) * d);
        }
      } else if (stamps) {
        // the rows this group's backward adds to: zero the stale ones (first addition of this step)
        int32_t* st = stamps + chunk * 2 * E;
        for (long j = 0; j < 2 * G; ++j) {
          const int32_t e = cand[j];
          if (st[e] != step) {
            st[e] = step;
            std::memset(gB + e * d, 0, sizeof(float) * d);
          }
          if (st[E + e] != step) {
            st[E + e] = step;
            std::memset(gU + e * d, 0, sizeof(float) * d);
          }
        }
      }
      if (groupBwd) {
#ifdef BOXTE_X86
        if (isa == 1) {
          auto gb = useTanh ? (l2 ? group_bwd_avx2<true, true> : group_bwd_avx2<true, false>)
                            : (l2 ? group_bwd_avx2<false, true> : group_bwd_avx2<false, false>);
          gb(G, d, P, bh, bt, fhs.data(), fts.data(), gC + bo, gW + bo, gC + R * d + bo, gW + R * d + bo, gTb + i * d,
             rowPtrs.data());
        } else {
          auto gb = useTanh ? (l2 ? group_bwd_avx512<true, true> : group_bwd_avx512<true, false>)
                            : (l2 ? group_bwd_avx512<false, true> : group_bwd_avx512<false, false>);
          gb(G, d, P, pS, bh, bt, fhs.data(), fts.data(), cand.data(), h[i], t[i], gC + bo, gW + bo, gC + R * d + bo,
             gW + R * d + bo, gTb + i * d, gB, gU);
        }
#endif
        if (isa != 1) continue;
      }
#ifdef BOXTE_X86
      if (tiledBwd) {
        // The per-candidate backward below in tiles of d: for each tile of kBwdTile dimensions, every
        // candidate and side in order (side_bwd_avx2 on the tile). Per candidate, the box, the
        // relation's gradients and the time bump's gradient were 52 KB of rows at d=1000 (more than
        // L1) streamed again for every candidate and side; a tile's share (14 KB at 128) stays in L1
        // across the candidates. Every element receives the same operations in the same order
        // (side_bwd_avx2's vector loop on whole 8-lane blocks, the last tile's d mod 8 lanes through
        // side_bwd_scalar as in the full call), so the bits are those of the per-candidate loop.
        // The candidates go two at a time through cands_bwd_tile_avx2 (the relation's and the time
        // bump's gradients in registers across them, the box values read once per block for both);
        // the last tile's d mod 8 lanes then take side_bwd_scalar per candidate and side, as
        // side_bwd_avx2 does them.
        constexpr long kBwdTile = 128;
        constexpr long kAhead = 3;
        constexpr int kNC = 2;
        using CandsFn = void (*)(long, long, long, long, const float*, const float*, long, const float*, const float*,
                                 float*, float*, float*, float*, float*, float* const*, const float* const*);
        const CandsFn cb2 = useTanh ? (l2 ? cands_bwd_tile_avx2<true, true, kNC> : cands_bwd_tile_avx2<true, false, kNC>)
                                    : (l2 ? cands_bwd_tile_avx2<false, true, kNC> : cands_bwd_tile_avx2<false, false, kNC>);
        const CandsFn cb1 = useTanh ? (l2 ? cands_bwd_tile_avx2<true, true, 1> : cands_bwd_tile_avx2<true, false, 1>)
                                    : (l2 ? cands_bwd_tile_avx2<false, true, 1> : cands_bwd_tile_avx2<false, false, 1>);
        float* gTbi = gTb + i * d;
        alignas(32) float bxt[2 * 7 * kBwdTile];
        for (long k0 = 0; k0 < d; k0 += kBwdTile) {
          const long len = std::min(kBwdTile, d - k0);
          const long k8 = k0 + (len & ~7L);
          for (int sd = 0; sd < 2; ++sd) {
            const Box& b = sd == 0 ? bh : bt;
            const float* src[7] = {b.c, b.l, b.u, b.invw, b.w, b.kappa, b.dkappa};
            for (int q = 0; q < 7; ++q) std::memcpy(bxt + (7 * sd + q) * kBwdTile, src[q] + k0, sizeof(float) * (k8 - k0));
          }
          long j = 0;
          for (; j < G; j += kNC) {
            for (long ja = j + kAhead; ja < std::min(G, j + kAhead + kNC); ++ja) {
              for (int q = 0; q < 4; ++q) prefetch_row(rowPtrs[4 * ja + q] + k0, len, true);
              prefetch_row(P + ja * 2 * d + k0, len, false);
              prefetch_row(P + ja * 2 * d + d + k0, len, false);
            }
            if (j + kNC <= G) cb2(j, k0, k8, d, P, bxt, kBwdTile, fhs.data(), fts.data(), gC + bo, gW + bo, gC + R * d + bo,
                                  gW + R * d + bo, gTbi, rowPtrs.data(), rowSrc.data());
            else
              for (long jj = j; jj < G; ++jj)
                cb1(jj, k0, k8, d, P, bxt, kBwdTile, fhs.data(), fts.data(), gC + bo, gW + bo, gC + R * d + bo, gW + R * d + bo,
                    gTbi, rowPtrs.data(), rowSrc.data());
          }
          if (k8 < k0 + len) {
            const Box bhk{bh.l + k8, bh.u + k8, bh.c + k8, bh.w + k8, bh.invw + k8, bh.kappa + k8, bh.dkappa + k8};
            const Box btk{bt.l + k8, bt.u + k8, bt.c + k8, bt.w + k8, bt.invw + k8, bt.kappa + k8, bt.dkappa + k8};
            const long m = k0 + len - k8;
            for (long jj = 0; jj < G; ++jj) {
              const float* pj = P + jj * 2 * d + k8;
              if (fhs[jj] != 0)
                side_bwd_src_scalar(pj, bhk, fhs[jj], m, useTanh, l2, gC + bo + k8, gW + bo + k8, rowPtrs[4 * jj] + k8,
                                    rowPtrs[4 * jj + 1] + k8, gTbi + k8, rowSrc[4 * jj] + k8, rowSrc[4 * jj + 1] + k8);
              if (fts[jj] != 0)
                side_bwd_src_scalar(pj + d, btk, fts[jj], m, useTanh, l2, gC + R * d + bo + k8, gW + R * d + bo + k8,
                                    rowPtrs[4 * jj + 2] + k8, rowPtrs[4 * jj + 3] + k8, gTbi + k8, rowSrc[4 * jj + 2] + k8,
                                    rowSrc[4 * jj + 3] + k8);
            }
          }
        }
      }
#endif
      for (long j = 0; j < G && !avx2Bwd; ++j) {
        if (j + 2 < G) {
          const int32_t e = negEnt[i * n + j + 1];
          prefetch_row(gB + e * d, d, true);
          prefetch_row(gU + e * d, d, true);
        }
        const float fh = fhs[j], ft = fts[j];
        if (fh == 0 && ft == 0) continue;
        const int32_t hh = cand[2 * j], tt = cand[2 * j + 1];
        const float* pj = P + j * 2 * d;
        float* baseH = hh == h0 ? aBaseH : gB + hh * d;
        float* bumpH = hh == h0 ? aBumpH : gU + hh * d;
        float* baseT = tt == t0 ? aBaseT : gB + tt * d;
        float* bumpT = tt == t0 ? aBumpT : gU + tt * d;
        if (fh != 0) bwd(pj, bh, fh, d, useTanh, l2, gC + bo, gW + bo, baseH, bumpT, gTb + i * d);
        if (ft != 0) bwd(pj + d, bt, ft, d, useTanh, l2, gC + R * d + bo, gW + R * d + bo, baseT, bumpH, gTb + i * d);
      }
#ifdef BOXTE_X86
      if (avx2Bwd) {
        // the accumulators into the true rows (base of the head, bump of the head, base of the tail,
        // bump of the tail), one after the other: the same additions per element in the same order as
        // the per-candidate loop, also where the true head is the true tail; a stale true row (lazy
        // zeroing) reads zrow and is stamped
        float* trueRows[4] = {gB + h0 * d, gU + h0 * d, gB + t0 * d, gU + t0 * d};
        const int32_t trueStamp[4] = {h0, static_cast<int32_t>(E) + h0, t0, static_cast<int32_t>(E) + t0};
        for (int q = 0; q < 4; ++q) {
          const float* src = trueRows[q];
          if (stamps) {
            int32_t* st = stamps + chunk * 2 * E;
            if (st[trueStamp[q]] != step) {
              st[trueStamp[q]] = step;
              src = zrow.data();
            }
          }
          add_row_avx2(trueRows[q], src, acc.data() + q * d, d);
        }
        continue;
      }
#endif
      for (long k = 0; k < d; ++k) {
        gB[h0 * d + k] += aBaseH[k];
        gU[h0 * d + k] += aBumpH[k];
        gB[t0 * d + k] += aBaseT[k];
        gU[t0 * d + k] += aBumpT[k];
      }
    }
    chunkLoss[chunk] = loss;
  };
  if (nth == 1) task(0, 0);
  else parallel_tasks(nth, nth, task);
  // the armed updates (boxteAdamRowsArm) on the worker(s) while this thread adds up the chunks'
  // relation gradients (with slots, the entity gradients are complete here; without, after the sums)
  const auto startArmed = [&]() {
    if (!armed.L) return;
    if (expUse.owns_lock()) expUse.unlock();  // (the kernel is done with the table; the updates may write it)
    adam_armed_start(env, armed.L);
    armed.L = nullptr;
  };
  if (slots || nth == 1) startArmed();
  double loss = chunkLoss[0];
  for (int ch = 1; ch < nth; ++ch) {
    loss += chunkLoss[ch];
    if (slots) {
      // the relation rows chunk ch used (both sides), in element order as the full loops below
      const float* s = relScratch[ch - 1].data();
      const uint8_t* used = relUsed[ch - 1].data();
      for (long side = 0; side < 2; ++side)
        for (long rr = 0; rr < R; ++rr)
          if (used[rr])
            for (long k = side * R * d + rr * d, e = k + d; k < e; ++k) gc[k] += s[k];
      for (long side = 0; side < 2; ++side)
        for (long rr = 0; rr < R; ++rr)
          if (used[rr])
            for (long k = side * R * d + rr * d, e = k + d; k < e; ++k) gw[k] += s[RD + k];
      continue;
    }
    const float* s = scratch[ch - 1].data();
    for (long i = 0; i < E * d; ++i) gBase[i] += s[i];
    for (long i = 0; i < E * d; ++i) gBump[i] += s[E * d + i];
    s += 2 * E * d;
    for (long i = 0; i < RD; ++i) gc[i] += s[i];
    for (long i = 0; i < RD; ++i) gw[i] += s[RD + i];
  }
  startArmed();
  napi_value res;
  napi_create_double(env, loss, &res);
  return res;
}


// ---- negative sampling ----------------------------------------------------------------------------
// Twin of negativesJs (src/models/boxte/kernel.ts): row i draws from its own splitmix32 stream
// seeded by (seed, i), so rows are independent tasks and the result does not depend on the
// thread count. Per negative: side = top bit of one draw (1 = tail replaced), entity = uniform
// in [0, E) by rejection (as Rng.int), redrawn (at most 1000 times) while the corrupted quadruple
// is in the open-addressing key table (Float64Array, -1 = empty, linear probing, mask = size-1).
inline uint32_t sm32_next(uint32_t& x) {
  x += 0x9e3779b9u;
  uint32_t z = x;
  z = (z ^ (z >> 16)) * 0x21f0aaadu;
  z = (z ^ (z >> 15)) * 0x735a2d97u;
  return z ^ (z >> 15);
}
inline uint32_t sm32_int(uint32_t& x, uint32_t n) {
  const uint64_t limit = 4294967296ull - (4294967296ull % n);
  for (;;) {
    const uint32_t v = sm32_next(x);
    if (v < limit) return v % n;
  }
}
// sm32_int for a fixed n without divisions: the rejection limit computed once, and v % n as Lemire's
// exact fastmod (M = floor((2^64 - 1) / n) + 1; v % n = ((M v mod 2^64) n) >> 64 for every 32-bit v
// and n >= 1: D. Lemire, O. Kaser, N. Kurz, "Faster remainder by direct computation", 2019), so the
// same values as sm32_int (the negatives' two divisions per draw were most of their time)
struct Sm32Range {
  uint32_t n;
  uint64_t limit, M;
  explicit Sm32Range(uint32_t nn) : n(nn), limit(4294967296ull - (4294967296ull % nn)), M(UINT64_C(0xFFFFFFFFFFFFFFFF) / nn + 1) {}
  uint32_t mod(uint32_t v) const {
    const uint64_t low = M * v;
    return static_cast<uint32_t>((static_cast<unsigned __int128>(low) * n) >> 64);
  }
  uint32_t draw(uint32_t& x) const {
    for (;;) {
      const uint32_t v = sm32_next(x);
      if (v < limit) return mod(v);
    }
  }
};
inline uint32_t key_hash(uint64_t k) {
  // the key is an integer < 2^53: mix its two 32-bit halves (same as keyHash in kernel.ts)
  uint32_t h = static_cast<uint32_t>(k) ^ (static_cast<uint32_t>(k >> 32) * 0x85ebca6bu);
  h = (h ^ (h >> 16)) * 0x7feb352du;
  h = (h ^ (h >> 15)) * 0x846ca68bu;
  return h ^ (h >> 16);
}
// filter (optional): the key table's bit set of the keys' hashes (KeyTable.filter, fmask = its bit
// count - 1): a clear bit proves the key absent without a probe of the table.
inline bool key_has(const double* table, uint32_t mask, const uint32_t* filter, uint32_t fmask, uint64_t k) {
  const uint32_t hash = key_hash(k);
  if (filter) {
    const uint32_t bit = hash & fmask;
    if (((filter[bit >> 5] >> (bit & 31)) & 1u) == 0) return false;
  }
  const double key = static_cast<double>(k);  // exact below 2^53
  for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
    const double v = table[i];
    if (v == key) return true;
    if (v < 0) return false;
  }
}

// boxteNegatives(seed, E, nT, h, r, t, tau, n, table, mask, outEnt, outTail[, filter])
napi_value Negatives(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteNegatives");
  const long seed = integer(a, 0, "seed", 0), E = integer(a, 1, "E", 1), nT = integer(a, 2, "nT", 1);
  const long B = a.ok ? [&]() -> long {
    napi_typedarray_type tp;
    size_t len = 0;
    if (napi_get_typedarray_info(env, a.v[3], &tp, &len, nullptr, nullptr, nullptr) != napi_ok) return 0;
    return static_cast<long>(len);
  }() : 0;
  const int32_t* h = arr<int32_t>(a, 3, "h", napi_int32_array, B);
  const int32_t* r = arr<int32_t>(a, 4, "r", napi_int32_array, B);
  const int32_t* t = arr<int32_t>(a, 5, "t", napi_int32_array, B);
  const int32_t* tau = arr<int32_t>(a, 6, "tau", napi_int32_array, B);
  const long n = integer(a, 7, "n", 0);
  const long mask = integer(a, 9, "mask", 0);
  const double* table = arr<double>(a, 8, "table", napi_float64_array, mask + 1);
  int32_t* outEnt = arr<int32_t>(a, 10, "outEnt", napi_int32_array, B * n);
  uint8_t* outTail = arr<uint8_t>(a, 11, "outTail", napi_uint8_array, B * n);
  if (!a.ok || seed > 0xffffffffL || ((mask + 1) & mask) != 0) {
    if (a.ok) fail(a, "is out of range", "seed/mask");
    return nullptr;
  }
  const uint32_t* filter = nullptr;
  uint32_t fmask = 0;
  if (a.n > 12 && !absent(a, 12)) {
    size_t words = 0;
    napi_typedarray_type tp0;
    if (napi_get_typedarray_info(env, a.v[12], &tp0, &words, nullptr, nullptr, nullptr) != napi_ok) words = 0;
    filter = arr<uint32_t>(a, 12, "filter", napi_uint32_array, 1);
    if (!a.ok) return nullptr;
    if ((words & (words - 1)) != 0 || words > (1u << 26)) {
      fail(a, "length is not a power of two", "filter");
      return nullptr;
    }
    fmask = static_cast<uint32_t>(words * 32 - 1);
  }
  const auto uE64 = [](long v) { return static_cast<uint64_t>(v); };
  const long CH = 16;
  // The filter's probes land at random words: with the filter out of cache (the training step's
  // tables evict it) each waited for memory, most of this kernel's time. Each thread first reads the
  // whole filter in order (256 KB on ICEWS14: streamed, a few microseconds) so that its probes hit
  // its L2; a read, no result changes. Filters beyond 256 KB (half of a Zen 3 L2) are left to the probes.
  const long fwords = filter ? static_cast<long>(fmask / 32 + 1) : 0;
  std::vector<uint8_t> warmed(static_cast<size_t>(pool_threads()), 0);
  const Sm32Range range(static_cast<uint32_t>(E));
  auto task = [&](long c, int tid) {
    if (filter && fwords <= (1L << 16) && !warmed[tid]) {
      warmed[tid] = 1;
      uint32_t any = 0;
      for (long w = 0; w < fwords; w += 16) any |= filter[w];
      asm volatile("" : : "r"(any));
    }
    for (long i = c * CH; i < (c + 1) * CH && i < B; ++i) {
      uint32_t x = static_cast<uint32_t>(seed) ^ (static_cast<uint32_t>(i + 1) * 0x9e3779b9u);
      // keys in integers (every key and partial sum is an integer below 2^53: the same values as the
      // double arithmetic of the TypeScript twin); the side picks the operands, not a branch
      const uint64_t g = (static_cast<uint64_t>(r[i]) * uE64(nT) + static_cast<uint64_t>(tau[i])) * uE64(E);
      const uint64_t hi = static_cast<uint64_t>(h[i]), ti = static_cast<uint64_t>(t[i]);
      for (long j = 0; j < n; ++j) {
        const uint32_t side = sm32_next(x) >> 31;
        uint32_t e = range.draw(x);
        for (int tries = 0; tries < 1000; ++tries) {
          const uint64_t a1 = side ? hi : e, a2 = side ? e : ti;
          if (!key_has(table, static_cast<uint32_t>(mask), filter, fmask, (g + a1) * uE64(E) + a2)) break;
          e = range.draw(x);
        }
        outEnt[i * n + j] = static_cast<int32_t>(e);
        outTail[i * n + j] = static_cast<uint8_t>(side);
      }
    }
  };
  parallel_tasks((B + CH - 1) / CH, 0, task);
  return napi::undef(env);
}

// ---- dense Adam of the entity tables with the gradient spread over slots ---------------------------
// g = g0 + slot[0] + slot[1] + ... (in that order), then the update of adamw_impl with weight decay 0
// (m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2, p -= lr (m / bc1) / (sqrt(v / bc2) + eps)); every
// gradient buffer is zeroed for the next step. Threads take contiguous ranges (elementwise, so
// the result does not depend on the thread count).
template <bool FMA>
inline void adam_rows_range(float* p, float* g0, float* slots, long nslots, long stride, float* m, float* v, long i0,
                            long i1, float lr, float b1, float b2, float eps, float ibc1, float ibc2) {
  const float b1c = 1.0f - b1, b2c = 1.0f - b2;
  for (long i = i0; i < i1; ++i) {
    float g = g0[i];
    g0[i] = 0.0f;
    for (long s2 = 0; s2 < nslots; ++s2) {
      g += slots[s2 * stride + i];
      slots[s2 * stride + i] = 0.0f;
    }
    const float mo = FMA ? __builtin_fmaf(b1, m[i], b1c * g) : b1 * m[i] + b1c * g;
    const float vo = FMA ? __builtin_fmaf(b2, v[i], b2c * (g * g)) : b2 * v[i] + b2c * (g * g);
    m[i] = mo;
    v[i] = vo;
    p[i] = p[i] - lr * ((mo * ibc1) / (std::sqrt(vo * ibc2) + eps));
  }
}
#ifdef BOXTE_X86
// The vector paths run the same operations in the same order as adam_rows_range<true> (sqrt and
// division are correctly rounded in both), with one difference: GCC contracts p - lr * step into
// one vfnmadd (x86 builds keep its default -ffp-contract=fast), in the vector loop and in the
// inlined scalar tail alike (objdump of boxte.o), while adam_rows_range<true> compiled for the
// portable path rounds the product and the difference apart. So a path gives the same bits for
// any thread count and split, but the AVX2 / AVX-512 parameters are not those of the generic path
// (one reason boxte_epoch_check's generic SHA-1 differs from the AVX2 one).
AVX512_FN void adam_rows_avx512(
    float* p, float* g0, float* slots, long nslots, long stride, float* m, float* v, long i0, long i1, float lr, float b1,
    float b2, float eps, float ibc1, float ibc2) {
  const __m512 vb1 = _mm512_set1_ps(b1), vb2 = _mm512_set1_ps(b2), vb1c = _mm512_set1_ps(1.0f - b1),
               vb2c = _mm512_set1_ps(1.0f - b2), vlr = _mm512_set1_ps(lr), veps = _mm512_set1_ps(eps),
               vi1 = _mm512_set1_ps(ibc1), vi2 = _mm512_set1_ps(ibc2), zero = _mm512_setzero_ps();
  for (long i = i0; i < i1; i += 16) {
    const __mmask16 k = i1 - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (i1 - i)) - 1);
    __m512 g = _mm512_maskz_loadu_ps(k, g0 + i);
    _mm512_mask_storeu_ps(g0 + i, k, zero);
    for (long s2 = 0; s2 < nslots; ++s2) {
      g = _mm512_add_ps(g, _mm512_maskz_loadu_ps(k, slots + s2 * stride + i));
      _mm512_mask_storeu_ps(slots + s2 * stride + i, k, zero);
    }
    const __m512 mo = _mm512_fmadd_ps(vb1, _mm512_maskz_loadu_ps(k, m + i), _mm512_mul_ps(vb1c, g));
    const __m512 vo = _mm512_fmadd_ps(vb2, _mm512_maskz_loadu_ps(k, v + i), _mm512_mul_ps(vb2c, _mm512_mul_ps(g, g)));
    _mm512_mask_storeu_ps(m + i, k, mo);
    _mm512_mask_storeu_ps(v + i, k, vo);
    const __m512 den = _mm512_add_ps(_mm512_sqrt_ps(_mm512_mul_ps(vo, vi2)), veps);
    const __m512 step = _mm512_mul_ps(vlr, _mm512_div_ps(_mm512_mul_ps(mo, vi1), den));
    _mm512_mask_storeu_ps(p + i, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, p + i), step));
  }
}
// Zeroes the 8 floats at q, whose value x was just loaded, unless they already are all zero bits
// (gradient rows no candidate touched this step): such a line stays clean (no write-back).
__attribute__((target("avx2"))) inline void clear_block_avx2(float* q, __m256 x) {
  const __m256i b = _mm256_castps_si256(x);
  if (!_mm256_testz_si256(b, b)) _mm256_storeu_ps(q, _mm256_setzero_ps());
}
__attribute__((target("avx2,fma"))) void adam_rows_avx2(float* p, float* g0, float* slots, long nslots, long stride,
                                                         float* m, float* v, long i0, long i1, float lr, float b1,
                                                         float b2, float eps, float ibc1, float ibc2) {
  const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2), vb1c = _mm256_set1_ps(1.0f - b1),
               vb2c = _mm256_set1_ps(1.0f - b2), vlr = _mm256_set1_ps(lr), veps = _mm256_set1_ps(eps),
               vi1 = _mm256_set1_ps(ibc1), vi2 = _mm256_set1_ps(ibc2);
  long i = i0;
  for (; i + 8 <= i1; i += 8) {
    __m256 g = _mm256_loadu_ps(g0 + i);
    clear_block_avx2(g0 + i, g);
    for (long s2 = 0; s2 < nslots; ++s2) {
      const __m256 x = _mm256_loadu_ps(slots + s2 * stride + i);
      g = _mm256_add_ps(g, x);
      clear_block_avx2(slots + s2 * stride + i, x);
    }
    const __m256 mo = _mm256_fmadd_ps(vb1, _mm256_loadu_ps(m + i), _mm256_mul_ps(vb1c, g));
    const __m256 vo = _mm256_fmadd_ps(vb2, _mm256_loadu_ps(v + i), _mm256_mul_ps(vb2c, _mm256_mul_ps(g, g)));
    _mm256_storeu_ps(m + i, mo);
    _mm256_storeu_ps(v + i, vo);
    const __m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vo, vi2)), veps);
    const __m256 step = _mm256_mul_ps(vlr, _mm256_div_ps(_mm256_mul_ps(mo, vi1), den));
    _mm256_storeu_ps(p + i, _mm256_sub_ps(_mm256_loadu_ps(p + i), step));
  }
  adam_rows_range<true>(p, g0, slots, nslots, stride, m, v, i, i1, lr, b1, b2, eps, ibc1, ibc2);
}
#endif

// adam_rows_range's update for the rows r0..r1-1 of a [rows, d] table whose gradient is read from
// the rows of g0 and of each slot that carry this step's stamp (boxteTrainGroups' lazy zeroing: a
// row without it counts as 0 and is not read); nothing is zeroed. The gradient sum g0 + slot[0] +
// ... and the update are adam_rows_range's operations in the same order (an unstamped row adds the
// 0 the zeroed buffer held), so the bits are those of the zeroing path. src: scratch of 1 + nslots.
struct AdamStamps {
  const int32_t* st;  // stamps of g0's table ([chunk][2][E] layout, this table's offset applied)
  long chunkStride;   // 2 E
  int32_t step;
  long d;
  const float* zero;  // d zeros
};
template <bool FMA>
void adam_rows_touched_scalar(float* p, const float* g0, const float* slots, long nslots, long stride, float* m, float* v,
                              long r0, long r1, const AdamStamps& S, const float** src, float lr, float b1, float b2,
                              float eps, float ibc1, float ibc2) {
  const float b1c = 1.0f - b1, b2c = 1.0f - b2;
  const long d = S.d;
  for (long r = r0; r < r1; ++r) {
    src[0] = S.st[r] == S.step ? g0 + r * d : S.zero;
    for (long s2 = 0; s2 < nslots; ++s2) src[1 + s2] = S.st[(s2 + 1) * S.chunkStride + r] == S.step ? slots + s2 * stride + r * d : S.zero;
    for (long k = 0; k < d; ++k) {
      const long i = r * d + k;
      float g = src[0][k];
      for (long s2 = 0; s2 < nslots; ++s2) g += src[1 + s2][k];
      const float mo = FMA ? __builtin_fmaf(b1, m[i], b1c * g) : b1 * m[i] + b1c * g;
      const float vo = FMA ? __builtin_fmaf(b2, v[i], b2c * (g * g)) : b2 * v[i] + b2c * (g * g);
      m[i] = mo;
      v[i] = vo;
      p[i] = p[i] - lr * ((mo * ibc1) / (std::sqrt(vo * ibc2) + eps));
    }
  }
}
#ifdef BOXTE_X86
// adam_rows_touched_scalar<true> in AVX2 (the operations of adam_rows_avx2; the row's last d mod 8
// elements as one masked vector, lane by lane the same operations)
__attribute__((target("avx2,fma"))) void adam_rows_touched_avx2(float* p, const float* g0, const float* slots, long nslots,
                                                                 long stride, float* m, float* v, long r0, long r1,
                                                                 const AdamStamps& S, const float** src, float lr,
                                                                 float b1, float b2, float eps, float ibc1, float ibc2) {
  const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2), vb1c = _mm256_set1_ps(1.0f - b1),
               vb2c = _mm256_set1_ps(1.0f - b2), vlr = _mm256_set1_ps(lr), veps = _mm256_set1_ps(eps),
               vi1 = _mm256_set1_ps(ibc1), vi2 = _mm256_set1_ps(ibc2);
  const long d = S.d;
  const __m256i mk = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(d % 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  auto upd = [&](long i, __m256 g, bool masked) __attribute__((target("avx2,fma"))) {
    const __m256 m0 = masked ? _mm256_maskload_ps(m + i, mk) : _mm256_loadu_ps(m + i);
    const __m256 v0 = masked ? _mm256_maskload_ps(v + i, mk) : _mm256_loadu_ps(v + i);
    const __m256 p0 = masked ? _mm256_maskload_ps(p + i, mk) : _mm256_loadu_ps(p + i);
    const __m256 mo = _mm256_fmadd_ps(vb1, m0, _mm256_mul_ps(vb1c, g));
    const __m256 vo = _mm256_fmadd_ps(vb2, v0, _mm256_mul_ps(vb2c, _mm256_mul_ps(g, g)));
    const __m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vo, vi2)), veps);
    const __m256 pn = _mm256_sub_ps(p0, _mm256_mul_ps(vlr, _mm256_div_ps(_mm256_mul_ps(mo, vi1), den)));
    if (masked) {
      _mm256_maskstore_ps(m + i, mk, mo);
      _mm256_maskstore_ps(v + i, mk, vo);
      _mm256_maskstore_ps(p + i, mk, pn);
    } else {
      _mm256_storeu_ps(m + i, mo);
      _mm256_storeu_ps(v + i, vo);
      _mm256_storeu_ps(p + i, pn);
    }
  };
  for (long r = r0; r < r1; ++r) {
    src[0] = S.st[r] == S.step ? g0 + r * d : S.zero;
    for (long s2 = 0; s2 < nslots; ++s2) src[1 + s2] = S.st[(s2 + 1) * S.chunkStride + r] == S.step ? slots + s2 * stride + r * d : S.zero;
    long k = 0;
    for (; k + 8 <= d; k += 8) {
      __m256 g = _mm256_loadu_ps(src[0] + k);
      for (long s2 = 0; s2 < nslots; ++s2) g = _mm256_add_ps(g, _mm256_loadu_ps(src[1 + s2] + k));
      upd(r * d + k, g, false);
    }
    if (k < d) {
      __m256 g = _mm256_maskload_ps(src[0] + k, mk);
      for (long s2 = 0; s2 < nslots; ++s2) g = _mm256_add_ps(g, _mm256_maskload_ps(src[1 + s2] + k, mk));
      upd(r * d + k, g, true);
    }
  }
}
#endif

// One boxteAdamRows call's work as tasks: chunks of CH values (adam_rows_*), or with stamps chunks of
// RCH rows (adam_rows_touched_*). Elementwise: which thread runs which task does not matter.
struct AdamJob {
  float *p = nullptr, *g0 = nullptr, *sl = nullptr, *m = nullptr, *v = nullptr;
  long n = 0, nslots = 0, stride = 0;
  float lr = 0, b1 = 0, b2 = 0, eps = 0, ibc1 = 0, ibc2 = 0;
  const int32_t* st = nullptr;  // stamps (this table's offset applied), or null: the zeroing path
  int32_t step = 0;
  long d = 1, E = 0, rch = 1, ntasks = 0;
  std::vector<float> zero;  // d zeros (stamps)
  int isa = 0;
  const int32_t* st0 = nullptr;  // all the stamps ([nslots + 1, 2, E]; null without)
  // the byte ranges this job reads or writes, appended to out
  void spans(std::vector<std::pair<const char*, const char*>>& out) const {
    const auto add = [&](const void* q, long bytes) {
      if (q) out.emplace_back(static_cast<const char*>(q), static_cast<const char*>(q) + bytes);
    };
    const long f = static_cast<long>(sizeof(float));
    for (const float* q : {p, g0, m, v}) add(q, n * f);
    if (sl && nslots > 0) add(sl, ((nslots - 1) * stride + n) * f);
    if (st0) add(st0, (nslots + 1) * 2 * E * static_cast<long>(sizeof(int32_t)));
  }
  void run(long c) const {
    if (st) {
      const long r0 = c * rch, r1 = std::min(E, r0 + rch);
      const AdamStamps S{st, 2 * E, step, d, zero.data()};
      const float* srcBuf[8];
      std::vector<const float*> srcVec(nslots + 1 > 8 ? nslots + 1 : 0);
      const float** src = nslots + 1 > 8 ? srcVec.data() : srcBuf;
#ifdef BOXTE_X86
      if (isa >= 1) return adam_rows_touched_avx2(p, g0, sl, nslots, stride, m, v, r0, r1, S, src, lr, b1, b2, eps, ibc1, ibc2);
#endif
      return adam_rows_touched_scalar<false>(p, g0, sl, nslots, stride, m, v, r0, r1, S, src, lr, b1, b2, eps, ibc1, ibc2);
    }
    const long CH = 16384, i0 = c * CH, i1 = i0 + CH < n ? i0 + CH : n;
#ifdef BOXTE_X86
    if (isa == 2) return adam_rows_avx512(p, g0, sl, nslots, stride, m, v, i0, i1, lr, b1, b2, eps, ibc1, ibc2);
    if (isa == 1) return adam_rows_avx2(p, g0, sl, nslots, stride, m, v, i0, i1, lr, b1, b2, eps, ibc1, ibc2);
#endif
    adam_rows_range<false>(p, g0, sl, nslots, stride, m, v, i0, i1, lr, b1, b2, eps, ibc1, ibc2);
  }
};

// The 13 (or with stamps 17) arguments of one boxteAdamRows call from a.v[o]: see AdamRows.
bool parse_adam(Args& a, size_t o, AdamJob& j) {
  napi_typedarray_type tp;
  size_t len = 0;
  if (o >= a.n || napi_get_typedarray_info(a.env, a.v[o], &tp, &len, nullptr, nullptr, nullptr) != napi_ok) len = 0;
  const long n = static_cast<long>(len);
  j.n = n;
  j.p = arr<float>(a, o + 0, "p", napi_float32_array, n);
  j.g0 = arr<float>(a, o + 1, "g0", napi_float32_array, n);
  j.nslots = integer(a, o + 3, "nslots", 0);
  const long off = integer(a, o + 4, "slotOffset", 0);
  float* slots = j.nslots > 0 ? arr<float>(a, o + 2, "slots", napi_float32_array, j.nslots * 2 * n) : nullptr;
  j.m = arr<float>(a, o + 5, "m", napi_float32_array, n);
  j.v = arr<float>(a, o + 6, "v", napi_float32_array, n);
  j.lr = static_cast<float>(number(a, o + 7, "lr"));
  j.b1 = static_cast<float>(number(a, o + 8, "b1"));
  j.b2 = static_cast<float>(number(a, o + 9, "b2"));
  j.eps = static_cast<float>(number(a, o + 10, "eps"));
  const float bc1 = static_cast<float>(number(a, o + 11, "bc1")), bc2 = static_cast<float>(number(a, o + 12, "bc2"));
  if (!a.ok) return false;
  if (off + n > 2 * n) {
    fail(a, "is out of range", "slotOffset");
    return false;
  }
  for (const float* tbl : {static_cast<const float*>(j.p), static_cast<const float*>(j.g0), static_cast<const float*>(j.m), static_cast<const float*>(j.v)})
    advise_huge(tbl, n * static_cast<long>(sizeof(float)));
  j.sl = slots ? slots + off : nullptr;
  j.stride = 2 * n;
  j.ibc1 = 1.0f / bc1;
  j.ibc2 = 1.0f / bc2;
  j.isa = boxte_isa();
  j.st = nullptr;
  const long CH = 16384;
  j.ntasks = (n + CH - 1) / CH;
  if (a.n > o + 13) {
    napi_valuetype vt;
    napi_typeof(a.env, a.v[o + 13], &vt);
    if (vt != napi_undefined && vt != napi_null) {
      j.step = static_cast<int32_t>(integer(a, o + 14, "step", 1));
      j.d = integer(a, o + 15, "d", 1);
      const long table = integer(a, o + 16, "table", 0);
      if (!a.ok) return false;
      if (n % j.d != 0 || table > 1) {
        fail(a, "does not fit (n must be a multiple of d, table 0 or 1)", "d");
        return false;
      }
      j.E = n / j.d;
      const int32_t* st = arr<int32_t>(a, o + 13, "stamps", napi_int32_array, (j.nslots + 1) * 2 * j.E);
      if (!a.ok) return false;
      j.st = st + table * j.E;
      j.st0 = st;
      j.zero.assign(j.d, 0.0f);
      j.rch = std::max(1L, CH / j.d);
      j.ntasks = (j.E + j.rch - 1) / j.rch;
    }
  }
  return true;
}

// boxteAdamRows(p, g0, slots|null, nslots, slotOffset, m, v, lr, b1, b2, eps, bc1, bc2 [, stamps, step, d, table]):
// slot s of this parameter starts at slots[s * 2 * n + slotOffset] (the [2, E, d] slot layout: base
// then bump). With stamps (boxteTrainGroups' [nslots + 1, 2, E], this parameter = table 0 (base) or
// 1 (bump), rows of d): only the rows stamped with step are read (adam_rows_touched_*), nothing is
// zeroed.
// A background job (boxteAdamRowsStart / boxteExpTableStart) that uses none of this call's arrays keeps
// running: the update then runs on the calling thread (the pool is held; elementwise, same bits).
napi_value AdamRows(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteAdamRows");
  AdamJob j;
  const bool parsed = parse_adam(a, 0, j);
  std::vector<std::pair<const char*, const char*>> spans;
  if (parsed) j.spans(spans);
  if (!parsed || adam_bg_overlaps(spans)) adam_bg_finish(env);
  if (!parsed) return nullptr;
  {
    std::lock_guard<std::mutex> use(g_expUseMu);
    g_expPre.invalidate_if(j.p, j.n);  // (the table of these rows)
  }
  auto task = [&](long c, int) { j.run(c); };
  parallel_tasks(j.ntasks, 0, task);
  return napi::undef(env);
}

// The pool's background job (pool_start), one at a time: the entity Adam of boxteAdamRowsStart or the
// exp table of boxteExpTableStart; every boxte call that reads or writes entity tables finishes it.
// boxteAdamRowsStart(count, ...the arguments of count boxteAdamRows calls, 17 each (stamps etc. null
// or undefined where not used)): the same updates in the background: the pool's workers take the
// jobs' tasks and the call returns at once; boxteAdamRowsWait() then runs the tasks left on the
// calling thread and waits for the rest. Meanwhile the pool is held, so the other kernels the
// caller runs take one thread (same results: every boxte kernel is independent of the thread
// count except boxteTrainGroups, which finishes the background job first, as do the other calls
// that read entity tables). The arrays are referenced until the wait; the caller must not use
// them meanwhile. With one thread (or the pool busy) the updates run before the call returns.
// A trailing expD (boxteAdamRowsStart(2, ...base's 17, ...bump's 17, expD), both with stamps and rows of
// expD): each task also computes the exponentials of the rows it updated, so the job leaves the table
// of boxteExpTableStart for the updated base / bump (AVX2 / AVX-512; elsewhere, or where the arguments
// do not fit, expD is ignored); the next boxteExpTableStart on these tables takes it instead of
// starting its own job (the caller must not change base or bump in between).
struct AdamBg {
  std::vector<AdamJob> jobs;
  std::vector<long> first;  // first task of each job, then the total
  std::vector<napi_ref> refs;
  napi_env env = nullptr;
  bool open = false;
  // the byte ranges the open job reads or writes (a boxteAdamRows on other arrays need not finish it)
  std::vector<std::pair<const char*, const char*>> spans;
  // expD given (see AdamRowsStart): task t of job q (0 base, 1 bump) also writes the exponentials of
  // the rows it updated into g_expPre's table (eTab / eOk, its isa)
  float* eTab = nullptr;
  uint8_t* eOk = nullptr;
  int eIsa = 0;
};
AdamBg g_adamBg;
std::mutex g_adamBgMu;

void adam_bg_task(void* ctx, long t, int) {
  const AdamBg& bg = *static_cast<const AdamBg*>(ctx);
  size_t q = 0;
  while (t >= bg.first[q + 1]) ++q;
  const AdamJob& j = bg.jobs[q];
  const long c = t - bg.first[q];
  j.run(c);
  // (the rows' new values, still in this core's cache; exp_rows_block's operations per row)
  if (bg.eTab) exp_rows_range(j.p, static_cast<long>(q), j.E, j.d, bg.eIsa, c * j.rch, std::min(j.E, (c + 1) * j.rch), bg.eTab, bg.eOk);
}

bool adam_bg_overlaps(const std::vector<std::pair<const char*, const char*>>& spans) {
  std::lock_guard<std::mutex> lk(g_adamBgMu);
  if (!g_adamBg.open) return false;
  for (const auto& x : spans)
    for (const auto& y : g_adamBg.spans)
      if (x.first < y.second && y.first < x.second) return true;
  return false;
}

// (a job finished by a call from another JS thread's env leaves its references to the arrays in place:
// they can only be deleted in the env that made them, which may be gone by then; a leak, not a fault)
void adam_bg_release(napi_env env) {
  if (env == g_adamBg.env)
    for (napi_ref r : g_adamBg.refs) napi_delete_reference(env, r);
  g_adamBg.refs.clear();
  g_adamBg.jobs.clear();
  g_adamBg.spans.clear();
  g_adamBg.eTab = nullptr;
  g_adamBg.eOk = nullptr;
  g_adamBg.env = nullptr;
}

void adam_bg_finish(napi_env env) {
  std::lock_guard<std::mutex> lk(g_adamBgMu);
  if (!g_adamBg.open) return;
  pool_finish();
  g_adamBg.open = false;
  adam_bg_release(env);
}

// A parsed boxteAdamRowsStart / boxteAdamRowsArm: its jobs, expD and references to its arrays.
struct AdamLaunch {
  std::vector<AdamJob> jobs;
  long expD = 0;
  std::vector<napi_ref> refs;
  napi_env env = nullptr;
};

// The arguments of boxteAdamRowsStart / boxteAdamRowsArm: count, count x 17, expD (optional)
bool parse_adam_launch(Args& a, AdamLaunch& L) {
  const long count = integer(a, 0, "count", 0);
  if (!a.ok) return false;
  if (1 + 17 * count > static_cast<long>(sizeof a.v / sizeof a.v[0])) {
    fail(a, "is too large", "count");
    return false;
  }
  L.jobs.assign(count, AdamJob());
  for (long q = 0; q < count; ++q)
    if (!parse_adam(a, 1 + 17 * q, L.jobs[q])) return false;
  const size_t xd = static_cast<size_t>(1 + 17 * count);
  L.expD = a.n > xd && !absent(a, xd) ? integer(a, xd, "expD", 1) : 0;
  return a.ok;
}

// references to the launch's arrays (held until the job is finished or dropped)
void adam_launch_refs(Args& a, AdamLaunch& L) {
  L.env = a.env;
  for (size_t q = 0; q < L.jobs.size(); ++q)
    for (size_t i : {0, 1, 2, 5, 6, 13}) {
      const size_t x = 1 + 17 * q + i;
      napi_valuetype vt;
      if (x >= a.n || napi_typeof(a.env, a.v[x], &vt) != napi_ok || vt != napi_object) continue;
      napi_ref r;
      if (napi_create_reference(a.env, a.v[x], 1, &r) == napi_ok) L.refs.push_back(r);
    }
}

// drops a launch that will not run (its references, where env is the one that made them)
void adam_launch_drop(napi_env env, AdamLaunch& L) {
  if (env == L.env)
    for (napi_ref r : L.refs) napi_delete_reference(env, r);
  L.refs.clear();
  L.jobs.clear();
  L.env = nullptr;
}

// Starts a parsed launch as the pool's background job (the previous one must be finished and the
// caller must not hold g_expUseMu); runs it inline where the pool cannot start it (one thread, busy).
void adam_launch(napi_env env, AdamLaunch& L) {
  {
    std::lock_guard<std::mutex> use(g_expUseMu);
    g_expPre.ready = g_expPre.fused = false;  // (the tables may change)
  }
  const long count = static_cast<long>(L.jobs.size());
  const long expD = L.expD;
  const int isa = boxte_isa();
  std::vector<AdamJob>& jobs = L.jobs;
  // the exponentials with the update: base then bump, both lazy with rows of expD (AdamJob.rch rows a task)
  const bool withExp = expD > 0 && isa >= 1 && count == 2 && jobs[0].st && jobs[1].st && jobs[0].d == expD && jobs[1].d == expD &&
                       jobs[0].E == jobs[1].E && jobs[0].E > 0;
  std::unique_lock<std::mutex> use(g_expUseMu, std::defer_lock);
  if (withExp) {
    use.lock();
    ExpPre& pre = g_expPre;
    const long E = jobs[0].E;
    pre.tab.ensure(2 * E * exp_ld(expD));
    pre.ok.resize(2 * E);
    pre.base = jobs[0].p;
    pre.bump = jobs[1].p;
    pre.E = E;
    pre.d = expD;
    pre.isa = isa;
    pre.ready = pre.fused = true;
  }
  std::lock_guard<std::mutex> lk(g_adamBgMu);
  AdamBg& bg = g_adamBg;
  bg.jobs = std::move(jobs);
  bg.first.assign(1, 0);
  for (const AdamJob& j : bg.jobs) bg.first.push_back(bg.first.back() + j.ntasks);
  bg.spans.clear();
  for (const AdamJob& j : bg.jobs) j.spans(bg.spans);
  bg.eTab = withExp ? g_expPre.tab.p : nullptr;
  bg.eOk = withExp ? g_expPre.ok.data() : nullptr;
  bg.eIsa = isa;
  if (pool_start(bg.first.back(), adam_bg_task, &bg)) {
    bg.open = true;
    bg.env = L.env;
    bg.refs = std::move(L.refs);
    L.refs.clear();
  } else {
    auto task = [&](long t, int) { adam_bg_task(&bg, t, 0); };
    parallel_tasks(bg.first.back(), 0, task);
    bg.jobs.clear();
    bg.spans.clear();
    bg.eTab = nullptr;
    bg.eOk = nullptr;
    adam_launch_drop(env, L);
  }
  L.jobs.clear();
  L.env = nullptr;
}

napi_value AdamRowsStart(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteAdamRowsStart");
  adam_bg_finish(env);
  AdamLaunch L;
  if (!parse_adam_launch(a, L)) return nullptr;
  adam_launch_refs(a, L);
  adam_launch(env, L);
  return napi::undef(env);
}

// boxteAdamRowsArm(count, ...as boxteAdamRowsStart): the same updates, started by the next
// boxteTrainGroups right after its parallel part, before it adds up the chunks' relation gradients and
// returns (the pool's worker goes from its kernel chunk to the updates without waiting for the
// caller's return and its boxteAdamRowsStart); wait with boxteAdamRowsWait as after a start. Its
// arrays must be that call's entity tables, gradients, slots and stamps, whose values at the end of
// its parallel part are the ones the updates read (as a start after it would). A boxteTrainGroups
// that throws (or a second arm) drops it. Nothing else starts or drops it.
AdamLaunch g_adamArmed;
std::mutex g_adamArmedMu;

AdamLaunch* adam_armed_take(napi_env env) {
  std::lock_guard<std::mutex> lk(g_adamArmedMu);
  if (g_adamArmed.jobs.empty()) {
    adam_launch_drop(env, g_adamArmed);
    return nullptr;
  }
  AdamLaunch* L = new AdamLaunch(std::move(g_adamArmed));
  g_adamArmed = AdamLaunch();
  return L;
}
void adam_armed_start(napi_env env, AdamLaunch* L) {
  adam_launch(env, *L);
  delete L;
}
void adam_armed_drop(napi_env env, AdamLaunch* L) {
  if (!L) return;
  adam_launch_drop(env, *L);
  delete L;
}

napi_value AdamRowsArm(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteAdamRowsArm");
  AdamLaunch L;
  if (!parse_adam_launch(a, L)) return nullptr;
  adam_launch_refs(a, L);
  std::lock_guard<std::mutex> lk(g_adamArmedMu);
  adam_launch_drop(env, g_adamArmed);
  g_adamArmed = std::move(L);
  return napi::undef(env);
}

napi_value AdamRowsWait(napi_env env, napi_callback_info) {
  adam_bg_finish(env);
  return napi::undef(env);
}

// boxteExpTableStart(base, bump, d): the exponentials of every base and bump row that the next
// boxteTrainGroups on these tables reads (tanh on AVX2 / AVX-512), computed by the pool's workers in
// the background (pool_start) while the caller runs the step's other calls on one thread; that
// boxteTrainGroups finishes the job (taking the blocks not begun) and uses the table once. The caller
// must not change base or bump in between; a boxteTrainGroups on other tables, or one after
// boxteAdamRows / boxteAdamRowsStart, computes its own. Nothing to do on the generic path. Where the
// last boxteAdamRowsStart was given expD for these tables, its job makes the table (see there): this
// call takes it and returns, leaving that job running (the boxteTrainGroups finishes it).
napi_value ExpTableStart(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteExpTableStart");
  napi_typedarray_type tp;
  size_t len = 0;
  if (napi_get_typedarray_info(env, a.v[0], &tp, &len, nullptr, nullptr, nullptr) != napi_ok) len = 0;
  const long n = static_cast<long>(len);
  const float* base = arr<float>(a, 0, "base", napi_float32_array, n);
  const float* bump = arr<float>(a, 1, "bump", napi_float32_array, n);
  const long d = integer(a, 2, "d", 1);
  if (!a.ok) return nullptr;
  if (n % d != 0) {
    fail(a, "does not divide the tables' length", "d");
    return nullptr;
  }
  const long E = n / d;
  const int isa = boxte_isa();
  if (isa < 1 || E == 0) return napi::undef(env);
  {
    std::lock_guard<std::mutex> use(g_expUseMu);
    ExpPre& pre = g_expPre;
    if (pre.ready && pre.fused && pre.base == base && pre.bump == bump && pre.E == E && pre.d == d && pre.isa == isa) {
      pre.fused = false;
      return napi::undef(env);
    }
  }
  adam_bg_finish(env);
  std::lock_guard<std::mutex> use(g_expUseMu);
  ExpPre& pre = g_expPre;
  pre.fused = false;
  pre.tab.ensure(2 * E * exp_ld(d));
  pre.ok.resize(2 * E);
  pre.base = base;
  pre.bump = bump;
  pre.E = E;
  pre.d = d;
  pre.isa = isa;
  pre.ready = true;
  std::lock_guard<std::mutex> lk(g_adamBgMu);
  AdamBg& bg = g_adamBg;
  if (pool_start(2 * exp_blocks(E), exp_pre_task, &pre)) {
    bg.open = true;
    bg.env = env;
    bg.spans.clear();
    for (const float* x : {base, bump}) bg.spans.emplace_back(reinterpret_cast<const char*>(x), reinterpret_cast<const char*>(x + n));
    for (size_t x : {0, 1}) {
      napi_ref r;
      if (napi_create_reference(env, a.v[x], 1, &r) == napi_ok) bg.refs.push_back(r);
    }
  } else {
    auto task = [&](long blk, int) { exp_pre_task(&pre, blk, 0); };
    parallel_tasks(2 * exp_blocks(E), 0, task);
  }
  return napi::undef(env);
}


// ---- the small parts of a training step (twins of src/models/boxte/small.ts) -----------------------

// tanh of an array in place with the active ISA's vector tanh (as the kernels' points)
#ifdef BOXTE_X86
AVX512_FN void tanh_inplace_avx512(float* x, long n) {
  for (long k = 0; k < n; k += 16) {
    const __mmask16 m = n - k >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - k)) - 1);
    _mm512_mask_storeu_ps(x + k, m, tanh16(_mm512_maskz_loadu_ps(m, x + k)));
  }
}
AVX2_FN void tanh_inplace_avx2(float* x, long n) {
  long k = 0;
  for (; k + 8 <= n; k += 8) _mm256_storeu_ps(x + k, tanh8(_mm256_loadu_ps(x + k)));
  for (; k < n; ++k) x[k] = std::tanh(x[k]);
}
#endif
void tanh_inplace(float* x, long n) {
#ifdef BOXTE_X86
  if (boxte_isa() == 2) return tanh_inplace_avx512(x, n);
  if (boxte_isa() == 1) return tanh_inplace_avx2(x, n);
#endif
  for (long k = 0; k < n; ++k) x[k] = std::tanh(x[k]);
}

#ifdef BOXTE_X86
// The corners of one relation's row, 4 at a time (the scalar loop's statements for the last d mod 4,
// from the returned index): delta = shape ig sg half, lo = min(b - delta, b + delta), hi = max(...).
// Compiled without FMA (target avx2 only): every product and sum rounds as in the scalar loop, and
// the min / max take their operands in std::min / std::max's order (minpd(y, x) = y < x ? y : x,
// maxpd(y, x) = y > x ? y : x: the same choice for equal values and signed zeros), so the bits are
// the scalar loop's.
__attribute__((target("avx2"))) long corners_row_avx2(long d, const float* base, const float* shape, double ig, double sg,
                                                       double half, float* lo, float* hi) {
  const __m256d vig = _mm256_set1_pd(ig), vsg = _mm256_set1_pd(sg), vhalf = _mm256_set1_pd(half);
  long i = 0;
  for (; i + 4 <= d; i += 4) {
    const __m256d delta = _mm256_mul_pd(_mm256_mul_pd(_mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(shape + i)), vig), vsg), vhalf);
    const __m256d b = _mm256_cvtps_pd(_mm_loadu_ps(base + i));
    const __m256d x = _mm256_sub_pd(b, delta), y = _mm256_add_pd(b, delta);
    _mm_storeu_ps(lo + i, _mm256_cvtpd_ps(_mm256_min_pd(y, x)));
    _mm_storeu_ps(hi + i, _mm256_cvtpd_ps(_mm256_max_pd(y, x)));
  }
  return i;
}
#endif


// boxteCorners(R, d, half, tanh, hBase, hShape, hSize, tBase, tShape, tSize, stacked[4Rd], invGeo[2R], sigma[2R])
napi_value Corners(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteCorners");
  const long R = integer(a, 0, "R", 1), d = integer(a, 1, "d", 1);
  const double half = number(a, 2, "half");
  const bool useTanh = flag(a, 3, "tanh");
  const float* P[6];
  const char* names[6] = {"hBase", "hShape", "hSize", "tBase", "tShape", "tSize"};
  for (int i = 0; i < 6; ++i) P[i] = arr<float>(a, 4 + i, names[i], napi_float32_array, i % 3 == 2 ? R : R * d);
  float* stacked = arr<float>(a, 10, "stacked", napi_float32_array, 4 * R * d);
  double* invGeo = arr<double>(a, 11, "invGeo", napi_float64_array, 2 * R);
  double* sigma = arr<double>(a, 12, "sigma", napi_float64_array, 2 * R);
  if (!a.ok) return nullptr;
  auto task = [&](long sr, int) {
    const long s = sr / R, r = sr % R, o = r * d;
    const float* base = P[3 * s];
    const float* shape = P[3 * s + 1];
    double lg = 0;
    for (long i = 0; i < d; ++i) lg += std::log(std::fabs(static_cast<double>(shape[o + i])) + 1e-8);
    const double ig = 1.0 / std::exp(lg / static_cast<double>(d));
    const double z = P[3 * s + 2][r];
    const double sg = z > 0 ? z + 1 : std::exp(z);
    invGeo[s * R + r] = ig;
    sigma[s * R + r] = sg;
    float* lo = stacked + 2 * s * R * d + o;
    float* hi = stacked + (2 * s + 1) * R * d + o;
    long i0 = 0;
#ifdef BOXTE_X86
    if (boxte_isa() >= 1) i0 = corners_row_avx2(d, base + o, shape + o, ig, sg, half, lo, hi);
#endif
    for (long i = i0; i < d; ++i) {
      const double delta = shape[o + i] * ig * sg * half;
      const double b = base[o + i];
      lo[i] = static_cast<float>(std::min(b - delta, b + delta));
      hi[i] = static_cast<float>(std::max(b - delta, b + delta));
    }
    if (useTanh) {
      tanh_inplace(lo, d);
      tanh_inplace(hi, d);
    }
  };
  parallel_tasks(2 * R, 0, task);
  return napi::undef(env);
}

// One relation's row of boxteCornersBwd in AVX-512 (8 doubles): the same double operations per
// element as the scalar loop (no fused multiply-adds), the two sums over the row (gSigma, S) taken
// in element order from per-element products, so the results are bit-identical to it. The scalar
// loop branches on the sign of each shape element (unpredictable: about half are negative).
#ifdef BOXTE_X86
AVX512_FN void corners_bwd_row_avx512(long d, double half, bool useTanh, const float* shape, double ig, double sg,
                                      const float* gLo, const float* gHi, const float* sLo, const float* sHi,
                                      float* gBaseRow, float* gShapeRow, double* gShat, double* t1, double* t2,
                                      double* gSigmaOut, double* SOut) {
  const __m512d one = _mm512_set1_pd(1.0), zero = _mm512_setzero_pd(), vig = _mm512_set1_pd(ig), vsg = _mm512_set1_pd(sg),
                vhalf = _mm512_set1_pd(half);
  for (long i = 0; i < d; i += 8) {
    const __mmask8 m = d - i >= 8 ? static_cast<__mmask8>(0xFF) : static_cast<__mmask8>((1u << (d - i)) - 1);
    __m512d gl = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, gLo + i)), gu = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, gHi + i));
    if (useTanh) {
      const __m512d l = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, sLo + i)), u = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, sHi + i));
      gl = _mm512_mul_pd(gl, _mm512_sub_pd(one, _mm512_mul_pd(l, l)));
      gu = _mm512_mul_pd(gu, _mm512_sub_pd(one, _mm512_mul_pd(u, u)));
    }
    const __m512d shat = _mm512_mul_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, shape + i)), vig);
    const __mmask8 neg = _mm512_cmp_pd_mask(_mm512_mul_pd(_mm512_mul_pd(shat, vsg), vhalf), zero, _CMP_LT_OQ);
    const __m512d g1 = _mm512_mask_blend_pd(neg, gl, gu), g2 = _mm512_mask_blend_pd(neg, gu, gl);
    _mm256_mask_storeu_ps(gBaseRow + i, m, _mm512_cvtpd_ps(_mm512_add_pd(g1, g2)));
    const __m512d gDelta = _mm512_mul_pd(_mm512_sub_pd(g2, g1), vhalf);
    const __m512d gs = _mm512_mul_pd(gDelta, vsg);
    _mm512_mask_storeu_pd(gShat + i, m, gs);
    _mm512_mask_storeu_pd(t1 + i, m, _mm512_mul_pd(gDelta, shat));
    _mm512_mask_storeu_pd(t2 + i, m, _mm512_mul_pd(gs, shat));
  }
  double gSigma = 0, S = 0;
  for (long i = 0; i < d; ++i) {
    gSigma += t1[i];
    S += t2[i];
  }
  const __m512d sd = _mm512_set1_pd(S / static_cast<double>(d)), eps = _mm512_set1_pd(1e-8), mone = _mm512_set1_pd(-1.0);
  for (long i = 0; i < d; i += 8) {
    const __mmask8 m = d - i >= 8 ? static_cast<__mmask8>(0xFF) : static_cast<__mmask8>((1u << (d - i)) - 1);
    const __m512d x = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, shape + i));
    const __m512d sgn = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, zero, _CMP_GT_OQ),
                                             _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(x, zero, _CMP_LT_OQ), mone), one);
    const __m512d q = _mm512_div_pd(_mm512_mul_pd(sd, sgn), _mm512_add_pd(_mm512_abs_pd(x), eps));
    const __m512d v = _mm512_sub_pd(_mm512_mul_pd(_mm512_maskz_loadu_pd(m, gShat + i), vig), q);
    _mm256_mask_storeu_ps(gShapeRow + i, m, _mm512_cvtpd_ps(v));
  }
  *gSigmaOut = gSigma;
  *SOut = S;
}
// The same row in AVX2 (4 doubles; the last d mod 4 elements by the scalar loop's statements).
// Compiled without FMA (target avx2 only), so no multiply and add can be fused: every operation
// rounds as in the scalar loop and the results are bit-identical to it.
__attribute__((target("avx2"))) void corners_bwd_row_avx2(long d, double half, bool useTanh, const float* shape, double ig,
                                                           double sg, const float* gLo, const float* gHi, const float* sLo,
                                                           const float* sHi, float* gBaseRow, float* gShapeRow, double* gShat,
                                                           double* t1, double* t2, double* gSigmaOut, double* SOut) {
  const __m256d one = _mm256_set1_pd(1.0), zero = _mm256_setzero_pd(), vig = _mm256_set1_pd(ig), vsg = _mm256_set1_pd(sg),
                vhalf = _mm256_set1_pd(half);
  const long d4 = d & ~3L;
  for (long i = 0; i < d4; i += 4) {
    __m256d gl = _mm256_cvtps_pd(_mm_loadu_ps(gLo + i)), gu = _mm256_cvtps_pd(_mm_loadu_ps(gHi + i));
    if (useTanh) {
      const __m256d l = _mm256_cvtps_pd(_mm_loadu_ps(sLo + i)), u = _mm256_cvtps_pd(_mm_loadu_ps(sHi + i));
      gl = _mm256_mul_pd(gl, _mm256_sub_pd(one, _mm256_mul_pd(l, l)));
      gu = _mm256_mul_pd(gu, _mm256_sub_pd(one, _mm256_mul_pd(u, u)));
    }
    const __m256d shat = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(shape + i)), vig);
    const __m256d neg = _mm256_cmp_pd(_mm256_mul_pd(_mm256_mul_pd(shat, vsg), vhalf), zero, _CMP_LT_OQ);
    const __m256d g1 = _mm256_blendv_pd(gl, gu, neg), g2 = _mm256_blendv_pd(gu, gl, neg);
    _mm_storeu_ps(gBaseRow + i, _mm256_cvtpd_ps(_mm256_add_pd(g1, g2)));
    const __m256d gDelta = _mm256_mul_pd(_mm256_sub_pd(g2, g1), vhalf);
    const __m256d gs = _mm256_mul_pd(gDelta, vsg);
    _mm256_storeu_pd(gShat + i, gs);
    _mm256_storeu_pd(t1 + i, _mm256_mul_pd(gDelta, shat));
    _mm256_storeu_pd(t2 + i, _mm256_mul_pd(gs, shat));
  }
  for (long i = d4; i < d; ++i) {
    double gl = gLo[i], gu = gHi[i];
    if (useTanh) {
      const double l = sLo[i], u = sHi[i];
      gl *= 1 - l * l;
      gu *= 1 - u * u;
    }
    const double shat = shape[i] * ig;
    const bool neg = shat * sg * half < 0;
    const double g1 = neg ? gu : gl, g2 = neg ? gl : gu;
    gBaseRow[i] = static_cast<float>(g1 + g2);
    const double gDelta = (g2 - g1) * half;
    gShat[i] = gDelta * sg;
    t1[i] = gDelta * shat;
    t2[i] = gShat[i] * shat;
  }
  double gSigma = 0, S = 0;
  for (long i = 0; i < d; ++i) {
    gSigma += t1[i];
    S += t2[i];
  }
  const double sdv = S / static_cast<double>(d);
  const __m256d sd = _mm256_set1_pd(sdv), eps = _mm256_set1_pd(1e-8), mone = _mm256_set1_pd(-1.0),
                absMask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
  for (long i = 0; i < d4; i += 4) {
    const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(shape + i));
    // x > 0: 1, x < 0: -1, else (0, NaN) 0
    const __m256d sgn = _mm256_or_pd(_mm256_and_pd(_mm256_cmp_pd(x, zero, _CMP_GT_OQ), one), _mm256_and_pd(_mm256_cmp_pd(x, zero, _CMP_LT_OQ), mone));
    const __m256d q = _mm256_div_pd(_mm256_mul_pd(sd, sgn), _mm256_add_pd(_mm256_and_pd(x, absMask), eps));
    _mm_storeu_ps(gShapeRow + i, _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_mul_pd(_mm256_loadu_pd(gShat + i), vig), q)));
  }
  for (long i = d4; i < d; ++i) {
    const double x = shape[i];
    const double sgn = x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
    gShapeRow[i] = static_cast<float>(gShat[i] * ig - (sdv * sgn) / (std::fabs(x) + 1e-8));
  }
  *gSigmaOut = gSigma;
  *SOut = S;
}
#endif

// boxteCornersBwd(R, d, half, tanh, hShape, hSize, tShape, tSize, stacked, invGeo, sigma, g[4Rd],
//                 gHBase, gHShape, gHSize, gTBase, gTShape, gTSize)   (gradients written, not added)
napi_value CornersBwd(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteCornersBwd");
  const long R = integer(a, 0, "R", 1), d = integer(a, 1, "d", 1);
  const double half = number(a, 2, "half");
  const bool useTanh = flag(a, 3, "tanh");
  const float* shapes[2] = {arr<float>(a, 4, "hShape", napi_float32_array, R * d), arr<float>(a, 6, "tShape", napi_float32_array, R * d)};
  const float* sizes[2] = {arr<float>(a, 5, "hSize", napi_float32_array, R), arr<float>(a, 7, "tSize", napi_float32_array, R)};
  const float* stacked = arr<float>(a, 8, "stacked", napi_float32_array, 4 * R * d);
  const double* invGeo = arr<double>(a, 9, "invGeo", napi_float64_array, 2 * R);
  const double* sigma = arr<double>(a, 10, "sigma", napi_float64_array, 2 * R);
  const float* g = arr<float>(a, 11, "g", napi_float32_array, 4 * R * d);
  float* gBase[2] = {arr<float>(a, 12, "gHBase", napi_float32_array, R * d), arr<float>(a, 15, "gTBase", napi_float32_array, R * d)};
  float* gShape[2] = {arr<float>(a, 13, "gHShape", napi_float32_array, R * d), arr<float>(a, 16, "gTShape", napi_float32_array, R * d)};
  float* gSize[2] = {arr<float>(a, 14, "gHSize", napi_float32_array, R), arr<float>(a, 17, "gTSize", napi_float32_array, R)};
  if (!a.ok) return nullptr;
  const int isa = boxte_isa();
  auto task = [&](long sr, int) {
    const long s = sr / R, r = sr % R, o = r * d;
    const float* shape = shapes[s];
    const double ig = invGeo[s * R + r], sg = sigma[s * R + r];
    const long lo = 2 * s * R * d + o, hi = (2 * s + 1) * R * d + o;
    std::vector<double> gShat(d);
    double gSigma = 0, S = 0;
#ifdef BOXTE_X86
    if (isa == 2) {
      std::vector<double> t(2 * d);
      corners_bwd_row_avx512(d, half, useTanh, shape + o, ig, sg, g + lo, g + hi, stacked + lo, stacked + hi, gBase[s] + o,
                             gShape[s] + o, gShat.data(), t.data(), t.data() + d, &gSigma, &S);
      const double z = sizes[s][r];
      gSize[s][r] = static_cast<float>(gSigma * (z > 0 ? 1.0 : std::exp(z)));
      return;
    }
    if (isa == 1) {
      std::vector<double> t(2 * d);
      corners_bwd_row_avx2(d, half, useTanh, shape + o, ig, sg, g + lo, g + hi, stacked + lo, stacked + hi, gBase[s] + o,
                           gShape[s] + o, gShat.data(), t.data(), t.data() + d, &gSigma, &S);
      const double z = sizes[s][r];
      gSize[s][r] = static_cast<float>(gSigma * (z > 0 ? 1.0 : std::exp(z)));
      return;
    }
#endif
    for (long i = 0; i < d; ++i) {
      double gl = g[lo + i], gu = g[hi + i];
      if (useTanh) {
        const double l = stacked[lo + i], u = stacked[hi + i];
        gl *= 1 - l * l;
        gu *= 1 - u * u;
      }
      const double shat = shape[o + i] * ig;
      const bool neg = shat * sg * half < 0;
      const double g1 = neg ? gu : gl, g2 = neg ? gl : gu;
      gBase[s][o + i] = static_cast<float>(g1 + g2);
      const double gDelta = (g2 - g1) * half;
      gShat[i] = gDelta * sg;
      gSigma += gDelta * shat;
      S += gShat[i] * shat;
    }
    for (long i = 0; i < d; ++i) {
      const double x = shape[o + i];
      const double sgn = x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
      gShape[s][o + i] = static_cast<float>(gShat[i] * ig - ((S / d) * sgn) / (std::fabs(x) + 1e-8));
    }
    const double z = sizes[s][r];
    gSize[s][r] = static_cast<float>(gSigma * (z > 0 ? 1.0 : std::exp(z)));
  };
  parallel_tasks(2 * R, 0, task);
  return napi::undef(env);
}

// boxteTimeReg(T, row, K, lambdaScale, gK[, add]) -> sum of diff^4 times lambdaScale; gK[i] = 4 scale
// (diff_{i-1}^3 - diff_i^3) written (not added), or with add = true added to gK in float (gK[i] + that
// value rounded to float: what adding the written array to gK does); rows are the parallel tasks,
// the value is summed per chunk of rows in chunk order (deterministic). Each row's differences to
// the next row are computed once and kept for the next row (the same values as recomputing them).
napi_value TimeReg(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteTimeReg");
  const long T = integer(a, 0, "T", 2), row = integer(a, 1, "row", 1);
  const float* K = arr<float>(a, 2, "K", napi_float32_array, T * row);
  const double scale = number(a, 3, "scale");
  float* gK = arr<float>(a, 4, "gK", napi_float32_array, T * row);
  const bool add = a.n > 5 && !absent(a, 5) && flag(a, 5, "add");
  if (!a.ok) return nullptr;
  const long CH = 16;
  const long nch = (T + CH - 1) / CH;
  std::vector<double> part(nch, 0.0);
  auto task = [&](long c, int) {
    double sum = 0;
    const long i0 = c * CH, i1 = std::min(T, i0 + CH);
    // prev[k]: the difference of row i to row i - 1 (0 for row 0)
    std::vector<double> prevBuf(row, 0.0);
    double* prev = prevBuf.data();
    if (i0 > 0)
      for (long k = 0; k < row; ++k) prev[k] = static_cast<double>(static_cast<float>(K[i0 * row + k] - K[(i0 - 1) * row + k]));
    for (long i = i0; i < i1; ++i) {
      const float* Ki = K + i * row;
      float* gi = gK + i * row;
      const bool last = i + 1 >= T;
      for (long k = 0; k < row; ++k) {
        const double next = last ? 0.0 : static_cast<double>(static_cast<float>(Ki[row + k] - Ki[k]));
        const double p = prev[k];
        const double n2 = next * next;
        sum += n2 * n2;
        const float gv = static_cast<float>(4 * scale * (p * p * p - n2 * next));
        gi[k] = add ? gi[k] + gv : gv;
        prev[k] = next;
      }
    }
    part[c] = sum;
  };
  parallel_tasks(nch, 0, task);
  double sum = 0;
  for (long c = 0; c < nch; ++c) sum += part[c];
  napi_value res;
  napi_create_double(env, sum * scale, &res);
  return res;
}

// boxteTimeBumps(B, d, k, useAlpha, noBumpDay0, K, alpha, r, tau, out[B*d]): twin of timeBumpsForward
// (small.ts): out row i = sum_j alpha[r_i, j] K[tau_i, j] summed in double in j order (zeros for
// day 0 when noBumpDay0); rows in tasks of 16. Same bits as the TypeScript loop.
napi_value TimeBumps(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteTimeBumps");
  const long B = integer(a, 0, "B", 0), d = integer(a, 1, "d", 1), k = integer(a, 2, "k", 1);
  const bool useAlpha = flag(a, 3, "useAlpha"), noDay0 = flag(a, 4, "noBumpDay0");
  napi_typedarray_type tp;
  size_t klen = 0, alen = 0;
  if (a.ok && napi_get_typedarray_info(env, a.v[5], &tp, &klen, nullptr, nullptr, nullptr) != napi_ok) klen = 0;
  if (a.ok && napi_get_typedarray_info(env, a.v[6], &tp, &alen, nullptr, nullptr, nullptr) != napi_ok) alen = 0;
  const float* K = arr<float>(a, 5, "K", napi_float32_array, k * d);
  const float* alpha = arr<float>(a, 6, "alpha", napi_float32_array, k);
  const int32_t* r = arr<int32_t>(a, 7, "r", napi_int32_array, B);
  const int32_t* tau = arr<int32_t>(a, 8, "tau", napi_int32_array, B);
  float* out = arr<float>(a, 9, "out", napi_float32_array, B * d);
  if (!ids_ok(a, r, B, static_cast<long>(alen) / k, "r") || !ids_ok(a, tau, B, static_cast<long>(klen) / (k * d), "tau")) return nullptr;
  const long CH = 16;
  auto task = [&](long c, int) {
    std::vector<double> acc(d);
    for (long i = c * CH; i < (c + 1) * CH && i < B; ++i) {
      float* o = out + i * d;
      if (noDay0 && tau[i] == 0) {
        std::fill(o, o + d, 0.0f);
        continue;
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      for (long j = 0; j < k; ++j) {
        const double al = useAlpha ? static_cast<double>(alpha[r[i] * k + j]) : 1.0;
        const float* Kr = K + (tau[i] * k + j) * d;
        for (long cc = 0; cc < d; ++cc) acc[cc] += al * static_cast<double>(Kr[cc]);
      }
      for (long cc = 0; cc < d; ++cc) o[cc] = static_cast<float>(acc[cc]);
    }
  };
  parallel_tasks((B + CH - 1) / CH, 0, task);
  return napi::undef(env);
}

// boxteTimeBumpsBwd(B, d, k, useAlpha, noBumpDay0, K, alpha, r, tau, gTb, gK, gA): twin of the loop of
// timeBumpsBackward, adding into gK and gA: gK[tau_i, j] += alpha gTb_i (f32 += double product), gA[r_i, j]
// += K[tau_i, j] . gTb_i (dot in double). Columns of gK are the parallel tasks (every element gets its
// additions in row order); the dots are computed per row in parallel and added in row order.
napi_value TimeBumpsBwd(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteTimeBumpsBwd");
  const long B = integer(a, 0, "B", 0), d = integer(a, 1, "d", 1), k = integer(a, 2, "k", 1);
  const bool useAlpha = flag(a, 3, "useAlpha"), noDay0 = flag(a, 4, "noBumpDay0");
  napi_typedarray_type tp;
  size_t klen = 0, alen = 0;
  if (a.ok && napi_get_typedarray_info(env, a.v[5], &tp, &klen, nullptr, nullptr, nullptr) != napi_ok) klen = 0;
  if (a.ok && napi_get_typedarray_info(env, a.v[6], &tp, &alen, nullptr, nullptr, nullptr) != napi_ok) alen = 0;
  const float* K = arr<float>(a, 5, "K", napi_float32_array, k * d);
  const float* alpha = arr<float>(a, 6, "alpha", napi_float32_array, k);
  const int32_t* r = arr<int32_t>(a, 7, "r", napi_int32_array, B);
  const int32_t* tau = arr<int32_t>(a, 8, "tau", napi_int32_array, B);
  const float* gTb = arr<float>(a, 9, "gTb", napi_float32_array, B * d);
  float* gK = arr<float>(a, 10, "gK", napi_float32_array, static_cast<long>(klen));
  float* gA = arr<float>(a, 11, "gA", napi_float32_array, static_cast<long>(alen));
  if (!ids_ok(a, r, B, static_cast<long>(alen) / k, "r") || !ids_ok(a, tau, B, static_cast<long>(klen) / (k * d), "tau")) return nullptr;
  const long CW = 32;
  auto colTask = [&](long c, int) {
    const long c0 = c * CW, c1 = std::min(d, c0 + CW);
    for (long i = 0; i < B; ++i) {
      if (noDay0 && tau[i] == 0) continue;
      for (long j = 0; j < k; ++j) {
        const double al = useAlpha ? static_cast<double>(alpha[r[i] * k + j]) : 1.0;
        float* g = gK + (tau[i] * k + j) * d;
        const float* gv = gTb + i * d;
        for (long cc = c0; cc < c1; ++cc) g[cc] = static_cast<float>(static_cast<double>(g[cc]) + al * static_cast<double>(gv[cc]));
      }
    }
  };
  parallel_tasks((d + CW - 1) / CW, 0, colTask);
  std::vector<double> dots(B * k, 0.0);
  const long CH = 16;
  // each dot is one chain of double additions in column order; four dots run side by side (their
  // chains overlap in the core), every one summed in the same order as alone: the same values
  auto dotTask = [&](long c, int) {
    long ids[4];
    int nq = 0;
    const auto flush = [&]() {
      const float* Kr[4];
      const float* gv[4];
      for (int q = 0; q < 4; ++q) {
        const long x = ids[q < nq ? q : 0], i = x / k, j = x % k;
        Kr[q] = K + (tau[i] * k + j) * d;
        gv[q] = gTb + i * d;
      }
      double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (long cc = 0; cc < d; ++cc) {
        s0 += static_cast<double>(Kr[0][cc]) * static_cast<double>(gv[0][cc]);
        s1 += static_cast<double>(Kr[1][cc]) * static_cast<double>(gv[1][cc]);
        s2 += static_cast<double>(Kr[2][cc]) * static_cast<double>(gv[2][cc]);
        s3 += static_cast<double>(Kr[3][cc]) * static_cast<double>(gv[3][cc]);
      }
      const double sums[4] = {s0, s1, s2, s3};
      for (int q = 0; q < nq; ++q) dots[ids[q]] = sums[q];
      nq = 0;
    };
    for (long i = c * CH; i < (c + 1) * CH && i < B; ++i) {
      if (noDay0 && tau[i] == 0) continue;
      for (long j = 0; j < k; ++j) {
        ids[nq++] = i * k + j;
        if (nq == 4) flush();
      }
    }
    if (nq > 0) flush();
  };
  parallel_tasks((B + CH - 1) / CH, 0, dotTask);
  for (long i = 0; i < B; ++i) {
    if (noDay0 && tau[i] == 0) continue;
    for (long j = 0; j < k; ++j) gA[r[i] * k + j] = static_cast<float>(static_cast<double>(gA[r[i] * k + j]) + dots[i * k + j]);
  }
  return napi::undef(env);
}

// boxteBoxTable(n, stacked[4n], l, u, c, w [2n]): twin of boxTable (kernel.ts) with n = R * d: l = (lh, lt),
// u = (uh, ut), c = (l + u) / 2 and w = u - l + 1 in double, rounded to float (the same bits).
// boxteCornerGrad(n, gc, gw [2n], g [4n]): twin of cornerGrad: g_l = gc / 2 - gw, g_u = gc / 2 + gw.
napi_value BoxTableN(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteBoxTable");
  const long n = integer(a, 0, "n", 0);
  const float* st = arr<float>(a, 1, "stacked", napi_float32_array, 4 * n);
  float* l = arr<float>(a, 2, "l", napi_float32_array, 2 * n);
  float* u = arr<float>(a, 3, "u", napi_float32_array, 2 * n);
  float* c = arr<float>(a, 4, "c", napi_float32_array, 2 * n);
  float* w = arr<float>(a, 5, "w", napi_float32_array, 2 * n);
  if (!a.ok) return nullptr;
  // tasks: blocks of CH elements of one side (no integer division per element)
  const long CH = 8192, per = (n + CH - 1) / CH;
  auto task = [&](long t, int) {
    const long s = t / per, o0 = (t % per) * CH, o1 = std::min(n, o0 + CH);
    const float* sl = st + 2 * s * n;
    const float* su = sl + n;
    float *lo = l + s * n, *uo = u + s * n, *co = c + s * n, *wo = w + s * n;
    for (long o = o0; o < o1; ++o) {
      const float li = sl[o], ui = su[o];
      lo[o] = li;
      uo[o] = ui;
      co[o] = static_cast<float>((static_cast<double>(li) + static_cast<double>(ui)) * 0.5);
      wo[o] = static_cast<float>(static_cast<double>(ui) - static_cast<double>(li) + 1.0);
    }
  };
  parallel_tasks(2 * per, 0, task);
  return napi::undef(env);
}

napi_value CornerGradN(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteCornerGrad");
  const long n = integer(a, 0, "n", 0);
  const float* gc = arr<float>(a, 1, "gc", napi_float32_array, 2 * n);
  const float* gw = arr<float>(a, 2, "gw", napi_float32_array, 2 * n);
  float* g = arr<float>(a, 3, "g", napi_float32_array, 4 * n);
  if (!a.ok) return nullptr;
  const long CH = 8192, per = (n + CH - 1) / CH;
  auto task = [&](long t, int) {
    const long s = t / per, o0 = (t % per) * CH, o1 = std::min(n, o0 + CH);
    const float *gcs = gc + s * n, *gws = gw + s * n;
    float* gl = g + 2 * s * n;
    float* gu = gl + n;
    for (long o = o0; o < o1; ++o) {
      const double h = 0.5 * static_cast<double>(gcs[o]), b = gws[o];
      gl[o] = static_cast<float>(h - b);
      gu[o] = static_cast<float>(h + b);
    }
  };
  parallel_tasks(2 * per, 0, task);
  return napi::undef(env);
}

napi_value IsaName(napi_env env, napi_callback_info) {
  napi_value res;
  napi_create_string_utf8(env, boxte_isa_name(), NAPI_AUTO_LENGTH, &res);
  return res;
}

}  // namespace

// Adds the BoxTE kernels to the addon's exports.
void tfree_boxte_register(napi_env env, napi_value exports) {
  napi_value fv;
  if (napi_create_function(env, "boxteScoreBatch", NAPI_AUTO_LENGTH, ScoreBatch, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteScoreBatch", fv);
  if (napi_create_function(env, "boxteRankBatch", NAPI_AUTO_LENGTH, RankBatch, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteRankBatch", fv);
  if (napi_create_function(env, "boxteTrainGroups", NAPI_AUTO_LENGTH, TrainGroups, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteTrainGroups", fv);
  if (napi_create_function(env, "boxteNegatives", NAPI_AUTO_LENGTH, Negatives, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteNegatives", fv);
  if (napi_create_function(env, "boxteAdamRows", NAPI_AUTO_LENGTH, AdamRows, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteAdamRows", fv);
  if (napi_create_function(env, "boxteAdamRowsStart", NAPI_AUTO_LENGTH, AdamRowsStart, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteAdamRowsStart", fv);
  if (napi_create_function(env, "boxteAdamRowsArm", NAPI_AUTO_LENGTH, AdamRowsArm, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteAdamRowsArm", fv);
  if (napi_create_function(env, "boxteAdamRowsWait", NAPI_AUTO_LENGTH, AdamRowsWait, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteAdamRowsWait", fv);
  if (napi_create_function(env, "boxteExpTableStart", NAPI_AUTO_LENGTH, ExpTableStart, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteExpTableStart", fv);
  if (napi_create_function(env, "boxteCorners", NAPI_AUTO_LENGTH, Corners, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteCorners", fv);
  if (napi_create_function(env, "boxteCornersBwd", NAPI_AUTO_LENGTH, CornersBwd, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteCornersBwd", fv);
  if (napi_create_function(env, "boxteTimeReg", NAPI_AUTO_LENGTH, TimeReg, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteTimeReg", fv);
  if (napi_create_function(env, "boxteTimeBumps", NAPI_AUTO_LENGTH, TimeBumps, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteTimeBumps", fv);
  if (napi_create_function(env, "boxteTimeBumpsBwd", NAPI_AUTO_LENGTH, TimeBumpsBwd, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteTimeBumpsBwd", fv);
  if (napi_create_function(env, "boxteBoxTable", NAPI_AUTO_LENGTH, BoxTableN, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteBoxTable", fv);
  if (napi_create_function(env, "boxteCornerGrad", NAPI_AUTO_LENGTH, CornerGradN, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteCornerGrad", fv);
  if (napi_create_function(env, "boxteExpRows", NAPI_AUTO_LENGTH, ExpRows, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteExpRows", fv);
  if (napi_create_function(env, "boxteIsa", NAPI_AUTO_LENGTH, IsaName, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteIsa", fv);
}
