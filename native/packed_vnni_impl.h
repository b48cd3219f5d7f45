// Driver of the int8-activation packed kernels with vpdpbusd (packed_avx512.cc: 512-bit AVX-512
// VNNI, and the 256-bit kernel with EVEX encoding; packed_avxvnni.cc: the 256-bit kernel with VEX
// encoding for AVX-VNNI CPUs without AVX-512), templated on a vector-width traits type T. Included by
// those translation units only; everything here has internal linkage (anonymous namespace), so no
// function compiled with one file's flags is shared with another (see threadpool.h).
//
// Same function as packed_matmul_generic in act8 mode (kernels.h, PackedArgs). Design:
//   - every format runs in the "offset" form: the unsigned operand of vpdpbusd (u8 x s8, four
//     products summed into an int32 lane, no int16 intermediate and so no saturation) holds
//     u = L8 - min(L8) in [0, 255], and the exact integer correction min(L8) * sum(x) of each group
//     is added to the group's sum. int8 weights: u = code ^ 0x80 (min = -128).
//   - weights are decoded in registers, per "super-chunk" of two level vectors (128 weights in
//     zmm, 64 in ymm; int8 codes: one vector, see vnni_nv) by T::decode; each 128-bit lane of the decoded vectors covers weights of one
//     group of 32 (the decoders are written so; checked at start-up from the decode order);
//   - activations are rounded per group (packed_quantize_x), stored per super-chunk in the decode
//     order (measured once by decoding one-hot codes), zero-padded to whole quads;
//   - four super-chunks ("a quad") give four int32 vectors, reduced by vpunpck/vpaddd to one in
//     which lane 4L + q is the sum of 128-bit lane L of super-chunk q (|lane| < 2^24: exact); the
//     correction vector (per activation row and quad, same lane order) is added, the result
//     converted and multiplied by the combined scales (block scale x level scale, then x activation
//     scale: the portable path's float32 products), permuted into the same lane order, in one FMA.
// Only the summation order of the float32 partial sums differs from the portable path.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

