// Scalar reference implementations of the intrinsics that native/emu/avx512_emu.h emulates, written
// apart from it (element loops after Intel's pseudo-code and GCC 12's reduction sequences), for
// native/emu/emu_selftest.cc: each emulated intrinsic must give the same bits as its reference here
// (scripts/test-avx512-emu.sh runs the self-test before the kernel tests). Test code only.
#pragma once
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#define TFR_FN static inline __attribute__((always_inline))

typedef float tfr_f32x16 __attribute__((vector_size(64)));
typedef double tfr_f64x8 __attribute__((vector_size(64)));
typedef int32_t tfr_i32x16 __attribute__((vector_size(64)));
typedef uint32_t tfr_u32x16 __attribute__((vector_size(64)));
typedef int64_t tfr_i64x8 __attribute__((vector_size(64)));
typedef uint64_t tfr_u64x8 __attribute__((vector_size(64)));
typedef int16_t tfr_i16x32 __attribute__((vector_size(64)));
typedef uint16_t tfr_u16x32 __attribute__((vector_size(64)));
typedef signed char tfr_i8x64 __attribute__((vector_size(64)));
typedef unsigned char tfr_u8x64 __attribute__((vector_size(64)));
typedef float tfr_f32x8 __attribute__((vector_size(32)));
typedef double tfr_f64x4 __attribute__((vector_size(32)));
typedef int32_t tfr_i32x8 __attribute__((vector_size(32)));
typedef int16_t tfr_i16x16 __attribute__((vector_size(32)));
typedef uint16_t tfr_u16x16 __attribute__((vector_size(32)));
typedef signed char tfr_i8x32 __attribute__((vector_size(32)));
typedef unsigned char tfr_u8x32 __attribute__((vector_size(32)));
typedef int64_t tfr_i64x4 __attribute__((vector_size(32)));
typedef float tfr_f32x4 __attribute__((vector_size(16)));
typedef int32_t tfr_i32x4 __attribute__((vector_size(16)));
typedef signed char tfr_i8x16 __attribute__((vector_size(16)));

// ---- helpers -------------------------------------------------------------------------------------

[[noreturn]] static inline void tfr_misaligned(const char* what, const void* p) {
  std::fprintf(stderr, "avx512 emulation: %s at %p is not 64-byte aligned (the instruction would fault)\n", what, p);
  std::abort();
}
TFR_FN void tfr_check_align(const void* p, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) & 63u) tfr_misaligned(what, p);
}
// the float product a * b rounded once (exact in double, then one rounding): GCC cannot contract it
// with a following addition (the opaque builtins of the real build are never contracted either)
TFR_FN float tfr_mulf(float a, float b) { return static_cast<float>(static_cast<double>(a) * static_cast<double>(b)); }
TFR_FN bool tfr_bit(unsigned long long m, int i) { return (m >> i) & 1u; }

// ---- loads, stores, sets -------------------------------------------------------------------------

TFR_FN __m512 tfref_mm512_loadu_ps(const void* p) {
  __m512 r;
  std::memcpy(&r, p, 64);
  return r;
}
TFR_FN __m512 tfref_mm512_load_ps(const void* p) {
  tfr_check_align(p, "_mm512_load_ps");
  return tfref_mm512_loadu_ps(p);
}
TFR_FN __m512i tfref_mm512_loadu_si512(const void* p) {
  __m512i r;
  std::memcpy(&r, p, 64);
  return r;
}
TFR_FN __m512i tfref_mm512_load_si512(const void* p) {
  tfr_check_align(p, "_mm512_load_si512");
  return tfref_mm512_loadu_si512(p);
}
TFR_FN void tfref_mm512_storeu_ps(void* p, __m512 v) { std::memcpy(p, &v, 64); }
TFR_FN void tfref_mm512_store_ps(void* p, __m512 v) {
  tfr_check_align(p, "_mm512_store_ps");
  std::memcpy(p, &v, 64);
}
TFR_FN void tfref_mm512_store_pd(void* p, __m512d v) {
  tfr_check_align(p, "_mm512_store_pd");
  std::memcpy(p, &v, 64);
}
TFR_FN void tfref_mm512_storeu_si512(void* p, __m512i v) { std::memcpy(p, &v, 64); }

