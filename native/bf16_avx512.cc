// bf16-weight matmul with AVX-512F (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma):
// the weights are widened to float32 in registers (vpmovzxwd + vpslld 16), 16 per vector, up to 6
// activation rows per weight pass (32 registers). Driver: bf16_impl.h.
#include <immintrin.h>

#include "bf16_impl.h"

namespace {
struct V16 {
  static constexpr int kW = 16, kRows = 6;
  typedef float xelem;
  typedef __m512 vec;
  typedef __m512 acc;
  static inline vec zero() { return _mm512_setzero_ps(); }
  static inline vec loadw(const uint16_t* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
  }
  static inline vec loadx(const float* p) { return _mm512_loadu_ps(p); }
  static inline vec step(vec c, vec xv, vec wv) { return _mm512_fmadd_ps(xv, wv, c); }
  static inline vec add(vec a, vec b) { return _mm512_add_ps(a, b); }
  static inline float hsum(vec v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
}  // namespace

namespace tfree {
void bf16_matmul_avx512(const Bf16Args& a) { bf16_run<V16>(a); }
}  // namespace tfree
