// NEON kernel test driver (no Node): every ARM64 NEON kernel against the portable C++ one, on
// random and edge-case inputs, with 1 and 2 threads, outputs poisoned with NaN before each call.
// Built for aarch64 and run under qemu-user by scripts/test-neon.sh (see docs/design.md, "ARM64
// NEON"). Exact functions (packed, LUT) must match bit for bit; GEMM/GEMV within a bound derived
// from K; the fused ops within a relative tolerance (polynomial exp/log/tanh/erfc, vector
// summation order). The NEON path must give the same bits with 1 and 2 threads.
//
// Usage: neon_test [--seed N]. Prints "neon: <group> ok (...)" per group and a summary line;
// exits 1 on any failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "../cpu.h"
#include "../dispatch.h"
#include "../kernels.h"
#include "../threadpool.h"

using namespace tfree;

namespace {

int g_failures = 0;
long g_checks = 0;

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ULL + 1) {}
  uint64_t next() {  // splitmix64
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double uni() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
  float f(float lo, float hi) { return static_cast<float>(lo + (hi - lo) * uni()); }
  long i(long n) { return static_cast<long>(next() % static_cast<uint64_t>(n)); }
  float normal() {
    const double u = uni() + 1e-12, v = uni();
    return static_cast<float>(std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v));
  }
};

std::vector<float> randv(Rng& r, long n, float scale = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = scale * r.normal();
  return v;
}

bool same_bits(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return std::memcmp(&a, &b, 4) == 0;
}

void fail(const std::string& what) {
  ++g_failures;
  if (g_failures <= 40) std::printf("neon: FAIL %s\n", what.c_str());
}

// bitwise (NaN == NaN) comparison; returns the number of differing entries
long cmp_exact(const std::string& what, const float* got, const float* ref, long n) {
  ++g_checks;
  long bad = 0;
  for (long i = 0; i < n; ++i)
    if (!same_bits(got[i], ref[i])) {
      if (bad == 0) {
        char b[160];
        std::snprintf(b, sizeof b, " [%ld]: %.9g vs %.9g", i, got[i], ref[i]);
        fail(what + b);
      }
      ++bad;
    }
  return bad;
}

// |got - ref| <= tol[i] (or both NaN, or the same infinity); returns the largest |got - ref| / tol
double cmp_tol(const std::string& what, const float* got, const float* ref, const double* tol, long n) {
  ++g_checks;
  double worst = 0;
  bool reported = false;
  for (long i = 0; i < n; ++i) {
    const float g = got[i], r = ref[i];
    bool ok;
    double ratio = 0;
    if (std::isnan(r) || std::isnan(g)) {
      ok = std::isnan(r) && std::isnan(g);
    } else if (std::isinf(r) || std::isinf(g)) {
      ok = g == r;
    } else {
      const double d = std::fabs(static_cast<double>(g) - r);
      ratio = d / tol[i];
      ok = d <= tol[i];
    }
    if (ratio > worst) worst = ratio;
    if (!ok && !reported) {
      char b[200];
      std::snprintf(b, sizeof b, " [%ld]: %.9g vs %.9g (tol %.3g)", i, g, r, tol[i]);
      fail(what + b);
      reported = true;
    }
  }
  return worst;
}

double cmp_rel(const std::string& what, const float* got, const float* ref, long n, double rtol, double atol) {
  std::vector<double> tol(static_cast<size_t>(n));
  for (long i = 0; i < n; ++i) tol[i] = rtol * (std::isfinite(ref[i]) ? std::fabs(ref[i]) : 0.0) + atol;
  return cmp_tol(what, got, ref, tol.data(), n);
}

void nan_fill(float* p, long n) {
  for (long i = 0; i < n; ++i) p[i] = std::nanf("");
}

// ---------------------------------------------------------------------------------------------
// GEMM / GEMV
struct GemmCase {
  long batch, M, N, K;
  bool tA, tB;
  float alpha, beta;
  int pad;  // extra leading-dimension padding
};

// "ok" when no check failed since f0 (a group's failure count at its start)
const char* status(int f0) { return g_failures == f0 ? "ok" : "FAILED"; }

