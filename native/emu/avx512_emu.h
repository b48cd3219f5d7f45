// Emulation of the AVX-512 (F, BW, VL, DQ, VNNI, BF16) and AVX-VNNI intrinsics that the native
// kernels use, for testing those kernels on a CPU without them (scripts/test-avx512-emu.sh). Never
// part of the production addon: force-included (-include) ahead of each AVX-512 / VNNI / BF16 file
// of the emulation build, which compiles them with -mavx2 -mfma -mf16c -DTFREE_EMU_AVX512 (no
// AVX-512 flags), and ahead of boxte.cc, whose AVX512_FN loops then get target("avx2,fma,f16c").
//
// <immintrin.h> comes first (the real declarations and GCC's vector types __m512, __m512i, __m512d,
// __mmask8..64 stay as they are; GCC lowers 64-byte vectors to pairs of 32-byte ones), then each
// intrinsic name is #defined to its emulation tfemu_<name>. Semantics: Intel's pseudo-code; the
// order of the reductions: GCC 12's own definitions (avx512fintrin.h), so the sums round the same.
//
// How: a 512-bit operation is the AVX2 / AVX / F16C operation of the same semantics on its two
// 256-bit halves wherever one exists (vaddps, vfmadd, vmaxps, vcmpps, vcvtps2dq, vroundps,
// vpshufb, vpunpck*, vpmaddubsw, vcvtph2ps, ... work per 128-bit lane or per element exactly as their
// 512-bit forms); masked loads and stores are vmaskmovps / vmaskmovpd (masked-off elements are
// neither read nor written: they may lie past the end of a buffer); cross-lane permutes, vpdpbusd,
// vdpbf16ps, vscalefps, vpternlogd and the masks are built from AVX2 operations. Everything is
// inlined, without branches or loops, because of GCC's floating-point contraction: x86 builds
// keep -ffp-contract=fast, and GCC fuses a multiplication with an addition or subtraction into an
// FMA when both are generic vector operations (GCC writes _mm512_mul_ps as a * b) in the same basic
// block. The real build does that for some AVX-512 code (BoxTE's Adam update p - lr * step is one
// vfnmadd); written as above, the emulation gets the same fusions, where a branch or loop between
// the two operations would split the block and round twice instead.
// Aligned loads and stores (_mm512_load_ps, ...) of an address that is not 64-byte aligned end the
// process with SIGSEGV, as the real instruction's #GP would.
// What this proves and what it does not: docs/design.md ("AVX-512 under emulation").
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#define TFE_FN static inline __attribute__((always_inline))

typedef float tfe_f32x16 __attribute__((vector_size(64)));
typedef double tfe_f64x8 __attribute__((vector_size(64)));
typedef long long tfe_i64x8 __attribute__((vector_size(64)));
typedef float tfe_f32x8 __attribute__((vector_size(32)));
typedef double tfe_f64x4 __attribute__((vector_size(32)));
typedef long long tfe_i64x4 __attribute__((vector_size(32)));
typedef float tfe_f32x4 __attribute__((vector_size(16)));
typedef int tfe_i32x4 __attribute__((vector_size(16)));

// ---- halves ----------------------------------------------------------------------------------------

TFE_FN __m256 tfe_lo(__m512 v) { return (__m256)__builtin_shufflevector((tfe_f32x16)v, (tfe_f32x16)v, 0, 1, 2, 3, 4, 5, 6, 7); }
TFE_FN __m256 tfe_hi(__m512 v) { return (__m256)__builtin_shufflevector((tfe_f32x16)v, (tfe_f32x16)v, 8, 9, 10, 11, 12, 13, 14, 15); }
TFE_FN __m512 tfe_join(__m256 a, __m256 b) {
  return (__m512)__builtin_shufflevector((tfe_f32x8)a, (tfe_f32x8)b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
TFE_FN __m256d tfe_lo(__m512d v) { return (__m256d)__builtin_shufflevector((tfe_f64x8)v, (tfe_f64x8)v, 0, 1, 2, 3); }
TFE_FN __m256d tfe_hi(__m512d v) { return (__m256d)__builtin_shufflevector((tfe_f64x8)v, (tfe_f64x8)v, 4, 5, 6, 7); }
TFE_FN __m512d tfe_join(__m256d a, __m256d b) {
  return (__m512d)__builtin_shufflevector((tfe_f64x4)a, (tfe_f64x4)b, 0, 1, 2, 3, 4, 5, 6, 7);
}
TFE_FN __m256i tfe_lo(__m512i v) { return (__m256i)__builtin_shufflevector((tfe_i64x8)v, (tfe_i64x8)v, 0, 1, 2, 3); }
TFE_FN __m256i tfe_hi(__m512i v) { return (__m256i)__builtin_shufflevector((tfe_i64x8)v, (tfe_i64x8)v, 4, 5, 6, 7); }
TFE_FN __m512i tfe_join(__m256i a, __m256i b) {
  return (__m512i)__builtin_shufflevector((tfe_i64x4)a, (tfe_i64x4)b, 0, 1, 2, 3, 4, 5, 6, 7);
}

// ---- masks as vectors --------------------------------------------------------------------------------

// 32-bit lanes of 8 mask bits (bit `first` + i -> lane i): all ones where set
TFE_FN __m256i tfe_mask32(unsigned k, int first) {
  const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(k >> first)), bits), bits);
}
// 64-bit lanes of 4 mask bits
TFE_FN __m256i tfe_mask64(unsigned k, int first) {
  const __m256i bits = _mm256_setr_epi64x(1, 2, 4, 8);
  return _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(static_cast<long long>(k >> first)), bits), bits);
}
// bytes of 32 mask bits
TFE_FN __m256i tfe_mask8(uint32_t k) {
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bits = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(k)), spread);
  return _mm256_cmpeq_epi8(_mm256_and_si256(v, bits), bits);
}

// ---- loads, stores, sets -----------------------------------------------------------------------------

