// Packed-weight matmul with AVX2 (compiled with -mavx2 -mfma; called only when the CPU check found
// both). Same function as packed_matmul_generic (see PackedArgs in kernels.h), both activation modes.
//
// Design (docs/compression.md, "Kernels"): weights are never widened to float. Weights are taken in
// chunks of 64; the packed codes of a chunk are decoded in registers to two vectors of 32 code bytes:
//   - 4-bit: one 32-byte load, nibbles split with a shift and a mask;
//   - 2-bit: one 16-byte load broadcast to both lanes, crumbs split with vpsrlvd and a mask;
//   - 1-bit: one 8-byte load broadcast, bits expanded with vpshufb / vpand / vpcmpeqb;
//   - 8-bit integer codes are the levels themselves.
// int16 activations (act8 false): a vpshufb pair maps each code to the low and high byte of its int16
// level (the 16-entry codebook lives in two registers; for k-means it is the codebook in 13-bit
// fixed point), vpunpck{l,h}bw interleaves them, and vpmaddwd multiplies with the int16 activations:
// 16 products per instruction. int8 activations (act8 true): one vpshufb maps each code to its int8
// level (1-bit: vpblendvb of the two levels by the bit masks), and vpmaddubsw (u8 x s8 -> pairs
// summed in int16) multiplies 32 weights per instruction:
//   - "offset" form when the int8 levels span at most 129 values (every <= 4-bit format; k-means
//     centroids are 7-bit in this mode): the table holds u = L - min(L) >= 0, and the exact
//     correction min(L) * sum(x) of each group is added to its integer sum; when the span is <= 64
//     (int4, int2, ternary, bin1) two products are summed in int16 first;
//   - "sign" form otherwise (int8 weights): vpmaddubsw(|L|, sign(x, L)).
// vpmaddwd by ones widens to int32 (two's complement int4 / int2 levels, u = code ^ X <= 15: the
// XOR decode, and a quad's four chunks are summed in int16 before one vpmaddwd).
// Activations are rounded per group (64, or 32 for block 32) and
// stored in the order the decode produces (a fixed permutation per bit width and mode, measured once
// at start-up by decoding one-hot codes), zero-padded to whole chunks (K a multiple of 32 with block
// 32: the last chunk is half empty). The int32 sums are converted and scaled (block scale x level
// scale x activation scale) into float32 accumulators: per chunk in int16 mode; in int8 mode (GEMV
// and 2 rows, blocks of 64k) four chunks' sums are first reduced to one vector (lanes < 2^24: exact).
// No saturation: |pair| <= 2 x 129 x 127 resp. 2 x 128 x 127 < 32768. Up to 4 activation rows
// share each decoded chunk (small-batch GEMM); rows of W are split over the thread pool.
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

namespace tfree {
namespace {

// A heap buffer with internal linkage. No standard containers in this file: their out-of-line
// members are weak symbols compiled with -mavx2 that the linker could pick for the generic path.
template <class T>
struct Buf {
  T* p;
  explicit Buf(long n) : p(static_cast<T*>(std::calloc(static_cast<size_t>(n > 0 ? n : 1), sizeof(T)))) {}
  ~Buf() { std::free(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  T* data() const { return p; }
};

struct Perm {
  uint8_t v[64];
};

struct Tables {
  __m256i lo, hi;  // int16 level bytes per code, both lanes
};

struct Dec4 {
  static constexpr int kBytes = 32;
  static inline void codes(const uint8_t* p, __m256i& c0, __m256i& c1) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i m = _mm256_set1_epi8(0x0F);
    c0 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);  // even elements (high nibbles)
    c1 = _mm256_and_si256(v, m);                        // odd elements
  }
};

struct Dec2 {
  static constexpr int kBytes = 16;
  static inline void codes(const uint8_t* p, __m256i& c0, __m256i& c1) {
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256i m = _mm256_set1_epi8(0x03);
    c0 = _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(6, 6, 6, 6, 4, 4, 4, 4)), m);
    c1 = _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(2, 2, 2, 2, 0, 0, 0, 0)), m);
  }
};

struct Dec1 {
  static constexpr int kBytes = 8;
  // 0xFF where the code bit is 1, else 0 (element order: bytes 0..31 of m0 = elements 0..31)
  static inline void masks(const uint8_t* p, __m256i& m0, __m256i& m1) {
    int64_t u;
    std::memcpy(&u, p, 8);
    const __m256i v = _mm256_set1_epi64x(u);
    const __m256i sel0 = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                                          3, 3, 3, 3, 3, 3);
    const __m256i sel1 = _mm256_add_epi8(sel0, _mm256_set1_epi8(4));
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x0102040810204080ULL));
    m0 = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(v, sel0), bit), bit);
    m1 = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(v, sel1), bit), bit);
  }
  static inline void codes(const uint8_t* p, __m256i& c0, __m256i& c1) {
    masks(p, c0, c1);
    const __m256i one = _mm256_set1_epi8(1);
    c0 = _mm256_and_si256(c0, one);
    c1 = _mm256_and_si256(c1, one);
  }
};

