// The shared SGEMM driver of the SIMD gemm files (gemm_avx2.cc, gemm_avx512.cc, gemm_neon.cc): the
// blocked one-thread GEMM (packing buffers, loops over the cache blocks, edge tiles), the C = beta C
// case, the GEMV routes (M == 1 or N == 1) with their threading, and the two ways of running a GEMM
// across threads (split into independent tasks, or a team sharing the packed B blocks).
// #included INSIDE each file's anonymous namespace (like ops_impl.h), after it defined:
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

#include "scratch.h"

// Per-thread packing buffer (of the including file).
thread_local Scratch tl_pack = {nullptr, 0};

// The source of the block that the next pack_a / pack_b of a gemm_block reads: `rows` rows of
// `row_bytes` bytes, ld_bytes apart. compute_block prefetches it into L2, a few lines before each
// tile, so that the next pack reads L2 rather than L3 or DRAM: the HAT step's GEMMs (K, M, N of
// 256..2048) pack (M + N) K floats, many per multiply-add, and packing from L3 ran at half the
// speed of packing from L2 (docs/results/engine.md, 2026-12-06). Spread over the tiles, the
// prefetches cost little; a burst of them before a block stalls on the miss buffers.
struct PrefetchRegion {
  const char* base = nullptr;
  long ld_bytes = 0, rows = 0, row_bytes = 0;
};
// The op(A) block [i0, i0 + mc) x [p0, p0 + kc) (transA: stored as rows p, columns i) and the op(B)
// block [p0, p0 + kc) x [j0, j0 + nc) (transB: rows j, columns p), as PrefetchRegions.
inline PrefetchRegion region_a(const GemmArgs& g, const float* A, long i0, long mc, long p0, long kc) {
  if (g.transA) return {reinterpret_cast<const char*>(A + p0 * g.lda + i0), 4 * g.lda, kc, 4 * mc};
  return {reinterpret_cast<const char*>(A + i0 * g.lda + p0), 4 * g.lda, mc, 4 * kc};
}
inline PrefetchRegion region_b(const GemmArgs& g, const float* B, long p0, long kc, long j0, long nc) {
  if (g.transB) return {reinterpret_cast<const char*>(B + j0 * g.ldb + p0), 4 * g.ldb, nc, 4 * kc};
  return {reinterpret_cast<const char*>(B + p0 * g.ldb + j0), 4 * g.ldb, kc, 4 * nc};
}
// Walks a PrefetchRegion line by line (a row's lines from its first byte to one line past its
// last: the row need not start on a line), `per` lines per step(), so that `steps` steps cover it.
// A prefetch never faults, so the line past a row's end may be outside the array.
struct Prefetcher {
  PrefetchRegion r;
  long row = 0, off = 0, per = 0;
  void start(const PrefetchRegion& reg, long steps) {
    r = reg;
    row = 0;
    off = 0;
    const long lines = r.rows * ((r.row_bytes + 63) / 64 + 1);
    per = steps > 0 ? (lines + steps - 1) / steps : 0;
  }
  TF_AI void step() {
    for (long k = 0; k < per && row < r.rows; ++k) {
      __builtin_prefetch(r.base + row * r.ld_bytes + off, 0, 2);  // x86: prefetcht1 (to L2)
      off += 64;
      if (off >= r.row_bytes + 63) {
        off = 0;
        ++row;
      }
    }
  }
};

