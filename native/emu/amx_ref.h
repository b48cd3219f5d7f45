// Scalar reference of the AMX tile instructions that native/emu/amx_emu.h emulates, written apart
// from it for native/emu/amx_selftest.cc: the SDM's Operation sections as element loops over a tile
// state of its own, and its own floating-point arithmetic: every FMA and addition is computed exactly
// in double (the product of two bf16 values is exact in double; a two-sum gives the exact sum) and
// rounded once to float32 by hand (nearest even, 24 bits, unbounded exponent), then flushed to zero
// when below 2^-126 (FTZ, tininess after rounding) or taken to infinity above the float range;
// denormal inputs read as zero (DAZ). No use of the host's FMA or of MXCSR's FTZ / DAZ. Test code only.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

struct RefTiles {
  uint8_t bytes[8][16][64];
  int rows[8], colsb[8];
  bool configured;
};

inline void ref_clear(RefTiles& t) { std::memset(&t, 0, sizeof t); }

// LDTILECFG (valid configurations only: the self-test checks the emulation's faults apart)
inline void ref_loadconfig(RefTiles& t, const uint8_t* cfg) {
  ref_clear(t);
  if (cfg[0] == 0) return;
  for (int i = 0; i < 8; ++i) {
    t.colsb[i] = cfg[16 + 2 * i] + 256 * cfg[17 + 2 * i];
    t.rows[i] = cfg[48 + i];
  }
  t.configured = true;
}

inline void ref_loadd(RefTiles& t, int tile, const uint8_t* base, long stride) {
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 64; ++c) t.bytes[tile][r][c] = (r < t.rows[tile] && c < t.colsb[tile]) ? base[r * stride + c] : 0;
}

inline void ref_stored(const RefTiles& t, int tile, uint8_t* base, long stride) {
  for (int r = 0; r < t.rows[tile]; ++r)
    for (int c = 0; c < t.colsb[tile]; ++c) base[r * stride + c] = t.bytes[tile][r][c];
}

inline void ref_zero(RefTiles& t, int tile) { std::memset(t.bytes[tile], 0, sizeof t.bytes[tile]); }

inline float ref_f32(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint32_t ref_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
inline float ref_daz(float x) { return (ref_bits(x) & 0x7f800000u) == 0 ? ref_f32(ref_bits(x) & 0x80000000u) : x; }

// the exact value s + e (s = the double nearest to it, e the exact rest) -> float32 as above
inline float ref_round(double s, double e) {
  if (s == 0 || std::isnan(s) || std::isinf(s)) return static_cast<float>(s);
  const int ex = std::ilogb(s);
  const double sc = std::ldexp(s, -ex), ec = std::ldexp(e, -ex);  // sc in [1, 2) or (-2, -1]: exact
  const double lo = std::floor(sc * 0x1p23) * 0x1p-23;               // the float32 grid below sc (2^-23)
  double r;
  if (sc == lo) r = sc;                                 // on the grid: e (< half a double ulp) cannot move it
  else if (sc - lo < 0x1p-24) r = lo;
  else if (sc - lo > 0x1p-24) r = lo + 0x1p-23;
  else if (ec > 0) r = lo + 0x1p-23;                    // halfway in double, the rest decides
  else if (ec < 0) r = lo;
  else r = (static_cast<int64_t>(lo * 0x1p23) % 2 == 0) ? lo : lo + 0x1p-23;  // a true tie: even
  const int e2 = ex + std::ilogb(r);
  if (e2 < -126) return std::signbit(s) ? -0.0f : 0.0f;  // tiny after rounding: flushed
  if (e2 > 127) return std::signbit(s) ? -INFINITY : INFINITY;
  return static_cast<float>(std::ldexp(r, ex));  // a float32 exactly
}

inline float ref_sum(double p, double c) {  // p + c, both exact doubles, rounded as above
  const double s = p + c;
  if (std::isnan(s) || std::isinf(s) || std::isnan(p) || std::isinf(p) || std::isinf(c) || std::isnan(c)) return static_cast<float>(s);
  const double bb = s - p;
  return ref_round(s, (p - (s - bb)) + (c - bb));  // Knuth's two-sum: s + rest = p + c exactly
}
inline float ref_fma(float a, float b, float c) {
  return ref_sum(static_cast<double>(ref_daz(a)) * static_cast<double>(ref_daz(b)), ref_daz(c));
}
inline float ref_add(float a, float b) { return ref_sum(ref_daz(a), ref_daz(b)); }

inline float ref_bf16(const uint8_t* p) {  // make_fp32: the bf16 bits in the upper half of a dword
  return ref_f32(static_cast<uint32_t>(p[0] | (p[1] << 8)) << 16);
}

// TDPBF16PS tsrcdest, tsrc1, tsrc2, the SDM's Operation section line by line
inline void ref_dpbf16ps(RefTiles& t, int d, int a, int b) {
  const int elementsSrc1 = t.colsb[a] / 4, elementsDest = t.colsb[d] / 4;
  for (int m = 0; m < t.rows[d]; ++m) {
    float temp1[32] = {};
    for (int k = 0; k < elementsSrc1; ++k)
      for (int n = 0; n < elementsDest; ++n) {
        temp1[2 * n + 0] = ref_fma(ref_bf16(&t.bytes[a][m][4 * k + 0]), ref_bf16(&t.bytes[b][k][4 * n + 0]), temp1[2 * n + 0]);
        temp1[2 * n + 1] = ref_fma(ref_bf16(&t.bytes[a][m][4 * k + 2]), ref_bf16(&t.bytes[b][k][4 * n + 2]), temp1[2 * n + 1]);
      }
    uint8_t row[64] = {};
    for (int n = 0; n < elementsDest; ++n) {
      const float tmp = ref_add(temp1[2 * n], temp1[2 * n + 1]);
      float c;
      std::memcpy(&c, &t.bytes[d][m][4 * n], 4);
      c = ref_add(c, tmp);
      std::memcpy(&row[4 * n], &c, 4);
    }
    std::memcpy(t.bytes[d][m], row, 64);  // write_row_and_zero
  }
  for (int m = t.rows[d]; m < 16; ++m) std::memset(t.bytes[d][m], 0, 64);  // zero_upper_rows
}
