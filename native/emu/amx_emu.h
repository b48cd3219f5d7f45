// Emulation of the AMX tile intrinsics that native/bf16_amx.cc uses (AMX-TILE: _tile_loadconfig,
// _tile_loadd, _tile_stored, _tile_zero, _tile_release; AMX-BF16: _tile_dpbf16ps), for testing that
// kernel on a CPU without AMX (scripts/test-avx512-emu.sh). Never part of the production addon:
// force-included (-include) ahead of bf16_amx.cc in the emulation build, which compiles it with
// -mavx2 -mfma -mf16c -DTFREE_EMU_AVX512 instead of -mamx-tile -mamx-bf16 (cpu.cc then reports
// amx-tile, amx-bf16 and amx-permitted).
//
// <immintrin.h> comes first (GCC 12 writes the tile intrinsics as inline asm macros and one inline
// function per instruction), then each intrinsic name is #defined to its emulation tfemu_<name>.
// State: a thread_local copy of the architectural tile state (TILECFG: palette, rows and bytes per
// row of the 8 tiles; TILEDATA: 8 tiles of 16 rows x 64 bytes), per thread as on the real CPU.
// Semantics: the Operation sections of Intel's SDM (Vol. 2, LDTILECFG, TILELOADD, TILESTORED,
// TILEZERO, TILERELEASE, TDPBF16PS) and its exception classes as far as a kernel could trip them
// (tiles not configured, a tile used that the configuration leaves empty, TDPBF16PS's shape rules
// and distinct tiles, invalid configurations): each ends the process with one line naming the
// instruction, where the real one raises #UD / #GP. start_row (restart after a fault) is not
// emulated: a configuration with start_row != 0 is refused the same way.
//
// TDPBF16PS, as the SDM's current pseudo-code gives it: per row m of the destination, two float32
// accumulators per output column n, both starting at +0: for each pair k of the row of tsrc1 (in
// order), acc_even[n] = fma(A[m][2k], B[k][2n], acc_even[n]) and acc_odd[n] = fma(A[m][2k+1],
// B[k][2n+1], acc_odd[n]); then C[m][n] = C[m][n] + (acc_even[n] + acc_odd[n]). Every step rounds
// to nearest even with denormal inputs read as zero (DAZ) and tiny results flushed to a zero of
// their sign (FTZ; tininess after rounding, as x86 detects underflow: the result rounded with an
// unbounded exponent below 2^-126), MXCSR neither consulted nor updated. (The Intrinsics Guide's
// older, shorter pseudo-code adds each product into C[m][n] directly, even then odd; the SDM's form
// is the one emulated; docs/design.md says why the kernels' bounds cover both.) The FMA is the host's
// vfmadd (gradual underflow, nearest even, as Node runs); the one case where that and FTZ after
// rounding differ, a result that rounds to exactly 2^-126 on the denormal grid but is below it
// rounded with 24 bits, is computed again scaled by 2^24 (exact: such operands are small).
// What this proves and what it does not: docs/design.md ("AMX under emulation").
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#pragma GCC push_options
#pragma GCC target("avx2,fma")

struct tfemu_amx_state {
  alignas(64) uint8_t data[8][16][64];
  uint16_t colsb[8];
  uint8_t rows[8];
  bool configured;
};
inline thread_local tfemu_amx_state tfemu_amx = {};  // the INIT state: nothing configured, all zero

[[noreturn]] inline void tfemu_amx_fault(const char* insn, const char* exc, const char* why) {
  std::fprintf(stderr, "amx-emu: %s would raise %s: %s\n", insn, exc, why);
  std::fflush(stderr);
  std::abort();
}

inline void tfemu_amx_check(const char* insn, int t) {
  if (!tfemu_amx.configured) tfemu_amx_fault(insn, "#UD", "tiles not configured (no LDTILECFG with palette 1)");
  if (t < 0 || t > 7) tfemu_amx_fault(insn, "#UD", "no such tile");
  if (tfemu_amx.rows[t] == 0) tfemu_amx_fault(insn, "#UD", "the tile is not valid in the loaded configuration (0 rows)");
}

