// AVX2/FMA SGEMM (BLIS-style: packed A/B panels, 6x16 register-blocked microkernel) and SGEMV.
// Compiled with -mavx2 -mfma; only reached after the runtime CPU check in addon.cc.
// Everything here is static / in an anonymous namespace except the two entry points, so no
// AVX2-compiled inline function can leak into the generic path through the linker.
#include <immintrin.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

#define TF_AI __attribute__((always_inline)) inline

namespace tfree {
namespace {

constexpr long MR = 6;
constexpr long NR = 16;
constexpr long KC = 256;
constexpr long MC = 144;   // 144 x 256 x 4 B = 144 KiB of packed A, stays in the 512 KiB L2
constexpr long NC = 3072;  // 256 x 3072 x 4 B = 3 MiB of packed B, in L3

TF_AI long lmin(long a, long b) { return a < b ? a : b; }
TF_AI long lmax(long a, long b) { return a > b ? a : b; }

#include "transpose8_avx2.h"

// Pack op(A)[i0:i0+mc, p0:p0+kc] into MR-row panels: panel q holds, for each p, MR values.
void pack_a(const float* A, long lda, bool transA, long i0, long mc, long p0, long kc, float* Ap) {
  for (long ir = 0; ir < mc; ir += MR) {
    const long mr = lmin(MR, mc - ir);
    float* dst = Ap + ir * kc;
    if (!transA) {
      const float* rows[MR];
      for (long r = 0; r < MR; ++r) rows[r] = A + (i0 + ir + (r < mr ? r : 0)) * lda + p0;
      if (mr == MR) {
        long p = 0;
        for (; p + 8 <= kc; p += 8) {
          __m256 r0 = _mm256_loadu_ps(rows[0] + p), r1 = _mm256_loadu_ps(rows[1] + p);
          __m256 r2 = _mm256_loadu_ps(rows[2] + p), r3 = _mm256_loadu_ps(rows[3] + p);
          __m256 r4 = _mm256_loadu_ps(rows[4] + p), r5 = _mm256_loadu_ps(rows[5] + p);
          __m256 r6 = _mm256_setzero_ps(), r7 = _mm256_setzero_ps();
          transpose8(r0, r1, r2, r3, r4, r5, r6, r7);
          // row j of the transpose holds the 6 values for k = p + j (+2 junk lanes). Stores go in
          // increasing order and overlap by 2 floats, so each junk pair is overwritten by the next
          // store; the last row is stored as 4 + 2 floats to stay inside this 48-float group.
          float* d = dst + p * MR;
          _mm256_storeu_ps(d + 0, r0);
          _mm256_storeu_ps(d + 6, r1);
          _mm256_storeu_ps(d + 12, r2);
          _mm256_storeu_ps(d + 18, r3);
          _mm256_storeu_ps(d + 24, r4);
          _mm256_storeu_ps(d + 30, r5);
          _mm256_storeu_ps(d + 36, r6);
          // last one: only 6 values may be written (the next 2 belong to k = p + 8 or beyond)
          __m128 lo = _mm256_castps256_ps128(r7);
          __m128 hi = _mm256_extractf128_ps(r7, 1);
          _mm_storeu_ps(d + 42, lo);
          _mm_storel_pi(reinterpret_cast<__m64*>(d + 46), hi);
        }
        for (; p < kc; ++p)
          for (long r = 0; r < MR; ++r) dst[p * MR + r] = rows[r][p];
      } else {
        for (long p = 0; p < kc; ++p)
          for (long r = 0; r < MR; ++r) dst[p * MR + r] = r < mr ? rows[r][p] : 0.0f;
      }
    } else if (mr < MR) {  // (the full panels of op(A) = A^T: below)
      const float* src = A + p0 * lda + i0 + ir;
      for (long p = 0; p < kc; ++p)
        for (long r = 0; r < MR; ++r) dst[p * MR + r] = r < mr ? src[p * lda + r] : 0.0f;
    }
  }
  if (!transA) return;
  // op(A) = A^T, full panels: stored row p holds the MR values of every panel side by side. Eight
  // rows p at a time across all panels, so each row's mc values are read once and in order (one
  // panel at a time, MR values from each of kc rows, reread the lines of rows lda apart, which at
  // lda = 2048 all fall into one L1 set: 1.8 G floats/s packed from L2, now 8.9).
  const long full = mc / MR * MR;
  for (long p = 0; p < kc; p += 8) {
    const long np = lmin(8, kc - p);
    const float* src = A + (p0 + p) * lda + i0;
    for (long ir = 0; ir < full; ir += MR) {
      float* d = Ap + ir * kc + p * MR;
      const float* s0 = src + ir;
      if (np == 8 && ir + 8 <= mc) {
        // 8-float loads (2 floats past the panel, inside the block) and stores that overlap by 2
        // in increasing order (each junk pair is overwritten by the next store); the last row's
        // store is exact (the 2 floats after it belong to the next p block or the next panel)
        for (long j = 0; j < 7; ++j) _mm256_storeu_ps(d + j * MR, _mm256_loadu_ps(s0 + j * lda));
        std::memcpy(d + 7 * MR, s0 + 7 * lda, MR * sizeof(float));
      } else {
        for (long j = 0; j < np; ++j) std::memcpy(d + j * MR, s0 + j * lda, MR * sizeof(float));
      }
    }
  }
}

// Pack op(B)[p0:p0+kc, j0:j0+nc] into NR-column panels: panel q holds, for each p, NR values.
void pack_b(const float* B, long ldb, bool transB, long p0, long kc, long j0, long nc, float* Bp) {
  long jr0 = 0;
  if (!transB) {
    // Four panels at a time, row by row: each row of B is read as 256 contiguous bytes (one panel
    // alone would read 64 bytes per row, every row a different page for ldb >= 1024, which the
    // hardware prefetchers do not follow): 1.3-1.5x faster from L3 or DRAM.
    constexpr long G = 4;
    for (; jr0 + G * NR <= nc; jr0 += G * NR) {
      const float* src = B + p0 * ldb + j0 + jr0;
      float* dst = Bp + jr0 * kc;
      for (long p = 0; p < kc; ++p) {
        const float* s = src + p * ldb;
        float* d = dst + p * NR;
        for (long g = 0; g < G; ++g) {
          _mm256_store_ps(d + g * kc * NR, _mm256_loadu_ps(s + g * NR));
          _mm256_store_ps(d + g * kc * NR + 8, _mm256_loadu_ps(s + g * NR + 8));
        }
      }
    }
  }
  for (long jr = jr0; jr < nc; jr += NR) {
    const long nr = lmin(NR, nc - jr);
    float* dst = Bp + jr * kc;
    if (!transB) {
      const float* src = B + p0 * ldb + j0 + jr;
      if (nr == NR) {
        for (long p = 0; p < kc; ++p) {
          _mm256_store_ps(dst + p * NR, _mm256_loadu_ps(src + p * ldb));
          _mm256_store_ps(dst + p * NR + 8, _mm256_loadu_ps(src + p * ldb + 8));
        }
      } else {
        for (long p = 0; p < kc; ++p)
          for (long c = 0; c < NR; ++c) dst[p * NR + c] = c < nr ? src[p * ldb + c] : 0.0f;
      }
    } else {
      const float* src = B + (j0 + jr) * ldb + p0;  // row c of the panel: src + c * ldb, contiguous in p
      if (nr == NR) {
        long p = 0;
        for (; p + 8 <= kc; p += 8) {
          for (int h = 0; h < 2; ++h) transpose8x8(src + (h * 8) * ldb + p, ldb, dst + p * NR + h * 8, NR);
        }
        for (; p < kc; ++p)
          for (long c = 0; c < NR; ++c) dst[p * NR + c] = src[c * ldb + p];
      } else {
        for (long p = 0; p < kc; ++p)
          for (long c = 0; c < NR; ++c) dst[p * NR + c] = c < nr ? src[c * ldb + p] : 0.0f;
      }
    }
  }
}

}  // namespace
}  // namespace tfree

