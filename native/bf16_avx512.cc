// bf16-weight matmul with AVX-512F (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma):
// the weights are widened to float32 in registers (32 per load: even elements by vpslld 16, odd ones by
// vpand), up to 6
// activation rows per weight pass (32 registers). Driver: bf16_impl.h.
#include <immintrin.h>

#include "bf16_impl.h"

namespace {
struct V16 {
  static constexpr int kW = 32, kRows = 6;
  static constexpr bool kPermute = true;
  typedef float xelem;
  typedef __m512 acc;
  typedef __m512 vec;
  struct P {
    __m512 e, o;  // even, odd elements of a block of 32
  };
  static inline acc zero() { return _mm512_setzero_ps(); }
  static inline P loadw(const uint16_t* p) {
    const __m512i v = _mm512_loadu_si512(p);
    return {_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xffff0000u))))};
  }
  static inline P loadx(const float* p) { return {_mm512_loadu_ps(p), _mm512_loadu_ps(p + 16)}; }
  static inline acc step(acc c, const P& x, const P& w) { return _mm512_fmadd_ps(x.o, w.o, _mm512_fmadd_ps(x.e, w.e, c)); }
  static inline acc add(acc a, acc b) { return _mm512_add_ps(a, b); }
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
