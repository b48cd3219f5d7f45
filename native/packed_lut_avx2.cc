// Activation-side lookup-table matmul for 1- and 2-bit codes with AVX2 (compiled with -mavx2 -mfma;
// called only when the CPU check found both). Same function as packed_lut_matmul_generic (see
// PackedLutArgs in kernels.h), the same float32 operations in the same order: bit-identical.
//
// Design (docs/compression.md, "Lookup-table kernel"): instead of decoding every weight, the
// activations are turned into tables: per 4 activations (1-bit) or 2 activations (2-bit) the 16
// possible partial sums, rounded to int8 per group of 64 activations. The weights, interleaved
// once at load time by tiles of 32 rows (byte j of rows 0..31 side by side; 2-bit tiles in two
// streams of 8 bytes per row and group, so a pair of tiles is four code streams), are then nibble
// indices into those tables: one vpshufb looks up 32 rows at once (the 16-byte table broadcast to
// both lanes). Per 32 bytes of codes (32 rows x 2 nibbles): vpand, vpmulhuw + vpand, two vpshufb
// (two tables), and the lookups (biased tables, t + 128 as uint8) are summed as 16-bit words
// without widening them first: a word holds an even row's lookup + 256 x the next odd row's, so
// one vpaddw adds the two lookups of 16 row pairs (the word sum is the even rows' sum + 256 x the
// odd rows', mod 2^16), and a second sum of the words shifted right by 8 (vpsrlw) keeps the odd
// rows' sums alone; per group of 64 activations the even rows' sum is the difference (exact: the
// row sums are <= 32 x 255, and the bias 128 per lookup cancels against the accumulators' start
// value -128 Q). 11 vector instructions per 32 code bytes as before (vpunpck{l,h}bw + vpmaddubsw by
// ones + vpaddw until 2026-12-05), but only the vpmulhuw needs the vector integer multiplier, of
// which Zen 2 has one pipe (the pairing with vpmaddubsw put 3 of the 11 on it): warm, 1 thread,
// 7 % (kmeans2) and 2 % (bin1) less time (docs/results/engine.md). Per group the int16 row sums are
// widened to int32 in row order per half tile (vpmovsxwd), converted and scaled per (row, block)
// in float32, in the portable path's order: (scale x level scale) x table scale, then product,
// then sum.
// Tables are built here too, vectorized over 8 nibble positions (tables_avx2 below), at the start
// of the one parallel section of a call (packed_lut_driver.h).
// Codes and scales are prefetched in software a few KiB ahead.
// No fused multiply-add contraction in this file: every product and sum is rounded as in the portable path.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