// The microkernel: C[6x16] = alpha * Ap(6 x kc) . Bp(kc x 16) + beta * C (C not read when beta == 0).
// Accumulators are named variables (an array gets spilled by GCC; scripts/check-spills.sh checks).
extern "C" __attribute__((noinline)) void tfree_sgemm_ukernel_avx2_6x16(long kc, const float* __restrict a,
                                                                        const float* __restrict b,
                                                                        float* __restrict c, long ldc, float alpha,
                                                                        float beta) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  // both cache lines of each of the C tile's 6 rows (16 floats from c + r ldc)
#define TF_PREFETCH_C()                                                                                \
  for (long r = 0; r < 6; ++r) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0); \
  for (long r = 0; r < 6; ++r) _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 15), _MM_HINT_T0)
  TF_PREFETCH_C();
  // The k-loop is written in inline asm: GCC's register allocator, given the same loop in
  // intrinsics, picked FMA forms that needed a 17th register and spilled one accumulator to the
  // stack on every iteration. Here the 12 accumulators are asm operands ("+x"), ymm12/13 hold the
  // B row and ymm14 the broadcast A value; unrolled by 4, with a software prefetch of packed B.
#define TF_K1(OFFA, OFFB)                                       \
  "vmovaps " #OFFB "(%[b]), %%ymm12\n\t"                        \
  "vmovaps " #OFFB "+32(%[b]), %%ymm13\n\t"                     \
  "vbroadcastss " #OFFA "(%[a]), %%ymm14\n\t"                   \
  "vfmadd231ps %%ymm12, %%ymm14, %[c00]\n\t"                    \
  "vfmadd231ps %%ymm13, %%ymm14, %[c01]\n\t"                    \
  "vbroadcastss " #OFFA "+4(%[a]), %%ymm14\n\t"                 \
  "vfmadd231ps %%ymm12, %%ymm14, %[c10]\n\t"                    \
  "vfmadd231ps %%ymm13, %%ymm14, %[c11]\n\t"                    \
  "vbroadcastss " #OFFA "+8(%[a]), %%ymm14\n\t"                 \
  "vfmadd231ps %%ymm12, %%ymm14, %[c20]\n\t"                    \
  "vfmadd231ps %%ymm13, %%ymm14, %[c21]\n\t"                    \
  "vbroadcastss " #OFFA "+12(%[a]), %%ymm14\n\t"                \
  "vfmadd231ps %%ymm12, %%ymm14, %[c30]\n\t"                    \
  "vfmadd231ps %%ymm13, %%ymm14, %[c31]\n\t"                    \
  "vbroadcastss " #OFFA "+16(%[a]), %%ymm14\n\t"                \
  "vfmadd231ps %%ymm12, %%ymm14, %[c40]\n\t"                    \
  "vfmadd231ps %%ymm13, %%ymm14, %[c41]\n\t"                    \
  "vbroadcastss " #OFFA "+20(%[a]), %%ymm14\n\t"                \
  "vfmadd231ps %%ymm12, %%ymm14, %[c50]\n\t"                    \
  "vfmadd231ps %%ymm13, %%ymm14, %[c51]\n\t"
  long k4 = kc >> 2;
  long k1 = kc & 3;
  // The last kLate unrolled iterations run after a second prefetch of the C tile: the one above
  // comes ~1500 cycles before the C loads at kc = 256, and with ldc a multiple of 1024 floats the
  // C rows of the tiles down a column all fall into the same L1 set (and a few L2 sets), where the
  // packed B panel's lines evict them again before the end. Prefetched again ~200 cycles before
  // use, they are in L1 when the loads come (microkernel on a 2048-ld C: 93-94 -> 96-97 GFLOP/s).
  constexpr long kLate = 8;
  long kl = 0;
  if (k4 > kLate + 2) {
    kl = kLate;
    k4 -= kLate;
  }
