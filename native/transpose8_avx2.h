// In-register 8 x 8 transpose of f32 rows with AVX2: r_j[i] <- r_i[j]. Used by the SGEMM packing
// (gemm_avx2.cc) and the attention's key transpose (ops_avx2.cc). #included INSIDE each file's
// anonymous namespace (like quantize_x_avx2.h), after <immintrin.h>: every file gets its own copy
// compiled with its own flags, none shared through the linker.
__attribute__((always_inline)) inline void transpose8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5,
                                                      __m256& r6, __m256& r7) {
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r0 = _mm256_permute2f128_ps(s0, s4, 0x20);
  r1 = _mm256_permute2f128_ps(s1, s5, 0x20);
  r2 = _mm256_permute2f128_ps(s2, s6, 0x20);
  r3 = _mm256_permute2f128_ps(s3, s7, 0x20);
  r4 = _mm256_permute2f128_ps(s0, s4, 0x31);
  r5 = _mm256_permute2f128_ps(s1, s5, 0x31);
  r6 = _mm256_permute2f128_ps(s2, s6, 0x31);
  r7 = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// dst[d * ldd + j] = src[j * lds + d] for j, d < 8: one 8 x 8 block through transpose8 (unaligned
// loads and stores).
__attribute__((always_inline)) inline void transpose8x8(const float* src, long lds, float* dst, long ldd) {
  __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + lds);
  __m256 r2 = _mm256_loadu_ps(src + 2 * lds), r3 = _mm256_loadu_ps(src + 3 * lds);
  __m256 r4 = _mm256_loadu_ps(src + 4 * lds), r5 = _mm256_loadu_ps(src + 5 * lds);
  __m256 r6 = _mm256_loadu_ps(src + 6 * lds), r7 = _mm256_loadu_ps(src + 7 * lds);
  transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
  _mm256_storeu_ps(dst, r0);
  _mm256_storeu_ps(dst + ldd, r1);
  _mm256_storeu_ps(dst + 2 * ldd, r2);
  _mm256_storeu_ps(dst + 3 * ldd, r3);
  _mm256_storeu_ps(dst + 4 * ldd, r4);
  _mm256_storeu_ps(dst + 5 * ldd, r5);
  _mm256_storeu_ps(dst + 6 * ldd, r6);
  _mm256_storeu_ps(dst + 7 * ldd, r7);
}
