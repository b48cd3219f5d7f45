// Activation-side lookup-table matmul for 1- and 2-bit codes with AVX-512 (compiled with -mavx512f
// -mavx512bw -mavx512vl -mavx512dq; called only when the CPU check found them). Same function as
// packed_lut_matmul_generic (PackedLutArgs in kernels.h), the same float32 operations in the same
// order: bit-identical to the portable path, the AVX2 kernel and the TS twin.
//
// Same weight layout as the AVX2 kernel (tiles of 32 rows, byte j of the 32 rows side by side, in
// `bits` streams of 8 bytes per row and group: PackedLutArgs), so one 64-byte load holds code bytes
// j and j + 1 (j even: one stream) of all 32 rows ("2 x 32"): 128-bit lanes 0-1 are
// byte j, lanes 2-3 byte j + 1. The four tables of the two bytes (16 contiguous bytes each: T[2j]
// high nibble of byte j, T[2j+1] low nibble, T[2j+2], T[2j+3]) are one 64-byte load, spread over the
// lanes by two vshufi64x2; per 64 code bytes: vpand, vpsrlw + vpand, two vpshufb, vpunpck{l,h}bw,
// two vpmaddubsw by ones, two vpaddw (int16, exact). At the end of each group of 64 activations the
// halves of bytes j and j + 1 are added (int16, |S| <= 32 * 127), widened and combined in float32
// as in the portable path (no FMA contraction in this file). Tables are built 16 entries per vector
// (one table per zmm), with the portable path's operations. (A 64-row tile would need another
// weight layout; not tried.)
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

// the tables of one activation row (same operations as packed_lut_tables), one table per vector
void tables_avx512(const float* x, long K, int bits, const int16_t* L8, int8_t* tab, float* ts) {
  const int E = 4 / bits, Q = 64 / E;
  const int mask = (1 << bits) - 1;
  __m512 Lv[4];  // Lv[i][j] = L8[code_i(j)]
  for (int i = 0; i < E; ++i) {
    alignas(64) float l[16];
    for (int j = 0; j < 16; ++j) l[j] = static_cast<float>(L8[(j >> (4 - bits * (i + 1))) & mask]);
    Lv[i] = _mm512_load_ps(l);
  }
  alignas(64) float T[32 * 16];
  for (long u = 0; u * 64 < K; ++u) {
    const float* xg = x + u * 64;
    __m512 mx = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int q = 0; q < Q; ++q) {
      __m512 t = _mm512_setzero_ps();
      for (int i = 0; i < E; ++i) t = _mm512_add_ps(t, _mm512_mul_ps(Lv[i], _mm512_set1_ps(xg[q * E + i])));
      _mm512_store_ps(T + q * 16, t);
      const __m512 a = _mm512_abs_ps(t);
      bad = static_cast<__mmask16>(bad | _mm512_cmp_ps_mask(a, _mm512_set1_ps(3.4e38f), _CMP_NLE_UQ));
      mx = _mm512_max_ps(mx, a);
    }
    const float amax = _mm512_reduce_max_ps(mx);
    int8_t* tg = tab + u * Q * 16;
    if (bad != 0 || amax == 0.0f) {
      std::memset(tg, 0, static_cast<size_t>(Q) * 16);
      ts[u] = bad == 0 ? 0.0f : __builtin_nanf("");
      continue;
    }
    const __m512 inv = _mm512_set1_ps(127.0f / amax);
    for (int q = 0; q < Q; ++q)
      _mm_store_si128(reinterpret_cast<__m128i*>(tg + q * 16), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_load_ps(T + q * 16), inv))));
    ts[u] = amax / 127.0f;
  }
}

