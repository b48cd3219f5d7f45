// ARM64 NEON SGEMM (BLIS-style: packed A/B panels, 8x12 register-blocked fmla micro-kernel) and
// SGEMV loops; the driver around them (C = beta C, GEMV routes, thread split) is gemm_driver.h,
// shared with the x86 files: threads split M or N in whole micro-tiles and every output element is
// summed in the same k order, so results do not depend on the thread count. NEON is part of
// ARMv8-A: no extra -march flag, no runtime check. Compiled to nothing on other architectures.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

#define TF_AI __attribute__((always_inline)) inline

namespace tfree {
namespace {

constexpr long MR = 8;
constexpr long NR = 12;
constexpr long KC = 256;
constexpr long MC = 128;   // 128 x 256 x 4 B = 128 KiB of packed A (L2)
constexpr long NC = 3072;  // 256 x 3072 x 4 B = 3 MiB of packed B

TF_AI long lmin(long a, long b) { return a < b ? a : b; }

// op(A)[i0:i0+mc, p0:p0+kc] -> MR-row panels (per p: MR values, zero-padded rows)
void pack_a(const float* A, long lda, bool transA, long i0, long mc, long p0, long kc, float* Ap) {
  for (long ir = 0; ir < mc; ir += MR) {
    const long mr = lmin(MR, mc - ir);
    float* dst = Ap + ir * kc;
    if (transA) {
      const float* src = A + p0 * lda + i0 + ir;
      if (mr == MR) {
        for (long p = 0; p < kc; ++p) {
          vst1q_f32(dst + p * MR, vld1q_f32(src + p * lda));
          vst1q_f32(dst + p * MR + 4, vld1q_f32(src + p * lda + 4));
        }
      } else {
        for (long p = 0; p < kc; ++p)
          for (long r = 0; r < MR; ++r) dst[p * MR + r] = r < mr ? src[p * lda + r] : 0.0f;
      }
    } else {
      const float* rows[MR];
      for (long r = 0; r < MR; ++r) rows[r] = A + (i0 + ir + (r < mr ? r : 0)) * lda + p0;
      long p = 0;
      if (mr == MR) {
        // 4x4 transposes: rows 0-3 and 4-7, four k at a time
        for (; p + 4 <= kc; p += 4) {
          for (int h = 0; h < 2; ++h) {
            const float32x4_t r0 = vld1q_f32(rows[4 * h] + p), r1 = vld1q_f32(rows[4 * h + 1] + p);
            const float32x4_t r2 = vld1q_f32(rows[4 * h + 2] + p), r3 = vld1q_f32(rows[4 * h + 3] + p);
            const float32x4_t t0 = vtrn1q_f32(r0, r1), t1 = vtrn2q_f32(r0, r1);
            const float32x4_t t2 = vtrn1q_f32(r2, r3), t3 = vtrn2q_f32(r2, r3);
            float* d = dst + p * MR + 4 * h;
            vst1q_f32(d, vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2))));
            vst1q_f32(d + MR, vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3))));
            vst1q_f32(d + 2 * MR, vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2))));
            vst1q_f32(d + 3 * MR, vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3))));
          }
        }
      }
      for (; p < kc; ++p)
        for (long r = 0; r < MR; ++r) dst[p * MR + r] = r < mr ? rows[r][p] : 0.0f;
    }
  }
}

// op(B)[p0:p0+kc, j0:j0+nc] -> NR-column panels (per p: NR values, zero-padded columns)
void pack_b(const float* B, long ldb, bool transB, long p0, long kc, long j0, long nc, float* Bp) {
  for (long jr = 0; jr < nc; jr += NR) {
    const long nr = lmin(NR, nc - jr);
    float* dst = Bp + jr * kc;
    if (!transB) {
      const float* src = B + p0 * ldb + j0 + jr;
      if (nr == NR) {
        for (long p = 0; p < kc; ++p) {
          const float* s = src + p * ldb;
          float* d = dst + p * NR;
          vst1q_f32(d, vld1q_f32(s));
          vst1q_f32(d + 4, vld1q_f32(s + 4));
          vst1q_f32(d + 8, vld1q_f32(s + 8));
        }
      } else {
        for (long p = 0; p < kc; ++p)
          for (long c = 0; c < NR; ++c) dst[p * NR + c] = c < nr ? src[p * ldb + c] : 0.0f;
      }
    } else {
      const float* src = B + (j0 + jr) * ldb + p0;
      for (long c = 0; c < NR; ++c) {
        if (c < nr) {
          const float* s = src + c * ldb;
          for (long p = 0; p < kc; ++p) dst[p * NR + c] = s[p];
        } else {
          for (long p = 0; p < kc; ++p) dst[p * NR + c] = 0.0f;
        }
      }
    }
  }
}