// C[ic : ic+mc, jc : jc+nc] (+)= the packed A block Ap (mc x kc) times the packed B block Bp (kc x
// nc), tile by tile. An edge tile (fewer than MR rows or NR columns) is computed whole into a
// scratch tile and its valid part written back, so every element gets the same operations as in a
// full tile. pf (if any) takes a step before each tile.
void compute_block(const GemmArgs& g, float* C, const float* Ap, const float* Bp, long ic, long mc, long jc, long nc,
                   long kc, float beta, Prefetcher* pf = nullptr) {
  alignas(64) float tmp[MR * NR];
  auto tile = [&](long ir, long mr, long jr, long nr) {
    if (pf) pf->step();
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
  if (kAPanelOuter) {
    for (long ir = 0; ir < mc; ir += MR)
      for (long jr = 0; jr < nc; jr += NR) tile(ir, lmin(MR, mc - ir), jr, lmin(NR, nc - jr));
  } else {
    for (long jr = 0; jr < nc; jr += NR)
      for (long ir = 0; ir < mc; ir += MR) tile(ir, lmin(MR, mc - ir), jr, lmin(NR, nc - jr));
  }
}

// One single-threaded blocked GEMM on the sub-block rows [m0, m1) x cols [n0, n1) of one batch
// item.
void gemm_block(const GemmArgs& g, const float* A, const float* B, float* C, long m0, long m1, long n0, long n1) {
  const long K = g.K;
  float* buf = scratch_floats(tl_pack, MC * KC + KC * (NC + NR) + 64);
  if (!buf) tfree::out_of_memory("SGEMM", 4.0 * (MC * KC + KC * (NC + NR) + 64));
  float* Ap = buf;
  float* Bp = buf + MC * KC + 16;
  Prefetcher pf;
  for (long jc = n0; jc < n1; jc += NC) {
    const long nc = lmin(NC, n1 - jc);
    for (long pc = 0; pc < K; pc += KC) {
      const long kc = lmin(KC, K - pc);
      const float beta = pc == 0 ? g.beta : 1.0f;
      pack_b(B, g.ldb, g.transB, pc, kc, jc, nc, Bp);
      for (long ic = m0; ic < m1; ic += MC) {
        const long mc = lmin(MC, m1 - ic);
        pack_a(A, g.lda, g.transA, ic, mc, pc, kc, Ap);
        // prefetch what the next pack reads: the next A block, else the next B block (the next
        // k block, else the next column block), else nothing
        const long tiles = ((mc + MR - 1) / MR) * ((nc + NR - 1) / NR);
        if (ic + MC < m1) {
          pf.start(region_a(g, A, ic + MC, lmin(MC, m1 - ic - MC), pc, kc), tiles);
        } else if (pc + KC < K) {
          pf.start(region_b(g, B, pc + KC, lmin(KC, K - pc - KC), jc, nc), tiles);
        } else if (jc + NC < n1) {
          pf.start(region_b(g, B, 0, lmin(KC, K), jc + NC, lmin(NC, n1 - jc - NC)), tiles);
        } else {
          pf.start(PrefetchRegion{}, 0);
        }
        compute_block(g, C, Ap, Bp, ic, mc, jc, nc, kc, beta, &pf);
      }
    }
  }
}

// The shared packed-B buffers of a team GEMM: the calling thread's.
thread_local Scratch tl_team = {nullptr, 0};

// The shared state of a team GEMM call (gemm_team), on the calling thread's stack. Every counter
// is tagged with the block it counts (tag = block index + 1, in the high bits): block q uses slot
// q & 1, so a thread that finds the tag of block q - 2 in a slot counts from 0 (the first to add
// rewrites the tag), and one that finds a later tag knows that block q is over.
constexpr int kTeamMax = 64;
struct TeamSync {
  std::atomic<uint64_t> packClaim[2], packDone[2], compDone[2];  // tag << 32 | count
  std::atomic<uint64_t> rows[2][kTeamMax];  // per thread: tag (16 bits) << 48 | front << 24 | back, in MR-row panels
};
constexpr uint64_t kOver = ~0ULL >> 1;
// The count of block `tag` that v holds: 0 while v holds an earlier block, kOver once a later one.
inline uint64_t team_count(uint64_t v, uint32_t tag) {
  const uint32_t wt = static_cast<uint32_t>(v >> 32);
  if (wt == tag) return v & 0xffffffffULL;
  return static_cast<int32_t>(wt - tag) > 0 ? kOver : 0;
}
// Adds n to block tag's count in w and returns the count before (kOver, adding nothing, once a later block is there).
inline uint64_t team_add(std::atomic<uint64_t>& w, uint32_t tag, uint64_t n) {
  uint64_t v = w.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t c = team_count(v, tag);
    if (c == kOver) return kOver;
    if (w.compare_exchange_weak(v, (static_cast<uint64_t>(tag) << 32) | (c + n), std::memory_order_acq_rel,
                                std::memory_order_relaxed))
      return c;
  }
}
inline void team_wait(std::atomic<uint64_t>& w, uint32_t tag, uint64_t target) {
  for (long it = 0; team_count(w.load(std::memory_order_acquire), tag) < target; ++it) pool_relax(it);
}
// Claims a run [p0, p1) of the row panels [f0, b0) that thread v owns in block tag: from the front
// (v itself: MC rows at a time, halving towards the end) or from the back (a thread that finished
// its own, kStealPanels at a time). False when none are left.
constexpr uint64_t kOwnPanels = MC / MR, kStealPanels = 4;
inline bool team_claim_rows(std::atomic<uint64_t>& w, uint32_t tag, uint64_t f0, uint64_t b0, bool own, long& p0,
                            long& p1) {
  const uint64_t t16 = tag & 0xffff;
  uint64_t v = w.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t wt = v >> 48;
    uint64_t f = f0, b = b0;
    if (wt == t16) {
      f = (v >> 24) & 0xffffff;
      b = v & 0xffffff;
    } else if (static_cast<int16_t>(static_cast<uint16_t>(wt - t16)) > 0) {
      return false;
    }
    if (f >= b) return false;
    const uint64_t left = b - f;
    uint64_t take = own ? (left >= 2 * kOwnPanels ? kOwnPanels : (left + 1) / 2) : kStealPanels;
    if (take < kStealPanels) take = kStealPanels;
    if (take > left) take = left;
    const uint64_t nf = own ? f + take : f, nb = own ? b : b - take;
    if (w.compare_exchange_weak(v, (t16 << 48) | (nf << 24) | nb, std::memory_order_acq_rel, std::memory_order_relaxed)) {
      p0 = static_cast<long>(own ? f : nb);
      p1 = static_cast<long>(own ? nf : b);
      return true;
    }
  }
}