// masked loads / stores: only the selected elements are read or written
TFR_FN __m512 tfref_mm512_maskz_loadu_ps(__mmask16 k, const void* p) {
  tfr_f32x16 r = {};
  const float* f = static_cast<const float*>(p);
  for (int i = 0; i < 16; ++i)
    if (tfr_bit(k, i)) {
      float x;
      std::memcpy(&x, f + i, 4);
      r[i] = x;
    }
  return (__m512)r;
}
TFR_FN __m512d tfref_mm512_maskz_loadu_pd(__mmask8 k, const void* p) {
  tfr_f64x8 r = {};
  const double* f = static_cast<const double*>(p);
  for (int i = 0; i < 8; ++i)
    if (tfr_bit(k, i)) {
      double x;
      std::memcpy(&x, f + i, 8);
      r[i] = x;
    }
  return (__m512d)r;
}
TFR_FN __m256 tfref_mm256_maskz_loadu_ps(__mmask8 k, const void* p) {
  tfr_f32x8 r = {};
  const float* f = static_cast<const float*>(p);
  for (int i = 0; i < 8; ++i)
    if (tfr_bit(k, i)) {
      float x;
      std::memcpy(&x, f + i, 4);
      r[i] = x;
    }
  return (__m256)r;
}
TFR_FN void tfref_mm512_mask_storeu_ps(void* p, __mmask16 k, __m512 v) {
  const tfr_f32x16 a = (tfr_f32x16)v;
  float* f = static_cast<float*>(p);
  for (int i = 0; i < 16; ++i)
    if (tfr_bit(k, i)) {
      const float x = a[i];
      std::memcpy(f + i, &x, 4);
    }
}
TFR_FN void tfref_mm512_mask_storeu_pd(void* p, __mmask8 k, __m512d v) {
  const tfr_f64x8 a = (tfr_f64x8)v;
  double* f = static_cast<double*>(p);
  for (int i = 0; i < 8; ++i)
    if (tfr_bit(k, i)) {
      const double x = a[i];
      std::memcpy(f + i, &x, 8);
    }
}
TFR_FN void tfref_mm256_mask_storeu_ps(void* p, __mmask8 k, __m256 v) {
  const tfr_f32x8 a = (tfr_f32x8)v;
  float* f = static_cast<float*>(p);
  for (int i = 0; i < 8; ++i)
    if (tfr_bit(k, i)) {
      const float x = a[i];
      std::memcpy(f + i, &x, 4);
    }
}

TFR_FN __m512 tfref_mm512_setzero_ps() { return (__m512)tfr_f32x16{}; }
TFR_FN __m512d tfref_mm512_setzero_pd() { return (__m512d)tfr_f64x8{}; }
TFR_FN __m512i tfref_mm512_setzero_si512() { return (__m512i)tfr_i64x8{}; }
TFR_FN __m512 tfref_mm512_set1_ps(float a) {
  tfr_f32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = a;
  return (__m512)r;
}
TFR_FN __m512d tfref_mm512_set1_pd(double a) {
  tfr_f64x8 r;
  for (int i = 0; i < 8; ++i) r[i] = a;
  return (__m512d)r;
}
TFR_FN __m512i tfref_mm512_set1_epi32(int a) {
  tfr_i32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = a;
  return (__m512i)r;
}
TFR_FN __m512i tfref_mm512_set1_epi64(long long a) {
  tfr_i64x8 r;
  for (int i = 0; i < 8; ++i) r[i] = a;
  return (__m512i)r;
}
TFR_FN __m512i tfref_mm512_set1_epi8(char a) {
  tfr_i8x64 r;
  for (int i = 0; i < 64; ++i) r[i] = static_cast<signed char>(a);
  return (__m512i)r;
}
// _mm512_set_epi64(e7, ..., e0): the last argument is element 0
TFR_FN __m512i tfref_mm512_set_epi64(long long e7, long long e6, long long e5, long long e4, long long e3, long long e2,
                                     long long e1, long long e0) {
  return (__m512i)tfr_i64x8{e0, e1, e2, e3, e4, e5, e6, e7};
}
TFR_FN __m512i tfref_mm512_setr_epi64(long long e0, long long e1, long long e2, long long e3, long long e4, long long e5,
                                      long long e6, long long e7) {
  return (__m512i)tfr_i64x8{e0, e1, e2, e3, e4, e5, e6, e7};
}
TFR_FN __m512 tfref_mm512_setr_ps(float e0, float e1, float e2, float e3, float e4, float e5, float e6, float e7, float e8,
                                  float e9, float e10, float e11, float e12, float e13, float e14, float e15) {
  return (__m512)tfr_f32x16{e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12, e13, e14, e15};
}
TFR_FN __m512i tfref_mm512_broadcast_i32x4(__m128i a) {
  const tfr_i32x4 s = (tfr_i32x4)a;
  tfr_i32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = s[i & 3];
  return (__m512i)r;
}

// ---- casts, extracts -----------------------------------------------------------------------------

TFR_FN __m512 tfref_mm512_castpd_ps(__m512d a) { return (__m512)a; }
TFR_FN __m512d tfref_mm512_castps_pd(__m512 a) { return (__m512d)a; }
TFR_FN __m512i tfref_mm512_castps_si512(__m512 a) { return (__m512i)a; }
TFR_FN __m512 tfref_mm512_castsi512_ps(__m512i a) { return (__m512)a; }
TFR_FN __m256 tfref_mm512_castps512_ps256(__m512 a) {
  __m256 r;
  std::memcpy(&r, &a, 32);
  return r;
}
TFR_FN __m256i tfref_mm512_castsi512_si256(__m512i a) {
  __m256i r;
  std::memcpy(&r, &a, 32);
  return r;
}
// the upper half is undefined in Intel's definition; zero here
TFR_FN __m512i tfref_mm512_castsi256_si512(__m256i a) {
  __m512i r = (__m512i)tfr_i64x8{};
  std::memcpy(&r, &a, 32);
  return r;
}
TFR_FN __m256 tfref_mm512_extractf32x8_ps(__m512 a, int imm) {
  __m256 r;
  std::memcpy(&r, reinterpret_cast<const char*>(&a) + 32 * (imm & 1), 32);
  return r;
}
TFR_FN __m256d tfref_mm512_extractf64x4_pd(__m512d a, int imm) {
  __m256d r;
  std::memcpy(&r, reinterpret_cast<const char*>(&a) + 32 * (imm & 1), 32);
  return r;
}
TFR_FN __m256i tfref_mm512_extracti64x4_epi64(__m512i a, int imm) {
  __m256i r;
  std::memcpy(&r, reinterpret_cast<const char*>(&a) + 32 * (imm & 1), 32);
  return r;
}
TFR_FN float tfref_mm512_cvtss_f32(__m512 a) { return ((tfr_f32x16)a)[0]; }

