// Activation-side lookup-table matmul for 1- and 2-bit codes with ARM64 NEON: the same function as
// packed_lut_matmul_generic (see PackedLutArgs in kernels.h), the same float32 operations in the
// same order: bit-identical.
//
// The int8 tables come from the shared packed_lut_tables (built in parallel tasks, one per
// activation row and chunk of 16 groups). Per group of 64 activations and tile of 32 weight rows,
// each code byte j of the 32 rows (two 16-byte vectors in the interleaved layout, stream j / 8 of
// the tile: PackedLutArgs) is split into
// its nibbles (ushr, and); tbl looks up 16 rows at once in table 2j (high nibbles) and 2j + 1 (low
// nibbles), saddl/saddl2 add the two lookups of a row into int16, and the int16 row sums (exact:
// |sum| <= 32 x 127) are widened, converted and scaled per (row, block) in float32 in the portable
// path's order: (scale x level scale) x table scale, then product, then sum (no fused multiply-add).
// Up to two activation rows share each load of codes. Compiled to nothing on other architectures.
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
namespace {

#include "packed_lut_driver.h"

// one tile of 32 rows against activation rows m0 .. m0 + MG - 1
template <int BITS, int MG>
void tile_kernel(const LutCtx& c, long tile, long m0) {
  constexpr int Q = 16 * BITS, JB = Q / 2;  // tables and code bytes per row per group of 64
  const PackedLutArgs& a = *c.a;
  const long nU = c.nU;
  const uint8_t* tc = a.codes + tile * c.rb * 32;
  const uint16_t* tsc = a.scales + tile * c.nB * 32;
  const uint8x16_t m0f = vdupq_n_u8(0x0F);
  const float32x4_t vls = vdupq_n_f32(c.ls);
  float32x4_t acc[MG][8];
  for (int mm = 0; mm < MG; ++mm)
    for (int k = 0; k < 8; ++k) acc[mm][k] = vdupq_n_f32(0.0f);
  for (long u = 0; u < nU; ++u) {
    int16x8_t s16[MG][4];  // rows 0-7, 8-15, 16-23, 24-31
    for (int mm = 0; mm < MG; ++mm)
      for (int k = 0; k < 4; ++k) s16[mm][k] = vdupq_n_s16(0);
    const uint8_t* p = tc + u * 8 * 32;  // stream h: bytes 8 h .. 8 h + 7 of the group (PackedLutArgs)
    for (int h = 0; h < BITS; ++h) __builtin_prefetch(p + h * c.ss + 2048 / BITS);
    const int8_t* tg[MG];
    for (int mm = 0; mm < MG; ++mm) tg[mm] = c.tab + ((m0 + mm) * nU + u) * Q * 16;
    for (int j = 0; j < JB; ++j) {
      const uint8_t* pj = p + (j / 8) * c.ss + (j % 8) * 32;
      const uint8x16_t i0 = vld1q_u8(pj), i1 = vld1q_u8(pj + 16);
      const uint8x16_t h0 = vshrq_n_u8(i0, 4), l0 = vandq_u8(i0, m0f);
      const uint8x16_t h1 = vshrq_n_u8(i1, 4), l1 = vandq_u8(i1, m0f);
      for (int mm = 0; mm < MG; ++mm) {
        const int8x16_t th = vld1q_s8(tg[mm] + 32 * j), tl = vld1q_s8(tg[mm] + 32 * j + 16);
        const int8x16_t rh0 = vqtbl1q_s8(th, h0), rl0 = vqtbl1q_s8(tl, l0);
        const int8x16_t rh1 = vqtbl1q_s8(th, h1), rl1 = vqtbl1q_s8(tl, l1);
        s16[mm][0] = vaddq_s16(s16[mm][0], vaddl_s8(vget_low_s8(rh0), vget_low_s8(rl0)));
        s16[mm][1] = vaddq_s16(s16[mm][1], vaddl_high_s8(rh0, rl0));
        s16[mm][2] = vaddq_s16(s16[mm][2], vaddl_s8(vget_low_s8(rh1), vget_low_s8(rl1)));
        s16[mm][3] = vaddq_s16(s16[mm][3], vaddl_high_s8(rh1, rl1));
      }
    }
    // block scales of the 32 rows (bf16 -> f32) times the level scale
    const uint16_t* sp = tsc + (u * 64 / a.B) * 32;
    float32x4_t sc[8];
    for (int k = 0; k < 4; ++k) {
      const uint16x8_t h = vld1q_u16(sp + 8 * k);
      sc[2 * k] = vmulq_f32(vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16)), vls);
      sc[2 * k + 1] = vmulq_f32(vreinterpretq_f32_u32(vshll_high_n_u16(h, 16)), vls);
    }
    for (int mm = 0; mm < MG; ++mm) {
      const float32x4_t vts = vdupq_n_f32(c.ts[(m0 + mm) * nU + u]);
      for (int k = 0; k < 4; ++k) {
        const float32x4_t f0 = vcvtq_f32_s32(vmovl_s16(vget_low_s16(s16[mm][k])));
        const float32x4_t f1 = vcvtq_f32_s32(vmovl_high_s16(s16[mm][k]));
        acc[mm][2 * k] = vaddq_f32(acc[mm][2 * k], vmulq_f32(f0, vmulq_f32(sc[2 * k], vts)));
        acc[mm][2 * k + 1] = vaddq_f32(acc[mm][2 * k + 1], vmulq_f32(f1, vmulq_f32(sc[2 * k + 1], vts)));
      }
    }
  }
  const long N = a.N, n0 = tile * 32;
  for (int mm = 0; mm < MG; ++mm) {
    float* o = a.out + (m0 + mm) * N + n0;
    if (n0 + 32 <= N) {
      for (int k = 0; k < 8; ++k) vst1q_f32(o + 4 * k, acc[mm][k]);
    } else {
      float buf[32];
      for (int k = 0; k < 8; ++k) vst1q_f32(buf + 4 * k, acc[mm][k]);
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
  static void tables(const float* x, long K, int bits, const int16_t* L8, int8_t* tab, float* ts) { packed_lut_tables(x, K, bits, L8, tab, ts); }
};

}  // namespace

void packed_lut_matmul_neon(const PackedLutArgs& a) { lut_matmul<Kern>(a); }

}  // namespace tfree
#endif  // __aarch64__