template <class D>
inline void decode16(const uint8_t* p, const Tables& t, __m256i w[4]) {
  __m256i c0, c1;
  D::codes(p, c0, c1);
  __m256i a = _mm256_shuffle_epi8(t.lo, c0), b = _mm256_shuffle_epi8(t.hi, c0);
  w[0] = _mm256_unpacklo_epi8(a, b);
  w[1] = _mm256_unpackhi_epi8(a, b);
  a = _mm256_shuffle_epi8(t.lo, c1);
  b = _mm256_shuffle_epi8(t.hi, c1);
  w[2] = _mm256_unpacklo_epi8(a, b);
  w[3] = _mm256_unpackhi_epi8(a, b);
}

struct Dec8 {
  static constexpr int kBytes = 64;
};

template <>
inline void decode16<Dec8>(const uint8_t* p, const Tables&, __m256i w[4]) {
  for (int i = 0; i < 4; ++i) w[i] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i)));
}

// int8 mode: the two vectors of 32 levels (offset form: u = L - min; sign form: L)
template <class D>
inline void decode8(const uint8_t* p, __m256i tab, __m256i& v0, __m256i& v1) {
  __m256i c0, c1;
  D::codes(p, c0, c1);
  v0 = _mm256_shuffle_epi8(tab, c0);
  v1 = _mm256_shuffle_epi8(tab, c1);
}

// int8 offset form when u = code ^ X for every code (int4: X = 8, int2: X = 2, the two's
// complement levels): the codes of 4 / 2 bits are XORed with X in every field before they are
// split, which replaces the two table lookups (x = X in every field of a byte, both lanes)
template <class D>
inline void decode8x(const uint8_t* p, __m256i x, __m256i& v0, __m256i& v1);

template <>
inline void decode8x<Dec4>(const uint8_t* p, __m256i x, __m256i& v0, __m256i& v1) {
  const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), x);
  const __m256i m = _mm256_set1_epi8(0x0F);
  v0 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
  v1 = _mm256_and_si256(v, m);
}

template <>
inline void decode8x<Dec2>(const uint8_t* p, __m256i x, __m256i& v0, __m256i& v1) {
  const __m256i v = _mm256_xor_si256(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), x);
  const __m256i m = _mm256_set1_epi8(0x03);
  v0 = _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(6, 6, 6, 6, 4, 4, 4, 4)), m);
  v1 = _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(2, 2, 2, 2, 0, 0, 0, 0)), m);
}

template <>
inline void decode8x<Dec1>(const uint8_t* p, __m256i, __m256i& v0, __m256i& v1) {
  Dec1::codes(p, v0, v1);  // not used (1-bit codes take the blend)
}

template <>
inline void decode8x<Dec8>(const uint8_t* p, __m256i, __m256i& v0, __m256i& v1) {
  v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));  // not used (int8 codes: sign form)
  v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
}

// 1-bit: the bit masks select between the table's two entries (vpblendvb) instead of a lookup
template <>
inline void decode8<Dec1>(const uint8_t* p, __m256i tab, __m256i& v0, __m256i& v1) {
  __m256i m0, m1;
  Dec1::masks(p, m0, m1);
  const __m256i t0 = _mm256_shuffle_epi8(tab, _mm256_setzero_si256());
  const __m256i t1 = _mm256_shuffle_epi8(tab, _mm256_set1_epi8(1));
  v0 = _mm256_blendv_epi8(t0, t1, m0);
  v1 = _mm256_blendv_epi8(t0, t1, m1);
}

template <>
inline void decode8<Dec8>(const uint8_t* p, __m256i, __m256i& v0, __m256i& v1) {
  v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
}

// Position p of the decoded stream holds element perm[p] of the chunk: found by decoding one-hot
// code chunks (code 1 at element e, 0 elsewhere). int16 mode: the int16 stream with levels
// [0, 1, 0, ...]; int8 mode: the 64 code bytes.
template <class D>
Perm measure_perm(int bits, bool act8) {
  Perm perm = {};
  Tables t;
  alignas(32) int8_t lo[32] = {0};
  lo[1] = 1;
  lo[17] = 1;
  t.lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
  t.hi = _mm256_setzero_si256();
  for (int e = 0; e < 64; ++e) {
    uint8_t buf[64] = {0};
    const long bit = static_cast<long>(e) * bits + (bits - 1);  // the code's lowest bit
    buf[bit >> 3] = static_cast<uint8_t>(0x80 >> (bit & 7));
    alignas(32) int16_t out[64];
    if (act8) {
      __m256i v0, v1;
      decode8<D>(buf, t.lo, v0, v1);
      alignas(32) int8_t b8[64];
      _mm256_store_si256(reinterpret_cast<__m256i*>(b8), v0);
      _mm256_store_si256(reinterpret_cast<__m256i*>(b8 + 32), v1);
      for (int p = 0; p < 64; ++p) out[p] = b8[p];
    } else {
      __m256i w[4];
      decode16<D>(buf, t, w);
      for (int i = 0; i < 4; ++i) _mm256_store_si256(reinterpret_cast<__m256i*>(out + 16 * i), w[i]);
    }
    for (int p = 0; p < 64; ++p)
      if (out[p] == 1) perm.v[p] = static_cast<uint8_t>(e);
  }
  return perm;
}

struct Dec8Perm {
  Perm p;
  Dec8Perm() {
    for (int i = 0; i < 64; ++i) p.v[i] = static_cast<uint8_t>(i);
  }
};