// An aligned access at p: a read of address 8 (SIGSEGV) when p is not 64-byte aligned, without a branch.
inline volatile char tfe_align_probe;
TFE_FN void tfe_check_align(const void* p) {
  const uintptr_t bad = (reinterpret_cast<uintptr_t>(p) & 63u) != 0;
  (void)*reinterpret_cast<volatile char*>(reinterpret_cast<uintptr_t>(&tfe_align_probe) * (1u - bad) + 8u * bad);
}
TFE_FN __m512 tfemu_mm512_loadu_ps(const void* p) {
  __m512 r;
  std::memcpy(&r, p, 64);
  return r;
}
TFE_FN __m512 tfemu_mm512_load_ps(const void* p) {
  tfe_check_align(p);
  return tfemu_mm512_loadu_ps(p);
}
TFE_FN __m512i tfemu_mm512_loadu_si512(const void* p) {
  __m512i r;
  std::memcpy(&r, p, 64);
  return r;
}
TFE_FN __m512i tfemu_mm512_load_si512(const void* p) {
  tfe_check_align(p);
  return tfemu_mm512_loadu_si512(p);
}
TFE_FN void tfemu_mm512_storeu_ps(void* p, __m512 v) { std::memcpy(p, &v, 64); }
TFE_FN void tfemu_mm512_store_ps(void* p, __m512 v) {
  tfe_check_align(p);
  std::memcpy(p, &v, 64);
}
TFE_FN void tfemu_mm512_store_pd(void* p, __m512d v) {
  tfe_check_align(p);
  std::memcpy(p, &v, 64);
}
TFE_FN void tfemu_mm512_storeu_si512(void* p, __m512i v) { std::memcpy(p, &v, 64); }

// masked loads / stores: vmaskmovps / vmaskmovpd touch only the selected elements
TFE_FN __m512 tfemu_mm512_maskz_loadu_ps(__mmask16 k, const void* p) {
  const float* f = static_cast<const float*>(p);
  return tfe_join(_mm256_maskload_ps(f, tfe_mask32(k, 0)), _mm256_maskload_ps(f + 8, tfe_mask32(k, 8)));
}
TFE_FN __m512d tfemu_mm512_maskz_loadu_pd(__mmask8 k, const void* p) {
  const double* f = static_cast<const double*>(p);
  return tfe_join(_mm256_maskload_pd(f, tfe_mask64(k, 0)), _mm256_maskload_pd(f + 4, tfe_mask64(k, 4)));
}
TFE_FN __m256 tfemu_mm256_maskz_loadu_ps(__mmask8 k, const void* p) {
  return _mm256_maskload_ps(static_cast<const float*>(p), tfe_mask32(k, 0));
}
TFE_FN void tfemu_mm512_mask_storeu_ps(void* p, __mmask16 k, __m512 v) {
  float* f = static_cast<float*>(p);
  _mm256_maskstore_ps(f, tfe_mask32(k, 0), tfe_lo(v));
  _mm256_maskstore_ps(f + 8, tfe_mask32(k, 8), tfe_hi(v));
}
TFE_FN void tfemu_mm512_mask_storeu_pd(void* p, __mmask8 k, __m512d v) {
  double* f = static_cast<double*>(p);
  _mm256_maskstore_pd(f, tfe_mask64(k, 0), tfe_lo(v));
  _mm256_maskstore_pd(f + 4, tfe_mask64(k, 4), tfe_hi(v));
}
TFE_FN void tfemu_mm256_mask_storeu_ps(void* p, __mmask8 k, __m256 v) {
  _mm256_maskstore_ps(static_cast<float*>(p), tfe_mask32(k, 0), v);
}

TFE_FN __m512 tfemu_mm512_setzero_ps() { return tfe_join(_mm256_setzero_ps(), _mm256_setzero_ps()); }
TFE_FN __m512d tfemu_mm512_setzero_pd() { return tfe_join(_mm256_setzero_pd(), _mm256_setzero_pd()); }
TFE_FN __m512i tfemu_mm512_setzero_si512() { return tfe_join(_mm256_setzero_si256(), _mm256_setzero_si256()); }
TFE_FN __m512 tfemu_mm512_set1_ps(float a) { return tfe_join(_mm256_set1_ps(a), _mm256_set1_ps(a)); }
TFE_FN __m512d tfemu_mm512_set1_pd(double a) { return tfe_join(_mm256_set1_pd(a), _mm256_set1_pd(a)); }
TFE_FN __m512i tfemu_mm512_set1_epi32(int a) { return tfe_join(_mm256_set1_epi32(a), _mm256_set1_epi32(a)); }
TFE_FN __m512i tfemu_mm512_set1_epi64(long long a) { return tfe_join(_mm256_set1_epi64x(a), _mm256_set1_epi64x(a)); }
TFE_FN __m512i tfemu_mm512_set1_epi8(char a) { return tfe_join(_mm256_set1_epi8(a), _mm256_set1_epi8(a)); }
// _mm512_set_epi64(e7, ..., e0): the last argument is element 0
TFE_FN __m512i tfemu_mm512_set_epi64(long long e7, long long e6, long long e5, long long e4, long long e3, long long e2,
                                     long long e1, long long e0) {
  return tfe_join(_mm256_setr_epi64x(e0, e1, e2, e3), _mm256_setr_epi64x(e4, e5, e6, e7));
}
TFE_FN __m512i tfemu_mm512_setr_epi64(long long e0, long long e1, long long e2, long long e3, long long e4, long long e5,
                                      long long e6, long long e7) {
  return tfe_join(_mm256_setr_epi64x(e0, e1, e2, e3), _mm256_setr_epi64x(e4, e5, e6, e7));
}
TFE_FN __m512 tfemu_mm512_setr_ps(float e0, float e1, float e2, float e3, float e4, float e5, float e6, float e7, float e8,
                                  float e9, float e10, float e11, float e12, float e13, float e14, float e15) {
  return tfe_join(_mm256_setr_ps(e0, e1, e2, e3, e4, e5, e6, e7), _mm256_setr_ps(e8, e9, e10, e11, e12, e13, e14, e15));
}
TFE_FN __m512i tfemu_mm512_broadcast_i32x4(__m128i a) {
  const __m256i b = _mm256_broadcastsi128_si256(a);
  return tfe_join(b, b);
}

// ---- casts, extracts -----------------------------------------------------------------------------------

TFE_FN __m512 tfemu_mm512_castpd_ps(__m512d a) { return (__m512)a; }
TFE_FN __m512d tfemu_mm512_castps_pd(__m512 a) { return (__m512d)a; }
TFE_FN __m512i tfemu_mm512_castps_si512(__m512 a) { return (__m512i)a; }
TFE_FN __m512 tfemu_mm512_castsi512_ps(__m512i a) { return (__m512)a; }
TFE_FN __m256 tfemu_mm512_castps512_ps256(__m512 a) { return tfe_lo(a); }
TFE_FN __m256i tfemu_mm512_castsi512_si256(__m512i a) { return tfe_lo(a); }
// the upper half is undefined in Intel's definition; zero here
TFE_FN __m512i tfemu_mm512_castsi256_si512(__m256i a) { return tfe_join(a, _mm256_setzero_si256()); }
TFE_FN __m256 tfemu_mm512_extractf32x8_ps(__m512 a, int imm) { return (imm & 1) ? tfe_hi(a) : tfe_lo(a); }
TFE_FN __m256d tfemu_mm512_extractf64x4_pd(__m512d a, int imm) { return (imm & 1) ? tfe_hi(a) : tfe_lo(a); }
TFE_FN __m256i tfemu_mm512_extracti64x4_epi64(__m512i a, int imm) { return (imm & 1) ? tfe_hi(a) : tfe_lo(a); }
TFE_FN float tfemu_mm512_cvtss_f32(__m512 a) { return ((tfe_f32x16)a)[0]; }