// ---- arithmetic written as GCC's headers write it (generic vector operations) ----------------------

TFR_FN __m512 tfref_mm512_add_ps(__m512 a, __m512 b) { return (__m512)((tfr_f32x16)a + (tfr_f32x16)b); }
TFR_FN __m512 tfref_mm512_sub_ps(__m512 a, __m512 b) { return (__m512)((tfr_f32x16)a - (tfr_f32x16)b); }
TFR_FN __m512 tfref_mm512_mul_ps(__m512 a, __m512 b) { return (__m512)((tfr_f32x16)a * (tfr_f32x16)b); }
TFR_FN __m512 tfref_mm512_div_ps(__m512 a, __m512 b) { return (__m512)((tfr_f32x16)a / (tfr_f32x16)b); }
TFR_FN __m512d tfref_mm512_add_pd(__m512d a, __m512d b) { return (__m512d)((tfr_f64x8)a + (tfr_f64x8)b); }
TFR_FN __m512d tfref_mm512_sub_pd(__m512d a, __m512d b) { return (__m512d)((tfr_f64x8)a - (tfr_f64x8)b); }
TFR_FN __m512d tfref_mm512_mul_pd(__m512d a, __m512d b) { return (__m512d)((tfr_f64x8)a * (tfr_f64x8)b); }
TFR_FN __m512d tfref_mm512_div_pd(__m512d a, __m512d b) { return (__m512d)((tfr_f64x8)a / (tfr_f64x8)b); }
TFR_FN __m512i tfref_mm512_add_epi8(__m512i a, __m512i b) { return (__m512i)((tfr_u8x64)a + (tfr_u8x64)b); }
TFR_FN __m512i tfref_mm512_add_epi16(__m512i a, __m512i b) { return (__m512i)((tfr_u16x32)a + (tfr_u16x32)b); }
TFR_FN __m512i tfref_mm512_add_epi32(__m512i a, __m512i b) { return (__m512i)((tfr_u32x16)a + (tfr_u32x16)b); }
TFR_FN __m512i tfref_mm512_sub_epi32(__m512i a, __m512i b) { return (__m512i)((tfr_u32x16)a - (tfr_u32x16)b); }
TFR_FN __m512i tfref_mm512_and_si512(__m512i a, __m512i b) { return (__m512i)((tfr_u32x16)a & (tfr_u32x16)b); }
TFR_FN __m512i tfref_mm512_or_si512(__m512i a, __m512i b) { return (__m512i)((tfr_u32x16)a | (tfr_u32x16)b); }
TFR_FN __m512i tfref_mm512_xor_si512(__m512i a, __m512i b) { return (__m512i)((tfr_u32x16)a ^ (tfr_u32x16)b); }

// bitwise float operations (vandps etc.; no arithmetic)
TFR_FN __m512 tfref_mm512_and_ps(__m512 a, __m512 b) { return (__m512)((tfr_u32x16)a & (tfr_u32x16)b); }
TFR_FN __m512 tfref_mm512_andnot_ps(__m512 a, __m512 b) { return (__m512)(~(tfr_u32x16)a & (tfr_u32x16)b); }
TFR_FN __m512 tfref_mm512_or_ps(__m512 a, __m512 b) { return (__m512)((tfr_u32x16)a | (tfr_u32x16)b); }
TFR_FN __m512 tfref_mm512_xor_ps(__m512 a, __m512 b) { return (__m512)((tfr_u32x16)a ^ (tfr_u32x16)b); }
TFR_FN __m512 tfref_mm512_abs_ps(__m512 a) {
  tfr_u32x16 r = (tfr_u32x16)a;
  for (int i = 0; i < 16; ++i) r[i] &= 0x7fffffffu;
  return (__m512)r;
}
TFR_FN __m512d tfref_mm512_abs_pd(__m512d a) {
  tfr_u64x8 r = (tfr_u64x8)a;
  for (int i = 0; i < 8; ++i) r[i] &= 0x7fffffffffffffffull;
  return (__m512d)r;
}

// ---- arithmetic that is one instruction (one rounding) in the real build --------------------------

