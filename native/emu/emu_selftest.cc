// Self-test of native/emu/avx512_emu.h (force-included; compiled like the emulated kernels: -mavx2
// -mfma -mf16c): every emulated intrinsic against the scalar reference of avx512_ref.h, on random and
// special inputs (NaN with payloads, +-inf, +-0, denormals, halfway cases, saturating integers), every
// immediate the intrinsic takes (predicates, shuffle selectors, truth tables, shift counts), and masked
// loads / stores at the end of a readable page (a masked-off element read or written past it would
// fault). Prints one line; exit 1 on a mismatch. Run by scripts/test-avx512-emu.sh.
#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "avx512_ref.h"
#include "selftest_rng.h"

namespace {

uint64_t g_state = 0x9E3779B97F4A7C15ull;
uint64_t rnd() { return tfree_emu::splitmix64(g_state); }
float bits_f(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
double bits_d(uint64_t b) {
  double f;
  std::memcpy(&f, &b, 8);
  return f;
}
float rf() {
  const uint32_t sign = (rnd() & 1) ? 0x80000000u : 0u;
  switch (rnd() % 16) {
    case 0: return bits_f(sign);                                                   // +-0
    case 1: return bits_f(sign | 0x7f800000u);                                     // +-inf
    case 2: return bits_f(sign | 0x7fc00000u | static_cast<uint32_t>(rnd() & 0x3fffff));  // quiet NaN, payload
    case 3: return bits_f(sign | static_cast<uint32_t>(1 + rnd() % 0x7fffff));     // denormal
    case 4: return static_cast<float>(static_cast<int>(rnd() % 64) - 32) + 0.5f;   // halfway
    case 5: return static_cast<float>(static_cast<int>(rnd() % 200) - 100);        // integer
    case 6: return bits_f(static_cast<uint32_t>(rnd()));                           // any bits
    case 7: return bits_f(sign | static_cast<uint32_t>(0x00800000u + rnd() % 0x01000000u));  // near the smallest normal
    case 8: return (rnd() & 1 ? 1.0f : -1.0f) * static_cast<float>(std::ldexp(1.0 + (rnd() % 1000) / 1000.0, static_cast<int>(rnd() % 250) - 125));
    default: return (static_cast<float>(rnd() % 2000001) / 250000.0f - 4.0f);     // [-4, 4]
  }
}
double rd() {
  switch (rnd() % 8) {
    case 0: return (rnd() & 1) ? 0.0 : -0.0;
    case 1: return (rnd() & 1) ? __builtin_inf() : -__builtin_inf();
    case 2: return bits_d(0x7ff8000000000000ull | (rnd() & 0xfffffffffffull));
    case 3: return static_cast<double>(rf());
    case 4: return bits_d(rnd());
    default: return static_cast<double>(static_cast<int64_t>(rnd() % 2000001) - 1000000) / 250000.0;
  }
}
__m512 vf() {
  alignas(64) float a[16];
  for (float& x : a) x = rf();
  return _mm512_load_ps(a);
}
__m512d vd() {
  alignas(64) double a[8];
  for (double& x : a) x = rd();
  __m512d r;
  std::memcpy(&r, a, 64);
  return r;
}
__m512i vi() {
  alignas(64) uint64_t a[8];
  for (uint64_t& x : a) {
    x = rnd();
    if (rnd() % 4 == 0) x &= 0x0f0f0f0f0f0f0f0full;  // small bytes
    if (rnd() % 4 == 0) x |= 0x8080808080808080ull;  // high bytes / negative
  }
  __m512i r;
  std::memcpy(&r, a, 64);
  return r;
}
uint64_t rmask() {
  switch (rnd() % 6) {
    case 0: return 0;
    case 1: return ~0ull;
    case 2: return (1ull << (rnd() % 64)) - 1;
    default: return rnd();
  }
}

long g_cases = 0, g_fail = 0;
void report(const char* name, int variant, const void* emu, const void* ref, size_t n) {
  if (++g_fail <= 12) {
    std::fprintf(stderr, "avx512-emu self-test: %s (variant %d) differs from the reference:\n  emu", name, variant);
    const unsigned char* e = static_cast<const unsigned char*>(emu);
    const unsigned char* r = static_cast<const unsigned char*>(ref);
    for (size_t i = 0; i < n; ++i) std::fprintf(stderr, "%s%02x", i % 4 ? "" : " ", e[i]);
    std::fprintf(stderr, "\n  ref");
    for (size_t i = 0; i < n; ++i) std::fprintf(stderr, "%s%02x", i % 4 ? "" : " ", r[i]);
    std::fprintf(stderr, "\n");
  }
}
// bit for bit
template <class A, class B>
void same(const char* name, int variant, const A& emu, const B& ref) {
  static_assert(sizeof(A) == sizeof(B), "result sizes");
  ++g_cases;
  if (std::memcmp(&emu, &ref, sizeof(A)) != 0) report(name, variant, &emu, &ref, sizeof(A));
}
// float / double elements bit for bit, except that any two NaNs are equal: which input NaN's payload an
// operation with several NaN operands passes on depends on the instruction form GCC picks (vfmadd132 /
// 213 / 231, the operand order of vaddps), in the real build as well, and no kernel looks at payloads
template <class E, class A, class B>
void same_fp(const char* name, int variant, const A& emu, const B& ref) {
  static_assert(sizeof(A) == sizeof(B) && sizeof(A) % sizeof(E) == 0, "result sizes");
  ++g_cases;
  E e[sizeof(A) / sizeof(E)], r[sizeof(A) / sizeof(E)];
  std::memcpy(e, &emu, sizeof(A));
  std::memcpy(r, &ref, sizeof(A));
  for (size_t i = 0; i < sizeof(A) / sizeof(E); ++i)
    if (std::memcmp(&e[i], &r[i], sizeof(E)) != 0 && !(e[i] != e[i] && r[i] != r[i])) return report(name, variant, &emu, &ref, sizeof(A));
}
// every immediate 0..N-1 as a compile-time constant
template <int N, class F, int... I>
void each_imm(F f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
void each_imm(F f) {
  each_imm<N>(f, std::make_integer_sequence<int, N>{});
}

constexpr int kReps = 300;

void test_arith() {
  for (int r = 0; r < kReps; ++r) {
    const __m512 a = vf(), b = vf(), c = vf();
    same_fp<float>("add_ps", 0, _mm512_add_ps(a, b), tfref_mm512_add_ps(a, b));
    same_fp<float>("sub_ps", 0, _mm512_sub_ps(a, b), tfref_mm512_sub_ps(a, b));
    same_fp<float>("mul_ps", 0, _mm512_mul_ps(a, b), tfref_mm512_mul_ps(a, b));
    same_fp<float>("div_ps", 0, _mm512_div_ps(a, b), tfref_mm512_div_ps(a, b));
    same("and_ps", 0, _mm512_and_ps(a, b), tfref_mm512_and_ps(a, b));
    same("andnot_ps", 0, _mm512_andnot_ps(a, b), tfref_mm512_andnot_ps(a, b));
    same("or_ps", 0, _mm512_or_ps(a, b), tfref_mm512_or_ps(a, b));
    same("xor_ps", 0, _mm512_xor_ps(a, b), tfref_mm512_xor_ps(a, b));
    same("max_ps", 0, _mm512_max_ps(a, b), tfref_mm512_max_ps(a, b));
    same("min_ps", 0, _mm512_min_ps(a, b), tfref_mm512_min_ps(a, b));
    same("abs_ps", 0, _mm512_abs_ps(a), tfref_mm512_abs_ps(a));
    same_fp<float>("sqrt_ps", 0, _mm512_sqrt_ps(a), tfref_mm512_sqrt_ps(a));
    same_fp<float>("fmadd_ps", 0, _mm512_fmadd_ps(a, b, c), tfref_mm512_fmadd_ps(a, b, c));
    same_fp<float>("fmsub_ps", 0, _mm512_fmsub_ps(a, b, c), tfref_mm512_fmsub_ps(a, b, c));
    same_fp<float>("fnmadd_ps", 0, _mm512_fnmadd_ps(a, b, c), tfref_mm512_fnmadd_ps(a, b, c));
    same_fp<float>("scalef_ps", 0, _mm512_scalef_ps(a, b), tfref_mm512_scalef_ps(a, b));
    const __m512 n = _mm512_setr_ps(-200.5f, -150, -127.5f, -126, -1.5f, -0.25f, 0, 0.75f, 1, 2.5f, 100, 127, 128, 200, 1e9f, -1e9f);
    same_fp<float>("scalef_ps", 1, _mm512_scalef_ps(a, n), tfref_mm512_scalef_ps(a, n));
    same("unpacklo_ps", 0, _mm512_unpacklo_ps(a, b), tfref_mm512_unpacklo_ps(a, b));
    same("unpackhi_ps", 0, _mm512_unpackhi_ps(a, b), tfref_mm512_unpackhi_ps(a, b));
    same_fp<float>("reduce_add_ps", 0, _mm512_reduce_add_ps(a), tfref_mm512_reduce_add_ps(a));
    same("reduce_max_ps", 0, _mm512_reduce_max_ps(a), tfref_mm512_reduce_max_ps(a));
    same("cvtss_f32", 0, _mm512_cvtss_f32(a), tfref_mm512_cvtss_f32(a));
    const __mmask16 k = static_cast<__mmask16>(rmask());
    same("mask_blend_ps", 0, _mm512_mask_blend_ps(k, a, b), tfref_mm512_mask_blend_ps(k, a, b));
    same("mask_mov_ps", 0, _mm512_mask_mov_ps(a, k, b), tfref_mm512_mask_mov_ps(a, k, b));
    same("maskz_mov_ps", 0, _mm512_maskz_mov_ps(k, a), tfref_mm512_maskz_mov_ps(k, a));
    same_fp<float>("mask_mul_ps", 0, _mm512_mask_mul_ps(c, k, a, b), tfref_mm512_mask_mul_ps(c, k, a, b));
    same("cvtps_epi32", 0, _mm512_cvtps_epi32(a), tfref_mm512_cvtps_epi32(a));
    const __m512i ai = vi();
    same_fp<float>("cvtepi32_ps", 0, _mm512_cvtepi32_ps(ai), tfref_mm512_cvtepi32_ps(ai));
    same("castps512_ps256", 0, _mm512_castps512_ps256(a), tfref_mm512_castps512_ps256(a));
    same_fp<double>("cvtps_pd", 0, _mm512_cvtps_pd(_mm512_castps512_ps256(a)), tfref_mm512_cvtps_pd(_mm512_castps512_ps256(a)));
    const __m512d da = vd(), db = vd(), dc = vd();
    same_fp<double>("add_pd", 0, _mm512_add_pd(da, db), tfref_mm512_add_pd(da, db));
    same_fp<double>("sub_pd", 0, _mm512_sub_pd(da, db), tfref_mm512_sub_pd(da, db));
    same_fp<double>("mul_pd", 0, _mm512_mul_pd(da, db), tfref_mm512_mul_pd(da, db));
    same_fp<double>("div_pd", 0, _mm512_div_pd(da, db), tfref_mm512_div_pd(da, db));
    same("abs_pd", 0, _mm512_abs_pd(da), tfref_mm512_abs_pd(da));
    same_fp<double>("fmadd_pd", 0, _mm512_fmadd_pd(da, db, dc), tfref_mm512_fmadd_pd(da, db, dc));
    same_fp<float>("cvtpd_ps", 0, _mm512_cvtpd_ps(da), tfref_mm512_cvtpd_ps(da));
    const __mmask8 k8 = static_cast<__mmask8>(rmask());
    same("mask_blend_pd", 0, _mm512_mask_blend_pd(k8, da, db), tfref_mm512_mask_blend_pd(k8, da, db));
    same("maskz_mov_pd", 0, _mm512_maskz_mov_pd(k8, da), tfref_mm512_maskz_mov_pd(k8, da));
  }
}

void test_int() {
  for (int r = 0; r < kReps; ++r) {
    const __m512i a = vi(), b = vi(), c = vi();
    same("add_epi8", 0, _mm512_add_epi8(a, b), tfref_mm512_add_epi8(a, b));
    same("add_epi16", 0, _mm512_add_epi16(a, b), tfref_mm512_add_epi16(a, b));
    same("add_epi32", 0, _mm512_add_epi32(a, b), tfref_mm512_add_epi32(a, b));
    same("sub_epi32", 0, _mm512_sub_epi32(a, b), tfref_mm512_sub_epi32(a, b));
    same("and_si512", 0, _mm512_and_si512(a, b), tfref_mm512_and_si512(a, b));
    same("or_si512", 0, _mm512_or_si512(a, b), tfref_mm512_or_si512(a, b));
    same("xor_si512", 0, _mm512_xor_si512(a, b), tfref_mm512_xor_si512(a, b));
    same("shuffle_epi8", 0, _mm512_shuffle_epi8(a, b), tfref_mm512_shuffle_epi8(a, b));
    same("maddubs_epi16", 0, _mm512_maddubs_epi16(a, b), tfref_mm512_maddubs_epi16(a, b));
    const __m512i cnt = _mm512_and_si512(b, _mm512_set1_epi64(127));
    same("srlv_epi64", 0, _mm512_srlv_epi64(a, cnt), tfref_mm512_srlv_epi64(a, cnt));
    same("unpacklo_epi8", 0, _mm512_unpacklo_epi8(a, b), tfref_mm512_unpacklo_epi8(a, b));
    same("unpackhi_epi8", 0, _mm512_unpackhi_epi8(a, b), tfref_mm512_unpackhi_epi8(a, b));
    same("unpacklo_epi32", 0, _mm512_unpacklo_epi32(a, b), tfref_mm512_unpacklo_epi32(a, b));
    same("unpackhi_epi32", 0, _mm512_unpackhi_epi32(a, b), tfref_mm512_unpackhi_epi32(a, b));
    same("unpacklo_epi64", 0, _mm512_unpacklo_epi64(a, b), tfref_mm512_unpacklo_epi64(a, b));
    same("unpackhi_epi64", 0, _mm512_unpackhi_epi64(a, b), tfref_mm512_unpackhi_epi64(a, b));
    same("test_epi8_mask", 0, _mm512_test_epi8_mask(a, b), tfref_mm512_test_epi8_mask(a, b));
    same("permutexvar_epi64", 0, _mm512_permutexvar_epi64(b, a), tfref_mm512_permutexvar_epi64(b, a));
    const __m512 fa = vf();
    same("permutexvar_ps", 0, _mm512_permutexvar_ps(b, fa), tfref_mm512_permutexvar_ps(b, fa));
    same("dpbusd_epi32", 0, _mm512_dpbusd_epi32(c, a, b), tfref_mm512_dpbusd_epi32(c, a, b));
    const __m256i a8 = _mm512_castsi512_si256(a), b8 = _mm512_castsi512_si256(b), c8 = _mm512_castsi512_si256(c);
    same("_mm256_dpbusd_epi32", 0, _mm256_dpbusd_epi32(c8, a8, b8), tfref_mm256_dpbusd_epi32(c8, a8, b8));
    same("_mm256_dpbusd_avx_epi32", 0, _mm256_dpbusd_avx_epi32(c8, a8, b8), tfref_mm256_dpbusd_epi32(c8, a8, b8));
    same("reduce_add_epi32", 0, _mm512_reduce_add_epi32(a), tfref_mm512_reduce_add_epi32(a));
    const __mmask64 k = rmask();
    same("mask_blend_epi8", 0, _mm512_mask_blend_epi8(k, a, b), tfref_mm512_mask_blend_epi8(k, a, b));
    same("cvtsepi32_epi8", 0, _mm512_cvtsepi32_epi8(a), tfref_mm512_cvtsepi32_epi8(a));
    const __m512i sm = _mm512_srai_epi32(_mm512_slli_epi32(a, 1), static_cast<unsigned>(rnd() % 31));  // small and large int32
    same("cvtsepi32_epi8", 1, _mm512_cvtsepi32_epi8(sm), tfref_mm512_cvtsepi32_epi8(sm));
    same("cvtepi16_epi32", 0, _mm512_cvtepi16_epi32(a8), tfref_mm512_cvtepi16_epi32(a8));
    same("cvtepu16_epi32", 0, _mm512_cvtepu16_epi32(a8), tfref_mm512_cvtepu16_epi32(a8));
    same_fp<float>("cvtph_ps", 0, _mm512_cvtph_ps(a8), tfref_mm512_cvtph_ps(a8));
    same("castsi256_si512", 0, _mm512_castsi256_si512(a8), tfref_mm512_castsi256_si512(a8));
    same("castsi512_si256", 0, _mm512_castsi512_si256(a), tfref_mm512_castsi512_si256(a));
    const __m128i a4 = _mm256_castsi256_si128(a8);
    same("broadcast_i32x4", 0, _mm512_broadcast_i32x4(a4), tfref_mm512_broadcast_i32x4(a4));
    // bf16 pairs: random bits, and bf16 of floats (denormals, specials included)
    const __m512 acc = vf();
    same_fp<float>("dpbf16_ps", 0, _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b), tfref_mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b));
    const __m512i fb = _mm512_castps_si512(vf()), fc = _mm512_castps_si512(vf());
    const __m512i bfa = _mm512_or_si512(_mm512_srli_epi32(fb, 16), _mm512_and_si512(fc, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
    same_fp<float>("dpbf16_ps", 1, _mm512_dpbf16_ps(acc, (__m512bh)bfa, (__m512bh)a), tfref_mm512_dpbf16_ps(acc, (__m512bh)bfa, (__m512bh)a));
    same_fp<float>("dpbf16_ps", 2, _mm512_dpbf16_ps(acc, (__m512bh)bfa, (__m512bh)bfa), tfref_mm512_dpbf16_ps(acc, (__m512bh)bfa, (__m512bh)bfa));
  }
}

void test_imm() {
  for (int r = 0; r < 40; ++r) {
    const __m512 a = vf(), b = vf();
    const __m512i x = vi(), y = vi(), z = vi();
    const __m512d da = vd(), db = vd();
    each_imm<256>([&](auto I) {
      constexpr int i = decltype(I)::value;
      same("shuffle_f32x4", i, _mm512_shuffle_f32x4(a, b, i), tfref_mm512_shuffle_f32x4(a, b, i));
      same("shuffle_f64x2", i, _mm512_shuffle_f64x2(da, db, i), tfref_mm512_shuffle_f64x2(da, db, i));
      same("shuffle_i64x2", i, _mm512_shuffle_i64x2(x, y, i), tfref_mm512_shuffle_i64x2(x, y, i));
      same("shuffle_ps", i, _mm512_shuffle_ps(a, b, i), tfref_mm512_shuffle_ps(a, b, i));
      same("permute_ps", i, _mm512_permute_ps(a, i), tfref_mm512_permute_ps(a, i));
      same("ternarylogic_epi32", i, _mm512_ternarylogic_epi32(x, y, z, i), tfref_mm512_ternarylogic_epi32(x, y, z, i));
    });
    each_imm<32>([&](auto I) {
      constexpr int i = decltype(I)::value;
      same("cmp_ps_mask", i, _mm512_cmp_ps_mask(a, b, i), tfref_mm512_cmp_ps_mask(a, b, i));
      same("cmp_ps_mask(a, a)", i, _mm512_cmp_ps_mask(a, a, i), tfref_mm512_cmp_ps_mask(a, a, i));
      same("cmp_pd_mask", i, _mm512_cmp_pd_mask(da, db, i), tfref_mm512_cmp_pd_mask(da, db, i));
    });
    each_imm<40>([&](auto I) {
      constexpr int i = decltype(I)::value;
      same("slli_epi32", i, _mm512_slli_epi32(x, i), tfref_mm512_slli_epi32(x, i));
      same("srli_epi32", i, _mm512_srli_epi32(x, i), tfref_mm512_srli_epi32(x, i));
      same("srai_epi32", i, _mm512_srai_epi32(x, i), tfref_mm512_srai_epi32(x, i));
      same("srli_epi16", i, _mm512_srli_epi16(x, i), tfref_mm512_srli_epi16(x, i));
    });
    each_imm<16>([&](auto I) {
      constexpr int i = decltype(I)::value;
      same_fp<float>("roundscale_ps", i, _mm512_roundscale_ps(a, i), tfref_mm512_roundscale_ps(a, i));
    });
    each_imm<2>([&](auto I) {
      constexpr int i = decltype(I)::value;
      same("extractf32x8_ps", i, _mm512_extractf32x8_ps(a, i), tfref_mm512_extractf32x8_ps(a, i));
      same("extractf64x4_pd", i, _mm512_extractf64x4_pd(da, i), tfref_mm512_extractf64x4_pd(da, i));
      same("extracti64x4_epi64", i, _mm512_extracti64x4_epi64(x, i), tfref_mm512_extracti64x4_epi64(x, i));
    });
  }
}

void test_sets() {
  for (int r = 0; r < kReps; ++r) {
    const float f = rf();
    const double d = rd();
    const uint64_t u = rnd();
    same("set1_ps", 0, _mm512_set1_ps(f), tfref_mm512_set1_ps(f));
    same("set1_pd", 0, _mm512_set1_pd(d), tfref_mm512_set1_pd(d));
    same("set1_epi32", 0, _mm512_set1_epi32(static_cast<int>(u)), tfref_mm512_set1_epi32(static_cast<int>(u)));
    same("set1_epi64", 0, _mm512_set1_epi64(static_cast<long long>(u)), tfref_mm512_set1_epi64(static_cast<long long>(u)));
    same("set1_epi8", 0, _mm512_set1_epi8(static_cast<char>(u)), tfref_mm512_set1_epi8(static_cast<char>(u)));
  }
  same("set_epi64", 0, _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0), tfref_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
  same("setr_epi64", 0, _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), tfref_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
  same("setr_ps", 0, _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
       tfref_mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  same("setzero_ps", 0, _mm512_setzero_ps(), tfref_mm512_setzero_ps());
  same("setzero_pd", 0, _mm512_setzero_pd(), tfref_mm512_setzero_pd());
  same("setzero_si512", 0, _mm512_setzero_si512(), tfref_mm512_setzero_si512());
}

// masked loads and stores whose selected elements end at the end of a readable page (the next page
// is PROT_NONE): reading or writing a masked-off element there faults
void test_memory() {
  const long pg = sysconf(_SC_PAGESIZE);
  char* base = static_cast<char*>(mmap(nullptr, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (base == MAP_FAILED || mprotect(base + pg, pg, PROT_NONE) != 0) {
    std::fprintf(stderr, "avx512-emu self-test: mmap / mprotect failed\n");
    std::exit(1);
  }
  char* end = base + pg;
  for (int r = 0; r < kReps; ++r) {
    for (int n = 0; n <= 16; ++n) {  // the first n floats selected (a tail mask), the rest past the page
      const __mmask16 k = static_cast<__mmask16>(n == 16 ? 0xffff : (1u << n) - 1) & static_cast<__mmask16>(rnd() | (r == 0 ? ~0ull : 0));
      float* p = reinterpret_cast<float*>(end) - n;
      for (int i = 0; i < n; ++i) p[i] = rf();
      same("maskz_loadu_ps", n, _mm512_maskz_loadu_ps(k, p), tfref_mm512_maskz_loadu_ps(k, p));
      if (n <= 8) same("_mm256_maskz_loadu_ps", n, _mm256_maskz_loadu_ps(static_cast<__mmask8>(k), p), tfref_mm256_maskz_loadu_ps(static_cast<__mmask8>(k), p));
      alignas(64) float save[16], got[16];
      std::memcpy(save, p, 4 * n);
      const __m512 v = vf();
      _mm512_mask_storeu_ps(p, k, v);
      std::memcpy(got, p, 4 * n);
      std::memcpy(p, save, 4 * n);
      tfref_mm512_mask_storeu_ps(p, k, v);
      ++g_cases;
      if (std::memcmp(got, p, 4 * n) != 0) report("mask_storeu_ps", n, got, p, 4 * n);
      if (n <= 8) {
        std::memcpy(p, save, 4 * n);
        _mm256_mask_storeu_ps(p, static_cast<__mmask8>(k), _mm512_castps512_ps256(v));
        std::memcpy(got, p, 4 * n);
        std::memcpy(p, save, 4 * n);
        tfref_mm256_mask_storeu_ps(p, static_cast<__mmask8>(k), _mm512_castps512_ps256(v));
        ++g_cases;
        if (std::memcmp(got, p, 4 * n) != 0) report("_mm256_mask_storeu_ps", n, got, p, 4 * n);
      }
    }
    for (int n = 0; n <= 8; ++n) {
      const __mmask8 k = static_cast<__mmask8>((n == 8 ? 0xff : (1u << n) - 1) & (rnd() | (r == 0 ? ~0ull : 0)));
      double* p = reinterpret_cast<double*>(end) - n;
      for (int i = 0; i < n; ++i) p[i] = rd();
      same("maskz_loadu_pd", n, _mm512_maskz_loadu_pd(k, p), tfref_mm512_maskz_loadu_pd(k, p));
      double save[8], got[8];
      std::memcpy(save, p, 8 * n);
      const __m512d v = vd();
      _mm512_mask_storeu_pd(p, k, v);
      std::memcpy(got, p, 8 * n);
      std::memcpy(p, save, 8 * n);
      tfref_mm512_mask_storeu_pd(p, k, v);
      ++g_cases;
      if (std::memcmp(got, p, 8 * n) != 0) report("mask_storeu_pd", n, got, p, 8 * n);
    }
  }
  // unmasked loads / stores
  alignas(64) float buf[32];
  for (float& f : buf) f = rf();
  same("load_ps", 0, _mm512_load_ps(buf), tfref_mm512_load_ps(buf));
  same("loadu_ps", 0, _mm512_loadu_ps(buf + 3), tfref_mm512_loadu_ps(buf + 3));
  same("load_si512", 0, _mm512_load_si512(buf), tfref_mm512_load_si512(buf));
  same("loadu_si512", 0, _mm512_loadu_si512(buf + 5), tfref_mm512_loadu_si512(buf + 5));
  alignas(64) float o1[16], o2[16];
  const __m512 v = vf();
  _mm512_store_ps(o1, v);
  tfref_mm512_store_ps(o2, v);
  same("store_ps", 0, o1, o2);
  _mm512_storeu_ps(o1, v);
  same("storeu_ps", 0, o1, o2);
  _mm512_storeu_si512(o1, _mm512_castps_si512(v));
  same("storeu_si512", 0, o1, o2);
  alignas(64) double p1[8], p2[8];
  const __m512d dv = vd();
  _mm512_store_pd(p1, dv);
  tfref_mm512_store_pd(p2, dv);
  same("store_pd", 0, p1, p2);
  munmap(base, 2 * pg);
}

}  // namespace

int main() {
  test_arith();
  test_int();
  test_imm();
  test_sets();
  test_memory();
  if (g_fail) {
    std::printf("avx512-emu: FAIL intrinsics self-test: %ld of %ld cases differ from the scalar reference (native/emu/avx512_ref.h)\n", g_fail, g_cases);
    return 1;
  }
  std::printf("avx512-emu: intrinsics self-test: %ld cases, every emulated intrinsic equals its scalar reference (native/emu/avx512_ref.h)\n", g_cases);
  return 0;
}