// C[8x12] = alpha * Ap(8 x kc) . Bp(kc x 12) + beta * C (C not read when beta == 0).
// 24 accumulators + 3 B vectors + 2 A vectors = 29 of the 32 vector registers; named variables
// (not an array) so that the compiler keeps them in registers.
__attribute__((noinline)) void ukernel_8x12(long kc, const float* __restrict a, const float* __restrict b,
                                             float* __restrict c, long ldc, float alpha, float beta) {
#define TF_Z(R) float32x4_t c##R##0 = vdupq_n_f32(0.0f), c##R##1 = c##R##0, c##R##2 = c##R##0;
  TF_Z(0) TF_Z(1) TF_Z(2) TF_Z(3) TF_Z(4) TF_Z(5) TF_Z(6) TF_Z(7)
#undef TF_Z
#define TF_ROW(R, AV, L)                       \
  c##R##0 = vfmaq_laneq_f32(c##R##0, b0, AV, L); \
  c##R##1 = vfmaq_laneq_f32(c##R##1, b1, AV, L); \
  c##R##2 = vfmaq_laneq_f32(c##R##2, b2, AV, L);
  for (long k = 0; k < kc; ++k) {
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
    const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
    __builtin_prefetch(b + 96);
    TF_ROW(0, a0, 0) TF_ROW(1, a0, 1) TF_ROW(2, a0, 2) TF_ROW(3, a0, 3)
    TF_ROW(4, a1, 0) TF_ROW(5, a1, 1) TF_ROW(6, a1, 2) TF_ROW(7, a1, 3)
    a += MR;
    b += NR;
  }
#undef TF_ROW
  const float32x4_t va = vdupq_n_f32(alpha);
#define TF_ST(R)                                                                     \
  {                                                                                  \
    float* cr = c + (R) * ldc;                                                       \
    float32x4_t y0 = vmulq_f32(c##R##0, va), y1 = vmulq_f32(c##R##1, va), y2 = vmulq_f32(c##R##2, va); \
    if (beta != 0.0f) {                                                              \
      const float32x4_t vb = vdupq_n_f32(beta);                                      \
      y0 = vfmaq_f32(y0, vb, vld1q_f32(cr));                                         \
      y1 = vfmaq_f32(y1, vb, vld1q_f32(cr + 4));                                     \
      y2 = vfmaq_f32(y2, vb, vld1q_f32(cr + 8));                                     \
    }                                                                                \
    vst1q_f32(cr, y0);                                                               \
    vst1q_f32(cr + 4, y1);                                                           \
    vst1q_f32(cr + 8, y2);                                                           \
  }
  TF_ST(0) TF_ST(1) TF_ST(2) TF_ST(3) TF_ST(4) TF_ST(5) TF_ST(6) TF_ST(7)
#undef TF_ST
}

// y[i*incy] = alpha * dot(W row i, x) + beta * y[i*incy], rows [r0, r1); 4 rows at a time
void gemv_dot_range(long r0, long r1, long K, const float* W, long ldw, const float* x, float* y, long incy,
                    float alpha, float beta) {
  const long K8 = K & ~7L, K4 = K & ~3L;
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
    float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0, e0 = a0, e1 = a0, e2 = a0, e3 = a0;
    long k = 0;
    for (; k < K8; k += 8) {
      const float32x4_t x0 = vld1q_f32(x + k), x1 = vld1q_f32(x + k + 4);
      a0 = vfmaq_f32(a0, vld1q_f32(w0 + k), x0);
      a1 = vfmaq_f32(a1, vld1q_f32(w1 + k), x0);
      a2 = vfmaq_f32(a2, vld1q_f32(w2 + k), x0);
      a3 = vfmaq_f32(a3, vld1q_f32(w3 + k), x0);
      e0 = vfmaq_f32(e0, vld1q_f32(w0 + k + 4), x1);
      e1 = vfmaq_f32(e1, vld1q_f32(w1 + k + 4), x1);
      e2 = vfmaq_f32(e2, vld1q_f32(w2 + k + 4), x1);
      e3 = vfmaq_f32(e3, vld1q_f32(w3 + k + 4), x1);
    }
    for (; k < K4; k += 4) {
      const float32x4_t x0 = vld1q_f32(x + k);
      a0 = vfmaq_f32(a0, vld1q_f32(w0 + k), x0);
      a1 = vfmaq_f32(a1, vld1q_f32(w1 + k), x0);
      a2 = vfmaq_f32(a2, vld1q_f32(w2 + k), x0);
      a3 = vfmaq_f32(a3, vld1q_f32(w3 + k), x0);
    }
    float s0 = vaddvq_f32(vaddq_f32(a0, e0)), s1 = vaddvq_f32(vaddq_f32(a1, e1));
    float s2 = vaddvq_f32(vaddq_f32(a2, e2)), s3 = vaddvq_f32(vaddq_f32(a3, e3));
    for (; k < K; ++k) {
      s0 += w0[k] * x[k];
      s1 += w1[k] * x[k];
      s2 += w2[k] * x[k];
      s3 += w3[k] * x[k];
    }
    finish(i, s0);
    finish(i + 1, s1);
    finish(i + 2, s2);
    finish(i + 3, s3);
  }
  for (; i < r1; ++i) {
    const float* w0 = W + i * ldw;
    float32x4_t a0 = vdupq_n_f32(0), e0 = a0;
    long k = 0;
    for (; k < K8; k += 8) {
      a0 = vfmaq_f32(a0, vld1q_f32(w0 + k), vld1q_f32(x + k));
      e0 = vfmaq_f32(e0, vld1q_f32(w0 + k + 4), vld1q_f32(x + k + 4));
    }
    for (; k < K4; k += 4) a0 = vfmaq_f32(a0, vld1q_f32(w0 + k), vld1q_f32(x + k));
    float s = vaddvq_f32(vaddq_f32(a0, e0));
    for (; k < K; ++k) s += w0[k] * x[k];
    finish(i, s);
  }
}