namespace {

// software prefetch distance of the codes (bytes ahead); int8 codes go without (no gain measured
// on Zen 4, where the prefetches were the hottest instructions of the int8 loop)
constexpr int kPrefetch = 4096;

// A heap buffer (no standard containers in ISA-specific objects: weak symbols, see threadpool.h)
template <class E>
struct VBuf {
  E* p;
  explicit VBuf(long n) : p(static_cast<E*>(std::aligned_alloc(64, static_cast<size_t>(((n > 0 ? n : 1) * static_cast<long>(sizeof(E)) + 63) / 64 * 64)))) {
    if (p) std::memset(p, 0, static_cast<size_t>(((n > 0 ? n : 1) * static_cast<long>(sizeof(E)) + 63) / 64 * 64));
  }
  ~VBuf() { std::free(p); }
  VBuf(const VBuf&) = delete;
  VBuf& operator=(const VBuf&) = delete;
};

template <class T>
struct VnniCtx {
  const tfree::PackedArgs* a;
  long nQ, Kp, QW, U, nXs;
  float ls;
  typename T::Tabs tabs;
  const int8_t* x8;     // M x Kp, per super-chunk in decode order
  const int32_t* corr;  // M x nQ x T::VL, lane order of the reduced sums
  const float* xs;      // M x nXs (activation group scales, zero-padded)
  const long* qOff;     // per quad: first block scale, first activation scale (no division in the loop)
  alignas(64) int32_t idxS[16];  // lane -> block scale index within the quad
  alignas(64) int32_t idxX[16];  // lane -> activation group index within the quad
};

#include "quantize_x_avx2.h"

// Level vectors per super-chunk: two for the decoded formats; one for int8 codes, which need no
// decoding beyond the offset (a pair would have to be regrouped with cross-lane shuffles so that
// each 128-bit lane stays inside one group of 32, and those cost more than the extra reductions).
template <int BITS>
constexpr int vnni_nv() {
  return BITS == 8 ? 1 : 2;
}

template <class T>
inline typename T::vi reduce4(const typename T::vi s[4]) {
  const typename T::vi t0 = T::add(T::unpacklo32(s[0], s[1]), T::unpackhi32(s[0], s[1]));
  const typename T::vi t1 = T::add(T::unpacklo32(s[2], s[3]), T::unpackhi32(s[2], s[3]));
  return T::add(T::unpacklo64(t0, t1), T::unpackhi64(t0, t1));
}

// One quad (four super-chunks, codes at p) of a row against activation rows m0 .. m0 + MG - 1, added
// into acc. Every operand comes by value or as a running pointer: the loop below keeps them in
// registers.
template <class T, int BITS, bool X, int MG>
__attribute__((always_inline)) inline void vnni_quad(const uint8_t* p, const typename T::Tabs& tabs, const int8_t* const* xq, const long* qo,
                                                     const int32_t* const* cq, const float* const* xsq, const uint16_t* srow, bool bf16,
                                                     typename T::vf vls, typename T::vi idxS, typename T::vi idxX, typename T::vf* acc) {
  using vi = typename T::vi;
  using vf = typename T::vf;
  constexpr int NV = vnni_nv<BITS>(), SCW = NV * T::VB, CB = SCW * BITS / 8;
  vi s[MG][4];
  for (int q = 0; q < 4; ++q) {
    vi lv[NV];
    T::template decode<BITS, X>(p + q * CB, tabs, lv);
    for (int j = 0; j < MG; ++j) {
      const int8_t* x = xq[j] + q * SCW;
      vi t = T::dp(T::zero(), lv[0], T::load(x));
      if (NV == 2) t = T::dp(t, lv[NV - 1], T::load(x + T::VB));
      s[j][q] = t;
    }
  }
  const vf sc = T::permf(T::mulf(T::scales(srow + qo[0], bf16), vls), idxS);
  for (int j = 0; j < MG; ++j) {
    const vi r = T::add(reduce4<T>(s[j]), T::load(cq[j]));
    const vf f = T::mulf(sc, T::permf(T::loadf(xsq[j] + qo[1]), idxX));
    acc[j] = T::fma(T::cvt(r), f, acc[j]);
  }
}

// rows [n0, n1) of W against activation rows [m0, m0 + MG)
// (The context's fields are copied into locals and the partial last quad, whose zero-padded copy
// of the codes is a memcpy call, runs after the loop: with that call inside it, GCC reloaded
// c.x8, c.Kp, c.corr, c.xs, c.nXs, c.qOff, the code table and a.scaleBf16 from memory in every quad
// and spilled the accumulators around the call's path, as the AdamW loop of the HAT eighth pass
// did: docs/results/engine.md, "GEMV: context reloads".)
template <class T, int BITS, bool X, int MG>
void vnni_rows(const VnniCtx<T>& c, long n0, long n1, long m0, uint16_t* sbuf) {
  using vi = typename T::vi;
  using vf = typename T::vf;
  constexpr int NV = vnni_nv<BITS>(), SCW = NV * T::VB, CB = SCW * BITS / 8;
  const tfree::PackedArgs& a = *c.a;
  const long K = a.K, N = a.N, B = a.B, nB = K / B, rb = K * BITS / 8, nQ = c.nQ;
  const uint8_t* const codes = a.codes;
  const uint16_t* const scales = a.scales;
  float* const out = a.out;
  const bool bf16 = a.scaleBf16;
  const typename T::Tabs tabs = c.tabs;
  const long* const qOff = c.qOff;
  const vi idxS = T::load(c.idxS), idxX = T::load(c.idxX);
  const vf vls = T::set1f(c.ls);
  const long nFull = rb / (4 * CB) < nQ ? rb / (4 * CB) : nQ;  // quads whose codes lie inside the row
  const int8_t* x0[MG];
  const int32_t* c0[MG];
  const float* xs0[MG];
  for (int j = 0; j < MG; ++j) {
    x0[j] = c.x8 + (m0 + j) * c.Kp;
    c0[j] = c.corr + (m0 + j) * nQ * T::VL;
    xs0[j] = c.xs + (m0 + j) * c.nXs;
  }
  for (long n = n0; n < n1; ++n) {
    const uint8_t* row = codes + n * rb;
    // a quad's scale load reads up to 16 values from its first: in place unless that could pass the
    // end of the array (the last rows)
    const uint16_t* srow = scales + n * nB;
    if ((N - 1 - n) * nB < 16) {
      std::memcpy(sbuf, srow, static_cast<size_t>(nB) * 2);
      srow = sbuf;
    }
    vf acc[MG];
    for (int j = 0; j < MG; ++j) acc[j] = T::zerof();
    const int8_t* xq[MG];
    const int32_t* cq[MG];
    for (int j = 0; j < MG; ++j) xq[j] = x0[j], cq[j] = c0[j];
    const uint8_t* p = row;
    const long* qo = qOff;
    for (long qd = 0; qd < nFull; ++qd) {
      if (kPrefetch > 0 && BITS < 8)
        for (int l = 0; l < 4 * CB; l += 64) _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetch + l), _MM_HINT_T0);
      vnni_quad<T, BITS, X, MG>(p, tabs, xq, qo, cq, xs0, srow, bf16, vls, idxS, idxX, acc);
      p += 4 * CB;
      qo += 2;
      for (int j = 0; j < MG; ++j) xq[j] += 4 * SCW, cq[j] += T::VL;
    }
    for (long qd = nFull; qd < nQ; ++qd) {  // the last, partial quad: codes zero-padded (activations are 0 there)
      alignas(64) uint8_t tail[4 * CB];
      std::memset(tail, 0, sizeof tail);
      std::memcpy(tail, p, static_cast<size_t>(rb - qd * 4 * CB));
      vnni_quad<T, BITS, X, MG>(tail, tabs, xq, qo, cq, xs0, srow, bf16, vls, idxS, idxX, acc);
      p += 4 * CB;
      qo += 2;
      for (int j = 0; j < MG; ++j) xq[j] += 4 * SCW, cq[j] += T::VL;
    }
    for (int j = 0; j < MG; ++j) out[(m0 + j) * N + n] = T::hsum(acc[j]);
  }
}