// ---- arithmetic, logic -----------------------------------------------------------------------------------

#define TFE_2(name, T, op) \
  TFE_FN T tfemu_mm512_##name(T a, T b) { return tfe_join(op(tfe_lo(a), tfe_lo(b)), op(tfe_hi(a), tfe_hi(b))); }
// as GCC's headers: _mm256_add_ps etc. are generic vector operations (a + b), open to contraction
TFE_2(add_ps, __m512, _mm256_add_ps)
TFE_2(sub_ps, __m512, _mm256_sub_ps)
TFE_2(mul_ps, __m512, _mm256_mul_ps)
TFE_2(div_ps, __m512, _mm256_div_ps)
TFE_2(add_pd, __m512d, _mm256_add_pd)
TFE_2(sub_pd, __m512d, _mm256_sub_pd)
TFE_2(mul_pd, __m512d, _mm256_mul_pd)
TFE_2(div_pd, __m512d, _mm256_div_pd)
TFE_2(add_epi8, __m512i, _mm256_add_epi8)
TFE_2(add_epi16, __m512i, _mm256_add_epi16)
TFE_2(add_epi32, __m512i, _mm256_add_epi32)
TFE_2(sub_epi32, __m512i, _mm256_sub_epi32)
TFE_2(and_si512, __m512i, _mm256_and_si256)
TFE_2(or_si512, __m512i, _mm256_or_si256)
TFE_2(xor_si512, __m512i, _mm256_xor_si256)
TFE_2(and_ps, __m512, _mm256_and_ps)
TFE_2(andnot_ps, __m512, _mm256_andnot_ps)  // ~a & b
TFE_2(or_ps, __m512, _mm256_or_ps)
TFE_2(xor_ps, __m512, _mm256_xor_ps)
TFE_2(max_ps, __m512, _mm256_max_ps)  // vmaxps: the second operand when either is NaN or both are zeros
TFE_2(min_ps, __m512, _mm256_min_ps)
TFE_2(shuffle_epi8, __m512i, _mm256_shuffle_epi8)  // per 128-bit lane; index bit 7 gives 0
TFE_2(maddubs_epi16, __m512i, _mm256_maddubs_epi16)  // u8 x s8, pairs summed with int16 saturation
TFE_2(srlv_epi64, __m512i, _mm256_srlv_epi64)        // counts > 63 give 0
TFE_2(unpacklo_ps, __m512, _mm256_unpacklo_ps)       // unpacks: per 128-bit lane
TFE_2(unpackhi_ps, __m512, _mm256_unpackhi_ps)
TFE_2(unpacklo_epi8, __m512i, _mm256_unpacklo_epi8)
TFE_2(unpackhi_epi8, __m512i, _mm256_unpackhi_epi8)
TFE_2(unpacklo_epi32, __m512i, _mm256_unpacklo_epi32)
TFE_2(unpackhi_epi32, __m512i, _mm256_unpackhi_epi32)
TFE_2(unpacklo_epi64, __m512i, _mm256_unpacklo_epi64)
TFE_2(unpackhi_epi64, __m512i, _mm256_unpackhi_epi64)
#undef TFE_2

TFE_FN __m512 tfemu_mm512_abs_ps(__m512 a) { return tfemu_mm512_and_ps(a, (__m512)tfemu_mm512_set1_epi32(0x7fffffff)); }
TFE_FN __m512d tfemu_mm512_abs_pd(__m512d a) {
  const __m256d m = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
  return tfe_join(_mm256_and_pd(tfe_lo(a), m), _mm256_and_pd(tfe_hi(a), m));
}
// one rounding each (vfmadd...)
TFE_FN __m512 tfemu_mm512_fmadd_ps(__m512 a, __m512 b, __m512 c) {
  return tfe_join(_mm256_fmadd_ps(tfe_lo(a), tfe_lo(b), tfe_lo(c)), _mm256_fmadd_ps(tfe_hi(a), tfe_hi(b), tfe_hi(c)));
}
TFE_FN __m512 tfemu_mm512_fmsub_ps(__m512 a, __m512 b, __m512 c) {  // a b - c
  return tfe_join(_mm256_fmsub_ps(tfe_lo(a), tfe_lo(b), tfe_lo(c)), _mm256_fmsub_ps(tfe_hi(a), tfe_hi(b), tfe_hi(c)));
}
TFE_FN __m512 tfemu_mm512_fnmadd_ps(__m512 a, __m512 b, __m512 c) {  // -(a b) + c
  return tfe_join(_mm256_fnmadd_ps(tfe_lo(a), tfe_lo(b), tfe_lo(c)), _mm256_fnmadd_ps(tfe_hi(a), tfe_hi(b), tfe_hi(c)));
}
TFE_FN __m512d tfemu_mm512_fmadd_pd(__m512d a, __m512d b, __m512d c) {
  return tfe_join(_mm256_fmadd_pd(tfe_lo(a), tfe_lo(b), tfe_lo(c)), _mm256_fmadd_pd(tfe_hi(a), tfe_hi(b), tfe_hi(c)));
}
TFE_FN __m512 tfemu_mm512_sqrt_ps(__m512 a) { return tfe_join(_mm256_sqrt_ps(tfe_lo(a)), _mm256_sqrt_ps(tfe_hi(a))); }

// ---- blends, compares ------------------------------------------------------------------------------------