// LDTILECFG: palette 0 = the INIT state; palette 1 = 8 tiles of at most 16 rows x 64 bytes. Reserved
// bytes must be 0 and a tile has both rows and bytes per row or neither (else #GP). Zeroes every tile.
inline void tfemu_tile_loadconfig(const void* cfg) {
  uint8_t b[64];
  std::memcpy(b, cfg, 64);
  const char* insn = "ldtilecfg";
  if (b[0] > 1) tfemu_amx_fault(insn, "#GP", "palette id > 1");
  std::memset(tfemu_amx.data, 0, sizeof tfemu_amx.data);
  if (b[0] == 0) {
    std::memset(tfemu_amx.colsb, 0, sizeof tfemu_amx.colsb);
    std::memset(tfemu_amx.rows, 0, sizeof tfemu_amx.rows);
    tfemu_amx.configured = false;
    return;
  }
  if (b[1] != 0) tfemu_amx_fault(insn, "(not emulated)", "start_row != 0");
  for (int i = 2; i < 16; ++i)
    if (b[i]) tfemu_amx_fault(insn, "#GP", "reserved bytes 2..15 not zero");
  for (int i = 0; i < 8; ++i) {
    const uint16_t c = static_cast<uint16_t>(b[16 + 2 * i] | (b[17 + 2 * i] << 8));
    if (c > 64) tfemu_amx_fault(insn, "#GP", "colsb > 64");
    if (b[48 + i] > 16) tfemu_amx_fault(insn, "#GP", "rows > 16");
    if ((c == 0) != (b[48 + i] == 0)) tfemu_amx_fault(insn, "#GP", "one of rows and colsb is 0, not both");
    tfemu_amx.colsb[i] = c;
    tfemu_amx.rows[i] = b[48 + i];
  }
  for (int i = 32; i < 48; ++i)
    if (b[i]) tfemu_amx_fault(insn, "#GP", "colsb of tiles 8..15 not zero");
  for (int i = 56; i < 64; ++i)
    if (b[i]) tfemu_amx_fault(insn, "#GP", "rows of tiles 8..15 not zero");
  tfemu_amx.configured = true;
}

inline void tfemu_tile_release() {
  std::memset(&tfemu_amx, 0, sizeof tfemu_amx);
}

// TILELOADD: rows r < rows of colsb bytes from base + r * stride; the rest of each row and the
// rows beyond are zeroed
inline void tfemu_tile_loadd(int t, const void* base, long stride) {
  tfemu_amx_check("tileloadd", t);
  const unsigned char* p = static_cast<const unsigned char*>(base);
  std::memset(tfemu_amx.data[t], 0, sizeof tfemu_amx.data[t]);
  for (int r = 0; r < tfemu_amx.rows[t]; ++r) std::memcpy(tfemu_amx.data[t][r], p + r * stride, tfemu_amx.colsb[t]);
}

// TILESTORED: rows r < rows of colsb bytes to base + r * stride (nothing else written)
inline void tfemu_tile_stored(int t, void* base, long stride) {
  tfemu_amx_check("tilestored", t);
  unsigned char* p = static_cast<unsigned char*>(base);
  for (int r = 0; r < tfemu_amx.rows[t]; ++r) std::memcpy(p + r * stride, tfemu_amx.data[t][r], tfemu_amx.colsb[t]);
}

// TILEZERO: all 16 x 64 bytes of the tile
inline void tfemu_tile_zero(int t) {
  tfemu_amx_check("tilezero", t);
  std::memset(tfemu_amx.data[t], 0, sizeof tfemu_amx.data[t]);
}

// ---- TDPBF16PS arithmetic on 8 lanes ------------------------------------------------------------------

// denormal inputs read as zero (of their sign)
inline __m256 tfemu_amx_daz(__m256 x) {
  const __m256i b = _mm256_castps_si256(x);
  const __m256i den = _mm256_cmpeq_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x7f800000)), _mm256_setzero_si256());
  return _mm256_castsi256_ps(_mm256_blendv_epi8(b, _mm256_and_si256(b, _mm256_set1_epi32(static_cast<int>(0x80000000u))), den));
}
// |x| < 2^-126 (zeros and denormals) -> a zero of x's sign
inline __m256 tfemu_amx_ftz(__m256 r) {
  const __m256 mag = _mm256_and_ps(r, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
  const __m256 tiny = _mm256_cmp_ps(mag, _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ);
  return _mm256_blendv_ps(r, _mm256_and_ps(r, _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)))), tiny);
}
// fma(a, b, c) with DAZ (a, b, c: already without denormals) and FTZ after rounding
inline __m256 tfemu_amx_fma(__m256 a, __m256 b, __m256 c) {
  const __m256 r = _mm256_fmadd_ps(a, b, c);
  const __m256 mag = _mm256_and_ps(r, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
  const __m256 edge = _mm256_cmp_ps(mag, _mm256_set1_ps(0x1p-126f), _CMP_EQ_OQ);
  __m256 out = tfemu_amx_ftz(r);
  if (_mm256_movemask_ps(edge)) {
    // rounded on the denormal grid to exactly 2^-126: tiny after rounding to 24 bits? The same FMA
    // scaled by 2^24 rounds in the normal range (a * 2^24 and c * 2^24 are exact here: |a b| and |c|
    // are below 2^-100, and |b| >= 2^-126, so |a| < 2^26)
    const __m256 s = _mm256_set1_ps(0x1p24f);
    const __m256 r2 = _mm256_fmadd_ps(_mm256_mul_ps(a, s), b, _mm256_mul_ps(c, s));
    const __m256 m2 = _mm256_and_ps(r2, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
    const __m256 flush = _mm256_and_ps(edge, _mm256_cmp_ps(m2, _mm256_set1_ps(0x1p-102f), _CMP_LT_OQ));
    out = _mm256_blendv_ps(out, _mm256_and_ps(r, _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)))), flush);
  }
  return out;
}