TFR_FN __m512 tfref_mm512_fmadd_ps(__m512 a, __m512 b, __m512 c) {
  const tfr_f32x16 x = (tfr_f32x16)a, y = (tfr_f32x16)b, z = (tfr_f32x16)c;
  tfr_f32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = __builtin_fmaf(x[i], y[i], z[i]);
  return (__m512)r;
}
TFR_FN __m512 tfref_mm512_fmsub_ps(__m512 a, __m512 b, __m512 c) {  // a b - c
  const tfr_f32x16 x = (tfr_f32x16)a, y = (tfr_f32x16)b, z = (tfr_f32x16)c;
  tfr_f32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = __builtin_fmaf(x[i], y[i], -z[i]);
  return (__m512)r;
}
TFR_FN __m512 tfref_mm512_fnmadd_ps(__m512 a, __m512 b, __m512 c) {  // -(a b) + c
  const tfr_f32x16 x = (tfr_f32x16)a, y = (tfr_f32x16)b, z = (tfr_f32x16)c;
  tfr_f32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = __builtin_fmaf(-x[i], y[i], z[i]);
  return (__m512)r;
}
TFR_FN __m512d tfref_mm512_fmadd_pd(__m512d a, __m512d b, __m512d c) {
  const tfr_f64x8 x = (tfr_f64x8)a, y = (tfr_f64x8)b, z = (tfr_f64x8)c;
  tfr_f64x8 r;
  for (int i = 0; i < 8; ++i) r[i] = __builtin_fma(x[i], y[i], z[i]);
  return (__m512d)r;
}
// src where k is clear, a * b where set
TFR_FN __m512 tfref_mm512_mask_mul_ps(__m512 src, __mmask16 k, __m512 a, __m512 b) {
  const tfr_f32x16 x = (tfr_f32x16)a, y = (tfr_f32x16)b;
  tfr_f32x16 r = (tfr_f32x16)src;
  for (int i = 0; i < 16; ++i)
    if (tfr_bit(k, i)) r[i] = tfr_mulf(x[i], y[i]);
  return (__m512)r;
}
TFR_FN __m512 tfref_mm512_sqrt_ps(__m512 a) {
  const tfr_f32x16 x = (tfr_f32x16)a;
  tfr_f32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = __builtin_sqrtf(x[i]);
  return (__m512)r;
}
// vmaxps / vminps: the second operand when either is NaN or both are zeros
TFR_FN __m512 tfref_mm512_max_ps(__m512 a, __m512 b) {
  const tfr_f32x16 x = (tfr_f32x16)a, y = (tfr_f32x16)b;
  tfr_f32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = x[i] > y[i] ? x[i] : y[i];
  return (__m512)r;
}
TFR_FN __m512 tfref_mm512_min_ps(__m512 a, __m512 b) {
  const tfr_f32x16 x = (tfr_f32x16)a, y = (tfr_f32x16)b;
  tfr_f32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = x[i] < y[i] ? x[i] : y[i];
  return (__m512)r;
}
// vrndscaleps: round to imm[7:4] fraction bits; imm[2] set: MXCSR's mode (round to nearest even
// here, the default), else imm[1:0]: 0 nearest even, 1 down, 2 up, 3 toward zero
TFR_FN float tfr_round_mode(float x, int mode) {
  if (std::isnan(x)) return x + x;                  // quietened
  if (!(std::fabs(x) < 8388608.0f)) return x;       // integral already, or infinite
  switch (mode) {
    case 1: return std::floor(x);
    case 2: return std::ceil(x);
    case 3: return std::trunc(x);
    default: {
      const float t = std::fabs(x);
      const float r = (t + 8388608.0f) - 8388608.0f;  // t + 2^23 rounds to an integer (nearest even)
      return std::copysign(r, x);
    }
  }
}
TFR_FN __m512 tfref_mm512_roundscale_ps(__m512 a, int imm) {
  const tfr_f32x16 x = (tfr_f32x16)a;
  const int M = (imm >> 4) & 15, mode = (imm & 4) ? 0 : (imm & 3);
  const float s = static_cast<float>(1 << M);
  tfr_f32x16 r;
  for (int i = 0; i < 16; ++i)
    r[i] = M == 0 || !(std::fabs(x[i]) < 8388608.0f / s) ? tfr_round_mode(x[i], mode) : tfr_round_mode(x[i] * s, mode) / s;
  return (__m512)r;
}
// the default NaN of x86 (QNaN floating-point indefinite, 0xFFC00000)
TFR_FN float tfr_qnan_indefinite() {
  const uint32_t b = 0xFFC00000u;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
// vscalefps: a * 2^floor(b), one rounding (Intel's table for the special values)
TFR_FN float tfr_scalef(float a, float b) {
  if (std::isnan(a)) return a + a;
  if (std::isnan(b)) return b + b;
  if (std::isinf(b)) {
    if (b > 0) return a == 0.0f ? tfr_qnan_indefinite() : std::copysign(__builtin_inff(), a);
    return std::isinf(a) ? tfr_qnan_indefinite() : std::copysign(0.0f, a);
  }
  float n = std::floor(b);
  if (n > 400.0f) n = 400.0f;
  if (n < -400.0f) n = -400.0f;
  return static_cast<float>(std::ldexp(static_cast<double>(a), static_cast<int>(n)));
}
TFR_FN __m512 tfref_mm512_scalef_ps(__m512 a, __m512 b) {
  const tfr_f32x16 x = (tfr_f32x16)a, y = (tfr_f32x16)b;
  tfr_f32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = tfr_scalef(x[i], y[i]);
  return (__m512)r;
}

// ---- conversions ---------------------------------------------------------------------------------

TFR_FN __m512 tfref_mm512_cvtepi32_ps(__m512i a) {
  const tfr_i32x16 x = (tfr_i32x16)a;
  tfr_f32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = static_cast<float>(x[i]);  // cvtsi2ss: MXCSR rounding, as vcvtdq2ps
  return (__m512)r;
}
// vcvtps2dq: MXCSR rounding (nearest even); NaN and out-of-range give 0x80000000 (cvtss2si's rule)
TFR_FN __m512i tfref_mm512_cvtps_epi32(__m512 a) {
  const tfr_f32x16 x = (tfr_f32x16)a;
  tfr_i32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = _mm_cvtss_si32(_mm_set_ss(x[i]));
  return (__m512i)r;
}
TFR_FN __m512d tfref_mm512_cvtps_pd(__m256 a) {
  const tfr_f32x8 x = (tfr_f32x8)a;
  tfr_f64x8 r;
  for (int i = 0; i < 8; ++i) r[i] = static_cast<double>(x[i]);
  return (__m512d)r;
}
TFR_FN __m256 tfref_mm512_cvtpd_ps(__m512d a) {
  const tfr_f64x8 x = (tfr_f64x8)a;
  tfr_f32x8 r;
  for (int i = 0; i < 8; ++i) r[i] = static_cast<float>(x[i]);  // cvtsd2ss: MXCSR rounding
  return (__m256)r;
}
TFR_FN __m512i tfref_mm512_cvtepi16_epi32(__m256i a) {
  const tfr_i16x16 x = (tfr_i16x16)a;
  tfr_i32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = x[i];
  return (__m512i)r;
}
TFR_FN __m512i tfref_mm512_cvtepu16_epi32(__m256i a) {
  const tfr_u16x16 x = (tfr_u16x16)a;
  tfr_i32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = x[i];
  return (__m512i)r;
}
// vpmovsdb: int32 -> int8 with signed saturation
TFR_FN __m128i tfref_mm512_cvtsepi32_epi8(__m512i a) {
  const tfr_i32x16 x = (tfr_i32x16)a;
  tfr_i8x16 r;
  for (int i = 0; i < 16; ++i) r[i] = static_cast<signed char>(x[i] > 127 ? 127 : x[i] < -128 ? -128 : x[i]);
  return (__m128i)r;
}
// vcvtph2ps: IEEE half -> float, exact (denormal halves included; a NaN is quietened)
TFR_FN float tfr_half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 31u, m = h & 0x3ffu;
  uint32_t bits;
  if (e == 31) bits = sign | 0x7f800000u | (m ? 0x00400000u | (m << 13) : 0u);
  else if (e != 0) bits = sign | ((e + 112u) << 23) | (m << 13);
  else {
    const float v = static_cast<float>(m) * 5.9604644775390625e-8f;  // m 2^-24, exact
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
TFR_FN __m512 tfref_mm512_cvtph_ps(__m256i a) {
  const tfr_u16x16 x = (tfr_u16x16)a;
  tfr_f32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = tfr_half_to_float(x[i]);
  return (__m512)r;
}

// ---- compares, masks, blends ---------------------------------------------------------------------

// predicate imm[3:0] (imm[4] only flips signalling / quiet: same result)
TFR_FN bool tfr_cmp(double a, double b, int imm) {
  const bool un = a != a || b != b;
  switch (imm & 15) {
    case 0: return !un && a == b;  // EQ_OQ
    case 1: return a < b;          // LT_OS
    case 2: return a <= b;         // LE_OS
    case 3: return un;             // UNORD_Q
    case 4: return un || a != b;   // NEQ_UQ
    case 5: return !(a < b);       // NLT_US
    case 6: return !(a <= b);      // NLE_US
    case 7: return !un;            // ORD_Q
    case 8: return un || a == b;   // EQ_UQ
    case 9: return !(a >= b);      // NGE_US
    case 10: return !(a > b);      // NGT_US
    case 11: return false;         // FALSE_OQ
    case 12: return !un && a != b; // NEQ_OQ
    case 13: return a >= b;        // GE_OS
    case 14: return a > b;         // GT_OS
    default: return true;          // TRUE_UQ
  }
}
TFR_FN __mmask16 tfref_mm512_cmp_ps_mask(__m512 a, __m512 b, int imm) {
  const tfr_f32x16 x = (tfr_f32x16)a, y = (tfr_f32x16)b;
  unsigned m = 0;
  for (int i = 0; i < 16; ++i) m |= static_cast<unsigned>(tfr_cmp(x[i], y[i], imm)) << i;
  return static_cast<__mmask16>(m);
}
TFR_FN __mmask8 tfref_mm512_cmp_pd_mask(__m512d a, __m512d b, int imm) {
  const tfr_f64x8 x = (tfr_f64x8)a, y = (tfr_f64x8)b;
  unsigned m = 0;
  for (int i = 0; i < 8; ++i) m |= static_cast<unsigned>(tfr_cmp(x[i], y[i], imm)) << i;
  return static_cast<__mmask8>(m);
}
// vptestmb: bit i = (a[i] & b[i]) != 0
TFR_FN __mmask64 tfref_mm512_test_epi8_mask(__m512i a, __m512i b) {
  const tfr_u8x64 x = (tfr_u8x64)a, y = (tfr_u8x64)b;
  unsigned long long m = 0;
  for (int i = 0; i < 64; ++i) m |= static_cast<unsigned long long>((x[i] & y[i]) != 0) << i;
  return m;
}
// blend(k, a, b): b where k is set, a elsewhere
TFR_FN __m512 tfref_mm512_mask_blend_ps(__mmask16 k, __m512 a, __m512 b) {
  const tfr_u32x16 x = (tfr_u32x16)a, y = (tfr_u32x16)b;
  tfr_u32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = tfr_bit(k, i) ? y[i] : x[i];
  return (__m512)r;
}
TFR_FN __m512d tfref_mm512_mask_blend_pd(__mmask8 k, __m512d a, __m512d b) {
  const tfr_u64x8 x = (tfr_u64x8)a, y = (tfr_u64x8)b;
  tfr_u64x8 r;
  for (int i = 0; i < 8; ++i) r[i] = tfr_bit(k, i) ? y[i] : x[i];
  return (__m512d)r;
}
TFR_FN __m512i tfref_mm512_mask_blend_epi8(__mmask64 k, __m512i a, __m512i b) {
  const tfr_u8x64 x = (tfr_u8x64)a, y = (tfr_u8x64)b;
  tfr_u8x64 r;
  for (int i = 0; i < 64; ++i) r[i] = tfr_bit(k, i) ? y[i] : x[i];
  return (__m512i)r;
}
// mask_mov(src, k, a): a where k is set, src elsewhere; maskz_mov(k, a): a where set, 0 elsewhere
TFR_FN __m512 tfref_mm512_mask_mov_ps(__m512 src, __mmask16 k, __m512 a) { return tfref_mm512_mask_blend_ps(k, src, a); }
TFR_FN __m512 tfref_mm512_maskz_mov_ps(__mmask16 k, __m512 a) {
  return tfref_mm512_mask_blend_ps(k, (__m512)tfr_f32x16{}, a);
}
TFR_FN __m512d tfref_mm512_maskz_mov_pd(__mmask8 k, __m512d a) {
  return tfref_mm512_mask_blend_pd(k, (__m512d)tfr_f64x8{}, a);
}

// ---- shuffles and permutes -----------------------------------------------------------------------

// vpshufb per 128-bit lane: index bit 7 set gives 0, else byte (index & 15) of the same lane
TFR_FN __m512i tfref_mm512_shuffle_epi8(__m512i a, __m512i b) {
  const tfr_u8x64 x = (tfr_u8x64)a, y = (tfr_u8x64)b;
  tfr_u8x64 r;
  for (int i = 0; i < 64; ++i) r[i] = (y[i] & 0x80) ? 0 : x[(i & ~15) + (y[i] & 15)];
  return (__m512i)r;
}
// 128-bit lanes: result lanes 0, 1 from a, lanes 2, 3 from b, each chosen by 2 bits of imm
TFR_FN __m512 tfref_mm512_shuffle_f32x4(__m512 a, __m512 b, int imm) {
  const tfr_f32x16 x = (tfr_f32x16)a, y = (tfr_f32x16)b;
  tfr_f32x16 r;
  for (int L = 0; L < 4; ++L) {
    const int s = (imm >> (2 * L)) & 3;
    for (int j = 0; j < 4; ++j) r[4 * L + j] = L < 2 ? x[4 * s + j] : y[4 * s + j];
  }
  return (__m512)r;
}
TFR_FN __m512d tfref_mm512_shuffle_f64x2(__m512d a, __m512d b, int imm) {
  const tfr_f64x8 x = (tfr_f64x8)a, y = (tfr_f64x8)b;
  tfr_f64x8 r;
  for (int L = 0; L < 4; ++L) {
    const int s = (imm >> (2 * L)) & 3;
    for (int j = 0; j < 2; ++j) r[2 * L + j] = L < 2 ? x[2 * s + j] : y[2 * s + j];
  }
  return (__m512d)r;
}
TFR_FN __m512i tfref_mm512_shuffle_i64x2(__m512i a, __m512i b, int imm) {
  const tfr_i64x8 x = (tfr_i64x8)a, y = (tfr_i64x8)b;
  tfr_i64x8 r;
  for (int L = 0; L < 4; ++L) {
    const int s = (imm >> (2 * L)) & 3;
    for (int j = 0; j < 2; ++j) r[2 * L + j] = L < 2 ? x[2 * s + j] : y[2 * s + j];
  }
  return (__m512i)r;
}
// vshufps per 128-bit lane: elements 0, 1 from a, 2, 3 from b, each chosen by 2 bits of imm
TFR_FN __m512 tfref_mm512_shuffle_ps(__m512 a, __m512 b, int imm) {
  const tfr_f32x16 x = (tfr_f32x16)a, y = (tfr_f32x16)b;
  tfr_f32x16 r;
  for (int L = 0; L < 4; ++L)
    for (int j = 0; j < 4; ++j) {
      const int s = (imm >> (2 * j)) & 3;
      r[4 * L + j] = j < 2 ? x[4 * L + s] : y[4 * L + s];
    }
  return (__m512)r;
}
// vpermilps (immediate) per 128-bit lane
TFR_FN __m512 tfref_mm512_permute_ps(__m512 a, int imm) {
  const tfr_f32x16 x = (tfr_f32x16)a;
  tfr_f32x16 r;
  for (int L = 0; L < 4; ++L)
    for (int j = 0; j < 4; ++j) r[4 * L + j] = x[4 * L + ((imm >> (2 * j)) & 3)];
  return (__m512)r;
}
// permutexvar(idx, a): element i = a[idx[i] mod n], across the whole vector
TFR_FN __m512i tfref_mm512_permutexvar_epi64(__m512i idx, __m512i a) {
  const tfr_i64x8 ix = (tfr_i64x8)idx, x = (tfr_i64x8)a;
  tfr_i64x8 r;
  for (int i = 0; i < 8; ++i) r[i] = x[ix[i] & 7];
  return (__m512i)r;
}
TFR_FN __m512 tfref_mm512_permutexvar_ps(__m512i idx, __m512 a) {
  const tfr_i32x16 ix = (tfr_i32x16)idx;
  const tfr_f32x16 x = (tfr_f32x16)a;
  tfr_f32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = x[ix[i] & 15];
  return (__m512)r;
}
// unpack per 128-bit lane: lo interleaves the lower halves of a and b, hi the upper halves
TFR_FN __m512 tfref_mm512_unpacklo_ps(__m512 a, __m512 b) {
  const tfr_f32x16 x = (tfr_f32x16)a, y = (tfr_f32x16)b;
  tfr_f32x16 r;
  for (int L = 0; L < 4; ++L)
    for (int j = 0; j < 2; ++j) {
      r[4 * L + 2 * j] = x[4 * L + j];
      r[4 * L + 2 * j + 1] = y[4 * L + j];
    }
  return (__m512)r;
}
TFR_FN __m512 tfref_mm512_unpackhi_ps(__m512 a, __m512 b) {
  const tfr_f32x16 x = (tfr_f32x16)a, y = (tfr_f32x16)b;
  tfr_f32x16 r;
  for (int L = 0; L < 4; ++L)
    for (int j = 0; j < 2; ++j) {
      r[4 * L + 2 * j] = x[4 * L + 2 + j];
      r[4 * L + 2 * j + 1] = y[4 * L + 2 + j];
    }
  return (__m512)r;
}
TFR_FN __m512i tfref_mm512_unpacklo_epi32(__m512i a, __m512i b) { return (__m512i)tfref_mm512_unpacklo_ps((__m512)a, (__m512)b); }
TFR_FN __m512i tfref_mm512_unpackhi_epi32(__m512i a, __m512i b) { return (__m512i)tfref_mm512_unpackhi_ps((__m512)a, (__m512)b); }
TFR_FN __m512i tfref_mm512_unpacklo_epi64(__m512i a, __m512i b) {
  const tfr_i64x8 x = (tfr_i64x8)a, y = (tfr_i64x8)b;
  tfr_i64x8 r;
  for (int L = 0; L < 4; ++L) {
    r[2 * L] = x[2 * L];
    r[2 * L + 1] = y[2 * L];
  }
  return (__m512i)r;
}
TFR_FN __m512i tfref_mm512_unpackhi_epi64(__m512i a, __m512i b) {
  const tfr_i64x8 x = (tfr_i64x8)a, y = (tfr_i64x8)b;
  tfr_i64x8 r;
  for (int L = 0; L < 4; ++L) {
    r[2 * L] = x[2 * L + 1];
    r[2 * L + 1] = y[2 * L + 1];
  }
  return (__m512i)r;
}
TFR_FN __m512i tfref_mm512_unpacklo_epi8(__m512i a, __m512i b) {
  const tfr_u8x64 x = (tfr_u8x64)a, y = (tfr_u8x64)b;
  tfr_u8x64 r;
  for (int L = 0; L < 4; ++L)
    for (int j = 0; j < 8; ++j) {
      r[16 * L + 2 * j] = x[16 * L + j];
      r[16 * L + 2 * j + 1] = y[16 * L + j];
    }
  return (__m512i)r;
}
TFR_FN __m512i tfref_mm512_unpackhi_epi8(__m512i a, __m512i b) {
  const tfr_u8x64 x = (tfr_u8x64)a, y = (tfr_u8x64)b;
  tfr_u8x64 r;
  for (int L = 0; L < 4; ++L)
    for (int j = 0; j < 8; ++j) {
      r[16 * L + 2 * j] = x[16 * L + 8 + j];
      r[16 * L + 2 * j + 1] = y[16 * L + 8 + j];
    }
  return (__m512i)r;
}

// ---- integer shifts, logic, multiply-adds --------------------------------------------------------

TFR_FN __m512i tfref_mm512_slli_epi32(__m512i a, unsigned n) {
  const tfr_u32x16 x = (tfr_u32x16)a;
  tfr_u32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = n > 31 ? 0u : x[i] << n;
  return (__m512i)r;
}
TFR_FN __m512i tfref_mm512_srli_epi32(__m512i a, unsigned n) {
  const tfr_u32x16 x = (tfr_u32x16)a;
  tfr_u32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = n > 31 ? 0u : x[i] >> n;
  return (__m512i)r;
}
TFR_FN __m512i tfref_mm512_srai_epi32(__m512i a, unsigned n) {
  const tfr_i32x16 x = (tfr_i32x16)a;
  tfr_i32x16 r;
  for (int i = 0; i < 16; ++i) r[i] = x[i] >> (n > 31 ? 31 : n);
  return (__m512i)r;
}
TFR_FN __m512i tfref_mm512_srli_epi16(__m512i a, unsigned n) {
  const tfr_u16x32 x = (tfr_u16x32)a;
  tfr_u16x32 r;
  for (int i = 0; i < 32; ++i) r[i] = static_cast<uint16_t>(n > 15 ? 0u : x[i] >> n);
  return (__m512i)r;
}
TFR_FN __m512i tfref_mm512_srlv_epi64(__m512i a, __m512i cnt) {
  const tfr_u64x8 x = (tfr_u64x8)a, c = (tfr_u64x8)cnt;
  tfr_u64x8 r;
  for (int i = 0; i < 8; ++i) r[i] = c[i] > 63 ? 0u : x[i] >> c[i];
  return (__m512i)r;
}
// vpternlogd: result bit = imm bit (a << 2 | b << 1 | c) of the three operands' bits
TFR_FN __m512i tfref_mm512_ternarylogic_epi32(__m512i a, __m512i b, __m512i c, int imm) {
  const tfr_u64x8 x = (tfr_u64x8)a, y = (tfr_u64x8)b, z = (tfr_u64x8)c;
  tfr_u64x8 r = {};
  for (int t = 0; t < 8; ++t)
    if ((imm >> t) & 1) r |= ((t & 4) ? x : ~x) & ((t & 2) ? y : ~y) & ((t & 1) ? z : ~z);
  return (__m512i)r;
}
// vpmaddubsw: unsigned bytes of a times signed bytes of b, adjacent pairs summed with int16 saturation
TFR_FN __m512i tfref_mm512_maddubs_epi16(__m512i a, __m512i b) {
  const tfr_u8x64 x = (tfr_u8x64)a;
  const tfr_i8x64 y = (tfr_i8x64)b;
  tfr_i16x32 r;
  for (int i = 0; i < 32; ++i) {
    const int s = x[2 * i] * y[2 * i] + x[2 * i + 1] * y[2 * i + 1];
    r[i] = static_cast<int16_t>(s > 32767 ? 32767 : s < -32768 ? -32768 : s);
  }
  return (__m512i)r;
}
// vpdpbusd: src + the four products u8(a) x s8(b) of each 32-bit lane, wrapping (no saturation)
TFR_FN __m512i tfref_mm512_dpbusd_epi32(__m512i src, __m512i a, __m512i b) {
  const tfr_u8x64 x = (tfr_u8x64)a;
  const tfr_i8x64 y = (tfr_i8x64)b;
  tfr_u32x16 r = (tfr_u32x16)src;
  for (int i = 0; i < 16; ++i) {
    int32_t s = 0;
    for (int j = 0; j < 4; ++j) s += x[4 * i + j] * y[4 * i + j];
    r[i] += static_cast<uint32_t>(s);
  }
  return (__m512i)r;
}
TFR_FN __m256i tfref_mm256_dpbusd_epi32(__m256i src, __m256i a, __m256i b) {
  const tfr_u8x32 x = (tfr_u8x32)a;
  const tfr_i8x32 y = (tfr_i8x32)b;
  tfr_i32x8 r = (tfr_i32x8)src;
  for (int i = 0; i < 8; ++i) {
    int32_t s = 0;
    for (int j = 0; j < 4; ++j) s += x[4 * i + j] * y[4 * i + j];
    r[i] = static_cast<int32_t>(static_cast<uint32_t>(r[i]) + static_cast<uint32_t>(s));
  }
  return (__m256i)r;
}

// vdpbf16ps (Intel SDM): per float32 lane i, srcdest += a.bf16[2i+1] * b.bf16[2i+1], then
// srcdest += a.bf16[2i] * b.bf16[2i], each an FMA with round to nearest even, denormal inputs read as
// zero (DAZ) and denormal results flushed to zero (FTZ), MXCSR neither consulted nor updated.
TFR_FN float tfr_daz(float x) { return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x; }
TFR_FN float tfr_bf16(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
TFR_FN __m512 tfref_mm512_dpbf16_ps(__m512 src, __m512bh a, __m512bh b) {
  const tfr_u16x32 x = (tfr_u16x32)a, y = (tfr_u16x32)b;
  tfr_f32x16 r = (tfr_f32x16)src;
  for (int i = 0; i < 16; ++i) {
    float acc = r[i];
    for (int j = 1; j >= 0; --j)
      acc = tfr_daz(__builtin_fmaf(tfr_daz(tfr_bf16(x[2 * i + j])), tfr_daz(tfr_bf16(y[2 * i + j])), tfr_daz(acc)));
    r[i] = acc;
  }
  return (__m512)r;
}

// ---- reductions (GCC 12's avx512fintrin.h sequences: halves, quarters, then pairs) ----------------

TFR_FN float tfref_mm512_reduce_add_ps(__m512 a) {
  const tfr_f32x16 v = (tfr_f32x16)a;
  float t3[8], t6[4], t8[4];
  for (int i = 0; i < 8; ++i) t3[i] = v[8 + i] + v[i];        // __T1 (upper half) + __T2 (lower half)
  for (int i = 0; i < 4; ++i) t6[i] = t3[4 + i] + t3[i];      // __T4 (upper) + __T5 (lower)
  const int sh[4] = {2, 3, 0, 1};
  for (int i = 0; i < 4; ++i) t8[i] = t6[i] + t6[sh[i]];      // __T6 + shuffle(__T6, {2, 3, 0, 1})
  return t8[0] + t8[1];
}
TFR_FN float tfref_mm512_reduce_max_ps(__m512 a) {
  const tfr_f32x16 v = (tfr_f32x16)a;
  auto mx = [](float p, float q) { return p > q ? p : q; };  // vmaxps(p, q)
  float t3[8], t6[4], t8[4], t10[4];
  for (int i = 0; i < 8; ++i) t3[i] = mx(v[8 + i], v[i]);
  for (int i = 0; i < 4; ++i) t6[i] = mx(t3[4 + i], t3[i]);
  const int s1[4] = {2, 3, 0, 1}, s2[4] = {1, 0, 1, 0};
  for (int i = 0; i < 4; ++i) t8[i] = mx(t6[i], t6[s1[i]]);
  for (int i = 0; i < 4; ++i) t10[i] = mx(t8[i], t8[s2[i]]);
  return t10[0];
}
TFR_FN int tfref_mm512_reduce_add_epi32(__m512i a) {
  const tfr_u32x16 v = (tfr_u32x16)a;
  uint32_t s = 0;
  for (int i = 0; i < 16; ++i) s += v[i];
  return static_cast<int>(s);
}