namespace tfree {
namespace {

#include "packed_lut_driver.h"

// One group's tables by the portable builder, then biased as tables_avx2 stores them (t + 128, as
// uint8: t ^ 0x80), the form tile_kernel reads.
inline void portable_tables_biased(const float* xg, int bits, const int16_t* L8, int8_t* tg, float* ts) {
  packed_lut_tables(xg, 64, bits, L8, tg, ts);
  const __m256i sgn = _mm256_set1_epi8(-128);
  for (int k = 0; k < 16 * bits * 16; k += 32) {
    __m256i* q = reinterpret_cast<__m256i*>(tg + k);
    _mm256_store_si256(q, _mm256_xor_si256(_mm256_load_si256(q), sgn));
  }
}

// The tables of one activation row: the values of packed_lut_tables, vectorized over 8 nibble
// positions q at a time (lanes: q 0 2 4 6 | 1 3 5 7 of each block of 8) instead of the 16 entries.
// Per activation i and level c the product P_i[c] = L8[c] x[qE + i] (float32, as in the portable
// path); an entry is T = ((P_0 + P_1) + P_2) + P_3 for its codes, which differs from the portable
// ((((0 + P_0) + P_1) + ..) at most in the sign of a zero (|T| and the rounded int8 are the same).
// Rounding is monotone, so the largest entry of a lane is the sum of the largest products (and the
// smallest of the smallest): amax without touching the 16 entries. The entries are rounded
// (vcvtps2dq, round-to-nearest-even like nearbyint), packed to int8 and transposed to the [q][16]
// layout. A group whose amax is 0 or not finite, or with a NaN entry (it rounds to the int8 -128,
// which no finite entry reaches: |T x 127 / amax| <= 127), is redone by the portable
// packed_lut_tables (zero tables, ts 0 or NaN as there).
template <int BITS>
void tables_avx2(const float* x, long K, const int16_t* L8, int8_t* tab, float* ts) {
  constexpr int E = 4 / BITS, NL = 1 << BITS, Q = 64 / E, NBLK = Q / 8;
  __m256 Lf[NL];
  for (int c = 0; c < NL; ++c) Lf[c] = _mm256_set1_ps(static_cast<float>(L8[c]));
  const __m256i tr4 = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m256i perm2 = _mm256_setr_epi32(0, 4, 2, 6, 1, 5, 3, 7);  // E = 2: q 0 1 4 5 | 2 3 6 7 -> 0 2 4 6 | 1 3 5 7
  const __m256i sgn = _mm256_set1_epi8(-128);  // the tables are stored biased: t ^ 0x80 = t + 128 as uint8
  __m256 P[NBLK][E][NL];
  for (long u = 0; u * 64 < K; ++u) {
    const float* xg = x + u * 64;
    __m256 mxv = _mm256_set1_ps(-__builtin_inff()), mnv = _mm256_set1_ps(__builtin_inff());
    for (int b = 0; b < NBLK; ++b) {
      __m256 xi[E];  // xi[i] lane k: x[qE + i] of the block's q in lane order
      if (E == 2) {
        const __m256 v0 = _mm256_loadu_ps(xg + 16 * b), v1 = _mm256_loadu_ps(xg + 16 * b + 8);
        xi[0] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(v0, v1, 0x88), perm2);
        xi[1] = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(v0, v1, 0xDD), perm2);
      } else {  // rows q 0 | 1, 2 | 3, 4 | 5, 6 | 7 of 4 activations: a 4 x 4 transpose per lane
        const __m256 v0 = _mm256_loadu_ps(xg + 32 * b), v1 = _mm256_loadu_ps(xg + 32 * b + 8);
        const __m256 v2 = _mm256_loadu_ps(xg + 32 * b + 16), v3 = _mm256_loadu_ps(xg + 32 * b + 24);
        const __m256 t0 = _mm256_unpacklo_ps(v0, v1), t1 = _mm256_unpackhi_ps(v0, v1);
        const __m256 t2 = _mm256_unpacklo_ps(v2, v3), t3 = _mm256_unpackhi_ps(v2, v3);
        xi[0] = _mm256_shuffle_ps(t0, t2, 0x44);
        xi[1 % E] = _mm256_shuffle_ps(t0, t2, 0xEE);
        xi[2 % E] = _mm256_shuffle_ps(t1, t3, 0x44);
        xi[3 % E] = _mm256_shuffle_ps(t1, t3, 0xEE);
      }
      __m256 hi = _mm256_setzero_ps(), lo = _mm256_setzero_ps();
      for (int i = 0; i < E; ++i) {
        __m256 pmx = _mm256_set1_ps(-__builtin_inff()), pmn = _mm256_set1_ps(__builtin_inff());
        for (int c = 0; c < NL; ++c) {
          P[b][i][c] = _mm256_mul_ps(Lf[c], xi[i]);
          pmx = _mm256_max_ps(pmx, P[b][i][c]);
          pmn = _mm256_min_ps(pmn, P[b][i][c]);
        }
        hi = i == 0 ? pmx : _mm256_add_ps(hi, pmx);
        lo = i == 0 ? pmn : _mm256_add_ps(lo, pmn);
      }
      mxv = _mm256_max_ps(mxv, hi);
      mnv = _mm256_min_ps(mnv, lo);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mxv), _mm256_extractf128_ps(mxv, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    __m128 n4 = _mm_min_ps(_mm256_castps256_ps128(mnv), _mm256_extractf128_ps(mnv, 1));
    n4 = _mm_min_ps(n4, _mm_movehl_ps(n4, n4));
    n4 = _mm_min_ss(n4, _mm_movehdup_ps(n4));
    const float tmax = _mm_cvtss_f32(m4), tmin = _mm_cvtss_f32(n4);
    const float amax = tmax > -tmin ? tmax : -tmin;
    int8_t* tg = tab + u * Q * 16;
    if (!(amax > 0.0f && amax <= 3.4e38f)) {  // (NaN too)
      portable_tables_biased(xg, BITS, L8, tg, ts + u);
      continue;
    }
    const __m256 inv = _mm256_set1_ps(127.0f / amax);
    __m256i low = _mm256_setzero_si256();  // bytewise minimum: -128 only from a NaN entry
    for (int b = 0; b < NBLK; ++b) {
      __m256i B4[4];  // entries j = 4 k .. 4 k + 3 of the block's 8 q, int8
      for (int k = 0; k < 4; ++k) {
        __m256i I[4];
        for (int jj = 0; jj < 4; ++jj) {
          const int j = 4 * k + jj;
          __m256 t;
          if (E == 2) {
            t = _mm256_add_ps(P[b][0][j >> 2], P[b][1 % E][j & 3]);
          } else {
            t = _mm256_add_ps(P[b][0][(j >> 3) & 1], P[b][1 % E][(j >> 2) & 1]);
            t = _mm256_add_ps(t, P[b][2 % E][(j >> 1) & 1]);
            t = _mm256_add_ps(t, P[b][3 % E][j & 1]);
          }
          I[jj] = _mm256_cvtps_epi32(_mm256_mul_ps(t, inv));
        }
        // per lane: j-major 4 x 4 bytes (entry j of the lane's q a b c d), then q-major
        B4[k] = _mm256_shuffle_epi8(_mm256_packs_epi16(_mm256_packs_epi32(I[0], I[1]), _mm256_packs_epi32(I[2], I[3])), tr4);
      }
      const __m256i l01 = _mm256_unpacklo_epi32(B4[0], B4[1]), l23 = _mm256_unpacklo_epi32(B4[2], B4[3]);
      const __m256i h01 = _mm256_unpackhi_epi32(B4[0], B4[1]), h23 = _mm256_unpackhi_epi32(B4[2], B4[3]);
      const __m256i R[4] = {_mm256_unpacklo_epi64(l01, l23), _mm256_unpackhi_epi64(l01, l23), _mm256_unpacklo_epi64(h01, h23), _mm256_unpackhi_epi64(h01, h23)};
      for (int r = 0; r < 4; ++r) {  // R[r] = tables of q 2 r | 2 r + 1 of the block, stored biased
        _mm256_store_si256(reinterpret_cast<__m256i*>(tg + (8 * b + 2 * r) * 16), _mm256_xor_si256(R[r], sgn));
        low = _mm256_min_epi8(low, R[r]);
      }
    }
    if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(low, _mm256_set1_epi8(-128))) != 0) {
      portable_tables_biased(xg, BITS, L8, tg, ts + u);
      continue;
    }
    ts[u] = amax / 127.0f;
  }
}