void test_gemm(Rng& rng) {
  const int f0 = g_failures;
  std::vector<GemmCase> cases = {
      {1, 1, 1, 1, false, false, 1, 0, 0},       {1, 7, 5, 3, false, false, 1, 0, 1},
      {1, 8, 12, 16, false, false, 1, 0, 0},     {1, 9, 13, 17, false, true, 1.5f, 0, 2},
      {1, 33, 29, 300, true, false, 1, 0.5f, 1}, {1, 67, 101, 259, true, true, -0.75f, 0, 0},
      {3, 17, 23, 41, false, false, 1, 1, 3},    {2, 130, 140, 70, false, true, 1, 0, 0},
      {1, 1, 300, 257, false, false, 1, 0, 0},   {1, 1, 300, 257, false, true, 2, 0.25f, 1},
      {1, 1, 77, 33, true, false, 1, 0, 2},      {1, 301, 1, 129, false, false, 1, 0, 0},
      {1, 301, 1, 129, true, true, 1, -1, 1},    {2, 5, 1, 19, true, false, 1, 0, 0},
      {1, 1, 70000, 3, false, false, 1, 0, 0},   {1, 600, 1, 301, false, false, 1, 0, 0},
      {1, 4, 6, 0, false, false, 1, 0.5f, 0},    {1, 4, 6, 9, false, false, 0, 2, 0},
      {1, 150, 200, 520, false, false, 1, 0, 0}, {1, 1, 4099, 65, false, false, 1, 0, 0},
      // at 2 threads a team GEMM (shared packed B blocks: >= 128 rows per thread, >= 2^29 multiply-adds)
      {1, 262, 3100, 670, false, true, 1, 0.5f, 1},
  };
  double worst = 0;
  long bitsSame = 0;
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const GemmCase& c = cases[ci];
    const long lda = (c.tA ? c.M : c.K) + c.pad, ldb = (c.tB ? c.K : c.N) + c.pad, ldc = c.N + c.pad;
    const long aRows = c.tA ? c.K : c.M, bRows = c.tB ? c.N : c.K;
    const long sA = aRows * lda + 1, sB = bRows * ldb + 2, sC = c.M * ldc + 3;
    std::vector<float> A = randv(rng, c.batch * sA), Bm = randv(rng, c.batch * sB), C0 = randv(rng, c.batch * sC);
    if (ci == 5) {  // non-finite inputs: an infinity in A and a NaN in B
      A[3] = INFINITY;
      Bm[5] = NAN;
    }
    GemmArgs g;
    g.batch = c.batch;
    g.transA = c.tA;
    g.transB = c.tB;
    g.M = c.M;
    g.N = c.N;
    g.K = c.K;
    g.alpha = c.alpha;
    g.beta = c.beta;
    g.A = A.data();
    g.lda = lda;
    g.strideA = sA;
    g.B = Bm.data();
    g.ldb = ldb;
    g.strideB = sB;
    g.ldc = ldc;
    g.strideC = sC;
    auto run = [&](void (*fn)(const GemmArgs&), int threads) {
      std::vector<float> C = C0;
      if (c.beta == 0.0f)  // C must not be read: poison the part it writes
        for (long b = 0; b < c.batch; ++b)
          for (long i = 0; i < c.M; ++i) nan_fill(C.data() + b * sC + i * ldc, c.N);
      pool_set_threads(threads);
      GemmArgs h = g;
      h.C = C.data();
      fn(h);
      return C;
    };
    const std::vector<float> ref = run(gemm_generic, 1), n1 = run(gemm_neon, 1), n2 = run(gemm_neon, 2);
    char name[120];
    std::snprintf(name, sizeof name, "gemm case %zu (b%ld %ldx%ldx%ld tA%d tB%d)", ci, c.batch, c.M, c.N, c.K, c.tA, c.tB);
    if (cmp_exact(std::string(name) + " 1 vs 2 threads", n1.data(), n2.data(), static_cast<long>(n1.size())) == 0) ++bitsSame;
    // bound: both kernels are within (K + 2) u (|alpha| sum |a b| + |beta c|) of the exact value
    std::vector<double> tol(n1.size(), 0.0);
    for (long b = 0; b < c.batch; ++b)
      for (long i = 0; i < c.M; ++i)
        for (long j = 0; j < c.N; ++j) {
          double s = 0;
          for (long k = 0; k < c.K; ++k) {
            const float av = c.tA ? A[b * sA + k * lda + i] : A[b * sA + i * lda + k];
            const float bv = c.tB ? Bm[b * sB + j * ldb + k] : Bm[b * sB + k * ldb + j];
            s += std::fabs(static_cast<double>(av) * bv);
          }
          const long at = b * sC + i * ldc + j;
          tol[at] = 2.0 * (c.K + 2) * 5.96e-8 * (std::fabs(c.alpha) * s + std::fabs(c.beta * C0[at])) + 1e-30;
        }
    // entries outside the written region must be untouched
    for (size_t i = 0; i < tol.size(); ++i)
      if (tol[i] == 0.0) tol[i] = 1e-30;
    worst = std::fmax(worst, cmp_tol(std::string(name) + " vs generic", n1.data(), ref.data(), tol.data(), static_cast<long>(n1.size())));
  }
  std::printf("neon: gemm %s (%zu cases incl. GEMV M=1/N=1, trans, batch, alpha/beta, K=0, alpha=0, inf/NaN inputs; "
              "max |neon-generic| = %.2f of the (K+2)u bound; 1 vs 2 threads bit-identical in %ld/%zu)\n",
              status(f0), cases.size(), worst, bitsSame, cases.size());
}