template <class T, int BITS, bool X>
void vnni_run(const VnniCtx<T>& c) {
  const tfree::PackedArgs& a = *c.a;
  const long N = a.N, M = a.M;
  const int Th = tfree::pool_threads();
  const long work = N * a.K * (M < T::kRows ? M : T::kRows);
  long ntasks = (Th <= 1 || work < 262144) ? 1 : 8L * Th;
  if (ntasks > N) ntasks = N;
  const long chunkN = (N + ntasks - 1) / ntasks;
  const long nB = a.K / a.B;
  auto body = [&](long t, int) {
    const long n0 = t * chunkN, n1 = (n0 + chunkN < N) ? n0 + chunkN : N;
    if (n0 >= n1) return;
    VBuf<uint16_t> sbuf(nB + 64);
    if (!sbuf.p) tfree::out_of_memory("packed matmul", 2.0 * (nB + 64));
    for (long m0 = 0; m0 < M; m0 += T::kRows) {
      switch (M - m0 >= T::kRows ? T::kRows : M - m0) {
        case 1: vnni_rows<T, BITS, X, 1>(c, n0, n1, m0, sbuf.p); break;
        case 2: vnni_rows<T, BITS, X, (T::kRows >= 2 ? 2 : 1)>(c, n0, n1, m0, sbuf.p); break;
        case 3: vnni_rows<T, BITS, X, (T::kRows >= 3 ? 3 : 1)>(c, n0, n1, m0, sbuf.p); break;
        default: vnni_rows<T, BITS, X, T::kRows>(c, n0, n1, m0, sbuf.p); break;
      }
    }
  };
  tfree::parallel_tasks(ntasks, 0, body);
}