// Thread `tid` of a team of `nteam` (pool_run_team) on one batch item: the team shares each packed
// B block (kc x nc), which its threads pack together (groups of 64 columns, taken from a shared
// counter), and computes the rows against it, each thread packing the A blocks of its rows. So
// nothing is packed twice (the split GEMM of gemm_drive packs the whole of the operand it does not
// split in every thread). Each thread owns an MR-aligned slice of the rows; once done with it, it
// takes row panels from the end of the others' slices, so a thread that the OS holds back (a loaded
// machine) delays the others only by the run it holds. B blocks alternate between two buffers
// (Bsh, Bsh + bstride): a block is packed into its buffer once every row of the block two before
// is computed, and computed once all of its groups are packed and every row of the block before is
// computed (a C element gets its k blocks in order, never two at once). q counts the blocks of the whole call
// (it runs on across the batch items). Which thread computes a tile does not change its bits.
void gemm_team(const GemmArgs& g, const float* A, const float* B, float* C, float* Bsh, long bstride, int tid,
               int nteam, long& q, TeamSync& ts) {
  const long M = g.M, N = g.N, K = g.K;
  const long P = (M + MR - 1) / MR, per = (P + nteam - 1) / nteam;  // row panels, per thread
  constexpr long kGroup = 4 * NR;  // columns of B packed at a time (pack_b's four panels)
  float* Ap = scratch_floats(tl_pack, MC * KC + 64);
  if (!Ap) tfree::out_of_memory("SGEMM", 4.0 * (MC * KC + 64));
  for (long jc = 0; jc < N; jc += NC) {
    const long nc = lmin(NC, N - jc);
    const uint64_t G = static_cast<uint64_t>((nc + kGroup - 1) / kGroup);
    for (long pc = 0; pc < K; pc += KC, ++q) {
      const long kc = lmin(KC, K - pc);
      const float beta = pc == 0 ? g.beta : 1.0f;
      const int s = static_cast<int>(q & 1);
      const uint32_t tag = static_cast<uint32_t>(q + 1);
      float* Bp = Bsh + s * bstride;
      if (q >= 2) team_wait(ts.compDone[s], tag - 2, static_cast<uint64_t>(P));  // buffer free
      for (;;) {
        const uint64_t c = team_add(ts.packClaim[s], tag, 1);
        if (c >= G) break;
        const long j0 = static_cast<long>(c) * kGroup;
        pack_b(B, g.ldb, g.transB, pc, kc, jc + j0, lmin(kGroup, nc - j0), Bp + j0 * kc);
        team_add(ts.packDone[s], tag, 1);
      }
      team_wait(ts.packDone[s], tag, G);
      // every row of the block before done: each C element gets its blocks in order, one at a time
      if (q >= 1) team_wait(ts.compDone[s ^ 1], tag - 1, static_cast<uint64_t>(P));
      for (int k = 0; k < nteam; ++k) {
        const int v = (tid + k) % nteam;
        const uint64_t f0 = static_cast<uint64_t>(lmin(P, v * per)), b0 = static_cast<uint64_t>(lmin(P, (v + 1) * per));
        long p0, p1;
        while (team_claim_rows(ts.rows[s][v], tag, f0, b0, k == 0, p0, p1)) {
          const long ic = p0 * MR, mc = lmin(M, p1 * MR) - ic;
          pack_a(A, g.lda, g.transA, ic, mc, pc, kc, Ap);
          compute_block(g, C, Ap, Bp, ic, mc, jc, nc, kc, beta);
          team_add(ts.compDone[s], tag, static_cast<uint64_t>(p1 - p0));
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
  if (!part) tfree::out_of_memory("GEMV", 4.0 * (Np + 64));
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
// A team GEMM (gemm_team) for one batch item needs at least this many rows per thread, columns,
// and multiply-adds: every thread must have started before any can pass the first barrier, whereas
// the split GEMM's tasks go to whichever thread is there (at 256^3 and 512^3 on the loaded Zen 3
// the team ran at 0.54x and 0.89x of the split, at 1024^3 1.06x).
constexpr long kTeamMinRows = 128;
constexpr long kTeamMinCols = 128;
constexpr double kTeamMinWork = 1L << 29;

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
          if (!xbuf) tfree::out_of_memory("GEMV", 4.0 * K);
          for (long k = 0; k < K; ++k) xbuf[k] = A[k * g.lda];
          x = xbuf;
        }
        if (g.transB) gemv_dot(N, K, B, g.ldb, x, C, 1, g.alpha, g.beta);
        else gemv_axpy(K, N, B, g.ldb, x, C, 1, g.alpha, g.beta);
      } else {
        const float* x = B;
        if (!g.transB && g.ldb != 1 && K > 1) {
          if (!xbuf) xbuf = static_cast<float*>(std::malloc(sizeof(float) * K));
          if (!xbuf) tfree::out_of_memory("GEMV", 4.0 * K);
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
  // Both M and N large: a team shares the packed B blocks and splits the rows (gemm_team).
  if (g.batch < T && M >= kTeamMinRows * T && M < MR * (1L << 24) && N >= kTeamMinCols &&
      static_cast<double>(M) * N * K >= kTeamMinWork) {
    const long bstride = KC * (lmin(NC, N) + NR) + 16;
    float* Bsh = scratch_floats(tl_team, 2 * bstride);
    if (Bsh) {
      TeamSync ts{};
      auto team = [&](int tid, int nteam) {
        long q = 0;
        for (long bi = 0; bi < g.batch; ++bi) {
          const float* A = g.A + bi * g.strideA;
          const float* B = g.B + bi * g.strideB;
          float* C = g.C + bi * g.strideC;
          if (nteam <= 1) gemm_block(g, A, B, C, 0, M, 0, N);
          else gemm_team(g, A, B, C, Bsh, bstride, tid, nteam, q, ts);
        }
      };
      parallel_team(T < kTeamMax ? T : kTeamMax, team);
      return;
    }
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