// ---------------------------------------------------------------------------------------------
// fused ops: neon(1 thread) == neon(2 threads) bitwise; neon vs generic within rtol / atol
int g_opsChecked = 0;
double g_opsWorst = 0;
void check_op(const std::string& name, long nOut, const std::function<void(const OpsTable*, float*)>& f, double rtol,
              double atol) {
  std::vector<float> ref(static_cast<size_t>(nOut)), a(static_cast<size_t>(nOut)), b(static_cast<size_t>(nOut));
  nan_fill(ref.data(), nOut);
  nan_fill(a.data(), nOut);
  nan_fill(b.data(), nOut);
  pool_set_threads(1);
  f(ops_generic(), ref.data());
  f(ops_neon(), a.data());
  pool_set_threads(2);
  f(ops_neon(), b.data());
  cmp_exact("op " + name + " 1 vs 2 threads", a.data(), b.data(), nOut);
  const double w = cmp_rel("op " + name + " vs generic", a.data(), ref.data(), nOut, rtol, atol);
  if (w > g_opsWorst) g_opsWorst = w;
  ++g_opsChecked;
}

void test_ops(Rng& rng) {
  const int f0 = g_failures;
  const long n = 70001;  // above the elementwise threading threshold, odd
  std::vector<float> x = randv(rng, n, 3.0f), y = randv(rng, n), z = randv(rng, n);
  // edge cases at the front (where the op defines them)
  const float edge[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f, 88.0f, -88.0f, 100.0f, -100.0f,
                        0.5f, -0.5f, 0.625f, -0.625f, 1.0f, -1.0f, 1e-7f, 20.0f, -20.0f};
  for (size_t i = 0; i < sizeof edge / sizeof edge[0]; ++i) x[i] = edge[i];
  std::vector<float> xpos(x);
  for (auto& v : xpos) v = std::fabs(v) + 1e-3f;
  xpos[0] = 0.0f;
  xpos[1] = INFINITY;
  xpos[2] = 1e-40f;
  xpos[3] = -1.0f;
  xpos[4] = NAN;
  const char* unames[] = {"neg", "exp", "log", "sqrt", "rsqrt", "silu", "gelu", "gelu_tanh", "tanh", "elu", "relu",
                          "sigmoid", "abs", "square", "recip"};
  for (int op = 0; op < 15; ++op) {
    const bool posOnly = op == 2 || op == 3 || op == 4;
    const float* in = posOnly ? xpos.data() : x.data();
    // polynomial exp/log/tanh/erfc vs libm: a few ulp; silu/gelu/gelu_tanh/elu also fuse the
    // multiply-adds of exp's argument (the portable path does not), amplified by exp for large |x|
    const bool composite = op == 5 || op == 6 || op == 7 || op == 9;
    check_op(std::string("unary ") + unames[op], n, [&](const OpsTable* t, float* o) { t->unary(op, in, o, n); },
             composite ? 2e-5 : 2e-6, 1e-30);
    // backward: y = forward output (generic), both accumulate and overwrite
    std::vector<float> fy(static_cast<size_t>(n));
    pool_set_threads(1);
    ops_generic()->unary(op, in, fy.data(), n);
    for (int acc = 0; acc < 2; ++acc)
      check_op(std::string("unaryBackward ") + unames[op] + (acc ? " acc" : ""), n,
               [&](const OpsTable* t, float* o) {
                 if (acc) std::memcpy(o, z.data(), sizeof(float) * n);
                 t->unaryBackward(op, in, fy.data(), y.data(), o, n, acc != 0);
               },
               2e-5, 1e-6);  // atol: cancellation near the zeros of silu'/gelu' (gy is of unit size)
  }
  // binary with broadcasting: [37, 41] op [41] (b inner stride 1, outer 0) and [37, 41] op [37, 1]
  {
    const long R = 37, Cc = 41;
    std::vector<float> A = randv(rng, R * Cc), Bv = randv(rng, R * Cc);
    A[0] = NAN;
    Bv[1] = NAN;
    Bv[2] = A[2];
    for (int op = 0; op < 8; ++op) {
      const long shape[2] = {R, Cc}, sa[2] = {Cc, 1}, sFull[2] = {Cc, 1}, sRow[2] = {0, 1}, sCol[2] = {1, 0};
      check_op("binary " + std::to_string(op) + " full", R * Cc,
               [&](const OpsTable* t, float* o) { t->binary(op, 2, shape, A.data(), sa, Bv.data(), sFull, o); }, 1e-6, 0);
      check_op("binary " + std::to_string(op) + " row", R * Cc,
               [&](const OpsTable* t, float* o) { t->binary(op, 2, shape, A.data(), sa, Bv.data(), sRow, o); }, 1e-6, 0);
      check_op("binary " + std::to_string(op) + " col", R * Cc,
               [&](const OpsTable* t, float* o) { t->binary(op, 2, shape, A.data(), sa, Bv.data(), sCol, o); }, 1e-6, 0);
    }
    const long big[2] = {300, 301}, sbA[2] = {301, 1}, sbB[2] = {1, 300};
    std::vector<float> P = randv(rng, 300 * 301), Q = randv(rng, 300 * 301);
    check_op("binary add transposed", 300 * 301,
             [&](const OpsTable* t, float* o) { t->binary(0, 2, big, P.data(), sbA, Q.data(), sbB, o); }, 0, 0);
    check_op("copyStrided transposed", 300 * 301,
             [&](const OpsTable* t, float* o) { t->copyStrided(2, big, Q.data(), sbB, o); }, 0, 0);
  }
  check_op("affine", n, [&](const OpsTable* t, float* o) { t->affine(x.data(), o, n, 1.5f, -0.25f); }, 1e-6, 1e-7);
  check_op("axpy", n,
           [&](const OpsTable* t, float* o) {
             std::memcpy(o, y.data(), sizeof(float) * n);
             t->axpy(n, -0.75f, z.data(), o);
           },
           1e-6, 1e-7);
  // reductions: sum and max(+argmax), inner == 1 and inner > 1
  for (int op = 0; op < 2; ++op)
    for (long inner : {1L, 7L, 300L}) {
      const long outer = 13, len = 259;
      std::vector<float> X = randv(rng, outer * len * inner);
      X[5] = NAN;
      check_op("reduce " + std::to_string(op) + " inner " + std::to_string(inner), outer * inner * 2,
               [&](const OpsTable* t, float* o) {
                 std::vector<int32_t> am(static_cast<size_t>(outer * inner), -1);
                 t->reduce(op, X.data(), o, outer, len, inner, op == 1 ? am.data() : nullptr);
                 for (long i = 0; i < outer * inner; ++i) o[outer * inner + i] = op == 1 ? static_cast<float>(am[i]) : 0.0f;
               },
               2e-5 * std::sqrt(static_cast<double>(len)), 1e-5);
    }
  {
    std::vector<float> X = randv(rng, 100003);
    check_op("sumSquares", 1, [&](const OpsTable* t, float* o) { o[0] = static_cast<float>(t->sumSquares(X.data(), 100003)); }, 1e-6, 0);
    check_op("readSum", 1, [&](const OpsTable* t, float* o) { o[0] = static_cast<float>(t->readSum(X.data(), 100003, 1)); }, 1e-4, 1e-2);
  }
  // row kernels: odd column counts around the vector width, one row with large values
  for (long cols : {1L, 3L, 5L, 67L, 1031L}) {
    const long rows = 37;
    std::vector<float> X = randv(rng, rows * cols, 2.0f), G = randv(rng, rows * cols), Wt = randv(rng, cols), Bb = randv(rng, cols);
    X[0] = 60.0f;
    const std::string cs = " cols " + std::to_string(cols);
    for (int lg = 0; lg < 2; ++lg) {
      check_op(std::string(lg ? "logSoftmax" : "softmax") + cs, rows * cols,
               [&](const OpsTable* t, float* o) { t->softmax(X.data(), o, rows, cols, lg != 0); }, 2e-5,
               lg ? 2e-5 : 1e-7);  // logSoftmax: x - lse cancels (|x| up to 60)
      std::vector<float> Y(static_cast<size_t>(rows * cols));
      pool_set_threads(1);
      ops_generic()->softmax(X.data(), Y.data(), rows, cols, lg != 0);
      check_op(std::string(lg ? "logSoftmaxBackward" : "softmaxBackward") + cs, rows * cols,
               [&](const OpsTable* t, float* o) { t->softmaxBackward(Y.data(), G.data(), o, rows, cols, lg != 0, false); }, 1e-4, 1e-5);
    }
    check_op("rmsnorm" + cs, rows * cols + rows,
             [&](const OpsTable* t, float* o) { t->rmsnorm(X.data(), Wt.data(), o, o + rows * cols, rows, cols, 1e-5f); }, 1e-5, 1e-6);
    std::vector<float> rstd(static_cast<size_t>(rows)), mean(static_cast<size_t>(rows)), tmp(static_cast<size_t>(rows * cols));
    pool_set_threads(1);
    ops_generic()->rmsnorm(X.data(), Wt.data(), tmp.data(), rstd.data(), rows, cols, 1e-5f);
    check_op("rmsnormBackward" + cs, rows * cols + cols,
             [&](const OpsTable* t, float* o) {
               std::memset(o + rows * cols, 0, sizeof(float) * cols);
               t->rmsnormBackward(X.data(), Wt.data(), rstd.data(), G.data(), o, o + rows * cols, rows, cols, false);
             },
             1e-4, 1e-4);
    check_op("layernorm" + cs, rows * cols + 2 * rows,
             [&](const OpsTable* t, float* o) {
               t->layernorm(X.data(), Wt.data(), Bb.data(), o, o + rows * cols, o + rows * cols + rows, rows, cols, 1e-5f);
             },
             1e-4, 1e-5);
    pool_set_threads(1);
    ops_generic()->layernorm(X.data(), Wt.data(), Bb.data(), tmp.data(), mean.data(), rstd.data(), rows, cols, 1e-5f);
    check_op("layernormBackward" + cs, rows * cols + 2 * cols,
             [&](const OpsTable* t, float* o) {
               std::memset(o + rows * cols, 0, sizeof(float) * 2 * cols);
               t->layernormBackward(X.data(), Wt.data(), mean.data(), rstd.data(), G.data(), o, o + rows * cols,
                                    o + rows * cols + cols, rows, cols, false);
             },
             1e-4, 1e-4);
    // cross-entropy (row 2 ignored)
    std::vector<int32_t> tg(static_cast<size_t>(rows));
    for (long r = 0; r < rows; ++r) tg[r] = static_cast<int32_t>(rng.i(cols));
    tg[2] = -100;
    check_op("crossEntropy" + cs, 2 * rows + 1,
             [&](const OpsTable* t, float* o) {
               o[2 * rows] = static_cast<float>(t->crossEntropy(X.data(), tg.data(), o, o + rows, rows, cols, -100));
             },
             2e-5, 1e-5);
    std::vector<float> lse(static_cast<size_t>(rows)), losses(static_cast<size_t>(rows)), gl = randv(rng, rows);
    pool_set_threads(1);
    ops_generic()->crossEntropy(X.data(), tg.data(), losses.data(), lse.data(), rows, cols, -100);
    for (int acc = 0; acc < 2; ++acc)
      check_op("crossEntropyBackward" + cs + (acc ? " acc" : ""), rows * cols,
               [&](const OpsTable* t, float* o) {
                 if (acc) std::memcpy(o, G.data(), sizeof(float) * rows * cols);
                 t->crossEntropyBackward(X.data(), tg.data(), lse.data(), gl.data(), o, rows, cols, -100, acc != 0);
               },
               2e-5, 1e-6);
  }
  // embedding
  {
    const long V = 50, dim = 67, cnt = 300;
    std::vector<float> table = randv(rng, V * dim), gy = randv(rng, cnt * dim);
    std::vector<int32_t> ids(static_cast<size_t>(cnt));
    for (auto& i : ids) i = static_cast<int32_t>(rng.i(V));
    check_op("gather", cnt * dim, [&](const OpsTable* t, float* o) { t->gather(table.data(), ids.data(), o, cnt, dim); }, 0, 0);
    check_op("scatterAdd", V * dim,
             [&](const OpsTable* t, float* o) {
               std::memcpy(o, table.data(), sizeof(float) * V * dim);
               t->scatterAdd(gy.data(), ids.data(), o, cnt, dim);
             },
             1e-5, 1e-5);
  }
  // rope (partial rotation, inverse)
  {
    const long rows = 29, heads = 3, hd = 22, rot = 14, maxPos = 64;
    std::vector<float> X = randv(rng, rows * heads * hd), cs(static_cast<size_t>(maxPos * rot / 2)), sn(cs.size());
    for (long p = 0; p < maxPos; ++p)
      for (long i = 0; i < rot / 2; ++i) {
        cs[p * rot / 2 + i] = std::cos(p * std::pow(10000.0f, -2.0f * i / rot));
        sn[p * rot / 2 + i] = std::sin(p * std::pow(10000.0f, -2.0f * i / rot));
      }
    std::vector<int32_t> pos(static_cast<size_t>(rows));
    for (auto& p : pos) p = static_cast<int32_t>(rng.i(maxPos));
    for (int inv = 0; inv < 2; ++inv)
      check_op(std::string("rope") + (inv ? " inverse" : ""), rows * heads * hd,
               [&](const OpsTable* t, float* o) {
                 t->rope(X.data(), o, pos.data(), cs.data(), sn.data(), rows, heads, hd, rot, inv != 0, 0, false);
               },
               1e-6, 1e-6);
  }
  // attention forward and backward (GQA, causal / window / plain)
  for (int mode = 0; mode < 3; ++mode) {
    AttnArgs a = {};
    a.B = 2;
    a.Hq = 4;
    a.Hkv = 2;
    a.Tq = 13;
    a.Tk = 13;
    a.D = 20;
    a.scale = 1.0f / std::sqrt(20.0f);
    a.causal = mode >= 1;
    a.window = mode == 2 ? 5 : 0;
    const long qn = a.B * a.Hq * a.Tq * a.D, kn = a.B * a.Hkv * a.Tk * a.D, rowsN = a.B * a.Hq * a.Tq;
    std::vector<float> q = randv(rng, qn), k = randv(rng, kn), v = randv(rng, kn), go = randv(rng, qn);
    a.q = q.data();
    a.k = k.data();
    a.v = v.data();
    check_op("attention mode " + std::to_string(mode), qn + rowsN,
             [&](const OpsTable* t, float* o) {
               AttnArgs b = a;
               b.outW = o;
               b.lseW = o + qn;
               t->attention(b);
             },
             2e-5, 2e-6);
    std::vector<float> out(static_cast<size_t>(qn)), lse(static_cast<size_t>(rowsN));
    {
      AttnArgs b = a;
      b.outW = out.data();
      b.lseW = lse.data();
      pool_set_threads(1);
      ops_generic()->attention(b);
    }
    check_op("attentionBackward mode " + std::to_string(mode), qn + 2 * kn,
             [&](const OpsTable* t, float* o) {
               std::memset(o, 0, sizeof(float) * (qn + 2 * kn));
               AttnArgs b = a;
               b.out = out.data();
               b.lse = lse.data();
               b.gOut = go.data();
               b.gq = o;
               b.gk = o + qn;
               b.gv = o + qn + kn;
               t->attentionBackward(b);
             },
             1e-4, 1e-5);
  }
  // optimiser
  {
    std::vector<float> p0 = randv(rng, n), g = randv(rng, n), m0 = randv(rng, n, 0.1f), v0(static_cast<size_t>(n));
    for (auto& vv : v0) vv = std::fabs(rng.normal()) * 0.01f;
    check_op("adamw", 3 * n,
             [&](const OpsTable* t, float* o) {
               std::memcpy(o, p0.data(), sizeof(float) * n);
               std::memcpy(o + n, m0.data(), sizeof(float) * n);
               std::memcpy(o + 2 * n, v0.data(), sizeof(float) * n);
               t->adamw(o, g.data(), o + n, o + 2 * n, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.1f, 0.01f, 1.0f);
             },
             1e-5, 1e-7);
  }
  // the FMA peak probe: 12 chains of 4 lanes, 2 flops each, per iteration and thread
  pool_set_threads(2);
  ++g_checks;
  if (ops_neon()->fmaRun(1000, 2) != 1000.0 * 2 * 12 * 8) fail("op fmaRun: wrong flop count");
  std::printf("neon: ops %s (%d kernel/shape checks over every %s table entry incl. NaN/inf/denormal/0 inputs; "
              "max |neon-generic| = %.2f of rtol|ref|+atol; 1 vs 2 threads bit-identical)\n",
              status(f0), g_opsChecked, ops_neon()->name, g_opsWorst);
}