// Decode order of one super-chunk (position p of the NV level vectors holds element perm[p]),
// from one-hot code chunks, as the AVX2 kernel measures its own.
template <class T, int BITS>
void vnni_perm(uint8_t* perm) {
  constexpr int NV = vnni_nv<BITS>(), SCW = NV * T::VB, CB = SCW * BITS / 8;
  uint8_t u[16] = {0};
  u[1] = 1;
  const typename T::Tabs tabs = T::tabs(u, BITS);
  for (int e = 0; e < SCW; ++e) {
    alignas(64) uint8_t buf[CB];
    if (BITS == 8) {
      std::memset(buf, 0x80, CB);
      buf[e] = 0x81;
    } else {
      std::memset(buf, 0, CB);
      const long bit = static_cast<long>(e) * BITS + (BITS - 1);  // the code's lowest bit
      buf[bit >> 3] = static_cast<uint8_t>(0x80 >> (bit & 7));
    }
    typename T::vi lv[NV];
    T::template decode<BITS, false>(buf, tabs, lv);
    alignas(64) uint8_t out[SCW];
    for (int v = 0; v < NV; ++v) T::store(out + v * T::VB, lv[v]);
    for (int p = 0; p < SCW; ++p)
      if (out[p] == 1) perm[p] = static_cast<uint8_t>(e);
  }
}

inline bool vnni_int8_identity(const float* levels) {
  for (int c = 0; c < 256; ++c)
    if (levels[c] != static_cast<float>(c < 128 ? c : c - 256)) return false;
  return true;
}