// TDPBF16PS tdst, tsrc1, tsrc2 (C = m x n, A = m x k pairs, B = k pairs x n)
inline void tfemu_tile_dpbf16ps(int d, int a, int b) {
  const char* insn = "tdpbf16ps";
  tfemu_amx_check(insn, d);
  tfemu_amx_check(insn, a);
  tfemu_amx_check(insn, b);
  const tfemu_amx_state& s = tfemu_amx;
  if (d == a || d == b || a == b) tfemu_amx_fault(insn, "#UD", "tiles not all different");
  if (s.colsb[d] % 4 || s.colsb[a] % 4) tfemu_amx_fault(insn, "#UD", "colsb not a multiple of 4");
  if (s.rows[d] != s.rows[a]) tfemu_amx_fault(insn, "#UD", "tsrcdest.rows != tsrc1.rows");
  if (s.colsb[a] / 4 != s.rows[b]) tfemu_amx_fault(insn, "#UD", "tsrc1.colsb / 4 != tsrc2.rows");
  if (s.colsb[d] != s.colsb[b]) tfemu_amx_fault(insn, "#UD", "tsrcdest.colsb != tsrc2.colsb");
  const int kn = s.colsb[a] / 4, nn = s.colsb[d] / 4;
  const __m256i hi = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  for (int m = 0; m < s.rows[d]; ++m) {
    __m256 even[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()}, odd[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int k = 0; k < kn; ++k) {
      uint32_t pair;
      std::memcpy(&pair, &s.data[a][m][4 * k], 4);
      const __m256 ae = tfemu_amx_daz(_mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(pair << 16))));
      const __m256 ao = tfemu_amx_daz(_mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(pair & 0xffff0000u))));
      for (int h = 0; h < 2; ++h) {
        const __m256i row = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&s.data[b][k][32 * h]));
        const __m256 be = tfemu_amx_daz(_mm256_castsi256_ps(_mm256_slli_epi32(row, 16)));
        const __m256 bo = tfemu_amx_daz(_mm256_castsi256_ps(_mm256_and_si256(row, hi)));
        even[h] = tfemu_amx_fma(ae, be, even[h]);
        odd[h] = tfemu_amx_fma(ao, bo, odd[h]);
      }
    }
    alignas(32) float c[16];
    for (int h = 0; h < 2; ++h) {
      const __m256 dst = tfemu_amx_daz(_mm256_loadu_ps(reinterpret_cast<const float*>(&s.data[d][m][32 * h])));
      _mm256_store_ps(c + 8 * h, tfemu_amx_ftz(_mm256_add_ps(dst, tfemu_amx_ftz(_mm256_add_ps(even[h], odd[h])))));
    }
    std::memset(tfemu_amx.data[d][m], 0, 64);  // write_row_and_zero
    std::memcpy(tfemu_amx.data[d][m], c, 4 * static_cast<size_t>(nn));
  }
  for (int m = s.rows[d]; m < 16; ++m) std::memset(tfemu_amx.data[d][m], 0, 64);  // zero_upper_rows
}

#pragma GCC pop_options

#undef _tile_loadd
#undef _tile_stored
#undef _tile_zero
#undef _tile_dpbf16ps
#define _tile_loadconfig(cfg) tfemu_tile_loadconfig(cfg)
#define _tile_release() tfemu_tile_release()
#define _tile_loadd(t, base, stride) tfemu_tile_loadd((t), (base), (stride))
#define _tile_stored(t, base, stride) tfemu_tile_stored((t), (base), (stride))
#define _tile_zero(t) tfemu_tile_zero(t)
#define _tile_dpbf16ps(d, a, b) tfemu_tile_dpbf16ps((d), (a), (b))