// ---------------------------------------------------------------------------------------------
// packed matmul (exact function: bit-identical)
uint16_t to_bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>(b >> 16);
}

struct LevelKind {
  const char* name;
  int bits;
  std::vector<float> levels;
};

std::vector<LevelKind> level_kinds(Rng& rng) {
  std::vector<LevelKind> out;
  auto intLevels = [](int bits) {
    std::vector<float> l(static_cast<size_t>(1 << bits));
    for (int c = 0; c < (1 << bits); ++c) l[c] = static_cast<float>(c < (1 << (bits - 1)) ? c : c - (1 << bits));
    return l;
  };
  out.push_back({"int8", 8, intLevels(8)});
  out.push_back({"int4", 4, intLevels(4)});
  out.push_back({"int3", 3, intLevels(3)});
  out.push_back({"int2", 2, intLevels(2)});
  out.push_back({"bin1", 1, {-1.0f, 1.0f}});
  out.push_back({"ternary", 2, {-1.0f, 0.0f, 1.0f, 0.0f}});
  for (int bits : {1, 2, 3, 4, 8}) {
    std::vector<float> l(static_cast<size_t>(1 << bits));
    for (auto& v : l) v = rng.normal() * 0.7f;
    out.push_back({bits == 1 ? "kmeans1" : bits == 2 ? "kmeans2" : bits == 3 ? "kmeans3" : bits == 4 ? "kmeans4" : "kmeans8", bits, l});
  }
  std::vector<float> l128 = intLevels(4);
  l128[3] = 128.0f;  // integer level +128: exact in int8 mode but not an int8
  out.push_back({"int4+128", 4, l128});
  std::vector<float> big = intLevels(8);
  big[7] = 300.5f;  // 8-bit codebook that is not the identity
  out.push_back({"codebook8", 8, big});
  return out;
}

