// bf16-weight matmul with AVX2/FMA (compiled with -mavx2 -mfma): the weights are widened to float32
// in registers (even elements by vpslld 16, odd ones by vpand), never copied. Driver: bf16_impl.h.
#include <immintrin.h>

#include "bf16_impl.h"

namespace {

struct V8 {
  static constexpr int kW = 16, kRows = 4;
  static constexpr bool kPermute = true;
  typedef float xelem;
  typedef __m256 acc;
  struct P {
    __m256 e, o;  // even, odd elements of a block of 16
  };
  static inline acc zero() { return _mm256_setzero_ps(); }
  static inline P loadw(const uint16_t* p) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))))};
  }
  static inline P loadx(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  static inline acc step(acc c, const P& x, const P& w) { return _mm256_fmadd_ps(x.o, w.o, _mm256_fmadd_ps(x.e, w.e, c)); }
  static inline acc add(acc a, acc b) { return _mm256_add_ps(a, b); }
  static inline float hsum(acc v) {
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
