// AVX-512 SGEMM (BLIS-style: packed A/B panels, 14x32 register-blocked microkernel: 28 zmm
// accumulators + 2 zmm of B, A broadcast from memory inside the FMA) and SGEMV.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mfma; only reached when
// dispatch.cc found those features. Everything is static / in an anonymous namespace except the
// entry point and the microkernel symbol (checked by scripts/check-spills.sh), so no
// AVX-512-compiled inline function can leak into another path through the linker.
//
// The result of each C element depends only on the shape (fixed KC blocking, fixed order within
// the microkernel), never on the thread count: threads split rows or columns of C.
//
// Packed panels are rebuilt on every call. Caching packed weight panels across calls (keyed by
// pointer and shape) is not done: a Float32Array's memory is updated in place (AdamW, weight
// loading) and can be reused for another tensor after garbage collection, and the addon gets no
// version number to tell, so a cache could silently return stale products. At the sizes where
// GEMM is compute-bound the packing costs a few percent of the call.
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

constexpr long MR = 14;
constexpr long NR = 32;
constexpr long KC = 256;      // 128, 384, 512 measured no better at 1024^3 (1 thread, CPU time)
constexpr long MC = 14 * 12;  // 168 x 256 x 4 B = 168 KiB of packed A, in L2
constexpr long NC = 768;      // 256 x 768 x 4 B = 768 KiB of packed B, in L2 (1 MiB on Zen 4)

TF_AI long lmin(long a, long b) { return a < b ? a : b; }

// In-register 16x16 transpose: r[j] becomes column j of the input rows.
TF_AI void transpose16(__m512 r[16]) {
  __m512 t[16], u[16], v[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int g = 0; g < 4; ++g) {  // rows 4g..4g+3: u[4g + c] lane L = column 4L + c
    u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
    u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    v[c] = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
    v[4 + c] = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    v[8 + c] = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    v[12 + c] = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm512_shuffle_f32x4(v[c], v[8 + c], 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(v[4 + c], v[12 + c], 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(v[c], v[8 + c], 0xDD);
    r[12 + c] = _mm512_shuffle_f32x4(v[4 + c], v[12 + c], 0xDD);
  }
}

// Pack op(A)[i0:i0+mc, p0:p0+kc] into MR-row panels: panel q holds, for each p, MR values.
void pack_a(const float* A, long lda, bool transA, long i0, long mc, long p0, long kc, float* Ap) {
  const __mmask16 mMR = static_cast<__mmask16>((1u << MR) - 1u);
  for (long ir = 0; ir < mc; ir += MR) {
    const long mr = lmin(MR, mc - ir);
    float* dst = Ap + ir * kc;
    if (!transA) {
      const float* rows[MR];
      for (long r = 0; r < MR; ++r) rows[r] = A + (i0 + ir + (r < mr ? r : 0)) * lda + p0;
      long p = 0;
      if (mr == MR) {
        for (; p + 16 <= kc; p += 16) {
          __m512 r[16];
          for (long i = 0; i < MR; ++i) r[i] = _mm512_loadu_ps(rows[i] + p);
          r[14] = r[15] = _mm512_setzero_ps();
          transpose16(r);
          for (long j = 0; j < 16; ++j) _mm512_mask_storeu_ps(dst + (p + j) * MR, mMR, r[j]);
        }
      }
      for (; p < kc; ++p)
        for (long r = 0; r < MR; ++r) dst[p * MR + r] = r < mr ? rows[r][p] : 0.0f;
    } else {
      const float* src = A + p0 * lda + i0 + ir;
      const __mmask16 m = static_cast<__mmask16>((1u << mr) - 1u);
      for (long p = 0; p < kc; ++p) _mm512_mask_storeu_ps(dst + p * MR, mMR, _mm512_maskz_loadu_ps(m, src + p * lda));
    }
  }
}

// Pack op(B)[p0:p0+kc, j0:j0+nc] into NR-column panels: panel q holds, for each p, NR values.
void pack_b(const float* B, long ldb, bool transB, long p0, long kc, long j0, long nc, float* Bp) {
  for (long jr = 0; jr < nc; jr += NR) {
    const long nr = lmin(NR, nc - jr);
    float* dst = Bp + jr * kc;
    if (!transB) {
      const float* src = B + p0 * ldb + j0 + jr;
      if (nr == NR) {
        for (long p = 0; p < kc; ++p) {
          _mm512_store_ps(dst + p * NR, _mm512_loadu_ps(src + p * ldb));
          _mm512_store_ps(dst + p * NR + 16, _mm512_loadu_ps(src + p * ldb + 16));
        }
      } else {
        const __mmask16 m0 = static_cast<__mmask16>(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
        const __mmask16 m1 = static_cast<__mmask16>(nr <= 16 ? 0u : (1u << (nr - 16)) - 1u);
        for (long p = 0; p < kc; ++p) {
          _mm512_store_ps(dst + p * NR, _mm512_maskz_loadu_ps(m0, src + p * ldb));
          _mm512_store_ps(dst + p * NR + 16, _mm512_maskz_loadu_ps(m1, src + p * ldb + 16));
        }
      }
    } else {
      const float* src = B + (j0 + jr) * ldb + p0;  // row c of the panel: src + c * ldb, contiguous in p
      long p = 0;
      if (nr == NR) {
        for (; p + 16 <= kc; p += 16) {
          for (int h = 0; h < 2; ++h) {
            const float* s = src + (h * 16) * ldb + p;
            __m512 r[16];
            for (long i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(s + i * ldb);
            transpose16(r);
            float* d = dst + p * NR + h * 16;
            for (long j = 0; j < 16; ++j) _mm512_store_ps(d + j * NR, r[j]);
          }
        }
      }
      for (; p < kc; ++p)
        for (long c = 0; c < NR; ++c) dst[p * NR + c] = c < nr ? src[c * ldb + p] : 0.0f;
    }
  }
}

}  // namespace
}  // namespace tfree

// The microkernel: C[14x32] = alpha * Ap(14 x kc) . Bp(kc x 32) + beta * C (C not read when
// beta == 0). The 28 accumulators are named variables; scripts/check-spills.sh checks that none
// lives on the stack.
extern "C" __attribute__((noinline)) void tfree_sgemm_ukernel_avx512_14x32(long kc, const float* __restrict a,
                                                                          const float* __restrict b,
                                                                          float* __restrict c, long ldc, float alpha,
                                                                          float beta) {
#define TF_DECL(i) __m512 c##i##0 = _mm512_setzero_ps(), c##i##1 = _mm512_setzero_ps();
  TF_DECL(0) TF_DECL(1) TF_DECL(2) TF_DECL(3) TF_DECL(4) TF_DECL(5) TF_DECL(6)
  TF_DECL(7) TF_DECL(8) TF_DECL(9) TF_DECL(10) TF_DECL(11) TF_DECL(12) TF_DECL(13)
#undef TF_DECL
  for (long r = 0; r < 14; ++r) {
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 31), _MM_HINT_T0);
  }
#define TF_FMA(i)                                              \
  {                                                            \
    const __m512 ai = _mm512_set1_ps(a[i]);                    \
    c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                \
    c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);                \
  }