// Runs the kernel; false when this layout has no fast path here (the caller falls back).
template <class T, int BITS>
bool vnni_matmul_bits(const tfree::PackedArgs& a) {
  constexpr int NV = vnni_nv<BITS>(), SCW = NV * T::VB;
  constexpr int NL = T::VB / 16;  // 128-bit lanes per vector
  const long K = a.K, M = a.M, B = a.B;
  const long QW = 4 * SCW;
  if (!(B == 32 || B % 64 == 0) || !(QW % B == 0 || B % QW == 0)) return false;
  VnniCtx<T> c;
  c.a = &a;
  c.QW = QW;
  c.U = B == 32 ? 32 : 64;
  c.nQ = (K + QW - 1) / QW;
  c.Kp = c.nQ * QW;
  c.nXs = c.Kp / c.U + 16;
  int lmin;
  uint8_t u[16] = {0};
  if (BITS == 8) {
    if (!vnni_int8_identity(a.levels)) return false;
    c.ls = 1.0f;
    lmin = -128;
  } else {
    int16_t L8[16];
    const int nl = 1 << BITS;
    tfree::packed_levels_i8(a.levels, nl, L8, &c.ls);
    int lmax = L8[0];
    lmin = L8[0];
    for (int i = 1; i < nl; ++i) {
      lmin = L8[i] < lmin ? L8[i] : lmin;
      lmax = L8[i] > lmax ? L8[i] : lmax;
    }
    if (lmax - lmin > 255) return false;
    for (int i = 0; i < nl; ++i) u[i] = static_cast<uint8_t>(L8[i] - lmin);
  }
  c.tabs = T::tabs(u, BITS);
  static const struct Perm {
    uint8_t v[SCW];
    Perm() { vnni_perm<T, BITS>(v); }
  } perm;
  // the group of 32 that each 128-bit lane covers (all its elements must lie in one)
  int lg[NL];
  for (int L = 0; L < NL; ++L) {
    lg[L] = -1;
    for (int v = 0; v < NV; ++v)
      for (int i = 0; i < 16; ++i) {
        const int g = perm.v[v * T::VB + 16 * L + i] / 32;
        if (lg[L] >= 0 && lg[L] != g) return false;
        lg[L] = g;
      }
  }
  for (int L = 0; L < NL; ++L)
    for (int q = 0; q < 4; ++q) {
      const long e = q * SCW + lg[L] * 32;  // first element of the lane's group within the quad
      c.idxS[4 * L + q] = static_cast<int32_t>(B <= QW ? e / B : 0);
      c.idxX[4 * L + q] = static_cast<int32_t>(e / c.U);
    }
  VBuf<int16_t> nat(K + 64);
  VBuf<int8_t> x8(M * c.Kp);
  VBuf<int32_t> corr(M * c.nQ * T::VL);
  VBuf<float> xs(M * c.nXs);
  if (!nat.p || !x8.p || !corr.p || !xs.p) return false;
  for (long m = 0; m < M; ++m) {
    quantize_x_avx2(a.x + m * K, K, c.U, 127.0f, nat.p, xs.p + m * c.nXs);
    int8_t* xm = x8.p + m * c.Kp;
    const long full = K / SCW;  // super-chunks inside the row (the rest is zero-padded)
    for (long sc = 0; sc < full; ++sc) {
      const int16_t* ns = nat.p + sc * SCW;
      int8_t* xo = xm + sc * SCW;
      for (int p = 0; p < SCW; ++p) xo[p] = static_cast<int8_t>(ns[perm.v[p]]);
    }
    for (long sc = full; sc < c.Kp / SCW; ++sc)
      for (int p = 0; p < SCW; ++p) {
        const long e = sc * SCW + perm.v[p];
        xm[sc * SCW + p] = static_cast<int8_t>(e < K ? nat.p[e] : 0);
      }
    // correction of each reduced lane (L, q): min(L8) x the sum of the activations it covers
    for (long qd = 0; qd < c.nQ; ++qd)
      for (int q = 0; q < 4; ++q) {
        const int8_t* xs8 = xm + (qd * 4 + q) * SCW;
        for (int L = 0; L < NL; ++L) {
          int32_t sum = 0;
          for (int v = 0; v < NV; ++v)
            for (int i = 0; i < 16; ++i) sum += xs8[v * T::VB + 16 * L + i];
          corr.p[(m * c.nQ + qd) * T::VL + 4 * L + q] = lmin * sum;
        }
      }
  }
  VBuf<long> qOff(2 * c.nQ);
  if (!qOff.p) return false;
  for (long qd = 0; qd < c.nQ; ++qd) {
    qOff.p[2 * qd] = qd * QW / B;
    qOff.p[2 * qd + 1] = qd * QW / c.U;
  }
  c.x8 = x8.p;
  c.corr = corr.p;
  c.xs = xs.p;
  c.qOff = qOff.p;
  // "xor" form: u = code ^ 2^(bits-1) (int4, int2: two's complement integer levels), decoded
  // without the table lookup
  bool xorForm = BITS == 4 || BITS == 2;
  for (int i = 0; i < (1 << BITS) && BITS < 8; ++i) xorForm = xorForm && u[i] == (i ^ (1 << (BITS - 1)));
  if (xorForm) vnni_run<T, BITS, true>(c);
  else vnni_run<T, BITS, false>(c);
  return true;
}

// Runs the act8 kernel for the formats it computes; false when the caller must fall back.
template <class T>
bool vnni_matmul(const tfree::PackedArgs& a) {
  if (!a.act8) return false;
  switch (a.bits) {
    case 1: return vnni_matmul_bits<T, 1>(a);
    case 2: return vnni_matmul_bits<T, 2>(a);
    case 4: return vnni_matmul_bits<T, 4>(a);
    case 8: return vnni_matmul_bits<T, 8>(a);
    default: return false;
  }
}