// one tile of 32 rows against activation rows m0 .. m0 + MG - 1
template <int BITS, int MG>
void tile_kernel(const LutCtx& c, long tile, long m0) {
  constexpr int Q = 16 * BITS, JB = Q / 2;  // tables and code bytes per row per group of 64
  const PackedLutArgs& a = *c.a;
  const long nU = c.nU;
  const uint8_t* tc = a.codes + tile * c.rb * 32;
  const uint16_t* tsc = a.scales + tile * c.nB * 32;
  const __m512i m0f = _mm512_set1_epi8(0x0F), ones = _mm512_set1_epi8(1);
  const __m512 vls = _mm512_set1_ps(c.ls);
  // acc[.][0]: rows 0-7 | 16-23, acc[.][1]: rows 8-15 | 24-31
  __m512 acc[MG][2];
  for (int mm = 0; mm < MG; ++mm) acc[mm][0] = acc[mm][1] = _mm512_setzero_ps();
  for (long u = 0; u < nU; ++u) {
    __m512i s16[MG][2];
    for (int mm = 0; mm < MG; ++mm) s16[mm][0] = s16[mm][1] = _mm512_setzero_si512();
    const uint8_t* p = tc + u * 8 * 32;  // stream h: bytes 8 h .. 8 h + 7 of the group (PackedLutArgs)
    if (c.pd > 0)
      for (int h = 0; h < BITS; ++h)
        for (int l = 0; l < 8 * 32; l += 64) _mm_prefetch(reinterpret_cast<const char*>(p + h * c.ss + c.pd / BITS + l), _MM_HINT_T0);
    const int8_t* tg[MG];
    for (int mm = 0; mm < MG; ++mm) tg[mm] = c.tab + ((m0 + mm) * nU + u) * Q * 16;
    for (int j = 0; j < JB; j += 2) {
      const __m512i idx = _mm512_loadu_si512(p + (j / 8) * c.ss + (j % 8) * 32);  // bytes j, j + 1 (one stream)
      const __m512i lo = _mm512_and_si512(idx, m0f);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(idx, 4), m0f);
      for (int mm = 0; mm < MG; ++mm) {
        const __m512i t4 = _mm512_load_si512(tg[mm] + 32 * j);  // T[2j], T[2j+1], T[2j+2], T[2j+3]
        const __m512i th = _mm512_shuffle_i64x2(t4, t4, 0xA0), tl = _mm512_shuffle_i64x2(t4, t4, 0xF5);
        const __m512i rh = _mm512_shuffle_epi8(th, hi), rl = _mm512_shuffle_epi8(tl, lo);
        s16[mm][0] = _mm512_add_epi16(s16[mm][0], _mm512_maddubs_epi16(ones, _mm512_unpacklo_epi8(rh, rl)));
        s16[mm][1] = _mm512_add_epi16(s16[mm][1], _mm512_maddubs_epi16(ones, _mm512_unpackhi_epi8(rh, rl)));
      }
    }
    const uint16_t* sp = tsc + (u * 64 / a.B) * 32;
    if (c.spd > 0) _mm_prefetch(reinterpret_cast<const char*>(sp) + c.spd, _MM_HINT_T0);
    const __m512i h = _mm512_loadu_si512(sp);  // rows 0..31
    const __m512i s0 = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16);         // rows 0..15
    const __m512i s1 = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16);  // rows 16..31
    __m512 sc[2];
    sc[0] = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_shuffle_i64x2(s0, s1, 0x44)), vls);  // rows 0-7 | 16-23
    sc[1] = _mm512_mul_ps(_mm512_castsi512_ps(_mm512_shuffle_i64x2(s0, s1, 0xEE)), vls);  // rows 8-15 | 24-31
    for (int mm = 0; mm < MG; ++mm) {
      const __m512 vts = _mm512_set1_ps(c.ts[(m0 + mm) * nU + u]);
      for (int k = 0; k < 2; ++k) {
        // lanes 0-1 (byte j) + lanes 2-3 (byte j + 1) of the same rows
        const __m256i f = _mm256_add_epi16(_mm512_castsi512_si256(s16[mm][k]), _mm512_extracti64x4_epi64(s16[mm][k], 1));
        const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(f));
        acc[mm][k] = _mm512_add_ps(acc[mm][k], _mm512_mul_ps(v, _mm512_mul_ps(sc[k], vts)));
      }
    }
  }
  const long N = a.N, n0 = tile * 32;
  for (int mm = 0; mm < MG; ++mm) {
    float* o = a.out + (m0 + mm) * N + n0;
    const __m512 r0 = _mm512_castpd_ps(_mm512_shuffle_f64x2(_mm512_castps_pd(acc[mm][0]), _mm512_castps_pd(acc[mm][1]), 0x44));  // rows 0..15
    const __m512 r1 = _mm512_castpd_ps(_mm512_shuffle_f64x2(_mm512_castps_pd(acc[mm][0]), _mm512_castps_pd(acc[mm][1]), 0xEE));  // rows 16..31
    if (n0 + 32 <= N) {
      _mm512_storeu_ps(o, r0);
      _mm512_storeu_ps(o + 16, r1);
    } else {
      alignas(64) float buf[32];
      _mm512_store_ps(buf, r0);
      _mm512_store_ps(buf + 16, r1);
      for (long r = 0; r < N - n0; ++r) o[r] = buf[r];
    }
  }
}

// the ISA parts of the driver (packed_lut_driver.h)
struct Kern {
  template <int BITS, int MG>
  static void tile(const LutCtx& c, long t, long m0) {
    tile_kernel<BITS, MG>(c, t, m0);
  }
  static void tables(const float* x, long K, int bits, const int16_t* L8, int8_t* tab, float* ts) { tables_avx512(x, K, bits, L8, tab, ts); }
};

}  // namespace

void packed_lut_matmul_avx512(const PackedLutArgs& a) { lut_matmul<Kern>(a); }

}  // namespace tfree
