// bf16-weight matmul with AVX512_BF16 vdpbf16ps (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512bf16): the activations are rounded to bf16 once (bf16_round, the function of the xBf16
// mode), then each vdpbf16ps multiplies 32 activation/weight pairs (exact products) and adds them
// into 16 float32 lanes. vdpbf16ps treats denormal inputs as zero and flushes denormal results, a
// difference of at most 2^-126 per product and per lane sum from the xBf16 function (kernels.h).
// In f32 mode (xBf16 false) it is the AVX-512F widening kernel. Driver: bf16_impl.h.
#include <immintrin.h>

#include "bf16_impl.h"

namespace {
struct VBf {
  static constexpr int kW = 32, kRows = 6;
  static constexpr bool kPermute = false;
  typedef uint16_t xelem;
  typedef __m512 acc;
  typedef __m512i vec;
  static inline acc zero() { return _mm512_setzero_ps(); }
  static inline vec loadw(const uint16_t* p) { return _mm512_loadu_si512(p); }
  static inline vec loadx(const uint16_t* p) { return _mm512_loadu_si512(p); }
  static inline acc step(acc c, vec xv, vec wv) { return _mm512_dpbf16_ps(c, (__m512bh)xv, (__m512bh)wv); }
  static inline acc add(acc a, acc b) { return _mm512_add_ps(a, b); }
  static inline float hsum(acc v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
}  // namespace

namespace tfree {
void bf16_matmul_avx512bf16(const Bf16Args& a) {
  if (!a.xBf16) return bf16_matmul_avx512(a);
  bf16_run<VBf>(a);
}
}  // namespace tfree
