// Packed-weight matmul with ARM64 NEON: the same function as packed_matmul_generic (see PackedArgs
// in kernels.h), both activation modes, bit for bit: every group's integer sum is exact and the
// float32 epilogue performs the portable path's operations in its order.
//
// Per weight row, the packed codes are decoded with NEON (4-bit: ushr/and + st2; 2-bit: four
// shifts + st4; 1-bit: tbl byte broadcast + cmtst; 3-bit: scalar) and mapped to their integer
// levels with tbl (int8 levels, or the two bytes of int16 levels interleaved by st2); 8-bit
// integer codes are the levels themselves. The row is then dotted with every activation row
// (rounded once per call with the shared packed_quantize_x), one exact integer sum per group of U:
//   - int16 activations: smull/smlal into int32 lanes (8 products per lane at most:
//     8 x 8191 x 32767 < 2^31), widened into int64 with sadalp;
//   - int8 activations: sdot (4 products per int32 lane) when the CPU has asimddp
//     (packed_matmul_neon_sdot: packed_neon_dot.cc, the only file built with +dotprod; dispatch.cc
//     chooses it only when cpu.cc found asimddp), else smull/smull2 (int8 x int8 -> int16) and
//     sadalp into int32 (packed_matmul_neon, plain ARMv8.0); int8 levels equal to +128 (integer
//     codebooks) do not fit int8 and take the int16 route.
// Compiled to nothing on other architectures.
#if defined(__aarch64__)
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <arm_neon.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

