// Packed-weight matmul, int8 activations (act8), with AVX-512 VNNI vpdpbusd (compiled with
// -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx512dq -mfma -mf16c; called only when the CPU
// check found them). Driver and design: packed_vnni_impl.h. Two kernels here:
//   packed_matmul_avx512:     512-bit vectors, super-chunks of 128 weights (int8: 64);
//   packed_matmul_avx512_ymm: the 256-bit kernel of AVX-VNNI CPUs (packed_avxvnni.cc) with the
//                              EVEX encoding of vpdpbusd, so that its code runs in the tests here.
// int16 mode and layouts without a fast path take the AVX2 kernel.
#include <immintrin.h>

#include <cstring>

#include "cpu.h"

#define TFREE_DPBUSD256 _mm256_dpbusd_epi32
#include "packed_vnni_impl.h"

namespace {

struct Z512 {
  static constexpr int VB = 64, VL = 16, kRows = 4;
  typedef __m512i vi;
  typedef __m512 vf;
  struct Tabs {
    __m512i tab, t0, t1;
  };
  static inline Tabs tabs(const uint8_t* u, int) {
    Tabs t;
    t.tab = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(u)));
    t.t0 = _mm512_set1_epi8(static_cast<char>(u[0]));
    t.t1 = _mm512_set1_epi8(static_cast<char>(u[1]));
    return t;
  }
  template <int BITS, bool X>
  static inline void decode(const uint8_t* p, const Tabs& t, vi* lv) {
    if (BITS == 8) {  // 64 codes, one vector (vnni_nv): lane L = elements 16L..16L+15
      lv[0] = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_set1_epi8(static_cast<char>(0x80)));
    } else if (BITS == 4 && X) {  // u = code ^ 8: (v ^ 0x08) & 0x0F in one vpternlogd (imm 0x28)
      const __m512i v = _mm512_loadu_si512(p), k = _mm512_set1_epi8(0x08), m = _mm512_set1_epi8(0x0F);
      lv[0] = _mm512_ternarylogic_epi32(v, k, m, 0x28);
      lv[1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), k, m, 0x28);
    } else if (BITS == 2 && X) {  // u = code ^ 2
      const __m512i v = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 0, 1, 1, 2, 2, 3, 3),
                                                 _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
      const __m512i k = _mm512_set1_epi8(0x02), m = _mm512_set1_epi8(0x03);
      lv[0] = _mm512_ternarylogic_epi32(_mm512_srlv_epi64(v, _mm512_setr_epi64(6, 4, 6, 4, 6, 4, 6, 4)), k, m, 0x28);
      lv[1] = _mm512_ternarylogic_epi32(_mm512_srlv_epi64(v, _mm512_setr_epi64(2, 0, 2, 0, 2, 0, 2, 0)), k, m, 0x28);
    } else if (BITS == 4) {  // 64 code bytes = 128 weights; lane L: bytes 16L.. = elements 32L..
      const __m512i v = _mm512_loadu_si512(p), m = _mm512_set1_epi8(0x0F);
      lv[0] = _mm512_shuffle_epi8(t.tab, _mm512_and_si512(v, m));
      lv[1] = _mm512_shuffle_epi8(t.tab, _mm512_and_si512(_mm512_srli_epi16(v, 4), m));
    } else if (BITS == 2) {  // 32 code bytes; lane L: bytes 8L..8L+7 (elements 32L..32L+31) in both quadwords
      const __m512i v = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 0, 1, 1, 2, 2, 3, 3),
                                                 _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
      const __m512i m = _mm512_set1_epi8(0x03);
      lv[0] = _mm512_shuffle_epi8(t.tab, _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_setr_epi64(6, 4, 6, 4, 6, 4, 6, 4)), m));
      lv[1] = _mm512_shuffle_epi8(t.tab, _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_setr_epi64(2, 0, 2, 0, 2, 0, 2, 0)), m));
    } else {  // 1 bit, 16 code bytes: lane L byte i of lv[h] = element 32L + 16h + i, selected by its bit
      const __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      const __m512i bit = _mm512_set1_epi64(static_cast<int64_t>(0x0102040810204080ULL));
      const __m512i i0 = _mm512_set_epi64(0x0d0d0d0d0d0d0d0dLL, 0x0c0c0c0c0c0c0c0cLL, 0x0909090909090909LL, 0x0808080808080808LL,
                                          0x0505050505050505LL, 0x0404040404040404LL, 0x0101010101010101LL, 0x0000000000000000LL);
      const __m512i i1 = _mm512_add_epi8(i0, _mm512_set1_epi8(2));
      lv[0] = _mm512_mask_blend_epi8(_mm512_test_epi8_mask(_mm512_shuffle_epi8(v, i0), bit), t.t0, t.t1);
      lv[1] = _mm512_mask_blend_epi8(_mm512_test_epi8_mask(_mm512_shuffle_epi8(v, i1), bit), t.t0, t.t1);
    }
  }
  static inline vi zero() { return _mm512_setzero_si512(); }
  static inline vf zerof() { return _mm512_setzero_ps(); }
  static inline vf set1f(float f) { return _mm512_set1_ps(f); }
  static inline vi load(const void* p) { return _mm512_loadu_si512(p); }
  static inline void store(void* p, vi v) { _mm512_storeu_si512(p, v); }
  static inline vf loadf(const float* p) { return _mm512_loadu_ps(p); }
  static inline vi add(vi a, vi b) { return _mm512_add_epi32(a, b); }
  static inline vi unpacklo32(vi a, vi b) { return _mm512_unpacklo_epi32(a, b); }
  static inline vi unpackhi32(vi a, vi b) { return _mm512_unpackhi_epi32(a, b); }
  static inline vi unpacklo64(vi a, vi b) { return _mm512_unpacklo_epi64(a, b); }
  static inline vi unpackhi64(vi a, vi b) { return _mm512_unpackhi_epi64(a, b); }
  static inline vi dp(vi acc, vi u, vi s) { return _mm512_dpbusd_epi32(acc, u, s); }
  static inline vf cvt(vi v) { return _mm512_cvtepi32_ps(v); }
  static inline vf mulf(vf a, vf b) { return _mm512_mul_ps(a, b); }
  static inline vf fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
  static inline vf permf(vf v, vi idx) { return _mm512_permutexvar_ps(idx, v); }
  // 16 block scales (bf16 or f16 bit patterns) as float32
  static inline vf scales(const uint16_t* s, bool bf16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
    return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
  }
  static inline float hsum(vf v) { return _mm512_reduce_add_ps(v); }
};

}  // namespace

namespace tfree {

// Every format, int8 codes included, on every vendor. (Until 2026-12-06 int8 codes went to the AVX2
// kernel on AMD CPUs, from a measurement on a loaded Zen 4 VM on 2026-12-03; since the quad loop
// keeps its context in registers (85941bb) the 512-bit int8 kernel is ahead there: batch-1 GEMV,
// Zen 4, 4096x4096 and 4096x11008, 1 and 2 threads, both orders, 15 rounds each: 0.50-0.89x the
// AVX2 kernel's time, docs/results/engine.md.)
void packed_matmul_avx512(const PackedArgs& a) {
  if (!vnni_matmul<Z512>(a)) packed_matmul_avx2(a);
}

void packed_matmul_avx512_ymm(const PackedArgs& a) {
  if (!vnni_matmul<Y256>(a)) packed_matmul_avx2(a);
}

}  // namespace tfree