// blend(k, a, b): b where k is set, a elsewhere
TFE_FN __m512 tfemu_mm512_mask_blend_ps(__mmask16 k, __m512 a, __m512 b) {
  return tfe_join(_mm256_blendv_ps(tfe_lo(a), tfe_lo(b), _mm256_castsi256_ps(tfe_mask32(k, 0))),
                  _mm256_blendv_ps(tfe_hi(a), tfe_hi(b), _mm256_castsi256_ps(tfe_mask32(k, 8))));
}
TFE_FN __m512d tfemu_mm512_mask_blend_pd(__mmask8 k, __m512d a, __m512d b) {
  return tfe_join(_mm256_blendv_pd(tfe_lo(a), tfe_lo(b), _mm256_castsi256_pd(tfe_mask64(k, 0))),
                  _mm256_blendv_pd(tfe_hi(a), tfe_hi(b), _mm256_castsi256_pd(tfe_mask64(k, 4))));
}
TFE_FN __m512i tfemu_mm512_mask_blend_epi8(__mmask64 k, __m512i a, __m512i b) {
  return tfe_join(_mm256_blendv_epi8(tfe_lo(a), tfe_lo(b), tfe_mask8(static_cast<uint32_t>(k))),
                  _mm256_blendv_epi8(tfe_hi(a), tfe_hi(b), tfe_mask8(static_cast<uint32_t>(k >> 32))));
}
// mask_mov(src, k, a): a where k is set, src elsewhere; maskz_mov(k, a): a where set, 0 elsewhere
TFE_FN __m512 tfemu_mm512_mask_mov_ps(__m512 src, __mmask16 k, __m512 a) { return tfemu_mm512_mask_blend_ps(k, src, a); }
TFE_FN __m512 tfemu_mm512_maskz_mov_ps(__mmask16 k, __m512 a) { return tfemu_mm512_mask_blend_ps(k, tfemu_mm512_setzero_ps(), a); }
TFE_FN __m512d tfemu_mm512_maskz_mov_pd(__mmask8 k, __m512d a) { return tfemu_mm512_mask_blend_pd(k, tfemu_mm512_setzero_pd(), a); }
// src where k is clear, a * b where set
TFE_FN __m512 tfemu_mm512_mask_mul_ps(__m512 src, __mmask16 k, __m512 a, __m512 b) {
  return tfemu_mm512_mask_blend_ps(k, src, tfemu_mm512_mul_ps(a, b));
}
// the predicates of vcmpps (imm 0..31, as the VEX form): mask bit i = lane i's result
TFE_FN __mmask16 tfemu_mm512_cmp_ps_mask(__m512 a, __m512 b, const int imm) {
  const int lo = _mm256_movemask_ps(_mm256_cmp_ps(tfe_lo(a), tfe_lo(b), imm));
  const int hi = _mm256_movemask_ps(_mm256_cmp_ps(tfe_hi(a), tfe_hi(b), imm));
  return static_cast<__mmask16>(lo | (hi << 8));
}
TFE_FN __mmask8 tfemu_mm512_cmp_pd_mask(__m512d a, __m512d b, const int imm) {
  const int lo = _mm256_movemask_pd(_mm256_cmp_pd(tfe_lo(a), tfe_lo(b), imm));
  const int hi = _mm256_movemask_pd(_mm256_cmp_pd(tfe_hi(a), tfe_hi(b), imm));
  return static_cast<__mmask8>(lo | (hi << 4));
}
// vptestmb: bit i = (a[i] & b[i]) != 0
TFE_FN __mmask64 tfemu_mm512_test_epi8_mask(__m512i a, __m512i b) {
  const __m256i z = _mm256_setzero_si256();
  const uint32_t lo = ~static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(tfe_lo(a), tfe_lo(b)), z)));
  const uint32_t hi = ~static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_and_si256(tfe_hi(a), tfe_hi(b)), z)));
  return static_cast<__mmask64>(lo) | (static_cast<__mmask64>(hi) << 32);
}

// ---- rounding, scaling, conversions -----------------------------------------------------------------------

// vrndscaleps with imm[7:4] = 0 is vroundps with imm[3:0] (mode bits 1:0, bit 2 MXCSR, bit 3 no
// precision exception); other scales (fraction bits kept) are not used by the kernels and trap here
TFE_FN __m512 tfemu_mm512_roundscale_ps(__m512 a, const int imm) {
  if ((imm >> 4) != 0) __builtin_trap();  // a constant after inlining: no branch
  return tfe_join(_mm256_round_ps(tfe_lo(a), imm & 15), _mm256_round_ps(tfe_hi(a), imm & 15));
}
// vscalefps: a * 2^floor(b), one rounding; Intel's table for NaN and infinite operands
TFE_FN __m256 tfe_scalef8(__m256 a, __m256 b) {
  const __m256 n = _mm256_max_ps(_mm256_set1_ps(-400.0f), _mm256_min_ps(_mm256_set1_ps(400.0f), _mm256_round_ps(b, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)));
  const __m256i ni = _mm256_cvtps_epi32(n);  // NaN b: garbage here, replaced below
  // a 2^n in double (exact: |n| <= 400), then one rounding to float
  const __m256i e = _mm256_add_epi32(ni, _mm256_set1_epi32(1023));
  const __m256i eLo = _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(e)), 52);
  const __m256i eHi = _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(e, 1)), 52);
  const __m256d pLo = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), _mm256_castsi256_pd(eLo));
  const __m256d pHi = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), _mm256_castsi256_pd(eHi));
  __m256 r = _mm256_set_m128(_mm256_cvtpd_ps(pHi), _mm256_cvtpd_ps(pLo));
  const __m256 inf = _mm256_set1_ps(__builtin_inff());
  const __m256 indef = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0xFFC00000u)));
  const __m256 absA = _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
  // b = +inf and a = 0, or b = -inf and a = +-inf: the default NaN
  const __m256 bad = _mm256_or_ps(_mm256_and_ps(_mm256_cmp_ps(b, inf, _CMP_EQ_OQ), _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_EQ_OQ)),
                                  _mm256_and_ps(_mm256_cmp_ps(b, _mm256_sub_ps(_mm256_setzero_ps(), inf), _CMP_EQ_OQ), _mm256_cmp_ps(absA, inf, _CMP_EQ_OQ)));
  r = _mm256_blendv_ps(r, indef, bad);
  // a NaN b (a not NaN): b quietened; a NaN a: a quietened (the double product above keeps it)
  const __m256 qb = _mm256_or_ps(b, _mm256_castsi256_ps(_mm256_set1_epi32(0x00400000)));
  r = _mm256_blendv_ps(r, qb, _mm256_andnot_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q), _mm256_cmp_ps(b, b, _CMP_UNORD_Q)));
  return r;
}
TFE_FN __m512 tfemu_mm512_scalef_ps(__m512 a, __m512 b) {
  return tfe_join(tfe_scalef8(tfe_lo(a), tfe_lo(b)), tfe_scalef8(tfe_hi(a), tfe_hi(b)));
}
TFE_FN __m512 tfemu_mm512_cvtepi32_ps(__m512i a) { return tfe_join(_mm256_cvtepi32_ps(tfe_lo(a)), _mm256_cvtepi32_ps(tfe_hi(a))); }
// MXCSR rounding (nearest even); NaN and out of range give 0x80000000
TFE_FN __m512i tfemu_mm512_cvtps_epi32(__m512 a) { return tfe_join(_mm256_cvtps_epi32(tfe_lo(a)), _mm256_cvtps_epi32(tfe_hi(a))); }
TFE_FN __m512d tfemu_mm512_cvtps_pd(__m256 a) {
  return tfe_join(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
}
TFE_FN __m256 tfemu_mm512_cvtpd_ps(__m512d a) { return _mm256_set_m128(_mm256_cvtpd_ps(tfe_hi(a)), _mm256_cvtpd_ps(tfe_lo(a))); }
TFE_FN __m512i tfemu_mm512_cvtepi16_epi32(__m256i a) {
  return tfe_join(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(a)), _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a, 1)));
}
TFE_FN __m512i tfemu_mm512_cvtepu16_epi32(__m256i a) {
  return tfe_join(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(a)), _mm256_cvtepu16_epi32(_mm256_extracti128_si256(a, 1)));
}
// vpmovsdb: int32 -> int8 with signed saturation (two saturating packs saturate the same)
TFE_FN __m128i tfemu_mm512_cvtsepi32_epi8(__m512i a) {
  const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(tfe_lo(a), tfe_hi(a)), _MM_SHUFFLE(3, 1, 2, 0));  // int16, in order
  const __m256i b = _mm256_permute4x64_epi64(_mm256_packs_epi16(w, w), _MM_SHUFFLE(3, 1, 2, 0));
  return _mm256_castsi256_si128(b);
}
// vcvtph2ps (F16C)
TFE_FN __m512 tfemu_mm512_cvtph_ps(__m256i a) {
  return tfe_join(_mm256_cvtph_ps(_mm256_castsi256_si128(a)), _mm256_cvtph_ps(_mm256_extracti128_si256(a, 1)));
}