// acc[0:N] = sum_{k0 <= k < k1} x[k] * W[k*ldw : k*ldw+N] (four rows of W per pass, then one at a time:
// a row is never multiplied by a zero x, so non-finite weights behave as in the portable path)
void gemv_axpy_rows(long k0, long k1, long N, const float* W, long ldw, const float* x, float* acc) {
  const long N4 = N & ~3L;
  std::memset(acc, 0, sizeof(float) * N);
  long k = k0;
  for (; k + 4 <= k1; k += 4) {
    const float* w0 = W + k * ldw;
    const float* w1 = w0 + ldw;
    const float* w2 = w1 + ldw;
    const float* w3 = w2 + ldw;
    const float x0 = x[k], x1 = x[k + 1], x2 = x[k + 2], x3 = x[k + 3];
    long j = 0;
    for (; j < N4; j += 4) {
      float32x4_t s = vld1q_f32(acc + j);
      s = vfmaq_n_f32(s, vld1q_f32(w0 + j), x0);
      s = vfmaq_n_f32(s, vld1q_f32(w1 + j), x1);
      s = vfmaq_n_f32(s, vld1q_f32(w2 + j), x2);
      s = vfmaq_n_f32(s, vld1q_f32(w3 + j), x3);
      vst1q_f32(acc + j, s);
    }
    for (; j < N; ++j) {
      float s = acc[j];
      s = __builtin_fmaf(w0[j], x0, s);
      s = __builtin_fmaf(w1[j], x1, s);
      s = __builtin_fmaf(w2[j], x2, s);
      acc[j] = __builtin_fmaf(w3[j], x3, s);
    }
  }
  for (; k < k1; ++k) {
    const float* w0 = W + k * ldw;
    const float x0 = x[k];
    long j = 0;
    for (; j < N4; j += 4) vst1q_f32(acc + j, vfmaq_n_f32(vld1q_f32(acc + j), vld1q_f32(w0 + j), x0));
    for (; j < N; ++j) acc[j] = __builtin_fmaf(w0[j], x0, acc[j]);
  }
}

constexpr long kLanes = 4;
constexpr bool kAPanelOuter = false;
TF_AI void ukernel(long kc, const float* a, const float* b, float* c, long ldc, float alpha, float beta) {
  ukernel_8x12(kc, a, b, c, ldc, alpha, beta);
}
#include "gemm_driver.h"

}  // namespace

void gemm_neon(const GemmArgs& g) { gemm_drive(g); }

}  // namespace tfree
#endif  // __aarch64__