const uint8_t* perm_for(int bits, bool act8) {
  static const Perm p1 = measure_perm<Dec1>(1, false), p2 = measure_perm<Dec2>(2, false), p4 = measure_perm<Dec4>(4, false);
  static const Perm q1 = measure_perm<Dec1>(1, true), q2 = measure_perm<Dec2>(2, true), q4 = measure_perm<Dec4>(4, true);
  static const Dec8Perm id;
  if (bits == 8) return id.p.v;
  if (act8) return bits == 1 ? q1.v : bits == 2 ? q2.v : q4.v;
  return bits == 1 ? p1.v : bits == 2 ? p2.v : p4.v;
}

#include "quantize_x_avx2.h"

// The int8-mode decode order of a whole chunk as vpshufb controls: output vector j (positions
// 32 j .. 32 j + 31) = OR over the four 16-element quarters s of the chunk (broadcast to both lanes)
// of vpshufb(quarter s, idx[j][s]), idx = the element's place in the quarter, or 0x80 (zero) when
// the element lies in another quarter.
struct PermIdx {
  __m256i idx[2][4];
  bool identity;
};

PermIdx make_perm_idx(const uint8_t* perm) {
  PermIdx r;
  r.identity = true;
  for (int j = 0; j < 2; ++j)
    for (int s = 0; s < 4; ++s) {
      alignas(32) uint8_t b[32];
      for (int i = 0; i < 32; ++i) {
        const int e = perm[32 * j + i];
        b[i] = e / 16 == s ? static_cast<uint8_t>(e % 16) : 0x80;
      }
      r.idx[j][s] = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
    }
  for (int p = 0; p < 64; ++p) r.identity = r.identity && perm[p] == p;
  return r;
}

const PermIdx* perm_idx(int bits) {
  static const PermIdx p1 = make_perm_idx(perm_for(1, true)), p2 = make_perm_idx(perm_for(2, true)), p4 = make_perm_idx(perm_for(4, true)),
                       p8 = make_perm_idx(perm_for(8, true));
  return bits == 1 ? &p1 : bits == 2 ? &p2 : bits == 4 ? &p4 : &p8;
}

// the 64 int16 activations of a chunk (|v| <= 127) as int8 in decode order
inline void permute64(const int16_t* ns, const PermIdx* pix, int8_t* out) {
  const __m256i a = _mm256_permute4x64_epi64(_mm256_packs_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ns)), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ns + 16))), 0xD8);
  const __m256i b = _mm256_permute4x64_epi64(_mm256_packs_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ns + 32)), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ns + 48))), 0xD8);
  if (pix->identity) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), a);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32), b);
    return;
  }
  const __m256i q[4] = {_mm256_permute2x128_si256(a, a, 0x00), _mm256_permute2x128_si256(a, a, 0x11), _mm256_permute2x128_si256(b, b, 0x00),
                        _mm256_permute2x128_si256(b, b, 0x11)};
  for (int j = 0; j < 2; ++j) {
    __m256i o = _mm256_shuffle_epi8(q[0], pix->idx[j][0]);
    for (int s = 1; s < 4; ++s) o = _mm256_or_si256(o, _mm256_shuffle_epi8(q[s], pix->idx[j][s]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * j), o);
  }
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// kernel forms: int16 activations; int8 offset form with int16 pre-sum; int8 offset; int8 sign;
// int8 offset form with int16 pre-sum and the XOR decode (decode8x)
enum Form { kI16 = 0, kOff16 = 1, kOff = 2, kSign = 3, kOff16X = 4 };

// software prefetch distance of the codes, bytes ahead (rows of a task are contiguous, so this runs
// into the next rows)
constexpr long kPrefetch = 4096;
// the GEMV's four-stream loop (rows_nr with NR = 4) prefetches 512 bytes ahead: its four code streams
// and the hardware prefetchers keep the memory busy, a longer distance only fills L1 (int8, cold,
// 1 thread, vs 512: 0 bytes 1.05x the time, 256 1.00-1.04x, 1024 1.07-1.10x, 2048 1.1-1.2x, 4096
// 1.1-1.25x; warm 2048 and 4096 were 2-12 % slower than the two-stream loop, 512 the same)
constexpr long kPrefetch4 = 512;

struct Ctx {
  const PackedArgs* a;
  long rb, nC, nU, nB, Kp;  // Kp = 64 nC: row length of the activation buffers
  bool half = false;        // block 32: each chunk has two scales and two activation groups
  bool tail = false;        // K % 64 == 32: the last chunk holds 32 weights
  float ls;
  Tables t;                 // int16 mode
  __m256i tab;              // int8 mode
  __m256i xr;               // int8 mode, kOff16X: the XOR of every code field
  const int16_t* x16;       // M x Kp, permuted per chunk
  const int8_t* x8;         // M x Kp, permuted per chunk
  const int32_t* corr;      // M x nC x 2 x 8: lane 0 = min(L) x sum of the chunk's (first, second) group (offset form)
  const int32_t* corr4;     // M x (nC / 4) x 8: lane q < 4 = min(L) x sum of chunk 4 i + q (offset form, no block 32)
  const float* xs;          // M x nU
  // hiMask[i] marks the int32 lanes of the i-th product vector whose weights lie in the chunk's
  // second half (elements 32..63); int16 mode: 4 vectors, int8 mode: 2
  __m256i hiMask[4];
};

