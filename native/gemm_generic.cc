// Portable blocked SGEMM / SGEMV (no intrinsics): used on CPUs without AVX2+FMA and with
// TFREE_SIMD=generic. Same structure as the AVX2 path (packed panels, register tile), smaller tile.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

namespace tfree {
namespace {

constexpr long MR = 4;
constexpr long NR = 8;
constexpr long KC = 256;
constexpr long MC = 128;
constexpr long NC = 2048;

inline long lmin(long a, long b) { return a < b ? a : b; }

#include "scratch.h"
thread_local Scratch tl_pack = {nullptr, 0};

void pack_a(const float* A, long lda, bool transA, long i0, long mc, long p0, long kc, float* Ap) {
  for (long ir = 0; ir < mc; ir += MR) {
    const long mr = lmin(MR, mc - ir);
    float* dst = Ap + ir * kc;
    for (long p = 0; p < kc; ++p)
      for (long r = 0; r < MR; ++r) {
        float v = 0.0f;
        if (r < mr) v = transA ? A[(p0 + p) * lda + i0 + ir + r] : A[(i0 + ir + r) * lda + p0 + p];
        dst[p * MR + r] = v;
      }
  }
}

void pack_b(const float* B, long ldb, bool transB, long p0, long kc, long j0, long nc, float* Bp) {
  for (long jr = 0; jr < nc; jr += NR) {
    const long nr = lmin(NR, nc - jr);
    float* dst = Bp + jr * kc;
    for (long p = 0; p < kc; ++p)
      for (long c = 0; c < NR; ++c) {
        float v = 0.0f;
        if (c < nr) v = transB ? B[(j0 + jr + c) * ldb + p0 + p] : B[(p0 + p) * ldb + j0 + jr + c];
        dst[p * NR + c] = v;
      }
  }
}

void ukernel(long kc, const float* __restrict a, const float* __restrict b, float* __restrict c, long ldc, long mr,
             long nr, float alpha, float beta) {
  float acc[MR][NR] = {};
  for (long k = 0; k < kc; ++k) {
    for (long r = 0; r < MR; ++r) {
      const float av = a[k * MR + r];
      for (long j = 0; j < NR; ++j) acc[r][j] += av * b[k * NR + j];
    }
  }
  for (long r = 0; r < mr; ++r)
    for (long j = 0; j < nr; ++j) {
      float v = alpha * acc[r][j];
      if (beta != 0.0f) v += beta * c[r * ldc + j];
      c[r * ldc + j] = v;
    }
}

void gemm_block(const GemmArgs& g, const float* A, const float* B, float* C, long m0, long m1, long n0, long n1) {
  float* buf = scratch_floats(tl_pack, MC * KC + KC * (NC + NR));
  if (!buf) return;
  float* Ap = buf;
  float* Bp = buf + MC * KC;
  for (long jc = n0; jc < n1; jc += NC) {
    const long nc = lmin(NC, n1 - jc);
    for (long pc = 0; pc < g.K; pc += KC) {
      const long kc = lmin(KC, g.K - pc);
      const float beta = pc == 0 ? g.beta : 1.0f;
      pack_b(B, g.ldb, g.transB, pc, kc, jc, nc, Bp);
      for (long ic = m0; ic < m1; ic += MC) {
        const long mc = lmin(MC, m1 - ic);
        pack_a(A, g.lda, g.transA, ic, mc, pc, kc, Ap);
        for (long jr = 0; jr < nc; jr += NR)
          for (long ir = 0; ir < mc; ir += MR)
            ukernel(kc, Ap + ir * kc, Bp + jr * kc, C + (ic + ir) * g.ldc + jc + jr, g.ldc, lmin(MR, mc - ir),
                    lmin(NR, nc - jr), g.alpha, beta);
      }
    }
  }
}

// y[i*incy] = alpha * dot(W row i, x) + beta * y
void gemv_dot(long rows, long K, const float* W, long ldw, const float* x, float* y, long incy, float alpha,
              float beta) {
  auto body = [&](long r0, long r1) {
    for (long i = r0; i < r1; ++i) {
      const float* w = W + i * ldw;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      long k = 0;
      for (; k + 4 <= K; k += 4) {
        s0 += w[k] * x[k];
        s1 += w[k + 1] * x[k + 1];
        s2 += w[k + 2] * x[k + 2];
        s3 += w[k + 3] * x[k + 3];
      }
      for (; k < K; ++k) s0 += w[k] * x[k];
      float v = alpha * ((s0 + s1) + (s2 + s3));
      if (beta != 0.0f) v += beta * y[i * incy];
      y[i * incy] = v;
    }
  };
  const int T = pool_threads();
  if (T <= 1 || rows * K < (1L << 16) || rows < 8) {
    body(0, rows);
    return;
  }
  const long chunk = (rows + T - 1) / T;
  auto task = [&](long t, int) { body(t * chunk, lmin(rows, (t + 1) * chunk)); };
  parallel_tasks(T, T, task);
}

// Threads split the columns, so the result does not depend on the thread count.
void gemv_axpy(long K, long N, const float* W, long ldw, const float* x, float* y, long incy, float alpha,
               float beta) {
  const int T = pool_threads();
  const long ntasks = (T <= 1 || K * N < (1L << 16) || N < 64) ? 1 : T;
  float* part = static_cast<float*>(std::calloc(static_cast<size_t>(N), sizeof(float)));
  if (!part) return;
  const long chunk = (N + ntasks - 1) / ntasks;
  auto task = [&](long t, int) {
    const long c0 = t * chunk, c1 = lmin(N, (t + 1) * chunk);
    for (long k = 0; k < K; ++k) {
      const float xv = x[k];
      const float* w = W + k * ldw;
      for (long n = c0; n < c1; ++n) part[n] += xv * w[n];
    }
  };
  parallel_tasks(ntasks, T, task);
  for (long n = 0; n < N; ++n) {
    float v = alpha * part[n];
    if (beta != 0.0f) v += beta * y[n * incy];
    y[n * incy] = v;
  }
  std::free(part);
}

}  // namespace

void gemm_generic(const GemmArgs& g) {
  const long M = g.M, N = g.N, K = g.K;
  if (M <= 0 || N <= 0 || g.batch <= 0) return;
  if (K == 0 || g.alpha == 0.0f) {
    for (long bi = 0; bi < g.batch; ++bi) {
      float* C = g.C + bi * g.strideC;
      for (long i = 0; i < M; ++i)
        for (long j = 0; j < N; ++j) C[i * g.ldc + j] = g.beta == 0.0f ? 0.0f : g.beta * C[i * g.ldc + j];
    }
    return;
  }
  if (M == 1 || N == 1) {
    float* xbuf = static_cast<float*>(std::malloc(sizeof(float) * K));
    if (!xbuf) tfree::out_of_memory("GEMV", 4.0 * K);
    for (long bi = 0; bi < g.batch; ++bi) {
      const float* A = g.A + bi * g.strideA;
      const float* B = g.B + bi * g.strideB;
      float* C = g.C + bi * g.strideC;
      if (M == 1) {
        for (long k = 0; k < K; ++k) xbuf[k] = g.transA ? A[k * g.lda] : A[k];
        if (g.transB) gemv_dot(N, K, B, g.ldb, xbuf, C, 1, g.alpha, g.beta);
        else gemv_axpy(K, N, B, g.ldb, xbuf, C, 1, g.alpha, g.beta);
      } else {
        for (long k = 0; k < K; ++k) xbuf[k] = g.transB ? B[k] : B[k * g.ldb];
        if (!g.transA) gemv_dot(M, K, A, g.lda, xbuf, C, g.ldc, g.alpha, g.beta);
        else gemv_axpy(K, M, A, g.lda, xbuf, C, g.ldc, g.alpha, g.beta);
      }
    }
    std::free(xbuf);
    return;
  }
  const int T = pool_threads();
  const double work = static_cast<double>(M) * N * K * g.batch;
  if (T <= 1 || work < (1L << 17)) {
    for (long bi = 0; bi < g.batch; ++bi)
      gemm_block(g, g.A + bi * g.strideA, g.B + bi * g.strideB, g.C + bi * g.strideC, 0, M, 0, N);
    return;
  }
  long parts = g.batch >= T ? 1 : (T + g.batch - 1) / g.batch;
  const bool splitN = (N + NR - 1) / NR >= (M + MR - 1) / MR;
  const long unit = splitN ? NR : MR;
  const long dim = splitN ? N : M;
  const long units = (dim + unit - 1) / unit;
  if (parts > units) parts = units;
  const long per = ((units + parts - 1) / parts) * unit;
  auto task = [&](long t, int) {
    const long bi = t / parts, pi = t % parts;
    const long s0 = pi * per, s1 = lmin(dim, s0 + per);
    if (s0 >= s1) return;
    const float* A = g.A + bi * g.strideA;
    const float* B = g.B + bi * g.strideB;
    float* C = g.C + bi * g.strideC;
    if (splitN) gemm_block(g, A, B, C, 0, M, s0, s1);
    else gemm_block(g, A, B, C, s0, s1, 0, N);
  };
  parallel_tasks(g.batch * parts, T, task);
}

}  // namespace tfree
