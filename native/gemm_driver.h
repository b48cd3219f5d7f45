// The shared SGEMM driver of the SIMD gemm files (gemm_avx2.cc, gemm_avx512.cc, gemm_neon.cc): the C = beta C
// case, the GEMV routes (M == 1 or N == 1) with their threading, and the split of a GEMM across
// threads. #included INSIDE each file's anonymous namespace (like ops_impl.h), after it defined:
//   constexpr long MR, NR;      microkernel tile
//   constexpr long kLanes;      floats per vector (GEMV partial sums are padded to it)
//   gemm_block(g, A, B, C, m0, m1, n0, n1)        one-thread blocked GEMM on a sub-block of C
//   gemv_dot_range(r0, r1, K, W, ldw, x, y, incy, alpha, beta)
//   gemv_axpy_rows(k0, k1, N, W, ldw, x, acc)     acc padded to kLanes
//   lmin(a, b)
// It must not be included anywhere else. The result of each C element depends only on the shape,
// never on the thread count: threads split rows or columns of C, never K.

constexpr long kGemvParallelMin = 1L << 16;  // multiply-adds below which one thread is used

// y = alpha * W(rows x K, row-major) . x + beta * y   (y strided by incy)
void gemv_dot(long rows, long K, const float* W, long ldw, const float* x, float* y, long incy, float alpha,
              float beta) {
  const int T = pool_threads();
  if (T <= 1 || rows * K < kGemvParallelMin || rows < 8) {
    gemv_dot_range(0, rows, K, W, ldw, x, y, incy, alpha, beta);
    return;
  }
  const long ntasks = T;
  long chunk = (rows + ntasks - 1) / ntasks;
  chunk = (chunk + 3) & ~3L;
  auto body = [&](long t, int) {
    const long r0 = t * chunk, r1 = lmin(rows, r0 + chunk);
    if (r0 < r1) gemv_dot_range(r0, r1, K, W, ldw, x, y, incy, alpha, beta);
  };
  parallel_tasks(ntasks, T, body);
}

// y[n*incy] = alpha * sum_k x[k] W[k*ldw + n] + beta * y[n*incy]
// Threads split the columns (each sums all of K for its columns), so the summation order, and
// so the result, does not depend on the thread count.
void gemv_axpy(long K, long N, const float* W, long ldw, const float* x, float* y, long incy, float alpha,
               float beta) {
  const int T = pool_threads();
  const long Np = (N + kLanes - 1) / kLanes * kLanes;
  const long ntasks = (T <= 1 || K * N < kGemvParallelMin || N < 8 * kLanes) ? 1 : T;
  // C11 aligned_alloc wants a size that is a multiple of the alignment (macOS returns null otherwise)
  float* part = static_cast<float*>(std::aligned_alloc(64, (sizeof(float) * Np + 64 + 63) / 64 * 64));
  if (!part) return;
  const long chunk = ((N + ntasks - 1) / ntasks + kLanes - 1) / kLanes * kLanes;
  auto body = [&](long t, int) {
    const long c0 = t * chunk, c1 = lmin(N, c0 + chunk);
    if (c0 < c1) gemv_axpy_rows(0, K, c1 - c0, W + c0, ldw, x, part + c0);
  };
  parallel_tasks(ntasks, T, body);
  for (long n = 0; n < N; ++n) {
    float v = alpha * part[n];
    if (beta != 0.0f) v += beta * y[n * incy];
    y[n * incy] = v;
  }
  std::free(part);
}

constexpr long kGemmParallelMin = 1L << 17;  // multiply-adds below which one thread is used

void gemm_drive(const GemmArgs& g) {
  const long M = g.M, N = g.N, K = g.K;
  if (M <= 0 || N <= 0 || g.batch <= 0) return;
  if (K == 0 || g.alpha == 0.0f) {  // C = beta * C (C not read when beta == 0)
    for (long bi = 0; bi < g.batch; ++bi) {
      float* C = g.C + bi * g.strideC;
      for (long i = 0; i < M; ++i)
        for (long j = 0; j < N; ++j) C[i * g.ldc + j] = g.beta == 0.0f ? 0.0f : g.beta * C[i * g.ldc + j];
    }
    return;
  }
  if (M == 1 || N == 1) {
    float* xbuf = nullptr;
    for (long bi = 0; bi < g.batch; ++bi) {
      const float* A = g.A + bi * g.strideA;
      const float* B = g.B + bi * g.strideB;
      float* C = g.C + bi * g.strideC;
      if (M == 1) {
        const float* x = A;
        if (g.transA && g.lda != 1 && K > 1) {
          if (!xbuf) xbuf = static_cast<float*>(std::malloc(sizeof(float) * K));
          if (!xbuf) return;
          for (long k = 0; k < K; ++k) xbuf[k] = A[k * g.lda];
          x = xbuf;
        }
        if (g.transB) gemv_dot(N, K, B, g.ldb, x, C, 1, g.alpha, g.beta);
        else gemv_axpy(K, N, B, g.ldb, x, C, 1, g.alpha, g.beta);
      } else {
        const float* x = B;
        if (!g.transB && g.ldb != 1 && K > 1) {
          if (!xbuf) xbuf = static_cast<float*>(std::malloc(sizeof(float) * K));
          if (!xbuf) return;
          for (long k = 0; k < K; ++k) xbuf[k] = B[k * g.ldb];
          x = xbuf;
        }
        if (!g.transA) gemv_dot(M, K, A, g.lda, x, C, g.ldc, g.alpha, g.beta);
        else gemv_axpy(K, M, A, g.lda, x, C, g.ldc, g.alpha, g.beta);
      }
    }
    std::free(xbuf);
    return;
  }
  const int T = pool_threads();
  const double work = static_cast<double>(M) * N * K * g.batch;
  if (T <= 1 || work < kGemmParallelMin) {
    for (long bi = 0; bi < g.batch; ++bi)
      gemm_block(g, g.A + bi * g.strideA, g.B + bi * g.strideB, g.C + bi * g.strideC, 0, M, 0, N);
    return;
  }
  // Split each batch item into `parts` pieces along the larger of M and N (in micro-tile units).
  long parts = g.batch >= T ? 1 : (T + g.batch - 1) / g.batch;
  const bool splitN = (N + NR - 1) / NR >= (M + MR - 1) / MR;
  const long unit = splitN ? NR : MR;
  const long dim = splitN ? N : M;
  const long units = (dim + unit - 1) / unit;
  if (parts > units) parts = units;
  const long per = ((units + parts - 1) / parts) * unit;
  const long ntasks = g.batch * parts;
  auto body = [&](long t, int) {
    const long bi = t / parts, pi = t % parts;
    const long s0 = pi * per, s1 = lmin(dim, s0 + per);
    if (s0 >= s1) return;
    const float* A = g.A + bi * g.strideA;
    const float* B = g.B + bi * g.strideB;
    float* C = g.C + bi * g.strideC;
    if (splitN) gemm_block(g, A, B, C, 0, M, s0, s1);
    else gemm_block(g, A, B, C, s0, s1, 0, N);
  };
  parallel_tasks(ntasks, T, body);
}