// int8 modes: the chunk's levels (v: offset form u = L - min, sign form L) and the unsigned
// vpmaddubsw operands (a: u, or |L|)
template <class D, int F>
__attribute__((always_inline)) inline void levels8(const Ctx& c, const uint8_t* p, __m256i& v0, __m256i& v1, __m256i& a0, __m256i& a1) {
  if (F == kOff16X) decode8x<D>(p, c.xr, v0, v1);
  else decode8<D>(p, c.tab, v0, v1);
  a0 = F == kSign ? _mm256_abs_epi8(v0) : v0;
  a1 = F == kSign ? _mm256_abs_epi8(v1) : v1;
}

// int8 modes: the chunk's 64 activations of one row, sign-adjusted in the sign form
template <int F>
__attribute__((always_inline)) inline void acts8(const int8_t* xq, __m256i v0, __m256i v1, __m256i& x0, __m256i& x1) {
  x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
  x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32));
  if (F == kSign) {
    x0 = _mm256_sign_epi8(x0, v0);
    x1 = _mm256_sign_epi8(x1, v1);
  }
}

// int8 modes, quad loop: one chunk's products against one activation row, kept for the quad's
// reduction. kOff16X: levels u <= 15, the int16 pair sums (|.| <= 2 x 2 x 15 x 127) are reduced
// over the quad in int16 (sums of four: <= 30480, exact), one vpmaddwd for the quad; kOff16: two
// products summed in int16 (span <= 64), widened per chunk; otherwise each product widened
template <int F>
__attribute__((always_inline)) inline __m256i quad_part8(__m256i a0, __m256i a1, __m256i x0, __m256i x1, __m256i ones16) {
  const __m256i p0 = _mm256_maddubs_epi16(a0, x0), p1 = _mm256_maddubs_epi16(a1, x1);
  if (F == kOff16X) return _mm256_add_epi16(p0, p1);
  if (F == kOff16) return _mm256_madd_epi16(_mm256_add_epi16(p0, p1), ones16);
  return _mm256_add_epi32(_mm256_madd_epi16(p0, ones16), _mm256_madd_epi16(p1, ones16));
}

// the four chunks' quad_part8 values reduced to one vector (lane q: chunk q's sum over one 128-bit
// half), so one conversion and one FMA serve 256 weights. Exact: |lane| < 2^24
template <int F>
__attribute__((always_inline)) inline __m256i quad_reduce8(__m256i s0, __m256i s1, __m256i s2, __m256i s3, __m256i ones16) {
  if (F == kOff16X) {
    const __m256i t0 = _mm256_add_epi16(_mm256_unpacklo_epi32(s0, s1), _mm256_unpackhi_epi32(s0, s1));
    const __m256i t1 = _mm256_add_epi16(_mm256_unpacklo_epi32(s2, s3), _mm256_unpackhi_epi32(s2, s3));
    return _mm256_madd_epi16(_mm256_add_epi16(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1)), ones16);
  }
  const __m256i t0 = _mm256_add_epi32(_mm256_unpacklo_epi32(s0, s1), _mm256_unpackhi_epi32(s0, s1));
  const __m256i t1 = _mm256_add_epi32(_mm256_unpacklo_epi32(s2, s3), _mm256_unpackhi_epi32(s2, s3));
  return _mm256_add_epi32(_mm256_unpacklo_epi64(t0, t1), _mm256_unpackhi_epi64(t0, t1));
}

// four bf16 scales (one per chunk of a quad) as floats, times the level scale
__attribute__((always_inline)) inline __m128 bf16x4_scaled(const uint16_t* s, __m128 vls) {
  return _mm_mul_ps(_mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s))), 16)), vls);
}

// int8 modes, no block 32: the integer sums (8 int32 lanes, offset correction included) of one
// chunk against activation rows m0..m0+MG-1
template <class D, int MG, int F>
__attribute__((always_inline)) inline void chunk_sum8(const Ctx& c, const uint8_t* p, long u, long m0, __m256i s[MG]) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i v0, v1, a0, a1;
  levels8<D, F>(c, p, v0, v1, a0, a1);
  for (int j = 0; j < MG; ++j) {
    const int8_t* xq = c.x8 + (m0 + j) * c.Kp + u * 64;
    __m256i x0, x1;
    acts8<F>(xq, v0, v1, x0, x1);
    const __m256i* cr = reinterpret_cast<const __m256i*>(c.corr) + ((m0 + j) * c.nC + u) * 2;
    if (F == kOff16 || F == kOff16X) {
      const __m256i pr = _mm256_add_epi16(_mm256_maddubs_epi16(a0, x0), _mm256_maddubs_epi16(a1, x1));
      s[j] = _mm256_madd_epi16(pr, ones);
      s[j] = _mm256_add_epi32(s[j], _mm256_load_si256(cr));
    } else {
      s[j] = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(a0, x0), ones), _mm256_madd_epi16(_mm256_maddubs_epi16(a1, x1), ones));
      if (F == kOff) s[j] = _mm256_add_epi32(s[j], _mm256_load_si256(cr));
    }
  }
}

