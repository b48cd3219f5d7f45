// The shared SGEMM driver of the SIMD gemm files (gemm_avx2.cc, gemm_avx512.cc, gemm_neon.cc): the
// blocked one-thread GEMM (packing buffers, loops over the cache blocks, edge tiles), the C = beta C
// case, the GEMV routes (M == 1 or N == 1) with their threading, and the split of a GEMM across
// threads. #included INSIDE each file's anonymous namespace (like ops_impl.h), after it defined:
//   constexpr long MR, NR;      microkernel tile
//   constexpr long KC, MC, NC;  cache blocks (k, rows of packed A, columns of packed B)
//   constexpr bool kAPanelOuter; loop order inside a block: true = each A micro-panel against every
//                               B micro-panel of the block, false = each B micro-panel against every A one
//   constexpr long kLanes;      floats per vector (GEMV partial sums are padded to it)
//   pack_a(A, lda, transA, i0, mc, p0, kc, Ap)    op(A) block -> MR-row panels (zero padded)
//   pack_b(B, ldb, transB, p0, kc, j0, nc, Bp)    op(B) block -> NR-column panels (zero padded)
//   ukernel(kc, a, b, c, ldc, alpha, beta)        C[MR x NR] = alpha a.b + beta C (C not read when beta == 0)
//   gemv_dot_range(r0, r1, K, W, ldw, x, y, incy, alpha, beta)
//   gemv_axpy_rows(k0, k1, N, W, ldw, x, acc)     acc padded to kLanes
//   lmin(a, b)
// It must not be included anywhere else. The result of each C element depends only on the shape,
// never on the thread count: threads split rows or columns of C, never K.

// Per-thread packing buffer (of the including file), grown on demand and never freed.
thread_local float* tl_pack = nullptr;
thread_local size_t tl_pack_cap = 0;

float* pack_scratch(size_t nfloats) {
  if (tl_pack_cap < nfloats) {
    if (tl_pack) std::free(tl_pack);
    const size_t bytes = ((nfloats * sizeof(float) + 63) / 64) * 64;
    tl_pack = static_cast<float*>(std::aligned_alloc(64, bytes));
    tl_pack_cap = tl_pack ? nfloats : 0;
  }
  return tl_pack;
}

// One single-threaded blocked GEMM on the sub-block rows [m0, m1) x cols [n0, n1) of one batch
// item. An edge tile (fewer than MR rows or NR columns) is computed whole into a scratch tile and
// its valid part written back, so every element gets the same operations as in a full tile.
void gemm_block(const GemmArgs& g, const float* A, const float* B, float* C, long m0, long m1, long n0, long n1) {
  const long K = g.K;
  float* buf = pack_scratch(MC * KC + KC * (NC + NR) + 64);
  if (!buf) return;
  float* Ap = buf;
  float* Bp = buf + MC * KC + 16;
  alignas(64) float tmp[MR * NR];
  auto tile = [&](long ic, long ir, long mr, long jc, long jr, long nr, long kc, float beta) {
    float* cp = C + (ic + ir) * g.ldc + jc + jr;
    if (mr == MR && nr == NR) {
      ukernel(kc, Ap + ir * kc, Bp + jr * kc, cp, g.ldc, g.alpha, beta);
      return;
    }
    ukernel(kc, Ap + ir * kc, Bp + jr * kc, tmp, NR, g.alpha, 0.0f);
    for (long i = 0; i < mr; ++i) {
      float* cr = cp + i * g.ldc;
      const float* tr = tmp + i * NR;
      if (beta == 0.0f) {
        for (long j = 0; j < nr; ++j) cr[j] = tr[j];
      } else {
        for (long j = 0; j < nr; ++j) cr[j] = tr[j] + beta * cr[j];
      }
    }
  };
  for (long jc = n0; jc < n1; jc += NC) {
    const long nc = lmin(NC, n1 - jc);
    for (long pc = 0; pc < K; pc += KC) {
      const long kc = lmin(KC, K - pc);
      const float beta = pc == 0 ? g.beta : 1.0f;
      pack_b(B, g.ldb, g.transB, pc, kc, jc, nc, Bp);
      for (long ic = m0; ic < m1; ic += MC) {
        const long mc = lmin(MC, m1 - ic);
        pack_a(A, g.lda, g.transA, ic, mc, pc, kc, Ap);
        if (kAPanelOuter) {
          for (long ir = 0; ir < mc; ir += MR)
            for (long jr = 0; jr < nc; jr += NR) tile(ic, ir, lmin(MR, mc - ir), jc, jr, lmin(NR, nc - jr), kc, beta);
        } else {
          for (long jr = 0; jr < nc; jr += NR)
            for (long ir = 0; ir < mc; ir += MR) tile(ic, ir, lmin(MR, mc - ir), jc, jr, lmin(NR, nc - jr), kc, beta);
        }
      }
    }
  }
}

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