// NT tiles of 32 rows (tile, tile + 1, ..) against activation rows m0 .. m0 + MG - 1 (NT = 2 only
// with MG = 1: two tiles share each table load). LS1: the level scale is 1 (integer levels: bin1,
// int2, ternary), and scale x 1 is the scale itself, so that product is left out
template <int BITS, int MG, int NT, bool LS1>
void tile_kernel(const LutCtx& c, long tile, long m0) {
  constexpr int Q = 16 * BITS;  // tables per group of 64 (code bytes per row and group: Q / 2 = 8 BITS)
  const PackedLutArgs& a = *c.a;
  const long nU = c.nU;
  const long tstride = c.rb * 32;  // code bytes per tile
  const uint8_t* tc = a.codes + tile * tstride;
  const __m256i m0f = _mm256_set1_epi8(0x0F);
  const __m256i bias = _mm256_set1_epi16(static_cast<short>(-128 * Q));
  // the high nibbles: (16-bit word x 2^12) >> 16 = word >> 4, by vpmulhuw on the multiply pipe
  // instead of vpsrlw (the shift pipe takes the two vpsrlw of the odd rows' sums; vpsrlw here:
  // 1.014x the time for kmeans2, 0.985-1.002x for bin1, warm, 1 thread; cold 1.00)
  const __m256i k16 = _mm256_set1_epi16(1 << 12);
  const __m256 vls = _mm256_set1_ps(c.ls);
  __m256 acc[NT][MG][4];
  for (int nt = 0; nt < NT; ++nt)
    for (int mm = 0; mm < MG; ++mm)
      for (int k = 0; k < 4; ++k) acc[nt][mm][k] = _mm256_setzero_ps();
  const long bpu = a.B / 64;  // groups per scale block
  // the block scales of group u, per tile (advanced per block: no division in the loop)
  const uint16_t* sp = a.scales + tile * c.nB * 32;
  const uint16_t* const sp0 = sp;
  const long sstride = c.nB * 32;
  long ub = 0;  // group within the scale block
  for (long u = 0; u < nU; ++u) {
    __m256i aw[NT][MG], ao[NT][MG];
    for (int nt = 0; nt < NT; ++nt)
      for (int mm = 0; mm < MG; ++mm) aw[nt][mm] = ao[nt][mm] = bias;
    // BITS streams per tile (PackedLutArgs): bytes 8 h .. 8 h + 7 of the group in stream h
    const uint8_t* p = tc + u * 8 * 32;
    if (c.pd > 0) {
      // pd / BITS ahead per stream; past the end of its stream, stream (nt, h) runs on in the same
      // stream of tile + NT + nt (the next pair's), not in the next stream or tile
      const long pdS = c.pd / BITS;
      const long skip = (u * 8 * 32 + pdS >= c.ss) ? NT * tstride - c.ss : 0;
      for (int nt = 0; nt < NT; ++nt)
        for (int h = 0; h < BITS; ++h)
          for (int l = 0; l < 8 * 32; l += 64) _mm_prefetch(reinterpret_cast<const char*>(p + nt * tstride + h * c.ss + pdS + skip + l), _MM_HINT_T0);
    }
    const int8_t* tg[MG];
    for (int mm = 0; mm < MG; ++mm) tg[mm] = c.tab + ((m0 + mm) * nU + u) * Q * 16;
    // one step: code bytes j (stream pointer ph, byte jj < 8 of the group in it) of the NT tiles
#define LUT_STEP(ph, jj, j)                                                                                                    \
  {                                                                                                                            \
    __m256i th[MG], tl[MG];                                                                                                    \
    for (int mm = 0; mm < MG; ++mm) {                                                                                          \
      th[mm] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(tg[mm] + 32 * (j))));              \
      tl[mm] = _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(tg[mm] + 32 * (j) + 16)));         \
    }                                                                                                                          \
    for (int nt = 0; nt < NT; ++nt) {                                                                                          \
      const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>((ph) + nt * tstride + (jj) * 32));               \
      const __m256i lo = _mm256_and_si256(idx, m0f);                                                                           \
      const __m256i hi = _mm256_and_si256(_mm256_mulhi_epu16(idx, k16), m0f);                                                  \
      for (int mm = 0; mm < MG; ++mm) {                                                                                        \
        /* biased lookups u = t + 128 (bytes = rows); words: even row + 256 x odd row */                                       \
        const __m256i rh = _mm256_shuffle_epi8(th[mm], hi), rl = _mm256_shuffle_epi8(tl[mm], lo);                              \
        aw[nt][mm] = _mm256_add_epi16(aw[nt][mm], _mm256_add_epi16(rh, rl));                                                   \
        ao[nt][mm] = _mm256_add_epi16(ao[nt][mm], _mm256_add_epi16(_mm256_srli_epi16(rh, 8), _mm256_srli_epi16(rl, 8)));       \
      }                                                                                                                        \
    }                                                                                                                          \
  }
    if (BITS == 1) {
      // one stream, the group's 8 bytes unrolled by 4 (GCC 12 by itself unrolled them whole, with 32
      // ymm stack accesses per group: new/old 0.98 / 0.97, 2026-12-04; unrolled by 2, 1.04x the time)
#pragma GCC unroll 4
      for (int jj = 0; jj < 8; ++jj) LUT_STEP(p, jj, jj)
    } else {
      // per stream 8 code bytes, unrolled by 2 (the streams' loop unrolled too: the lookups parked
      // on the stack, 1.14x the time warm, 2026-12-05)
#pragma GCC unroll 1
      for (int h = 0; h < BITS; ++h) {
        const uint8_t* ph = p + h * c.ss;
#pragma GCC unroll 2
        for (int jj = 0; jj < 8; ++jj) LUT_STEP(ph, jj, 8 * h + jj)
      }
    }