// one chunk of 64 weights (codes at p) against activation rows m0..m0+MG-1
template <class D, int MG, int F>
__attribute__((always_inline)) inline void chunk(const Ctx& c, const uint8_t* p, long u, long m0, const float* sc, __m256 acc[MG]) {
  const long nU = c.nU, nB = c.nB, Kp = c.Kp;
  if (F == kI16) {
    __m256i w[4];
    decode16<D>(p, c.t, w);
    if (c.half) {
      const bool hasHi = 2 * u + 1 < nB;
      const float wlo = sc[2 * u], whi = hasHi ? sc[2 * u + 1] : 0.0f;
      for (int j = 0; j < MG; ++j) {
        const int16_t* xq = c.x16 + (m0 + j) * Kp + u * 64;
        __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
        for (int i = 0; i < 4; ++i) {
          const __m256i pr = _mm256_madd_epi16(w[i], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 16 * i)));
          hi = _mm256_add_epi32(hi, _mm256_and_si256(c.hiMask[i], pr));
          lo = _mm256_add_epi32(lo, _mm256_andnot_si256(c.hiMask[i], pr));
        }
        const float* xs = c.xs + (m0 + j) * nU + 2 * u;
        acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_set1_ps(wlo * xs[0]), acc[j]);
        if (hasHi) acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), _mm256_set1_ps(whi * xs[1]), acc[j]);
      }
      return;
    }
    const float ws = sc[u];
    for (int j = 0; j < MG; ++j) {
      const int16_t* xq = c.x16 + (m0 + j) * Kp + u * 64;
      const __m256i s0 = _mm256_madd_epi16(w[0], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)));
      const __m256i s1 = _mm256_madd_epi16(w[1], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 16)));
      const __m256i s2 = _mm256_madd_epi16(w[2], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32)));
      const __m256i s3 = _mm256_madd_epi16(w[3], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 48)));
      const __m256i s = _mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3));
      acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(ws * c.xs[(m0 + j) * nU + u]), acc[j]);
    }
    return;
  }
  if (!c.half) {
    __m256i s[MG];
    chunk_sum8<D, MG, F>(c, p, u, m0, s);
    for (int j = 0; j < MG; ++j) acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[j]), _mm256_set1_ps(sc[u] * c.xs[(m0 + j) * nU + u]), acc[j]);
    return;
  }
  // block 32: the products of each half (by the lane masks), each with its own scales
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i v0, v1, a0, a1;
  levels8<D, F>(c, p, v0, v1, a0, a1);
  const bool hasHi = 2 * u + 1 < nB;
  const float wlo = sc[2 * u], whi = hasHi ? sc[2 * u + 1] : 0.0f;
  for (int j = 0; j < MG; ++j) {
    const int8_t* xq = c.x8 + (m0 + j) * Kp + u * 64;
    __m256i x0, x1;
    acts8<F>(xq, v0, v1, x0, x1);
    const __m256i* cr = reinterpret_cast<const __m256i*>(c.corr) + ((m0 + j) * c.nC + u) * 2;
    const __m256i s0 = _mm256_madd_epi16(_mm256_maddubs_epi16(a0, x0), ones);
    const __m256i s1 = _mm256_madd_epi16(_mm256_maddubs_epi16(a1, x1), ones);
    __m256i lo = _mm256_add_epi32(_mm256_andnot_si256(c.hiMask[0], s0), _mm256_andnot_si256(c.hiMask[1], s1));
    __m256i hi = _mm256_add_epi32(_mm256_and_si256(c.hiMask[0], s0), _mm256_and_si256(c.hiMask[1], s1));
    if (F == kOff) {
      lo = _mm256_add_epi32(lo, _mm256_load_si256(cr));
      hi = _mm256_add_epi32(hi, _mm256_load_si256(cr + 1));
    }
    const float* xs = c.xs + (m0 + j) * nU + 2 * u;
    acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_set1_ps(wlo * xs[0]), acc[j]);
    if (hasHi) acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), _mm256_set1_ps(whi * xs[1]), acc[j]);
  }
}

// block scales of one row as float32, times the level scale (the portable path's first product);
// bf16 (the default) widened 8 at a time
inline void row_scales(const uint16_t* s, long nB, bool bf16, float ls, float* sc) {
  long b = 0;
  if (bf16) {
    const __m256 vls = _mm256_set1_ps(ls);
    for (; b + 8 <= nB; b += 8) {
      const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + b)));
      _mm256_storeu_ps(sc + b, _mm256_mul_ps(_mm256_castsi256_ps(_mm256_slli_epi32(h, 16)), vls));
    }
  }
  packed_scales_f32(s + b, nB - b, bf16, sc + b);
  for (; b < nB; ++b) sc[b] *= ls;
}