struct PackedShape {
  long M, N, K, B;
};

void test_packed(Rng& rng) {
  const int f0 = g_failures;
  const std::vector<PackedShape> shapes = {{1, 37, 128, 64}, {3, 19, 192, 64}, {5, 7, 96, 32},  {2, 9, 128, 128},
                                           {1, 1, 8, 8},     {2, 300, 512, 64}, {3, 41, 352, 32}, {4, 260, 96, 32},
                                           {1, 33, 240, 16}, {2, 70, 384, 192}};
  const std::vector<LevelKind> kinds = level_kinds(rng);
  const bool cpuDot = cpu_features().asimddp;
  long cases = 0, outs = 0;
  for (size_t si = 0; si < shapes.size(); ++si) {
    const PackedShape& s = shapes[si];
    for (const LevelKind& lk : kinds) {
      if ((s.K * lk.bits) % 8 != 0) continue;
      const long rb = s.K * lk.bits / 8, nB = s.K / s.B;
      std::vector<uint8_t> codes(static_cast<size_t>(s.N * rb));
      for (auto& c : codes) c = static_cast<uint8_t>(rng.next());
      std::vector<uint16_t> scales(static_cast<size_t>(s.N * nB));
      const bool bf16 = (si + cases) % 3 != 0;
      for (auto& v : scales) {
        const float f = std::fabs(rng.normal()) * 0.05f + 1e-3f;
        if (bf16) {
          v = to_bf16(f);
        } else {  // f16 bit pattern: random exponents incl. subnormals
          v = static_cast<uint16_t>((rng.i(30) << 10) | rng.i(1024));
        }
      }
      std::vector<float> x = randv(rng, s.M * s.K, 2.0f);
      if (si == 2 && s.M > 1) x[s.K + 3] = INFINITY;  // one non-finite group: NaN outputs for that row
      if (si == 3) x[5] = NAN;
      if (si == 4) std::fill(x.begin(), x.end(), 0.0f);  // all-zero activations: zero scale
      for (int act8 = 0; act8 < 2; ++act8) {
        PackedArgs a;
        a.M = s.M;
        a.N = s.N;
        a.K = s.K;
        a.x = x.data();
        a.codes = codes.data();
        a.bits = lk.bits;
        a.levels = lk.levels.data();
        a.scales = scales.data();
        a.scaleBf16 = bf16;
        a.B = s.B;
        a.act8 = act8 != 0;
        auto run = [&](void (*fn)(const PackedArgs&), int threads) {
          std::vector<float> o(static_cast<size_t>(s.M * s.N));
          nan_fill(o.data(), s.M * s.N);
          pool_set_threads(threads);
          PackedArgs b = a;
          b.out = o.data();
          fn(b);
          return o;
        };
        const std::vector<float> ref = run(packed_matmul_generic, 1);
        char name[160];
        for (int dot = 0; dot < (cpuDot ? 2 : 1); ++dot) {
          for (int threads = 1; threads <= 2; ++threads) {
            const std::vector<float> got = run(dot ? packed_matmul_neon_sdot : packed_matmul_neon, threads);
            std::snprintf(name, sizeof name, "packed %s M%ld N%ld K%ld B%ld %s %s %s %dT", lk.name, s.M, s.N, s.K, s.B,
                          bf16 ? "bf16" : "f16", act8 ? "act8" : "act16", dot ? "sdot" : "plain", threads);
            cmp_exact(name, got.data(), ref.data(), s.M * s.N);
            outs += s.M * s.N;
          }
        }
        ++cases;
      }
    }
  }
  std::printf("neon: packed %s (%ld cases: int8/4/3/2, bin1, ternary, kmeans1-8, int level +128, 8-bit codebook; "
              "blocks 8-192, bf16 and f16 scales, act16 and act8, %s, 1 and 2 threads; %ld outputs bit-identical to generic)\n",
              status(f0), cases, cpuDot ? "sdot and plain-NEON paths" : "plain-NEON path only (CPU has no asimddp)", outs);
}