// 256-bit vectors (AVX2 operations; vpdpbusd by TFREE_DPBUSD256, VEX or EVEX as the including file
// defines it)
struct Y256 {
  static constexpr int VB = 32, VL = 8, kRows = 2;
  typedef __m256i vi;
  typedef __m256 vf;
  struct Tabs {
    __m256i tab, t0, t1;
  };
  static inline Tabs tabs(const uint8_t* u, int) {
    Tabs t;
    t.tab = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(u)));
    t.t0 = _mm256_set1_epi8(static_cast<char>(u[0]));
    t.t1 = _mm256_set1_epi8(static_cast<char>(u[1]));
    return t;
  }
  template <int BITS, bool X>
  static inline void decode(const uint8_t* p, const Tabs& t, vi* lv) {
    if (BITS == 8) {  // 32 codes, one vector (vnni_nv): lane L = elements 16L..16L+15
      lv[0] = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_set1_epi8(static_cast<char>(0x80)));
    } else if (BITS == 4 && X) {  // u = code ^ 8
      const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_set1_epi8(static_cast<char>(0x88)));
      const __m256i m = _mm256_set1_epi8(0x0F);
      lv[0] = _mm256_and_si256(v, m);
      lv[1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
    } else if (BITS == 4) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), m = _mm256_set1_epi8(0x0F);
      lv[0] = _mm256_shuffle_epi8(t.tab, _mm256_and_si256(v, m));
      lv[1] = _mm256_shuffle_epi8(t.tab, _mm256_and_si256(_mm256_srli_epi16(v, 4), m));
    } else if (BITS == 2) {  // lane L: code bytes 8L..8L+7 (elements 32L..32L+31) in both quadwords
      const __m256i v = _mm256_permute4x64_epi64(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 0x50);
      const __m256i m = _mm256_set1_epi8(0x03);
      lv[0] = _mm256_shuffle_epi8(t.tab, _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(6, 4, 6, 4)), m));
      lv[1] = _mm256_shuffle_epi8(t.tab, _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_setr_epi64x(2, 0, 2, 0)), m));
    } else {  // 1 bit: lane L byte i of lv[h] = element 32L + 16h + i, selected by its code bit
      int64_t w;
      std::memcpy(&w, p, 8);
      const __m256i v = _mm256_set1_epi64x(w);
      const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x0102040810204080ULL));
      const __m256i i0 = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5);
      const __m256i i1 = _mm256_add_epi8(i0, _mm256_set1_epi8(2));
      lv[0] = _mm256_blendv_epi8(t.t0, t.t1, _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(v, i0), bit), bit));
      lv[1] = _mm256_blendv_epi8(t.t0, t.t1, _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(v, i1), bit), bit));
    }
  }
  static inline vi zero() { return _mm256_setzero_si256(); }
  static inline vf zerof() { return _mm256_setzero_ps(); }
  static inline vf set1f(float f) { return _mm256_set1_ps(f); }
  static inline vi load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
  static inline void store(void* p, vi v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
  static inline vf loadf(const float* p) { return _mm256_loadu_ps(p); }
  static inline vi add(vi a, vi b) { return _mm256_add_epi32(a, b); }
  static inline vi unpacklo32(vi a, vi b) { return _mm256_unpacklo_epi32(a, b); }
  static inline vi unpackhi32(vi a, vi b) { return _mm256_unpackhi_epi32(a, b); }
  static inline vi unpacklo64(vi a, vi b) { return _mm256_unpacklo_epi64(a, b); }
  static inline vi unpackhi64(vi a, vi b) { return _mm256_unpackhi_epi64(a, b); }
  static inline vi dp(vi acc, vi u, vi s) { return TFREE_DPBUSD256(acc, u, s); }
  static inline vf cvt(vi v) { return _mm256_cvtepi32_ps(v); }
  static inline vf mulf(vf a, vf b) { return _mm256_mul_ps(a, b); }
  static inline vf fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
  static inline vf permf(vf v, vi idx) { return _mm256_permutevar8x32_ps(v, idx); }
  // 8 block scales (bf16 or f16 bit patterns) as float32
  static inline vf scales(const uint16_t* s, bool bf16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    return bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)) : _mm256_cvtph_ps(h);
  }
  static inline float hsum(vf v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

}  // namespace