// int8 modes, GEMV with one bf16 scale per chunk and whole quads (the "fused" case of rows_kernel):
// NR rows at once, interleaved per quad of chunks, so that each thread reads NR code streams
// (rows[r], far apart) at the same time. Each row's operations are those of rows_kernel: same bits.
template <class D, int F, int NR>
void rows_nr(const Ctx& c, const long* rows, long m0) {
  const PackedArgs& a = *c.a;
  const long full = c.nC, nQ = c.nC / 4;
  constexpr bool kCorr = F == kOff16 || F == kOff || F == kOff16X;
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m128 vls = _mm_set1_ps(c.ls);
  const int8_t* xr = c.x8 + m0 * c.Kp;
  const __m256i* cr4 = reinterpret_cast<const __m256i*>(c.corr4) + m0 * nQ;
  const float* xsr = c.xs + m0 * c.nU;
  const uint8_t* pq[NR];
  const uint16_t* sr[NR];
  __m256 acc[NR];
  for (int r = 0; r < NR; ++r) {
    pq[r] = a.codes + rows[r] * c.rb;
    sr[r] = a.scales + rows[r] * c.nB;
    acc[r] = _mm256_setzero_ps();
  }
  for (long u = 0; u < full; u += 4) {
    const __m128 xs4 = _mm_loadu_ps(xsr + u);
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) {
      for (int l = 0; l < 4 * D::kBytes; l += 64) _mm_prefetch(reinterpret_cast<const char*>(pq[r] + (NR > 2 ? kPrefetch4 : kPrefetch) + l), _MM_HINT_T0);
      __m256i sq[4];
      for (int q = 0; q < 4; ++q) {
        __m256i v0, v1, a0, a1;
        levels8<D, F>(c, pq[r] + q * D::kBytes, v0, v1, a0, a1);
        __m256i x0, x1;
        acts8<F>(xr + (u + q) * 64, v0, v1, x0, x1);
        sq[q] = quad_part8<F>(a0, a1, x0, x1, ones16);
      }
      __m256i s = quad_reduce8<F>(sq[0], sq[1], sq[2], sq[3], ones16);
      if (kCorr) s = _mm256_add_epi32(s, _mm256_load_si256(cr4 + static_cast<unsigned long>(u) / 4));
      const __m128 w4 = bf16x4_scaled(sr[r] + u, vls);
      const __m128 f4 = _mm_mul_ps(w4, xs4);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set_m128(f4, f4), acc[r]);
      pq[r] += 4 * D::kBytes;
    }
  }
  for (int r = 0; r < NR; ++r) a.out[m0 * a.N + rows[r]] = hsum(acc[r]);
}

// rows [n0, n1) of W against activation rows [m0, m0 + MG)
template <class D, int MG, int F>
void rows_kernel(const Ctx& c, long n0, long n1, long m0, float* sc) {
  const PackedArgs& a = *c.a;
  const long N = a.N, nB = c.nB;
  const long full = c.tail ? c.nC - 1 : c.nC, nQ = c.nC / 4;
  const long bpu = c.half ? 1 : a.B / 64;  // chunks per scale block
  // int8 modes with one bf16 scale per chunk and whole quads only (K a multiple of 256, block 64):
  // each quad converts its own four scales (the same product, scale x level scale), no row pass
  const bool fused = F != kI16 && MG <= 2 && !c.half && a.B == 64 && a.scaleBf16 && full % 4 == 0 && !c.tail;
  // GEMV: NR rows at once, from NR strips of the task's rows (NR code streams per thread instead of
  // one; docs/compression.md, "Follow-up"); two adjacent rows were slower. NR = 4 for int8 (Dec8):
  // a thread's reads keep pace with the memory only with several streams in flight (the read probe
  // reads four per thread): new/old 0.74-0.77 cold at 2 threads, 0.72-0.76 at 1 thread, warm
  // 0.99-1.01 (gemv_ab, 2026-12-05, docs/results/engine.md). NR = 2 for the other formats, whose
  // decode is the bound (4 strips: int4 0.97-1.0 cold and 1.02-1.025 warm, kmeans4 1.04 cold)
  if (fused && MG == 1) {
    constexpr int NR = D::kBytes == 64 ? 4 : 2;
    const long L = (n1 - n0) / NR;
    for (long i = 0; i < L; ++i) {
      long rows[NR];
      for (int r = 0; r < NR; ++r) rows[r] = n0 + r * L + i;
      rows_nr<D, F, NR>(c, rows, m0);
    }
    n0 += NR * L;
  }
  const __m128 vls = _mm_set1_ps(c.ls);
  for (long n = n0; n < n1; ++n) {
    const uint8_t* row = a.codes + n * c.rb;
    const uint16_t* srow = a.scales + n * nB;
    if (!fused) row_scales(srow, nB, a.scaleBf16, c.ls, sc);
    if (bpu > 1)  // one scale per chunk (in place, from the end)
      for (long u = c.nC - 1; u >= 0; --u) sc[u] = sc[u / bpu];
    __m256 acc[MG];
    for (int j = 0; j < MG; ++j) acc[j] = _mm256_setzero_ps();
    long u = 0;
    if (F != kI16 && MG <= 2 && !c.half) {
      const __m256i ones16 = _mm256_set1_epi16(1);
      // int8 modes: four chunks' sums reduced to one vector (quad_part8, quad_reduce8).
      // the offset corrections of the four chunks come as one vector per quad (corr4), added after
      // the reduction (integer sums: the same values)
      constexpr bool kCorr = F == kOff16 || F == kOff || F == kOff16X;
      // running pointers per activation row (no index arithmetic on the context in the loop)
      const int8_t* xr[MG];
      const __m256i* cr4[MG];
      const float* xsr[MG];
      for (int j = 0; j < MG; ++j) {
        xr[j] = c.x8 + (m0 + j) * c.Kp;
        cr4[j] = reinterpret_cast<const __m256i*>(c.corr4) + (m0 + j) * nQ;
        xsr[j] = c.xs + (m0 + j) * c.nU;
      }
      const uint8_t* pq = row;
      for (; u + 4 <= full; u += 4, pq += 4 * D::kBytes) {
        for (int l = 0; l < 4 * D::kBytes; l += 64) _mm_prefetch(reinterpret_cast<const char*>(pq + kPrefetch + l), _MM_HINT_T0);
        __m256i sq[4][MG];
        for (int q = 0; q < 4; ++q) {
          __m256i v0, v1, a0, a1;
          levels8<D, F>(c, pq + q * D::kBytes, v0, v1, a0, a1);
          for (int j = 0; j < MG; ++j) {
            __m256i x0, x1;
            acts8<F>(xr[j] + (u + q) * 64, v0, v1, x0, x1);
            sq[q][j] = quad_part8<F>(a0, a1, x0, x1, ones16);
          }
        }
        const __m128 w4 = fused ? bf16x4_scaled(srow + u, vls) : _mm_loadu_ps(sc + u);
        for (int j = 0; j < MG; ++j) {
          __m256i r = quad_reduce8<F>(sq[0][j], sq[1][j], sq[2][j], sq[3][j], ones16);
          if (kCorr) r = _mm256_add_epi32(r, _mm256_load_si256(cr4[j] + static_cast<unsigned long>(u) / 4));
          const __m128 f4 = _mm_mul_ps(w4, _mm_loadu_ps(xsr[j] + u));
          acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(r), _mm256_set_m128(f4, f4), acc[j]);
        }
      }
    }
    // the other paths (int16 mode, 3-4 activation rows, block 32, the last chunks) go without the
    // prefetch: in this loop it cost the int16 mode 12-18% (gemv_ab, 1 thread, 4096 x 1024)
    for (; u < full; ++u) chunk<D, MG, F>(c, row + u * D::kBytes, u, m0, sc, acc);
    if (c.tail) {  // the codes of the last 32 weights, zero-padded (their activations are 0)
      alignas(32) uint8_t buf[64] = {0};
      std::memcpy(buf, row + full * D::kBytes, D::kBytes / 2);
      chunk<D, MG, F>(c, buf, full, m0, sc, acc);
    }
    for (int j = 0; j < MG; ++j) a.out[(m0 + j) * N + n] = hsum(acc[j]);
  }
}