// ---------------------------------------------------------------------------------------------
// LUT matmul (exact function: bit-identical)
void test_lut(Rng& rng) {
  const int f0 = g_failures;
  const std::vector<PackedShape> shapes = {{1, 37, 128, 64}, {3, 64, 192, 64}, {2, 100, 256, 128}, {5, 31, 64, 64},
                                           {1, 300, 512, 64}, {4, 33, 640, 320}};
  long cases = 0, outs = 0;
  for (size_t si = 0; si < shapes.size(); ++si) {
    const PackedShape& s = shapes[si];
    for (int kind = 0; kind < 5; ++kind) {
      const int bits = kind < 2 ? 1 : 2;
      std::vector<float> levels;
      if (kind == 0) levels = {-1.0f, 1.0f};
      else if (kind == 1) levels = {-0.3f, 0.8f};
      else if (kind == 2) levels = {-2.0f, -1.0f, 0.0f, 1.0f};
      else if (kind == 3) levels = {-1.0f, 0.0f, 1.0f, 0.0f};
      else levels = {-0.9f, -0.2f, 0.25f, 1.1f};
      const long tiles = (s.N + 31) / 32, rb = s.K * bits / 8, nB = s.K / s.B;
      std::vector<uint8_t> codes(static_cast<size_t>(tiles * 32 * rb));
      for (auto& c : codes) c = static_cast<uint8_t>(rng.next());
      std::vector<uint16_t> scales(static_cast<size_t>(tiles * 32 * nB));
      for (auto& v : scales) v = to_bf16(std::fabs(rng.normal()) * 0.05f + 1e-3f);
      std::vector<float> x = randv(rng, s.M * s.K);
      if (si == 1) x[70] = -INFINITY;
      if (si == 3) x[3] = NAN;
      PackedLutArgs a;
      a.M = s.M;
      a.N = s.N;
      a.K = s.K;
      a.x = x.data();
      a.codes = codes.data();
      a.bits = bits;
      a.levels = levels.data();
      a.scales = scales.data();
      a.B = s.B;
      auto run = [&](void (*fn)(const PackedLutArgs&), int threads) {
        std::vector<float> o(static_cast<size_t>(s.M * s.N));
        nan_fill(o.data(), s.M * s.N);
        pool_set_threads(threads);
        PackedLutArgs b = a;
        b.out = o.data();
        fn(b);
        return o;
      };
      const std::vector<float> ref = run(packed_lut_matmul_generic, 1);
      for (int threads = 1; threads <= 2; ++threads) {
        const std::vector<float> got = run(packed_lut_matmul_neon, threads);
        char name[120];
        std::snprintf(name, sizeof name, "lut bits%d kind%d M%ld N%ld K%ld B%ld %dT", bits, kind, s.M, s.N, s.K, s.B, threads);
        cmp_exact(name, got.data(), ref.data(), s.M * s.N);
        outs += s.M * s.N;
      }
      ++cases;
    }
  }
  std::printf("neon: lut %s (%ld cases: 1- and 2-bit, integer and fitted levels, N not a multiple of 32, blocks 64-320, "
              "non-finite activations, 1 and 2 threads; %ld outputs bit-identical to generic)\n",
              status(f0), cases, outs);
}

