// Activation rounding of the int8/int16-activation packed kernels with AVX2 (packed_avx2.cc, and
// packed_vnni_impl.h for the AVX-512 VNNI / AVX-VNNI kernels). #included INSIDE each file's
// anonymous namespace (like gemm_driver.h), after <immintrin.h> and <cstring>: every file gets its
// own copy compiled with its own flags, none shared through the linker.
//
// packed_quantize_x (packed_generic.cc) with AVX2, bit for bit: per group of U (a multiple of 8)
// amax = max |x| (a non-finite value zeroes the group, scale NaN), q = nearbyint(x * (qmax / amax))
// (vcvtps2dq rounds to nearest even, as nearbyint in the default mode), scale amax / qmax
inline void quantize_x_avx2(const float* x, long K, long U, float qmax, int16_t* xq, float* xs) {
  const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), big = _mm256_set1_ps(3.4e38f);
  for (long g = 0; g * U < K; ++g) {
    const float* xg = x + g * U;
    __m256 mx = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    for (long i = 0; i < U; i += 8) {
      const __m256 v = _mm256_and_ps(_mm256_loadu_ps(xg + i), absMask);
      bad = _mm256_or_ps(bad, _mm256_cmp_ps(v, big, _CMP_NLE_UQ));
      mx = _mm256_max_ps(mx, v);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const bool finite = _mm256_movemask_ps(bad) == 0;
    int16_t* q = xq + g * U;
    if (!finite || amax == 0.0f) {
      std::memset(q, 0, static_cast<size_t>(U) * 2);
      xs[g] = finite ? 0.0f : __builtin_nanf("");
      continue;
    }
    const __m256 inv = _mm256_set1_ps(qmax / amax);
    for (long i = 0; i < U; i += 16) {
      const __m256i lo = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xg + i), inv));
      const __m256i hi = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xg + i + 8), inv));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xD8));
    }
    xs[g] = amax / qmax;
  }
}
