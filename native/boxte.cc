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
// The inner loops over the d dimensions have an AVX2+FMA version (vector tanh through a polynomial
// exp, |error| < 2e-7) chosen at run time by dispatch.cc (family "boxte"), and a portable scalar version (TFREE_ISA=generic
// or no AVX2). Registered into the addon's exports by tfree_boxte_register (called from addon.cc).
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BOXTE_X86 1
#endif

#include "dispatch.h"
#include "threadpool.h"

using namespace tfree;

namespace {

// ---- per-relation box geometry for one side (d floats each) -------------------------------------
struct Box {
  const float *l, *u, *c, *w;
  const float *invw, *kappa, *dkappa;  // 1/w, (w-1)(w-1/w)/2, d kappa / d w
};

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

// backward of f * norm-part for one side: f is g/norm (l2) or g (l1)
void side_bwd_scalar(const float* P, const Box& b, float f, long d, bool useTanh, bool l2, float* gc, float* gw,
                     float* gSelf, float* gOther, float* gTb) {
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
    gSelf[k] += gx;
    gOther[k] += gx;
    gTb[k] += gx;
  }
}

// ---- AVX2 inner loops -----------------------------------------------------------------------------
#ifdef BOXTE_X86
#define AVX2_FN __attribute__((target("avx2,fma")))