// ---------------------------------------------------------------------------------------------
// dispatch: what the addon would choose on this CPU (dispatch.cc, linked as in the addon)
void test_dispatch() {
  const int f0 = g_failures;
  const bool dot = cpu_features().asimddp;
  const KernelTable& k = kernels();
  ++g_checks;
  if (!cpu_features().neon || !isa_supported(Isa::neon) || isa_best() != Isa::neon) fail("dispatch: neon not the best path");
  if (k.ops != ops_neon() || std::strcmp(k.path[kOps], "neon") != 0) fail("dispatch: ops family is not neon");
  if (k.gemm != gemm_neon || std::strcmp(k.path[kGemm], "neon") != 0) fail("dispatch: gemm family is not neon");
  if (k.packed != (dot ? packed_matmul_neon_sdot : packed_matmul_neon) || std::strcmp(k.path[kPacked], dot ? "neon-sdot" : "neon") != 0)
    fail("dispatch: packed family is not " + std::string(dot ? "neon-sdot" : "neon"));
  if (k.packedLut != packed_lut_matmul_neon || std::strcmp(k.path[kPackedLut], "neon") != 0) fail("dispatch: packedLut family is not neon");
  if (isa_supported(Isa::avx2) || isa_supported(Isa::avx512)) fail("dispatch: an x86 path claims support");
  const std::string chosen = std::string(k.path[kOps]) + "/" + k.path[kGemm] + "/" + k.path[kPacked] + "/" + k.path[kPackedLut];
  if (!select_isa(Isa::generic) || kernels().ops != ops_generic() || kernels().gemm != gemm_generic ||
      kernels().packed != packed_matmul_generic)
    fail("dispatch: TFREE_ISA=generic does not give the generic kernels");
  select_isa(isa_best());
  std::printf("neon: dispatch %s (ops/gemm/packed/packedLut = %s; cap generic gives the portable kernels)\n", status(f0), chosen.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seed = 1;
  std::string groups = "dispatch,gemm,ops,packed,lut", expectDot;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seed") == 0) seed = std::strtoull(argv[i + 1], nullptr, 10);
    else if (std::strcmp(argv[i], "--groups") == 0) groups = argv[i + 1];
    else if (std::strcmp(argv[i], "--expect-dotprod") == 0) expectDot = argv[i + 1];
    else {
      std::printf("usage: neon_test [--seed N] [--groups dispatch,gemm,ops,packed,lut] [--expect-dotprod yes|no]\n");
      return 2;
    }
  }
  if (!ops_neon()) {
    std::printf("neon: not an arm64 build\n");
    return 1;
  }
  const bool dot = cpu_features().asimddp;  // cpu.cc's detection (getauxval), as dispatch.cc uses it
  std::printf("neon: cpu asimddp (sdot) %s; seed %llu; groups %s\n", dot ? "yes" : "no",
              static_cast<unsigned long long>(seed), groups.c_str());
  if (!expectDot.empty() && expectDot != (dot ? "yes" : "no")) fail("dotprod detection: expected " + expectDot);
  auto want = [&](const char* g) { return ("," + groups + ",").find(std::string(",") + g + ",") != std::string::npos; };
  Rng rng(seed);
  if (want("dispatch")) test_dispatch();
  if (want("gemm")) test_gemm(rng);
  if (want("ops")) test_ops(rng);
  if (want("packed")) test_packed(rng);
  if (want("lut")) test_lut(rng);
  if (g_failures == 0) {
    std::printf("neon: all %ld checks passed\n", g_checks);
    return 0;
  }
  std::printf("neon: %d of %ld checks FAILED\n", g_failures, g_checks);
  return 1;
}