template <class D, int F>
void run(const PackedArgs& a, const Ctx& c) {
  const long N = a.N, M = a.M;
  const int T = pool_threads();
  const long work = N * a.K * (M < 4 ? M : 4);
  long ntasks = (T <= 1 || work < 262144) ? 1 : 8L * T;
  if (ntasks > N) ntasks = N;
  const long chunkN = (N + ntasks - 1) / ntasks;
  auto body = [&](long t, int) {
    const long n0 = t * chunkN, n1 = (n0 + chunkN < N) ? n0 + chunkN : N;
    if (n0 >= n1) return;
    Buf<float> sc(c.nB > c.nC ? c.nB : c.nC);
    if (!sc.data()) return;
    for (long m0 = 0; m0 < M; m0 += 4) {
      switch (M - m0 >= 4 ? 4 : M - m0) {
        case 1: rows_kernel<D, 1, F>(c, n0, n1, m0, sc.data()); break;
        case 2: rows_kernel<D, 2, F>(c, n0, n1, m0, sc.data()); break;
        case 3: rows_kernel<D, 3, F>(c, n0, n1, m0, sc.data()); break;
        default: rows_kernel<D, 4, F>(c, n0, n1, m0, sc.data()); break;
      }
    }
  };
  parallel_tasks(ntasks, 0, body);
}

template <class D>
void run_form(const PackedArgs& a, const Ctx& c, int form) {
  switch (form) {
    case kI16: run<D, kI16>(a, c); break;
    case kOff16: run<D, kOff16>(a, c); break;
    case kOff: run<D, kOff>(a, c); break;
    case kOff16X: run<D, kOff16X>(a, c); break;
    default: run<D, kSign>(a, c); break;
  }
}

bool int8_identity(const float* levels) {
  for (int c = 0; c < 256; ++c)
    if (levels[c] != static_cast<float>(c < 128 ? c : c - 256)) return false;
  return true;
}

}  // namespace