// exp(x) for x in [-88, 0]
AVX2_FN inline __m256 exp_neg8(__m256 x) {
  const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
  const __m256 ln2hi = _mm256_set1_ps(0.693359375f);
  const __m256 ln2lo = _mm256_set1_ps(-2.12194440e-4f);
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, ln2hi, x);
  r = _mm256_fnmadd_ps(n, ln2lo, r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
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

AVX2_FN void side_bwd_avx2(const float* P, const Box& b, float f, long d, bool useTanh, bool l2, float* gc, float* gw,
                           float* gSelf, float* gOther, float* gTb) {
  const __m256 signmask = _mm256_set1_ps(-0.0f);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 zero = _mm256_setzero_ps();
  const __m256 fv = _mm256_set1_ps(f);
  long k = 0;
  for (; k + 8 <= d; k += 8) {
    const __m256 p = _mm256_loadu_ps(P + k);
    const __m256 diff = _mm256_sub_ps(p, _mm256_loadu_ps(b.c + k));
    const __m256 a = _mm256_andnot_ps(signmask, diff);
    // sign(diff) with sign(0) = 0
    const __m256 sg = _mm256_and_ps(_mm256_or_ps(one, _mm256_and_ps(diff, signmask)), _mm256_cmp_ps(diff, zero, _CMP_NEQ_OQ));
    const __m256 in = _mm256_and_ps(_mm256_cmp_ps(p, _mm256_loadu_ps(b.l + k), _CMP_GE_OQ),
                                    _mm256_cmp_ps(p, _mm256_loadu_ps(b.u + k), _CMP_LE_OQ));
    const __m256 iw = _mm256_loadu_ps(b.invw + k);
    const __m256 w = _mm256_loadu_ps(b.w + k);
    const __m256 dist = _mm256_blendv_ps(_mm256_fmsub_ps(a, w, _mm256_loadu_ps(b.kappa + k)), _mm256_mul_ps(a, iw), in);
    const __m256 dp = _mm256_mul_ps(sg, _mm256_blendv_ps(w, iw, in));
    const __m256 dw = _mm256_blendv_ps(_mm256_sub_ps(a, _mm256_loadu_ps(b.dkappa + k)),
                                       _mm256_xor_ps(_mm256_mul_ps(_mm256_mul_ps(a, iw), iw), signmask), in);
    const __m256 gd = l2 ? _mm256_mul_ps(fv, dist) : fv;
    const __m256 gp = _mm256_mul_ps(gd, dp);
    _mm256_storeu_ps(gc + k, _mm256_sub_ps(_mm256_loadu_ps(gc + k), gp));
    _mm256_storeu_ps(gw + k, _mm256_fmadd_ps(gd, dw, _mm256_loadu_ps(gw + k)));
    const __m256 gx = useTanh ? _mm256_mul_ps(gp, _mm256_fnmadd_ps(p, p, one)) : gp;
    _mm256_storeu_ps(gSelf + k, _mm256_add_ps(_mm256_loadu_ps(gSelf + k), gx));
    _mm256_storeu_ps(gOther + k, _mm256_add_ps(_mm256_loadu_ps(gOther + k), gx));
    _mm256_storeu_ps(gTb + k, _mm256_add_ps(_mm256_loadu_ps(gTb + k), gx));
  }
  if (k < d) side_bwd_scalar(P + k, Box{b.l + k, b.u + k, b.c + k, b.w + k, b.invw + k, b.kappa + k, b.dkappa + k}, f,
                             d - k, useTanh, l2, gc + k, gw + k, gSelf + k, gOther + k, gTb + k);
}
#endif

typedef float (*FwdFn)(const float*, const float*, const float*, const Box&, float*, long, bool, bool);
typedef void (*BwdFn)(const float*, const Box&, float, long, bool, bool, float*, float*, float*, float*, float*);

#ifdef BOXTE_X86
// dispatch.cc chooses the path of this family (TFREE_ISA / setIsa, CPU features)
bool use_avx2() { return kernels().boxte == Isa::avx2; }
#endif

FwdFn fwd_fn() {
#ifdef BOXTE_X86
  if (use_avx2()) return side_fwd_avx2;
#endif
  return side_fwd_scalar;
}
BwdFn bwd_fn() {
#ifdef BOXTE_X86
  if (use_avx2()) return side_bwd_avx2;
#endif
  return side_bwd_scalar;
}

// derived box arrays (invw, kappa, dkappa) for all 2*R*d entries
struct Derived {
  std::vector<float> invw, kappa, dkappa;
  explicit Derived(const float* w, long n) : invw(n), kappa(n), dkappa(n) {
    for (long i = 0; i < n; ++i) {
      const float wi = w[i];
      invw[i] = 1.0f / wi;
      kappa[i] = 0.5f * (wi - 1.0f) * (wi - 1.0f / wi);
      dkappa[i] = 0.5f * (wi - 1.0f / wi + (wi - 1.0f) * (1.0f + 1.0f / (wi * wi)));
    }
  }
};

Box box_at(const float* l, const float* u, const float* c, const float* w, const Derived& dv, long off) {
  return Box{l + off, u + off, c + off, w + off, dv.invw.data() + off, dv.kappa.data() + off, dv.dkappa.data() + off};
}

// ---- N-API helpers --------------------------------------------------------------------------------
struct Args {
  napi_env env;
  const char* fn;
  napi_value v[32];
  size_t n = 32;
  bool ok = true;
  Args(napi_env e, napi_callback_info info, const char* name) : env(e), fn(name) {
    napi_get_cb_info(e, info, &n, v, nullptr, nullptr);
  }
};

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

// boxteScoreBatch(d, E, Q, tanh, order, headTable, headAdd, tailTable, tailAdd, l, u, c, w, R, rel, out)
napi_value ScoreBatch(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteScoreBatch");
  const long d = integer(a, 0, "d", 1), E = integer(a, 1, "E", 0), Q = integer(a, 2, "Q", 0);
  const bool useTanh = flag(a, 3, "tanh");
  const bool l2 = integer(a, 4, "order", 1) == 2;
  const long R = integer(a, 13, "R", 1);
  const float* headTable = arr<float>(a, 5, "headTable", napi_float32_array, E * d);
  const float* headAdd = arr<float>(a, 6, "headAdd", napi_float32_array, Q * d);
  const float* tailTable = arr<float>(a, 7, "tailTable", napi_float32_array, E * d);
  const float* tailAdd = arr<float>(a, 8, "tailAdd", napi_float32_array, Q * d);
  const float* l = arr<float>(a, 9, "l", napi_float32_array, 2 * R * d);
  const float* u = arr<float>(a, 10, "u", napi_float32_array, 2 * R * d);
  const float* c = arr<float>(a, 11, "c", napi_float32_array, 2 * R * d);
  const float* w = arr<float>(a, 12, "w", napi_float32_array, 2 * R * d);
  const int32_t* rel = arr<int32_t>(a, 14, "rel", napi_int32_array, Q);
  float* out = arr<float>(a, 15, "out", napi_float32_array, Q * E);
  if (!ids_ok(a, rel, Q, R, "rel")) return nullptr;
  const Derived dv(w, 2 * R * d);
  const FwdFn fwd = fwd_fn();
  const long BLK = 256;
  const long nb = (E + BLK - 1) / BLK;
  auto task = [&](long blk, int) {
    const long x0 = blk * BLK, x1 = x0 + BLK < E ? x0 + BLK : E;
    for (long q = 0; q < Q; ++q) {
      const Box bh = box_at(l, u, c, w, dv, rel[q] * d);
      const Box bt = box_at(l, u, c, w, dv, R * d + rel[q] * d);
      const float* ha = headAdd + q * d;
      const float* ta = tailAdd + q * d;
      float* o = out + q * E;
      for (long x = x0; x < x1; ++x) {
        const float sh = fwd(headTable + x * d, ha, nullptr, bh, nullptr, d, useTanh, l2);
        const float st = fwd(tailTable + x * d, ta, nullptr, bt, nullptr, d, useTanh, l2);
        o[x] = l2 ? std::sqrt(sh) + std::sqrt(st) : sh + st;
      }
    }
  };
  parallel_tasks(nb, 0, task);
  napi_value undef;
  napi_get_undefined(env, &undef);
  return undef;
}

// boxteTrainGroups(B, n, d, tanh, order, base, bump, E, l, u, c, w, R, tb, h, r, t, negEnt, negTail, gradScale,
//                  gBase, gBump, gc, gw, gTb) -> loss summed over groups
napi_value TrainGroups(napi_env env, napi_callback_info info) {
  Args a(env, info, "boxteTrainGroups");
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
  if (!ids_ok(a, h, B, E, "h") || !ids_ok(a, t, B, E, "t") || !ids_ok(a, r, B, R, "r") || !ids_ok(a, negEnt, B * n, E, "negEnt"))
    return nullptr;
  const Derived dv(w, 2 * R * d);
  const FwdFn fwd = fwd_fn();
  const BwdFn bwd = bwd_fn();
  std::memset(gTb, 0, sizeof(float) * B * d);
  const long G = n + 1;
  int nth = pool_threads();
  if (nth > B) nth = B > 0 ? static_cast<int>(B) : 1;
  const long RD = 2 * R * d;
  // scratch gradients of chunks 1..nth-1: [base E*d | bump E*d | gc RD | gw RD]
  std::vector<std::vector<float>> scratch(nth > 1 ? nth - 1 : 0);
  std::vector<double> chunkLoss(nth, 0.0);
  auto task = [&](long chunk, int) {
    float *gB = gBase, *gU = gBump, *gC = gc, *gW = gw;
    if (chunk > 0) {
      std::vector<float>& s = scratch[chunk - 1];
      s.assign(2 * E * d + 2 * RD, 0.0f);
      gB = s.data();
      gU = gB + E * d;
      gC = gU + E * d;
      gW = gC + RD;
    }
    std::vector<float> P(G * 2 * d);
    std::vector<double> nh(G), nt(G), score(G);
    std::vector<int32_t> cand(2 * G);
    std::vector<float> acc(4 * d);
    const long i0 = chunk * B / nth, i1 = (chunk + 1) * B / nth;
    double loss = 0;
    for (long i = i0; i < i1; ++i) {
      const long bo = r[i] * d;
      const Box bh = box_at(l, u, c, w, dv, bo);
      const Box bt = box_at(l, u, c, w, dv, R * d + bo);
      const float* tbi = tb + i * d;
      for (long j = 0; j < G; ++j) {
        int32_t hh = h[i], tt = t[i];
        if (j > 0) {
          const long q = i * n + j - 1;
          if (negTail[q] == 1) tt = negEnt[q];
          else hh = negEnt[q];
        }
        cand[2 * j] = hh;
        cand[2 * j + 1] = tt;
        float* pj = P.data() + j * 2 * d;
        const double sh = fwd(base + hh * d, bump + tt * d, tbi, bh, pj, d, useTanh, l2);
        const double st = fwd(base + tt * d, bump + hh * d, tbi, bt, pj + d, d, useTanh, l2);
        nh[j] = l2 ? std::sqrt(sh) : sh;
        nt[j] = l2 ? std::sqrt(st) : st;
        score[j] = nh[j] + nt[j];
      }
      double mx = -INFINITY;
      for (long j = 0; j < G; ++j) mx = -score[j] > mx ? -score[j] : mx;
      double se = 0;
      for (long j = 0; j < G; ++j) se += std::exp(-score[j] - mx);
      const double lse = mx + std::log(se);
      loss += lse + score[0];
      // the rows of the true head and tail get most updates (every candidate shares one of them):
      // accumulate those in local buffers, scatter once per group
      std::fill(acc.begin(), acc.end(), 0.0f);
      float* aBaseH = acc.data();
      float* aBumpH = aBaseH + d;
      float* aBaseT = aBumpH + d;
      float* aBumpT = aBaseT + d;
      const int32_t h0 = h[i], t0 = t[i];
      for (long j = 0; j < G; ++j) {
        const double sm = std::exp(-score[j] - lse);
        const double g = -(sm - (j == 0 ? 1.0 : 0.0)) * gradScale;
        if (g == 0) continue;
        const int32_t hh = cand[2 * j], tt = cand[2 * j + 1];
        const float* pj = P.data() + j * 2 * d;
        const float fh = static_cast<float>(l2 ? (nh[j] > 0 ? g / nh[j] : 0.0) : g);
        const float ft = static_cast<float>(l2 ? (nt[j] > 0 ? g / nt[j] : 0.0) : g);
        float* baseH = hh == h0 ? aBaseH : gB + hh * d;
        float* bumpH = hh == h0 ? aBumpH : gU + hh * d;
        float* baseT = tt == t0 ? aBaseT : gB + tt * d;
        float* bumpT = tt == t0 ? aBumpT : gU + tt * d;
        if (fh != 0) bwd(pj, bh, fh, d, useTanh, l2, gC + bo, gW + bo, baseH, bumpT, gTb + i * d);
        if (ft != 0) bwd(pj + d, bt, ft, d, useTanh, l2, gC + R * d + bo, gW + R * d + bo, baseT, bumpH, gTb + i * d);
      }
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
  double loss = chunkLoss[0];
  for (int ch = 1; ch < nth; ++ch) {
    loss += chunkLoss[ch];
    const float* s = scratch[ch - 1].data();
    for (long i = 0; i < E * d; ++i) gBase[i] += s[i];
    for (long i = 0; i < E * d; ++i) gBump[i] += s[E * d + i];
    for (long i = 0; i < RD; ++i) gc[i] += s[2 * E * d + i];
    for (long i = 0; i < RD; ++i) gw[i] += s[2 * E * d + RD + i];
  }
  napi_value res;
  napi_create_double(env, loss, &res);
  return res;
}

}  // namespace

// Adds the BoxTE kernels to the addon's exports.
void tfree_boxte_register(napi_env env, napi_value exports) {
  napi_value fv;
  if (napi_create_function(env, "boxteScoreBatch", NAPI_AUTO_LENGTH, ScoreBatch, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteScoreBatch", fv);
  if (napi_create_function(env, "boxteTrainGroups", NAPI_AUTO_LENGTH, TrainGroups, nullptr, &fv) == napi_ok)
    napi_set_named_property(env, exports, "boxteTrainGroups", fv);
}