#pragma GCC unroll 4
  for (long k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
    _mm_prefetch(reinterpret_cast<const char*>(b + 512), _MM_HINT_T0);
    TF_FMA(0) TF_FMA(1) TF_FMA(2) TF_FMA(3) TF_FMA(4) TF_FMA(5) TF_FMA(6)
    TF_FMA(7) TF_FMA(8) TF_FMA(9) TF_FMA(10) TF_FMA(11) TF_FMA(12) TF_FMA(13)
    a += 14;
    b += 32;
  }
#undef TF_FMA
  const __m512 va = _mm512_set1_ps(alpha);
#define TF_ROW(R)                                                                      \
  {                                                                                    \
    float* cr = c + (R) * ldc;                                                         \
    __m512 y0 = _mm512_mul_ps(c##R##0, va), y1 = _mm512_mul_ps(c##R##1, va);           \
    if (beta != 0.0f) {                                                                \
      const __m512 vb = _mm512_set1_ps(beta);                                          \
      y0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr), y0);                               \
      y1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr + 16), y1);                          \
    }                                                                                  \
    _mm512_storeu_ps(cr, y0);                                                          \
    _mm512_storeu_ps(cr + 16, y1);                                                     \
  }
  TF_ROW(0) TF_ROW(1) TF_ROW(2) TF_ROW(3) TF_ROW(4) TF_ROW(5) TF_ROW(6)
  TF_ROW(7) TF_ROW(8) TF_ROW(9) TF_ROW(10) TF_ROW(11) TF_ROW(12) TF_ROW(13)
#undef TF_ROW
}