// ---- shuffles, permutes ------------------------------------------------------------------------------------

// 128-bit lanes: result lanes 0, 1 from a, lanes 2, 3 from b, each chosen by 2 bits of imm
// (vperm2f128's selector 0..3 names the lanes of the pair (lo, hi) the same way)
TFE_FN __m512 tfemu_mm512_shuffle_f32x4(__m512 a, __m512 b, const int imm) {
  return tfe_join(_mm256_permute2f128_ps(tfe_lo(a), tfe_hi(a), (imm & 3) | (((imm >> 2) & 3) << 4)),
                  _mm256_permute2f128_ps(tfe_lo(b), tfe_hi(b), ((imm >> 4) & 3) | (((imm >> 6) & 3) << 4)));
}
TFE_FN __m512d tfemu_mm512_shuffle_f64x2(__m512d a, __m512d b, const int imm) {
  return tfe_join(_mm256_permute2f128_pd(tfe_lo(a), tfe_hi(a), (imm & 3) | (((imm >> 2) & 3) << 4)),
                  _mm256_permute2f128_pd(tfe_lo(b), tfe_hi(b), ((imm >> 4) & 3) | (((imm >> 6) & 3) << 4)));
}
TFE_FN __m512i tfemu_mm512_shuffle_i64x2(__m512i a, __m512i b, const int imm) {
  return tfe_join(_mm256_permute2x128_si256(tfe_lo(a), tfe_hi(a), (imm & 3) | (((imm >> 2) & 3) << 4)),
                  _mm256_permute2x128_si256(tfe_lo(b), tfe_hi(b), ((imm >> 4) & 3) | (((imm >> 6) & 3) << 4)));
}
// vshufps per 128-bit lane: elements 0, 1 from a, 2, 3 from b
TFE_FN __m512 tfemu_mm512_shuffle_ps(__m512 a, __m512 b, const int imm) {
  return tfe_join(_mm256_shuffle_ps(tfe_lo(a), tfe_lo(b), imm), _mm256_shuffle_ps(tfe_hi(a), tfe_hi(b), imm));
}
TFE_FN __m512 tfemu_mm512_permute_ps(__m512 a, const int imm) {
  return tfe_join(_mm256_permute_ps(tfe_lo(a), imm), _mm256_permute_ps(tfe_hi(a), imm));
}
// permutexvar(idx, a): 32-bit element i = a[idx[i] mod 16], across the whole vector
TFE_FN __m256 tfe_perm16(__m256i idx, __m256 lo, __m256 hi) {
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx),
                          _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));  // bit 3 of the index picks the half
}
TFE_FN __m512 tfemu_mm512_permutexvar_ps(__m512i idx, __m512 a) {
  return tfe_join(tfe_perm16(tfe_lo(idx), tfe_lo(a), tfe_hi(a)), tfe_perm16(tfe_hi(idx), tfe_lo(a), tfe_hi(a)));
}
// 64-bit element i = a[idx[i] mod 8]: the 32-bit permute with indices 2q, 2q + 1
TFE_FN __m256i tfe_idx64to32(__m256i idx) {
  const __m256i q2 = _mm256_slli_epi64(_mm256_and_si256(idx, _mm256_set1_epi64x(7)), 1);
  return _mm256_or_si256(q2, _mm256_slli_epi64(_mm256_add_epi64(q2, _mm256_set1_epi64x(1)), 32));
}
TFE_FN __m512i tfemu_mm512_permutexvar_epi64(__m512i idx, __m512i a) {
  const __m256 lo = _mm256_castsi256_ps(tfe_lo(a)), hi = _mm256_castsi256_ps(tfe_hi(a));
  return tfe_join(_mm256_castps_si256(tfe_perm16(tfe_idx64to32(tfe_lo(idx)), lo, hi)),
                  _mm256_castps_si256(tfe_perm16(tfe_idx64to32(tfe_hi(idx)), lo, hi)));
}

// ---- integer shifts, logic, dot products -------------------------------------------------------------------