#define TF_ACC_OPERANDS                                                                                          \
  [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11), [c20] "+x"(c20), [c21] "+x"(c21),          \
      [c30] "+x"(c30), [c31] "+x"(c31), [c40] "+x"(c40), [c41] "+x"(c41), [c50] "+x"(c50), [c51] "+x"(c51),      \
      [a] "+r"(a), [b] "+r"(b)
  // K iterations of the loop unrolled by 4 (K is decremented to 0)
#define TF_K4_LOOP(K)                               \
  __asm__ __volatile__(                             \
      ".p2align 5\n\t"                              \
      "1:\n\t"                                      \
      "prefetcht0 512(%[b])\n\t"                    \
      "prefetcht0 576(%[b])\n\t"                    \
      TF_K1(0, 0)                                   \
      "prefetcht0 640(%[b])\n\t"                    \
      "prefetcht0 704(%[b])\n\t"                    \
      TF_K1(24, 64)                                 \
      TF_K1(48, 128)                                \
      TF_K1(72, 192)                                \
      "add $96, %[a]\n\t"                           \
      "add $256, %[b]\n\t"                          \
      "dec %[k]\n\t"                                \
      "jnz 1b\n\t"                                  \
      : TF_ACC_OPERANDS, [k] "+r"(K)                \
      :                                             \
      : "xmm12", "xmm13", "xmm14", "cc", "memory")
  if (k4 > 0) {
    TF_K4_LOOP(k4);
  }
  if (kl > 0) {
    TF_PREFETCH_C();
    TF_K4_LOOP(kl);
  }
  if (k1 > 0) {
    __asm__ __volatile__(
        "1:\n\t"
        TF_K1(0, 0)
        "add $24, %[a]\n\t"
        "add $64, %[b]\n\t"
        "dec %[k]\n\t"
        "jnz 1b\n\t"
        : TF_ACC_OPERANDS, [k] "+r"(k1)
        :
        : "xmm12", "xmm13", "xmm14", "cc", "memory");
  }