namespace tfree {
namespace {

TF_AI float hsum(__m512 v) {
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

TF_AI __mmask16 tail_mask(long n) { return static_cast<__mmask16>((1u << n) - 1u); }  // first n (0..16) lanes

// y[i*incy] = alpha * dot(W[i*ldw : i*ldw+K], x) + beta * y[i*incy], for i in [r0, r1).
void gemv_dot_range(long r0, long r1, long K, const float* W, long ldw, const float* x, float* y, long incy,
                    float alpha, float beta) {
  const long K32 = K & ~31L;
  const long K16 = K & ~15L;
  const __mmask16 tm = tail_mask(K - K16);
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
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    __m512 e0 = _mm512_setzero_ps(), e1 = _mm512_setzero_ps(), e2 = _mm512_setzero_ps(), e3 = _mm512_setzero_ps();
    long k = 0;
    for (; k < K32; k += 32) {
      const __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + k), x0, a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + k), x0, a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + k), x0, a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + k), x0, a3);
      e0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + k + 16), x1, e0);
      e1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + k + 16), x1, e1);
      e2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + k + 16), x1, e2);
      e3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + k + 16), x1, e3);
    }
    for (; k < K16; k += 16) {
      const __m512 x0 = _mm512_loadu_ps(x + k);
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + k), x0, a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + k), x0, a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + k), x0, a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + k), x0, a3);
    }
    if (k < K) {
      const __m512 x0 = _mm512_maskz_loadu_ps(tm, x + k);
      a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w0 + k), x0, a0);
      a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w1 + k), x0, a1);
      a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w2 + k), x0, a2);
      a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w3 + k), x0, a3);
    }
    finish(i, hsum(_mm512_add_ps(a0, e0)));
    finish(i + 1, hsum(_mm512_add_ps(a1, e1)));
    finish(i + 2, hsum(_mm512_add_ps(a2, e2)));
    finish(i + 3, hsum(_mm512_add_ps(a3, e3)));
  }
  for (; i < r1; ++i) {
    const float* w0 = W + i * ldw;
    __m512 a0 = _mm512_setzero_ps(), e0 = _mm512_setzero_ps();
    long k = 0;
    for (; k < K32; k += 32) {
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + k), _mm512_loadu_ps(x + k), a0);
      e0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + k + 16), _mm512_loadu_ps(x + k + 16), e0);
    }
    for (; k < K16; k += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + k), _mm512_loadu_ps(x + k), a0);
    if (k < K) a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w0 + k), _mm512_maskz_loadu_ps(tm, x + k), a0);
    finish(i, hsum(_mm512_add_ps(a0, e0)));
  }
}

// acc[0:N] = sum_{k in [k0,k1)} x[k] * W[k*ldw : k*ldw+N] (acc padded to a multiple of 16).
void gemv_axpy_rows(long k0, long k1, long N, const float* W, long ldw, const float* x, float* acc) {
  const long N16 = N & ~15L;
  const __mmask16 tm = tail_mask(N - N16);
  bool first = true;
  long k = k0;
  for (; k < k1; k += 4) {
    const long nk = lmin(4, k1 - k);
    const float* w0 = W + k * ldw;
    const float* w1 = nk > 1 ? w0 + ldw : w0;
    const float* w2 = nk > 2 ? w0 + 2 * ldw : w0;
    const float* w3 = nk > 3 ? w0 + 3 * ldw : w0;
    const __m512 x0 = _mm512_set1_ps(x[k]);
    const __m512 x1 = _mm512_set1_ps(nk > 1 ? x[k + 1] : 0.0f);
    const __m512 x2 = _mm512_set1_ps(nk > 2 ? x[k + 2] : 0.0f);
    const __m512 x3 = _mm512_set1_ps(nk > 3 ? x[k + 3] : 0.0f);
    long j = 0;
    for (; j < N16; j += 16) {
      __m512 s = first ? _mm512_setzero_ps() : _mm512_load_ps(acc + j);
      s = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + j), x0, s);
      s = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + j), x1, s);
      s = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + j), x2, s);
      s = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + j), x3, s);
      _mm512_store_ps(acc + j, s);
    }
    if (j < N) {
      __m512 s = first ? _mm512_setzero_ps() : _mm512_load_ps(acc + j);
      s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w0 + j), x0, s);
      s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w1 + j), x1, s);
      s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w2 + j), x2, s);
      s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tm, w3 + j), x3, s);
      _mm512_store_ps(acc + j, s);
    }
    first = false;
  }
  if (first) std::memset(acc, 0, sizeof(float) * ((N + 15) & ~15L));
}

constexpr long kLanes = 16;
// A micro-panel (14 x kc, 14 KiB) stays in L1 while the packed B block (in L2) streams past it:
// at 2048^3 this order measured 0.97-1.02x OpenBLAS per CPU second, the other (B micro-panel
// outer, NC 3072) 0.88-0.92x (1 thread, same loaded VM).
constexpr bool kAPanelOuter = true;
TF_AI void ukernel(long kc, const float* a, const float* b, float* c, long ldc, float alpha, float beta) {
  tfree_sgemm_ukernel_avx512_14x32(kc, a, b, c, ldc, alpha, beta);
}
#include "gemm_driver.h"

}  // namespace

void gemm_avx512(const GemmArgs& g) { gemm_drive(g); }

}  // namespace tfree
