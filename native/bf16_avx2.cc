// bf16-weight matmul with AVX2/FMA (compiled with -mavx2 -mfma): the weights are widened to float32
// in registers (vpmovzxwd + vpslld 16), never copied. Driver: bf16_impl.h.
#include <immintrin.h>

#include "bf16_impl.h"

namespace {

struct V8 {
  static constexpr int kW = 8, kRows = 4;
  typedef float xelem;
  typedef __m256 vec;
  typedef __m256 acc;
  static inline vec zero() { return _mm256_setzero_ps(); }
  static inline vec loadw(const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  }
  static inline vec loadx(const float* p) { return _mm256_loadu_ps(p); }
  static inline vec step(vec c, vec xv, vec wv) { return _mm256_fmadd_ps(xv, wv, c); }
  static inline vec add(vec a, vec b) { return _mm256_add_ps(a, b); }
  static inline float hsum(vec v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
}  // namespace

namespace tfree {
void bf16_matmul_avx2(const Bf16Args& a) { bf16_run<V8>(a); }
}  // namespace tfree