void packed_matmul_avx2(const PackedArgs& a) {
  const bool fast = (a.B % 64 == 0 || a.B == 32) && (a.bits == 1 || a.bits == 2 || a.bits == 4 || (a.bits == 8 && int8_identity(a.levels)));
  if (!fast) {
    packed_matmul_generic(a);
    return;
  }
  Ctx c;
  c.a = &a;
  c.rb = a.K * a.bits / 8;
  c.nC = (a.K + 63) / 64;
  c.Kp = c.nC * 64;
  c.nB = a.K / a.B;
  c.half = a.B == 32;
  c.tail = a.K % 64 != 0;
  const long U = c.half ? 32 : 64;
  c.nU = a.K / U;
  const int nl = 1 << a.bits;
  int16_t L[256];
  int form = kI16;
  int lmin = 0;
  if (!a.act8) {
    if (a.bits == 8) {
      c.ls = 1.0f;
    } else {
      packed_levels_i16(a.levels, nl, L, &c.ls);
      alignas(32) uint8_t lo[32] = {0}, hi[32] = {0};
      for (int i = 0; i < nl; ++i) {
        const uint16_t v = static_cast<uint16_t>(L[i]);
        lo[i] = lo[16 + i] = static_cast<uint8_t>(v & 0xFF);
        hi[i] = hi[16 + i] = static_cast<uint8_t>(v >> 8);
      }
      c.t.lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
      c.t.hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
    }
  } else {
    form = kSign;
    if (a.bits == 8) {
      c.ls = 1.0f;
    } else {
      packed_levels_i8(a.levels, nl, L, &c.ls);
      int lmax = L[0];
      lmin = L[0];
      for (int i = 1; i < nl; ++i) {
        lmin = L[i] < lmin ? L[i] : lmin;
        lmax = L[i] > lmax ? L[i] : lmax;
      }
      if (lmax - lmin <= 129) form = (lmax - lmin <= 64 && !c.half) ? kOff16 : kOff;
      alignas(32) uint8_t tb[32] = {0};
      for (int i = 0; i < nl; ++i) tb[i] = tb[16 + i] = static_cast<uint8_t>(form == kSign ? L[i] : L[i] - lmin);
      c.tab = _mm256_load_si256(reinterpret_cast<const __m256i*>(tb));
      if (form == kOff16 && (a.bits == 4 || a.bits == 2)) {
        // u = code ^ X for every code: the XOR decode (two's complement integer levels)
        bool isXor = true;
        for (int i = 0; i < nl; ++i) isXor = isXor && tb[i] == (i ^ tb[0]);
        if (isXor) {
          form = kOff16X;
          const int x = tb[0];
          c.xr = _mm256_set1_epi8(static_cast<char>(a.bits == 4 ? x | x << 4 : x | x << 2 | x << 4 | x << 6));
        }
      }
    }
  }
  const uint8_t* perm = perm_for(a.bits, a.act8);
  if (c.half) {
    // which half of the chunk each product lane's weights belong to (from the decode order)
    const int nv = a.act8 ? 2 : 4, per = a.act8 ? 4 : 2;  // vectors; stream positions per int32 lane
    for (int i = 0; i < nv; ++i) {
      alignas(32) int32_t m[8];
      for (int l = 0; l < 8; ++l) {
        const int p = (a.act8 ? 32 : 16) * i + per * l;
        const bool h = perm[p] >= 32;
        for (int q = 1; q < per; ++q)
          if ((perm[p + q] >= 32) != h) {  // a lane straddles the halves: no fast path
            packed_matmul_generic(a);
            return;
          }
        m[l] = h ? -1 : 0;
      }
      c.hiMask[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
    }
  }
  // activations: rounded per group in natural order (quantize_x_avx2), then laid out per chunk in decode
  // order (whole chunks of int8 activations: permute64)
  const long M = a.M, K = a.K, Kp = c.Kp, nQ = c.nC / 4;
  Buf<int16_t> nat(K);
  Buf<int16_t> x16(a.act8 ? 1 : M * Kp);
  Buf<int8_t> x8(a.act8 ? M * Kp : 1);
  Buf<int32_t> corr(a.act8 ? M * c.nC * 16 + 8 : 1);  // + 8: room to align to 32 bytes
  Buf<int32_t> corr4(a.act8 ? M * nQ * 8 + 8 : 1);
  Buf<float> xs(M * c.nU);
  if (!nat.data() || !x16.data() || !x8.data() || !corr.data() || !corr4.data() || !xs.data()) {
    packed_matmul_generic(a);
    return;
  }
  int32_t* corr32 = corr.data() + ((8 - (reinterpret_cast<uintptr_t>(corr.data()) / 4) % 8) % 8);
  int32_t* corr4a = corr4.data() + ((8 - (reinterpret_cast<uintptr_t>(corr4.data()) / 4) % 8) % 8);
  const PermIdx* pix = a.act8 ? perm_idx(a.bits) : nullptr;
  for (long m = 0; m < M; ++m) {
    quantize_x_avx2(a.x + m * K, K, U, a.act8 ? 127.0f : 32767.0f, nat.data(), xs.data() + m * c.nU);
    for (long ch = 0; ch < c.nC; ++ch) {
      const int16_t* ns = nat.data() + ch * 64;
      if (!a.act8) {
        int16_t* xo = x16.data() + m * Kp + ch * 64;
        for (int p = 0; p < 64; ++p) {
          const long e = ch * 64 + perm[p];
          xo[p] = e < K ? nat.data()[e] : 0;
        }
        continue;
      }
      int32_t sum[2] = {0, 0};  // the activations of elements 0..31 and 32..63 of the chunk
      int8_t* xo = x8.data() + m * Kp + ch * 64;
      if (ch * 64 + 64 <= K) {
        permute64(ns, pix, xo);
        for (int e = 0; e < 32; ++e) sum[0] += ns[e];
        for (int e = 32; e < 64; ++e) sum[1] += ns[e];
      } else {
        for (int p = 0; p < 64; ++p) {
          const long e = ch * 64 + perm[p];
          xo[p] = static_cast<int8_t>(e < K ? nat.data()[e] : 0);
        }
        for (long e = ch * 64; e < K; ++e) sum[e - ch * 64 >= 32 ? 1 : 0] += nat.data()[e];
      }
      int32_t* cr = corr32 + (m * c.nC + ch) * 16;  // zeroed by calloc but lane 0 of each vector
      if (c.half) {
        cr[0] = lmin * sum[0];
        cr[8] = lmin * sum[1];
      } else {
        cr[0] = lmin * (sum[0] + sum[1]);
        if (ch < 4 * nQ) corr4a[(m * nQ + ch / 4) * 8 + ch % 4] = cr[0];
      }
    }
  }
  c.x16 = x16.data();
  c.x8 = x8.data();
  c.corr = corr32;
  c.corr4 = corr4a;
  c.xs = xs.data();
  switch (a.bits) {
    case 1: run_form<Dec1>(a, c, form); break;
    case 2: run_form<Dec2>(a, c, form); break;
    case 4: run_form<Dec4>(a, c, form); break;
    default: run_form<Dec8>(a, c, form); break;
  }
}

}  // namespace tfree