#undef TF_K4_LOOP
#undef TF_PREFETCH_C
#undef TF_ACC_OPERANDS
#undef TF_K1
  const __m256 va = _mm256_set1_ps(alpha);
#define TF_ROW(R, X0, X1)                                                              \
  {                                                                                    \
    float* cr = c + (R) * ldc;                                                         \
    __m256 y0 = _mm256_mul_ps(X0, va), y1 = _mm256_mul_ps(X1, va);                     \
    if (beta != 0.0f) {                                                                \
      const __m256 vb = _mm256_set1_ps(beta);                                          \
      y0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), y0);                               \
      y1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), y1);                           \
    }                                                                                  \
    _mm256_storeu_ps(cr, y0);                                                          \
    _mm256_storeu_ps(cr + 8, y1);                                                      \
  }
  TF_ROW(0, c00, c01)
  TF_ROW(1, c10, c11)
  TF_ROW(2, c20, c21)
  TF_ROW(3, c30, c31)
  TF_ROW(4, c40, c41)
  TF_ROW(5, c50, c51)
#undef TF_ROW
}

namespace tfree {
namespace {

TF_AI float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

TF_AI __m256i tail_mask(long n) {  // first n (0..8) lanes set
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
}

// y[i*incy] = alpha * dot(W[i*ldw : i*ldw+K], x) + beta * y[i*incy], for i in [r0, r1).
void gemv_dot_range(long r0, long r1, long K, const float* W, long ldw, const float* x, float* y, long incy,
                    float alpha, float beta) {
  const long K16 = K & ~15L;
  const long K8 = K & ~7L;
  const __m256i tm = tail_mask(K - K8);
  auto finish = [&](long i, float s) {
    float v = alpha * s;
    if (beta != 0.0f) v += beta * y[i * incy];
    y[i * incy] = v;
  };
  long i = r0;
  for (; i + 4 <= r1; i += 4) {
    const float* w0 = W + i * ldw;
    const float* w1 = w0 + ldw;
    const float* w2 = w1 + ldw;
    const float* w3 = w2 + ldw;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    __m256 e0 = _mm256_setzero_ps(), e1 = _mm256_setzero_ps(), e2 = _mm256_setzero_ps(), e3 = _mm256_setzero_ps();
    long k = 0;
    for (; k < K16; k += 16) {
      const __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), x0, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), x0, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), x0, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), x0, a3);
      e0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k + 8), x1, e0);
      e1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k + 8), x1, e1);
      e2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k + 8), x1, e2);
      e3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k + 8), x1, e3);
    }
    for (; k < K8; k += 8) {
      const __m256 x0 = _mm256_loadu_ps(x + k);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), x0, a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), x0, a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), x0, a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), x0, a3);
    }
    if (k < K) {
      const __m256 x0 = _mm256_maskload_ps(x + k, tm);
      a0 = _mm256_fmadd_ps(_mm256_maskload_ps(w0 + k, tm), x0, a0);
      a1 = _mm256_fmadd_ps(_mm256_maskload_ps(w1 + k, tm), x0, a1);
      a2 = _mm256_fmadd_ps(_mm256_maskload_ps(w2 + k, tm), x0, a2);
      a3 = _mm256_fmadd_ps(_mm256_maskload_ps(w3 + k, tm), x0, a3);
    }
    finish(i, hsum(_mm256_add_ps(a0, e0)));
    finish(i + 1, hsum(_mm256_add_ps(a1, e1)));
    finish(i + 2, hsum(_mm256_add_ps(a2, e2)));
    finish(i + 3, hsum(_mm256_add_ps(a3, e3)));
  }
  for (; i < r1; ++i) {
    const float* w0 = W + i * ldw;
    __m256 a0 = _mm256_setzero_ps(), e0 = _mm256_setzero_ps();
    long k = 0;
    for (; k < K16; k += 16) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), _mm256_loadu_ps(x + k), a0);
      e0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k + 8), _mm256_loadu_ps(x + k + 8), e0);
    }
    for (; k < K8; k += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), _mm256_loadu_ps(x + k), a0);
    if (k < K) a0 = _mm256_fmadd_ps(_mm256_maskload_ps(w0 + k, tm), _mm256_maskload_ps(x + k, tm), a0);
    finish(i, hsum(_mm256_add_ps(a0, e0)));
  }
}