TFE_FN __m512i tfemu_mm512_slli_epi32(__m512i a, unsigned n) {  // counts > 31 give 0 (vpslld)
  return tfe_join(_mm256_slli_epi32(tfe_lo(a), static_cast<int>(n)), _mm256_slli_epi32(tfe_hi(a), static_cast<int>(n)));
}
TFE_FN __m512i tfemu_mm512_srli_epi32(__m512i a, unsigned n) {
  return tfe_join(_mm256_srli_epi32(tfe_lo(a), static_cast<int>(n)), _mm256_srli_epi32(tfe_hi(a), static_cast<int>(n)));
}
TFE_FN __m512i tfemu_mm512_srai_epi32(__m512i a, unsigned n) {  // counts > 31 fill with the sign
  return tfe_join(_mm256_srai_epi32(tfe_lo(a), static_cast<int>(n)), _mm256_srai_epi32(tfe_hi(a), static_cast<int>(n)));
}
TFE_FN __m512i tfemu_mm512_srli_epi16(__m512i a, unsigned n) {
  return tfe_join(_mm256_srli_epi16(tfe_lo(a), static_cast<int>(n)), _mm256_srli_epi16(tfe_hi(a), static_cast<int>(n)));
}
// vpternlogd: result bit = bit (a << 2 | b << 1 | c) of imm, for the three operands' bits
TFE_FN __m512i tfemu_mm512_ternarylogic_epi32(__m512i a, __m512i b, __m512i c, const int imm) {
  const tfe_i64x8 x = (tfe_i64x8)a, y = (tfe_i64x8)b, z = (tfe_i64x8)c;
  tfe_i64x8 r = x ^ x;
#define TFE_T(t) \
  if ((imm >> (t)) & 1) r |= (((t) & 4) ? x : ~x) & (((t) & 2) ? y : ~y) & (((t) & 1) ? z : ~z);
  TFE_T(0) TFE_T(1) TFE_T(2) TFE_T(3) TFE_T(4) TFE_T(5) TFE_T(6) TFE_T(7)
#undef TFE_T
  return (__m512i)r;
}
// vpdpbusd: src + the four products u8(a) x s8(b) of each 32-bit lane, wrapping (no saturation):
// bytes widened to int16 (even and odd ones), vpmaddwd (exact here: |u8 x s8| < 2^15)
TFE_FN __m256i tfe_dpbusd8(__m256i src, __m256i a, __m256i b) {
  const __m256i m = _mm256_set1_epi16(0x00FF);
  const __m256i ae = _mm256_and_si256(a, m), ao = _mm256_srli_epi16(a, 8);
  const __m256i be = _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8), bo = _mm256_srai_epi16(b, 8);
  return _mm256_add_epi32(src, _mm256_add_epi32(_mm256_madd_epi16(ae, be), _mm256_madd_epi16(ao, bo)));
}
TFE_FN __m512i tfemu_mm512_dpbusd_epi32(__m512i src, __m512i a, __m512i b) {
  return tfe_join(tfe_dpbusd8(tfe_lo(src), tfe_lo(a), tfe_lo(b)), tfe_dpbusd8(tfe_hi(src), tfe_hi(a), tfe_hi(b)));
}
TFE_FN __m256i tfemu_mm256_dpbusd_epi32(__m256i src, __m256i a, __m256i b) { return tfe_dpbusd8(src, a, b); }

// vdpbf16ps (Intel SDM): per float32 lane i, srcdest += a.bf16[2i+1] * b.bf16[2i+1], then
// srcdest += a.bf16[2i] * b.bf16[2i]; each step an FMA rounded to nearest even with denormal inputs
// read as zero (DAZ) and denormal results flushed to zero (FTZ); MXCSR neither consulted nor updated
// (the emulation's FMAs round by MXCSR: nearest even, as Node runs)
TFE_FN __m256 tfe_daz8(__m256 x) {  // denormals -> zero of the same sign
  const __m256i b = _mm256_castps_si256(x);
  const __m256i den = _mm256_cmpeq_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x7f800000)), _mm256_setzero_si256());
  return _mm256_castsi256_ps(_mm256_blendv_epi8(b, _mm256_and_si256(b, _mm256_set1_epi32(static_cast<int>(0x80000000u))), den));
}
TFE_FN __m256 tfe_dpbf16_8(__m256 acc, __m256i a, __m256i b) {
  const __m256i hi = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  const __m256 ae = tfe_daz8(_mm256_castsi256_ps(_mm256_slli_epi32(a, 16))), ao = tfe_daz8(_mm256_castsi256_ps(_mm256_and_si256(a, hi)));
  const __m256 be = tfe_daz8(_mm256_castsi256_ps(_mm256_slli_epi32(b, 16))), bo = tfe_daz8(_mm256_castsi256_ps(_mm256_and_si256(b, hi)));
  const __m256 t = tfe_daz8(_mm256_fmadd_ps(ao, bo, tfe_daz8(acc)));
  return tfe_daz8(_mm256_fmadd_ps(ae, be, t));
}
TFE_FN __m512 tfemu_mm512_dpbf16_ps(__m512 src, __m512bh a, __m512bh b) {
  const __m512i x = (__m512i)a, y = (__m512i)b;
  return tfe_join(tfe_dpbf16_8(tfe_lo(src), tfe_lo(x), tfe_lo(y)), tfe_dpbf16_8(tfe_hi(src), tfe_hi(x), tfe_hi(y)));
}

// ---- reductions: GCC 12's avx512fintrin.h sequences (halves, quarters, pairs) --------------------------------

