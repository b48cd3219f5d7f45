// Packed-weight matmul with AVX2 (compiled with -mavx2 -mfma; called only when the CPU check found
// both). Same function as packed_matmul_generic (see PackedArgs in kernels.h).
//
// Design (docs/compression.md, "Kernels"): weights are never widened to float. For each group of
// 64 weights the packed codes are decoded in registers to four vectors of 16 int16 levels:
//   - 4-bit: one 32-byte load, nibbles split with a shift and a mask;
//   - 2-bit: one 16-byte load broadcast to both lanes, crumbs split with vpsrlvd and a mask;
//   - 1-bit: one 8-byte load broadcast, bits expanded with vpshufb / vpand / vpcmpeqb;
//   then a vpshufb pair maps each code to the low and high byte of its int16 level (the 16-entry
//   codebook lives in two registers; for k-means this is the codebook in 13-bit fixed point) and
//   vpunpck{l,h}bw interleaves them;
//   - 8-bit integer codes: vpmovsxbw (the codes are the levels).
// Activations are rounded to int16 per group of 64 (absmax / 32767) in the order the decode
// produces (a fixed permutation per bit width, measured once at start-up), so vpmaddwd pairs each
// level with its activation. Each int32 lane sums 8 products (|level| <= 8191, |x| <= 32767: no
// overflow); the group sum is converted once and scaled (block scale x level scale x activation
// scale) into float32 accumulators. Up to 4 activation rows share each decoded group (small-batch
// GEMM); rows of W are split over the thread pool.
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
  static inline void codes(const uint8_t* p, __m256i& c0, __m256i& c1) {
    int64_t u;
    std::memcpy(&u, p, 8);
    const __m256i v = _mm256_set1_epi64x(u);
    const __m256i sel0 = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                                          3, 3, 3, 3, 3, 3);
    const __m256i sel1 = _mm256_add_epi8(sel0, _mm256_set1_epi8(4));
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x0102040810204080ULL));
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i b0 = _mm256_and_si256(_mm256_shuffle_epi8(v, sel0), bit);
    const __m256i b1 = _mm256_and_si256(_mm256_shuffle_epi8(v, sel1), bit);
    c0 = _mm256_and_si256(_mm256_cmpeq_epi8(b0, bit), one);
    c1 = _mm256_and_si256(_mm256_cmpeq_epi8(b1, bit), one);
  }
};

template <class D>
inline void decode(const uint8_t* p, const Tables& t, __m256i w[4]) {
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
inline void decode<Dec8>(const uint8_t* p, const Tables&, __m256i w[4]) {
  for (int i = 0; i < 4; ++i) w[i] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * i)));
}

// Position p of the decoded int16 stream holds element perm[p] of the group: found by decoding
// one-hot code groups (code 1 at element e, 0 elsewhere) with the levels [0, 1, 0, ...].
template <class D>
Perm measure_perm(int bits) {
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
    __m256i w[4];
    decode<D>(buf, t, w);
    alignas(32) int16_t out[64];
    for (int i = 0; i < 4; ++i) _mm256_store_si256(reinterpret_cast<__m256i*>(out + 16 * i), w[i]);
    for (int p = 0; p < 64; ++p)
      if (out[p] == 1) perm.v[p] = static_cast<uint8_t>(e);
  }
  return perm;
}

const uint8_t* perm_for(int bits) {
  static const Perm p1 = measure_perm<Dec1>(1);
  static const Perm p2 = measure_perm<Dec2>(2);
  static const Perm p4 = measure_perm<Dec4>(4);
  return bits == 1 ? p1.v : bits == 2 ? p2.v : bits == 4 ? p4.v : nullptr;
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

struct Ctx {
  const PackedArgs* a;
  const int16_t* x16;  // M x K, permuted per group
  const float* xs;     // M x nU
  Tables t;
  float ls;
  long rb, nU, nB;
  // Block size 32: each 64-weight group has two scales. hiMask[i] marks the int32 lanes of the
  // i-th vpmaddwd product whose weight pair lies in the group's second half (elements 32..63).
  bool half = false;
  __m256i hiMask[4];
};

// rows [n0, n1) of W against activation rows [m0, m0 + MG)
template <class D, int MG>
void rows_kernel(const Ctx& c, long n0, long n1, long m0, float* sc) {
  const PackedArgs& a = *c.a;
  const long K = a.K, N = a.N, nU = c.nU, nB = c.nB;
  const long bpu = a.B >= 64 ? a.B / 64 : 1;  // groups per scale block
  for (long n = n0; n < n1; ++n) {
    const uint8_t* row = a.codes + n * c.rb;
    packed_scales_f32(a.scales + n * nB, nB, a.scaleBf16, sc);
    __m256 acc[MG];
    for (int j = 0; j < MG; ++j) acc[j] = _mm256_setzero_ps();
    for (long u = 0; u < nU; ++u) {
      __m256i w[4];
      decode<D>(row + u * D::kBytes, c.t, w);
      if (c.half) {
        const float wlo = sc[2 * u] * c.ls, whi = sc[2 * u + 1] * c.ls;
        for (int j = 0; j < MG; ++j) {
          const int16_t* xq = c.x16 + (m0 + j) * K + u * 64;
          __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
          for (int i = 0; i < 4; ++i) {
            const __m256i p = _mm256_madd_epi16(w[i], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 16 * i)));
            hi = _mm256_add_epi32(hi, _mm256_and_si256(c.hiMask[i], p));
            lo = _mm256_add_epi32(lo, _mm256_andnot_si256(c.hiMask[i], p));
          }
          const float xsc = c.xs[(m0 + j) * nU + u];
          acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), _mm256_set1_ps(wlo * xsc), acc[j]);
          acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), _mm256_set1_ps(whi * xsc), acc[j]);
        }
        continue;
      }
      const float ws = sc[u / bpu] * c.ls;
      for (int j = 0; j < MG; ++j) {
        const int16_t* xq = c.x16 + (m0 + j) * K + u * 64;
        const __m256i s0 = _mm256_madd_epi16(w[0], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)));
        const __m256i s1 = _mm256_madd_epi16(w[1], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 16)));
        const __m256i s2 = _mm256_madd_epi16(w[2], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32)));
        const __m256i s3 = _mm256_madd_epi16(w[3], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 48)));
        const __m256i s = _mm256_add_epi32(_mm256_add_epi32(s0, s1), _mm256_add_epi32(s2, s3));
        acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(ws * c.xs[(m0 + j) * nU + u]), acc[j]);
      }
    }
    for (int j = 0; j < MG; ++j) a.out[(m0 + j) * N + n] = hsum(acc[j]);
  }
}