// acc[0:N] (+)= sum_{k in [k0,k1)} x[k] * W[k*ldw : k*ldw+N]; acc is overwritten when !accumulate.
void gemv_axpy_rows(long k0, long k1, long N, const float* W, long ldw, const float* x, float* acc) {
  const long N8 = N & ~7L;
  const __m256i tm = tail_mask(N - N8);
  bool first = true;
  long k = k0;
  for (; k < k1; k += 4) {
    const long nk = lmin(4, k1 - k);
    const float* w0 = W + k * ldw;
    const float* w1 = nk > 1 ? w0 + ldw : w0;
    const float* w2 = nk > 2 ? w0 + 2 * ldw : w0;
    const float* w3 = nk > 3 ? w0 + 3 * ldw : w0;
    const __m256 x0 = _mm256_set1_ps(x[k]);
    const __m256 x1 = _mm256_set1_ps(nk > 1 ? x[k + 1] : 0.0f);
    const __m256 x2 = _mm256_set1_ps(nk > 2 ? x[k + 2] : 0.0f);
    const __m256 x3 = _mm256_set1_ps(nk > 3 ? x[k + 3] : 0.0f);
    long j = 0;
    for (; j < N8; j += 8) {
      __m256 s = first ? _mm256_setzero_ps() : _mm256_load_ps(acc + j);
      s = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + j), x0, s);
      s = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + j), x1, s);
      s = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + j), x2, s);
      s = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + j), x3, s);
      _mm256_store_ps(acc + j, s);
    }
    if (j < N) {
      __m256 s = first ? _mm256_setzero_ps() : _mm256_load_ps(acc + j);
      s = _mm256_fmadd_ps(_mm256_maskload_ps(w0 + j, tm), x0, s);
      s = _mm256_fmadd_ps(_mm256_maskload_ps(w1 + j, tm), x1, s);
      s = _mm256_fmadd_ps(_mm256_maskload_ps(w2 + j, tm), x2, s);
      s = _mm256_fmadd_ps(_mm256_maskload_ps(w3 + j, tm), x3, s);
      _mm256_store_ps(acc + j, s);
    }
    first = false;
  }
  if (first) std::memset(acc, 0, sizeof(float) * ((N + 7) & ~7L));
}

constexpr long kLanes = 8;
constexpr bool kAPanelOuter = false;
TF_AI void ukernel(long kc, const float* a, const float* b, float* c, long ldc, float alpha, float beta) {
  tfree_sgemm_ukernel_avx2_6x16(kc, a, b, c, ldc, alpha, beta);
}
#include "gemm_driver.h"

}  // namespace

void gemm_avx2(const GemmArgs& g) { gemm_drive(g); }

}  // namespace tfree