#undef LUT_STEP
    // per (tile, row of x): ao = the odd rows' sums S (the bias -128 Q it started from cancels the
    // 128 per lookup), aw - 256 ao = the even rows' (mod 2^16; both exact: |S| <= 32 x 127).
    // Widened to int32 in row order per half tile (vpmovsxwd), which is the order of the bf16
    // block scales' even / odd halves (shifted or masked into place): ROWS below.
    // (the scale streams likewise)
    const long sskip = (NT > 1 && (sp - sp0) * 2 + c.spd >= sstride * 2) ? (NT - 1) * sstride * 2 : 0;
    for (int nt = 0; nt < NT; ++nt) {
      const uint16_t* spt = sp + nt * sstride;
      if (c.spd > 0) _mm_prefetch(reinterpret_cast<const char*>(spt) + c.spd + sskip, _MM_HINT_T0);
      __m256 sc[4];
      {
        const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(spt));
        const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(spt + 16));
        const __m256i himask = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
        sc[0] = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16));
        sc[1] = _mm256_castsi256_ps(_mm256_and_si256(v0, himask));
        sc[2] = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16));
        sc[3] = _mm256_castsi256_ps(_mm256_and_si256(v1, himask));
        if (!LS1)
          for (int k = 0; k < 4; ++k) sc[k] = _mm256_mul_ps(sc[k], vls);
      }
      for (int mm = 0; mm < MG; ++mm) {
        const __m256 vts = _mm256_set1_ps(c.ts[(m0 + mm) * nU + u]);
        const __m256i ev = _mm256_sub_epi16(aw[nt][mm], _mm256_slli_epi16(ao[nt][mm], 8)), od = ao[nt][mm];
        __m256i s32[4];  // ROWS: 0 2 4 .. 14 | 1 3 .. 15 | 16 18 .. 30 | 17 19 .. 31
        s32[0] = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(ev));
        s32[1] = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(od));
        s32[2] = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(ev, 1));
        s32[3] = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(od, 1));
        for (int k = 0; k < 4; ++k)
          acc[nt][mm][k] = _mm256_add_ps(acc[nt][mm][k], _mm256_mul_ps(_mm256_cvtepi32_ps(s32[k]), _mm256_mul_ps(sc[k], vts)));
      }
    }
    if (++ub == bpu) {
      ub = 0;
      sp += 32;
    }
  }
  const long N = a.N;
  for (int nt = 0; nt < NT; ++nt) {
    const long n0 = (tile + nt) * 32;
    for (int mm = 0; mm < MG; ++mm) {  // back to row order (ROWS above)
      __m256 r[4];
      for (int h = 0; h < 2; ++h) {
        const __m256 lo = _mm256_unpacklo_ps(acc[nt][mm][2 * h], acc[nt][mm][2 * h + 1]), hi = _mm256_unpackhi_ps(acc[nt][mm][2 * h], acc[nt][mm][2 * h + 1]);
        r[2 * h] = _mm256_permute2f128_ps(lo, hi, 0x20);      // rows 16 h .. 16 h + 7
        r[2 * h + 1] = _mm256_permute2f128_ps(lo, hi, 0x31);  // rows 16 h + 8 ..
      }
      float* o = a.out + (m0 + mm) * N + n0;
      if (n0 + 32 <= N) {
        for (int k = 0; k < 4; ++k) _mm256_storeu_ps(o + 8 * k, r[k]);
      } else {
        alignas(32) float buf[32];
        for (int k = 0; k < 4; ++k) _mm256_store_ps(buf + 8 * k, r[k]);
        for (long q = 0; q < N - n0; ++q) o[q] = buf[q];
      }
    }
  }
}

// the ISA parts of the driver (packed_lut_driver.h)
struct Kern {
  template <int BITS, int MG>
  static void tile(const LutCtx& c, long t, long m0) {
    if (c.ls == 1.0f) tile_kernel<BITS, MG, 1, true>(c, t, m0);
    else tile_kernel<BITS, MG, 1, false>(c, t, m0);
  }
  // tiles t and t + 1 against one activation row (the driver's optional pair step)
  template <int BITS>
  static void tile_pair(const LutCtx& c, long t, long m0) {
    if (c.ls == 1.0f) tile_kernel<BITS, 1, 2, true>(c, t, m0);
    else tile_kernel<BITS, 1, 2, false>(c, t, m0);
  }
  static void tables(const float* x, long K, int bits, const int16_t* L8, int8_t* tab, float* ts) {
    if (bits == 1) tables_avx2<1>(x, K, L8, tab, ts);
    else tables_avx2<2>(x, K, L8, tab, ts);
  }
};

}  // namespace

void packed_lut_matmul_avx2(const PackedLutArgs& a) { lut_matmul<Kern>(a); }

}  // namespace tfree