TFE_FN float tfemu_mm512_reduce_add_ps(__m512 a) {
  const __m256 t3 = tfe_hi(a) + tfe_lo(a);
  const __m128 t6 = _mm256_extractf128_ps(t3, 1) + _mm256_castps256_ps128(t3);
  const __m128 t7 = __builtin_shuffle(t6, (tfe_i32x4){2, 3, 0, 1});
  const __m128 t8 = t6 + t7;
  return t8[0] + t8[1];
}
TFE_FN float tfemu_mm512_reduce_max_ps(__m512 a) {
  const __m256 t3 = _mm256_max_ps(tfe_hi(a), tfe_lo(a));
  const __m128 t6 = _mm_max_ps(_mm256_extractf128_ps(t3, 1), _mm256_castps256_ps128(t3));
  const __m128 t8 = _mm_max_ps(t6, __builtin_shuffle(t6, (tfe_i32x4){2, 3, 0, 1}));
  const __m128 t10 = _mm_max_ps(t8, __builtin_shuffle(t8, (tfe_i32x4){1, 0, 1, 0}));
  return t10[0];
}
TFE_FN int tfemu_mm512_reduce_add_epi32(__m512i a) {
  const __m256i t3 = _mm256_add_epi32(tfe_hi(a), tfe_lo(a));
  const __m128i t6 = _mm_add_epi32(_mm256_extracti128_si256(t3, 1), _mm256_castsi256_si128(t3));
  const __m128i t8 = _mm_add_epi32(t6, _mm_shuffle_epi32(t6, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm_cvtsi128_si32(t8) + _mm_extract_epi32(t8, 1);
}

#pragma GCC pop_options

// ---- the names ---------------------------------------------------------------------------------------
#undef _mm512_abs_pd
#define _mm512_abs_pd tfemu_mm512_abs_pd
#undef _mm512_abs_ps
#define _mm512_abs_ps tfemu_mm512_abs_ps
#undef _mm512_add_epi16
#define _mm512_add_epi16 tfemu_mm512_add_epi16
#undef _mm512_add_epi32
#define _mm512_add_epi32 tfemu_mm512_add_epi32
#undef _mm512_add_epi8
#define _mm512_add_epi8 tfemu_mm512_add_epi8
#undef _mm512_add_pd
#define _mm512_add_pd tfemu_mm512_add_pd
#undef _mm512_add_ps
#define _mm512_add_ps tfemu_mm512_add_ps
#undef _mm512_and_ps
#define _mm512_and_ps tfemu_mm512_and_ps
#undef _mm512_and_si512
#define _mm512_and_si512 tfemu_mm512_and_si512
#undef _mm512_andnot_ps
#define _mm512_andnot_ps tfemu_mm512_andnot_ps
#undef _mm512_broadcast_i32x4
#define _mm512_broadcast_i32x4 tfemu_mm512_broadcast_i32x4
#undef _mm512_castpd_ps
#define _mm512_castpd_ps tfemu_mm512_castpd_ps
#undef _mm512_castps512_ps256
#define _mm512_castps512_ps256 tfemu_mm512_castps512_ps256
#undef _mm512_castps_pd
#define _mm512_castps_pd tfemu_mm512_castps_pd
#undef _mm512_castps_si512
#define _mm512_castps_si512 tfemu_mm512_castps_si512
#undef _mm512_castsi256_si512
#define _mm512_castsi256_si512 tfemu_mm512_castsi256_si512
#undef _mm512_castsi512_ps
#define _mm512_castsi512_ps tfemu_mm512_castsi512_ps
#undef _mm512_castsi512_si256
#define _mm512_castsi512_si256 tfemu_mm512_castsi512_si256
#undef _mm512_cmp_pd_mask
#define _mm512_cmp_pd_mask tfemu_mm512_cmp_pd_mask
#undef _mm512_cmp_ps_mask
#define _mm512_cmp_ps_mask tfemu_mm512_cmp_ps_mask
#undef _mm512_cvtepi16_epi32
#define _mm512_cvtepi16_epi32 tfemu_mm512_cvtepi16_epi32
#undef _mm512_cvtepi32_ps
#define _mm512_cvtepi32_ps tfemu_mm512_cvtepi32_ps
#undef _mm512_cvtepu16_epi32
#define _mm512_cvtepu16_epi32 tfemu_mm512_cvtepu16_epi32
#undef _mm512_cvtpd_ps
#define _mm512_cvtpd_ps tfemu_mm512_cvtpd_ps
#undef _mm512_cvtph_ps
#define _mm512_cvtph_ps tfemu_mm512_cvtph_ps
#undef _mm512_cvtps_epi32
#define _mm512_cvtps_epi32 tfemu_mm512_cvtps_epi32
#undef _mm512_cvtps_pd
#define _mm512_cvtps_pd tfemu_mm512_cvtps_pd
#undef _mm512_cvtsepi32_epi8
#define _mm512_cvtsepi32_epi8 tfemu_mm512_cvtsepi32_epi8
#undef _mm512_cvtss_f32
#define _mm512_cvtss_f32 tfemu_mm512_cvtss_f32
#undef _mm512_div_pd
#define _mm512_div_pd tfemu_mm512_div_pd
#undef _mm512_div_ps
#define _mm512_div_ps tfemu_mm512_div_ps
#undef _mm512_dpbf16_ps
#define _mm512_dpbf16_ps tfemu_mm512_dpbf16_ps
#undef _mm512_dpbusd_epi32
#define _mm512_dpbusd_epi32 tfemu_mm512_dpbusd_epi32
#undef _mm256_dpbusd_epi32
#define _mm256_dpbusd_epi32 tfemu_mm256_dpbusd_epi32
#undef _mm256_dpbusd_avx_epi32
#define _mm256_dpbusd_avx_epi32 tfemu_mm256_dpbusd_epi32
#undef _mm512_extractf32x8_ps
#define _mm512_extractf32x8_ps tfemu_mm512_extractf32x8_ps
#undef _mm512_extractf64x4_pd
#define _mm512_extractf64x4_pd tfemu_mm512_extractf64x4_pd
#undef _mm512_extracti64x4_epi64
#define _mm512_extracti64x4_epi64 tfemu_mm512_extracti64x4_epi64
#undef _mm512_fmadd_pd
#define _mm512_fmadd_pd tfemu_mm512_fmadd_pd
#undef _mm512_fmadd_ps
#define _mm512_fmadd_ps tfemu_mm512_fmadd_ps
#undef _mm512_fmsub_ps
#define _mm512_fmsub_ps tfemu_mm512_fmsub_ps
#undef _mm512_fnmadd_ps
#define _mm512_fnmadd_ps tfemu_mm512_fnmadd_ps
#undef _mm512_load_ps
#define _mm512_load_ps tfemu_mm512_load_ps
#undef _mm512_load_si512
#define _mm512_load_si512 tfemu_mm512_load_si512
#undef _mm512_loadu_ps
#define _mm512_loadu_ps tfemu_mm512_loadu_ps
#undef _mm512_loadu_si512
#define _mm512_loadu_si512 tfemu_mm512_loadu_si512
#undef _mm512_maddubs_epi16
#define _mm512_maddubs_epi16 tfemu_mm512_maddubs_epi16
#undef _mm512_mask_blend_epi8
#define _mm512_mask_blend_epi8 tfemu_mm512_mask_blend_epi8
#undef _mm512_mask_blend_pd
#define _mm512_mask_blend_pd tfemu_mm512_mask_blend_pd
#undef _mm512_mask_blend_ps
#define _mm512_mask_blend_ps tfemu_mm512_mask_blend_ps
#undef _mm512_mask_mov_ps
#define _mm512_mask_mov_ps tfemu_mm512_mask_mov_ps
#undef _mm512_mask_mul_ps
#define _mm512_mask_mul_ps tfemu_mm512_mask_mul_ps
#undef _mm512_mask_storeu_pd
#define _mm512_mask_storeu_pd tfemu_mm512_mask_storeu_pd
#undef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps tfemu_mm512_mask_storeu_ps
#undef _mm512_maskz_loadu_pd
#define _mm512_maskz_loadu_pd tfemu_mm512_maskz_loadu_pd
#undef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps tfemu_mm512_maskz_loadu_ps
#undef _mm512_maskz_mov_pd
#define _mm512_maskz_mov_pd tfemu_mm512_maskz_mov_pd
#undef _mm512_maskz_mov_ps
#define _mm512_maskz_mov_ps tfemu_mm512_maskz_mov_ps
#undef _mm512_max_ps
#define _mm512_max_ps tfemu_mm512_max_ps
#undef _mm512_min_ps
#define _mm512_min_ps tfemu_mm512_min_ps
#undef _mm512_mul_pd
#define _mm512_mul_pd tfemu_mm512_mul_pd
#undef _mm512_mul_ps
#define _mm512_mul_ps tfemu_mm512_mul_ps
#undef _mm512_or_ps
#define _mm512_or_ps tfemu_mm512_or_ps
#undef _mm512_or_si512
#define _mm512_or_si512 tfemu_mm512_or_si512
#undef _mm512_permute_ps
#define _mm512_permute_ps tfemu_mm512_permute_ps
#undef _mm512_permutexvar_epi64
#define _mm512_permutexvar_epi64 tfemu_mm512_permutexvar_epi64
#undef _mm512_permutexvar_ps
#define _mm512_permutexvar_ps tfemu_mm512_permutexvar_ps
#undef _mm512_reduce_add_epi32
#define _mm512_reduce_add_epi32 tfemu_mm512_reduce_add_epi32
#undef _mm512_reduce_add_ps
#define _mm512_reduce_add_ps tfemu_mm512_reduce_add_ps
#undef _mm512_reduce_max_ps
#define _mm512_reduce_max_ps tfemu_mm512_reduce_max_ps
#undef _mm512_roundscale_ps
#define _mm512_roundscale_ps tfemu_mm512_roundscale_ps
#undef _mm512_scalef_ps
#define _mm512_scalef_ps tfemu_mm512_scalef_ps
#undef _mm512_set1_epi32
#define _mm512_set1_epi32 tfemu_mm512_set1_epi32
#undef _mm512_set1_epi64
#define _mm512_set1_epi64 tfemu_mm512_set1_epi64
#undef _mm512_set1_epi8
#define _mm512_set1_epi8 tfemu_mm512_set1_epi8
#undef _mm512_set1_pd
#define _mm512_set1_pd tfemu_mm512_set1_pd
#undef _mm512_set1_ps
#define _mm512_set1_ps tfemu_mm512_set1_ps
#undef _mm512_set_epi64
#define _mm512_set_epi64 tfemu_mm512_set_epi64
#undef _mm512_setr_epi64
#define _mm512_setr_epi64 tfemu_mm512_setr_epi64
#undef _mm512_setr_ps
#define _mm512_setr_ps tfemu_mm512_setr_ps
#undef _mm512_setzero_pd
#define _mm512_setzero_pd tfemu_mm512_setzero_pd
#undef _mm512_setzero_ps
#define _mm512_setzero_ps tfemu_mm512_setzero_ps
#undef _mm512_setzero_si512
#define _mm512_setzero_si512 tfemu_mm512_setzero_si512
#undef _mm512_shuffle_epi8
#define _mm512_shuffle_epi8 tfemu_mm512_shuffle_epi8
#undef _mm512_shuffle_f32x4
#define _mm512_shuffle_f32x4 tfemu_mm512_shuffle_f32x4
#undef _mm512_shuffle_f64x2
#define _mm512_shuffle_f64x2 tfemu_mm512_shuffle_f64x2
#undef _mm512_shuffle_i64x2
#define _mm512_shuffle_i64x2 tfemu_mm512_shuffle_i64x2
#undef _mm512_shuffle_ps
#define _mm512_shuffle_ps tfemu_mm512_shuffle_ps
#undef _mm512_slli_epi32
#define _mm512_slli_epi32 tfemu_mm512_slli_epi32
#undef _mm512_sqrt_ps
#define _mm512_sqrt_ps tfemu_mm512_sqrt_ps
#undef _mm512_srai_epi32
#define _mm512_srai_epi32 tfemu_mm512_srai_epi32
#undef _mm512_srli_epi16
#define _mm512_srli_epi16 tfemu_mm512_srli_epi16
#undef _mm512_srli_epi32
#define _mm512_srli_epi32 tfemu_mm512_srli_epi32
#undef _mm512_srlv_epi64
#define _mm512_srlv_epi64 tfemu_mm512_srlv_epi64
#undef _mm512_store_pd
#define _mm512_store_pd tfemu_mm512_store_pd
#undef _mm512_store_ps
#define _mm512_store_ps tfemu_mm512_store_ps
#undef _mm512_storeu_ps
#define _mm512_storeu_ps tfemu_mm512_storeu_ps
#undef _mm512_storeu_si512
#define _mm512_storeu_si512 tfemu_mm512_storeu_si512
#undef _mm512_sub_epi32
#define _mm512_sub_epi32 tfemu_mm512_sub_epi32
#undef _mm512_sub_pd
#define _mm512_sub_pd tfemu_mm512_sub_pd
#undef _mm512_sub_ps
#define _mm512_sub_ps tfemu_mm512_sub_ps
#undef _mm512_ternarylogic_epi32
#define _mm512_ternarylogic_epi32 tfemu_mm512_ternarylogic_epi32
#undef _mm512_test_epi8_mask
#define _mm512_test_epi8_mask tfemu_mm512_test_epi8_mask
#undef _mm512_unpackhi_epi32
#define _mm512_unpackhi_epi32 tfemu_mm512_unpackhi_epi32
#undef _mm512_unpackhi_epi64
#define _mm512_unpackhi_epi64 tfemu_mm512_unpackhi_epi64
#undef _mm512_unpackhi_epi8
#define _mm512_unpackhi_epi8 tfemu_mm512_unpackhi_epi8
#undef _mm512_unpackhi_ps
#define _mm512_unpackhi_ps tfemu_mm512_unpackhi_ps
#undef _mm512_unpacklo_epi32
#define _mm512_unpacklo_epi32 tfemu_mm512_unpacklo_epi32
#undef _mm512_unpacklo_epi64
#define _mm512_unpacklo_epi64 tfemu_mm512_unpacklo_epi64
#undef _mm512_unpacklo_epi8
#define _mm512_unpacklo_epi8 tfemu_mm512_unpacklo_epi8
#undef _mm512_unpacklo_ps
#define _mm512_unpacklo_ps tfemu_mm512_unpacklo_ps
#undef _mm512_xor_ps
#define _mm512_xor_ps tfemu_mm512_xor_ps
#undef _mm512_xor_si512
#define _mm512_xor_si512 tfemu_mm512_xor_si512
#undef _mm256_mask_storeu_ps
#define _mm256_mask_storeu_ps tfemu_mm256_mask_storeu_ps
#undef _mm256_maskz_loadu_ps
#define _mm256_maskz_loadu_ps tfemu_mm256_maskz_loadu_ps