template <class D>
void run(const PackedArgs& a, const Ctx& c) {
  const long N = a.N, M = a.M;
  const int T = pool_threads();
  const long work = N * a.K * (M < 4 ? M : 4);
  long ntasks = (T <= 1 || work < 262144) ? 1 : 8L * T;
  if (ntasks > N) ntasks = N;
  const long chunk = (N + ntasks - 1) / ntasks;
  auto body = [&](long t, int) {
    const long n0 = t * chunk, n1 = (n0 + chunk < N) ? n0 + chunk : N;
    if (n0 >= n1) return;
    Buf<float> sc(c.nB);
    if (!sc.data()) return;
    for (long m0 = 0; m0 < M; m0 += 4) {
      switch (M - m0 >= 4 ? 4 : M - m0) {
        case 1: rows_kernel<D, 1>(c, n0, n1, m0, sc.data()); break;
        case 2: rows_kernel<D, 2>(c, n0, n1, m0, sc.data()); break;
        case 3: rows_kernel<D, 3>(c, n0, n1, m0, sc.data()); break;
        default: rows_kernel<D, 4>(c, n0, n1, m0, sc.data()); break;
      }
    }
  };
  parallel_tasks(ntasks, 0, body);
}

bool int8_identity(const float* levels) {
  for (int c = 0; c < 256; ++c)
    if (levels[c] != static_cast<float>(c < 128 ? c : c - 256)) return false;
  return true;
}

}  // namespace

void packed_matmul_avx2(const PackedArgs& a) {
  const bool fast = (a.B % 64 == 0 || (a.B == 32 && a.K % 64 == 0)) && (a.bits == 1 || a.bits == 2 || a.bits == 4 || (a.bits == 8 && int8_identity(a.levels)));
  if (!fast) {
    packed_matmul_generic(a);
    return;
  }
  Ctx c;
  c.a = &a;
  c.rb = a.K * a.bits / 8;
  c.nU = a.K / 64;
  c.nB = a.K / a.B;
  const int nl = 1 << a.bits;
  int16_t L16[256];
  if (a.bits == 8) {
    c.ls = 1.0f;
  } else {
    packed_levels_i16(a.levels, nl, L16, &c.ls);
    alignas(32) uint8_t lo[32] = {0}, hi[32] = {0};
    for (int i = 0; i < nl; ++i) {
      const uint16_t v = static_cast<uint16_t>(L16[i]);
      lo[i] = lo[16 + i] = static_cast<uint8_t>(v & 0xFF);
      hi[i] = hi[16 + i] = static_cast<uint8_t>(v >> 8);
    }
    c.t.lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
    c.t.hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
  }
  const uint8_t* perm = perm_for(a.bits);
  if (a.B == 32) {
    // which half of the group each madd lane's weight pair belongs to (from the decode order)
    c.half = true;
    for (int i = 0; i < 4; ++i) {
      alignas(32) int32_t m[8];
      for (int l = 0; l < 8; ++l) {
        const int p = 16 * i + 2 * l;
        const int e0 = perm ? perm[p] : p, e1 = perm ? perm[p + 1] : p + 1;
        if ((e0 >= 32) != (e1 >= 32)) {  // a pair straddles the halves: no fast path
          packed_matmul_generic(a);
          return;
        }
        m[l] = e0 >= 32 ? -1 : 0;
      }
      c.hiMask[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
    }
  }
  Buf<int16_t> x16(a.M * a.K);
  Buf<float> xs(a.M * c.nU);
  if (!x16.data() || !xs.data()) {
    packed_matmul_generic(a);
    return;
  }
  for (long m = 0; m < a.M; ++m) packed_quantize_x(a.x + m * a.K, a.K, 64, perm, x16.data() + m * a.K, xs.data() + m * c.nU);
  c.x16 = x16.data();
  c.xs = xs.data();
  switch (a.bits) {
    case 1: run<Dec1>(a, c); break;
    case 2: run<Dec2>(a, c); break;
    case 4: run<Dec4>(a, c); break;
    default: run<Dec8>(a, c); break;
  }
}

}  // namespace tfree