namespace tfree {

// packed_neon_dot.cc (built with -march=armv8.2-a+dotprod): s[u] = sum over group u of w * x
void packed_neon_dot_groups_sdot(const int8_t* w, const int8_t* x, long U, long nU, int32_t* s);

namespace {

template <class T>
struct Buf {
  T* p;
  explicit Buf(long n) : p(static_cast<T*>(std::malloc(static_cast<size_t>(n > 0 ? n : 1) * sizeof(T) + 64))) {
    if (!p) tfree::out_of_memory("packed matmul", static_cast<double>(n) * sizeof(T) + 64);
  }
  ~Buf() { std::free(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
};

inline uint32_t code_at(const uint8_t* row, long i, int bits) {
  uint32_t c = 0;
  long bit = i * bits;
  for (int t = 0; t < bits; ++t, ++bit) c = (c << 1) | ((row[bit >> 3] >> (7 - (bit & 7))) & 1u);
  return c;
}

// codes of one row (K codes of `bits` bits, MSB first) -> one byte per code
void decode_codes(const uint8_t* row, long K, int bits, uint8_t* out) {
  long i = 0;  // next code
  if (bits == 4) {
    const uint8x16_t m = vdupq_n_u8(0x0F);
    for (; i + 32 <= K; i += 32) {
      const uint8x16_t v = vld1q_u8(row + i / 2);
      uint8x16x2_t r;
      r.val[0] = vshrq_n_u8(v, 4);
      r.val[1] = vandq_u8(v, m);
      vst2q_u8(out + i, r);
    }
  } else if (bits == 2) {
    const uint8x16_t m = vdupq_n_u8(0x03);
    for (; i + 64 <= K; i += 64) {
      const uint8x16_t v = vld1q_u8(row + i / 4);
      uint8x16x4_t r;
      r.val[0] = vshrq_n_u8(v, 6);
      r.val[1] = vandq_u8(vshrq_n_u8(v, 4), m);
      r.val[2] = vandq_u8(vshrq_n_u8(v, 2), m);
      r.val[3] = vandq_u8(v, m);
      vst4q_u8(out + i, r);
    }
  } else if (bits == 1) {
    static const uint8_t kBit[16] = {0x80, 0x40, 0x20, 0x10, 8, 4, 2, 1, 0x80, 0x40, 0x20, 0x10, 8, 4, 2, 1};
    static const uint8_t kIdx[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    const uint8x16_t bit = vld1q_u8(kBit), idx0 = vld1q_u8(kIdx), one = vdupq_n_u8(1), two = vdupq_n_u8(2);
    for (; i + 128 <= K; i += 128) {
      const uint8x16_t v = vld1q_u8(row + i / 8);
      uint8x16_t idx = idx0;
      for (int q = 0; q < 8; ++q) {  // bytes 2q, 2q+1 -> codes 16q .. 16q+15
        vst1q_u8(out + i + 16 * q, vandq_u8(vtstq_u8(vqtbl1q_u8(v, idx), bit), one));
        idx = vaddq_u8(idx, two);
      }
    }
  } else if (bits == 8) {
    std::memcpy(out, row, static_cast<size_t>(K));
    return;
  }
  // tails, and 3-bit codes (int3, kmeans3: no byte-aligned period short enough to pay for NEON)
  for (; i < K; ++i) out[i] = static_cast<uint8_t>(code_at(row, i, bits));
}

// codes -> int8 levels (at most 16 levels: tbl; else scalar)
void map_i8(const uint8_t* codes, long K, int nl, const int16_t* L, int8_t* out) {
  long i = 0;
  if (nl <= 16) {
    int8_t t[16] = {0};
    for (int c = 0; c < nl; ++c) t[c] = static_cast<int8_t>(L[c]);
    const int8x16_t tab = vld1q_s8(t);
    for (; i + 16 <= K; i += 16) vst1q_s8(out + i, vqtbl1q_s8(tab, vld1q_u8(codes + i)));
  }
  for (; i < K; ++i) out[i] = static_cast<int8_t>(L[codes[i]]);
}

// codes -> int16 levels (at most 16 levels: low and high bytes by tbl, interleaved by st2)
void map_i16(const uint8_t* codes, long K, int nl, const int16_t* L, int16_t* out) {
  long i = 0;
  if (nl <= 16) {
    uint8_t lo[16] = {0}, hi[16] = {0};
    for (int c = 0; c < nl; ++c) {
      const uint16_t v = static_cast<uint16_t>(L[c]);
      lo[c] = static_cast<uint8_t>(v & 0xFF);
      hi[c] = static_cast<uint8_t>(v >> 8);
    }
    const uint8x16_t tlo = vld1q_u8(lo), thi = vld1q_u8(hi);
    for (; i + 16 <= K; i += 16) {
      const uint8x16_t c = vld1q_u8(codes + i);
      uint8x16x2_t r;
      r.val[0] = vqtbl1q_u8(tlo, c);
      r.val[1] = vqtbl1q_u8(thi, c);
      vst2q_u8(reinterpret_cast<uint8_t*>(out + i), r);  // little-endian int16
    }
  }
  for (; i < K; ++i) out[i] = L[codes[i]];
}

// exact int16 dot products per group: s[u] = sum_{i < U} w[uU + i] x[uU + i]
void dot_groups_i16(const int16_t* w, const int16_t* x, long U, long nU, int64_t* s) {
  for (long u = 0; u < nU; ++u) {
    const int16_t* wg = w + u * U;
    const int16_t* xg = x + u * U;
    int64x2_t acc64 = vdupq_n_s64(0);
    long i = 0;
    while (i + 8 <= U) {
      int32x4_t acc = vdupq_n_s32(0);
      // at most 4 steps (8 products per int32 lane) before widening
      for (int st = 0; st < 4 && i + 8 <= U; ++st, i += 8) {
        const int16x8_t a = vld1q_s16(wg + i), b = vld1q_s16(xg + i);
        acc = vmlal_s16(acc, vget_low_s16(a), vget_low_s16(b));
        acc = vmlal_high_s16(acc, a, b);
      }
      acc64 = vpadalq_s32(acc64, acc);
    }
    int64_t t = vaddvq_s64(acc64);
    for (; i < U; ++i) t += static_cast<int32_t>(wg[i]) * xg[i];
    s[u] = t;
  }
}

// exact int8 dot products per group without dotprod (ARMv8.0): smull + sadalp
void dot_groups_i8_plain(const int8_t* w, const int8_t* x, long U, long nU, int32_t* s) {
  for (long u = 0; u < nU; ++u) {
    const int8_t* wg = w + u * U;
    const int8_t* xg = x + u * U;
    int32x4_t acc = vdupq_n_s32(0);
    long i = 0;
    for (; i + 16 <= U; i += 16) {
      const int8x16_t a = vld1q_s8(wg + i), b = vld1q_s8(xg + i);
      acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
      acc = vpadalq_s16(acc, vmull_high_s8(a, b));
    }
    int32_t t = vaddvq_s32(acc);
    for (; i < U; ++i) t += static_cast<int32_t>(wg[i]) * xg[i];
    s[u] = t;
  }
}

bool int8_identity(const float* levels) {
  for (int c = 0; c < 256; ++c)
    if (levels[c] != static_cast<float>(c < 128 ? c : c - 256)) return false;
  return true;
}

// both entry points; sdot: int8-activation sums with sdot
void packed_neon(const PackedArgs& a, bool sdot) {
  const long M = a.M, N = a.N, K = a.K, B = a.B;
  const long U = (B % 64 == 0) ? 64 : B;
  const long nU = K / U, nB = K / B;
  const long gpb = B / U;  // activation groups per scale block
  const int nl = 1 << a.bits;
  int16_t L[256];
  float ls;
  if (a.act8) packed_levels_i8(a.levels, nl, L, &ls);
  else packed_levels_i16(a.levels, nl, L, &ls);
  bool fitsI8 = a.act8;
  for (int c = 0; c < nl && fitsI8; ++c) fitsI8 = L[c] >= -128 && L[c] <= 127;
  const bool ident8 = fitsI8 && a.bits == 8 && int8_identity(a.levels);
  const bool useDot = fitsI8 && sdot;
  // activations: rounded per group in natural order (int16; int8 copy in the int8 route)
  Buf<int16_t> x16(M * K);
  Buf<int8_t> x8(fitsI8 ? M * K : 1);
  Buf<float> xs(M * nU);
  if (!x16.p || !x8.p || !xs.p) {
    packed_matmul_generic(a);
    return;
  }
  const float qmax = a.act8 ? 127.0f : 32767.0f;
  for (long m = 0; m < M; ++m) packed_quantize_x(a.x + m * K, K, U, qmax, x16.p + m * K, xs.p + m * nU);
  if (fitsI8) {
    for (long i = 0; i + 8 <= M * K; i += 8) vst1_s8(x8.p + i, vmovn_s16(vld1q_s16(x16.p + i)));
    for (long i = (M * K) & ~7L; i < M * K; ++i) x8.p[i] = static_cast<int8_t>(x16.p[i]);
  }
  const long rb = K * a.bits / 8;
  const int T = pool_threads();
  const long ntasks = (T <= 1 || N * K * M < 65536) ? 1 : (N < 4 * T ? N : 4 * T);
  const long chunk = (N + ntasks - 1) / ntasks;
  // per-task scratch, allocated before any work (an allocation failure falls back to the portable kernel)
  const long wK = fitsI8 ? K : 2 * K;  // decoded row bytes
  Buf<uint8_t> cbAll(ntasks * K), wAll(ntasks * wK);
  Buf<float> scAll(ntasks * nB);
  Buf<int64_t> sAll(ntasks * nU);
  if (!cbAll.p || !wAll.p || !scAll.p || !sAll.p) {
    packed_matmul_generic(a);
    return;
  }
  auto body = [&](long t, int) {
    const long n0 = t * chunk, n1 = (n0 + chunk < N) ? n0 + chunk : N;
    if (n0 >= n1) return;
    uint8_t* cb = cbAll.p + t * K;
    int8_t* w8 = reinterpret_cast<int8_t*>(wAll.p + t * wK);
    int16_t* w16 = reinterpret_cast<int16_t*>(wAll.p + t * wK);  // malloc'd blocks of even size: aligned
    float* sc = scAll.p + t * nB;
    int64_t* s64 = sAll.p + t * nU;
    int32_t* s32 = reinterpret_cast<int32_t*>(s64);
    for (long n = n0; n < n1; ++n) {
      const uint8_t* row = a.codes + n * rb;
      const int8_t* wrow8 = w8;
      if (ident8) {
        wrow8 = reinterpret_cast<const int8_t*>(row);
      } else {
        decode_codes(row, K, a.bits, cb);
        if (fitsI8) map_i8(cb, K, nl, L, w8);
        else map_i16(cb, K, nl, L, w16);
      }
      packed_scales_f32(a.scales + n * nB, nB, a.scaleBf16, sc);
      for (long m = 0; m < M; ++m) {
        float acc = 0.0f;
        if (fitsI8) {
          if (useDot) packed_neon_dot_groups_sdot(wrow8, x8.p + m * K, U, nU, s32);
          else dot_groups_i8_plain(wrow8, x8.p + m * K, U, nU, s32);
          // groups of U nest in blocks of B (U = 64 or B): block index u / gpb without a division
          for (long b = 0, u = 0; b < nB; ++b) {
            for (long j = 0; j < gpb; ++j, ++u) {
              const float comb = sc[b] * ls * xs.p[m * nU + u];
              acc += static_cast<float>(s32[u]) * comb;
            }
          }
        } else {
          dot_groups_i16(w16, x16.p + m * K, U, nU, s64);
          for (long b = 0, u = 0; b < nB; ++b) {
            for (long j = 0; j < gpb; ++j, ++u) {
              const float comb = sc[b] * ls * xs.p[m * nU + u];
              acc += static_cast<float>(s64[u]) * comb;
            }
          }
        }
        a.out[m * N + n] = acc;
      }
    }
  };
  parallel_tasks(ntasks, 0, body);
}

}  // namespace

void packed_matmul_neon(const PackedArgs& a) { packed_neon(a, false); }
void packed_matmul_neon_sdot(const PackedArgs& a) { packed_neon(a, true); }

}  // namespace tfree
#endif  // __aarch64__
