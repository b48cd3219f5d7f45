// N-API glue of the tfree native kernels (plain C node_api.h, no node-addon-api).
//
// Every entry point lists its positional arguments once with the typed helper of napi_args.h
// (TypeError naming the argument for a wrong type), checks that every typed array is long enough
// for the sizes/offsets/strides it is given (RangeError), so a bad call throws instead of
// corrupting memory, and then calls the implementation that dispatch.cc chose for its kernel
// family at load time (TFREE_ISA, CPU features).
#include <node_api.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if defined(__linux__) || defined(__APPLE__)
#include <dlfcn.h>
#define TFREE_HAVE_DLOPEN 1
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "cpu.h"
#include "dispatch.h"
#include "kernels.h"
#include "napi_args.h"
#include "threadpool.h"

using namespace tfree;
using namespace tfree::napi;

namespace {

const OpsTable& ops() { return *kernels().ops; }

// ---------------------------------------------------------------------------------------------
// shape helpers

// Checks that a strided view (offset, shape, strides) stays inside its array.
bool check_view(Call& c, const char* name, const F32& arr, long off, const I32& shape, const I32& strides,
                const char* sname) {
  if (strides.n != shape.n)
    return c.range_error("argument '%s' must have one entry per dim of shape (%ld), has %ld", sname, shape.n, strides.n);
  double lo = off, hi = off;
  for (long d = 0; d < shape.n; ++d) {
    const double ext = double(shape.p[d] - 1) * strides.p[d];
    if (ext < 0) lo += ext;
    else hi += ext;
  }
  if (lo < 0) return c.range_error("argument '%s': offset/strides reach index %.0f < 0", name, lo);
  return c.need(name, arr, hi + 1);
}

bool check_shape(Call& c, const I32& shape, double& total) {
  if (shape.n > 8) return c.range_error("argument 'shape' has rank > 8");
  total = 1;
  for (long d = 0; d < shape.n; ++d) {
    if (shape.p[d] < 0) return c.range_error("argument 'shape' has a negative size");
    total *= shape.p[d];
  }
  return true;
}

// Drops size-1 dims and merges dims that are contiguous for every operand. Returns the rank (>= 1).
int simplify(const I32& shape, const int32_t* s0, const int32_t* s1, long* oshape, long* o0, long* o1) {
  int r = 0;
  for (long d = 0; d < shape.n; ++d) {
    if (shape.p[d] == 1) continue;
    const long n = shape.p[d], a = s0[d], b = s1 ? s1[d] : 0;
    if (r > 0 && o0[r - 1] == a * n && (!s1 || o1[r - 1] == b * n)) {
      oshape[r - 1] *= n;
      o0[r - 1] = a;
      if (s1) o1[r - 1] = b;
      continue;
    }
    oshape[r] = n;
    o0[r] = a;
    o1[r] = b;
    ++r;
  }
  if (r == 0) {
    oshape[0] = 1;
    o0[0] = 0;
    o1[0] = 0;
    r = 1;
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// kernels

napi_value Gemm(napi_env env, napi_callback_info info) {
  Call c(env, info, "gemm");
  GemmArgs g;
  long aOff, bOff, cOff;
  F32 A, Bm, C;
  TRY(c.args(arg("batch", g.batch), arg("transA", g.transA), arg("transB", g.transB), arg("M", g.M), arg("N", g.N),
             arg("K", g.K), arg("alpha", g.alpha), arg("A", A), arg("aOff", aOff), arg("lda", g.lda),
             arg("strideA", g.strideA), arg("B", Bm), arg("bOff", bOff), arg("ldb", g.ldb), arg("strideB", g.strideB),
             arg("beta", g.beta), arg("C", C), arg("cOff", cOff), arg("ldc", g.ldc), arg("strideC", g.strideC)));
  if (g.batch == 0 || g.M == 0 || g.N == 0) return undef(env);
  // stored shapes: A is M x K (K x M when transA), B is K x N (N x K when transB)
  const long aRows = g.transA ? g.K : g.M, aCols = g.transA ? g.M : g.K;
  const long bRows = g.transB ? g.N : g.K, bCols = g.transB ? g.K : g.N;
  if (g.K > 0) {
    if (aRows > 1 && g.lda < aCols)
      return c.range_error("lda (%ld) must be >= %ld (the stored row length of A)", g.lda, aCols), nullptr;
    if (bRows > 1 && g.ldb < bCols)
      return c.range_error("ldb (%ld) must be >= %ld (the stored row length of B)", g.ldb, bCols), nullptr;
    TRY(c.need("A", A, aOff + double(g.batch - 1) * g.strideA + double(aRows - 1) * g.lda + aCols));
    TRY(c.need("B", Bm, bOff + double(g.batch - 1) * g.strideB + double(bRows - 1) * g.ldb + bCols));
  }
  if (g.M > 1 && g.ldc < g.N) return c.range_error("ldc (%ld) must be >= N (%ld)", g.ldc, g.N), nullptr;
  TRY(c.need("C", C, cOff + double(g.batch - 1) * g.strideC + double(g.M - 1) * g.ldc + g.N));
  g.A = A.p + (g.K > 0 ? aOff : 0);
  g.B = Bm.p + (g.K > 0 ? bOff : 0);
  g.C = C.p + cOff;
  kernels().gemm(g);
  return undef(env);
}

napi_value Unary(napi_env env, napi_callback_info info) {
  Call c(env, info, "unary");
  int op;
  F32 x, out;
  long n;
  TRY(c.args(arg("op", op, 14), arg("x", x), arg("out", out), arg("n", n)));
  TRY(c.need("x", x, n) && c.need("out", out, n));
  ops().unary(op, x.p, out.p, n);
  return undef(env);
}

napi_value UnaryBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "unaryBackward");
  int op;
  F32 x, y, gy, gx;
  long n;
  bool acc;
  TRY(c.args(arg("op", op, 14), arg("x", x), arg("y", y), arg("gy", gy), arg("gx", gx), arg("n", n),
             arg("accumulate", acc)));
  TRY(c.need("x", x, n) && c.need("y", y, n) && c.need("gy", gy, n) && c.need("gx", gx, n));
  ops().unaryBackward(op, x.p, y.p, gy.p, gx.p, n, acc);
  return undef(env);
}

napi_value Swiglu(napi_env env, napi_callback_info info) {
  Call c(env, info, "swiglu");
  F32 gate, up, out;
  long n;
  TRY(c.args(arg("gate", gate), arg("up", up), arg("out", out), arg("n", n)));
  TRY(c.need("gate", gate, n) && c.need("up", up, n) && c.need("out", out, n));
  ops().swiglu(gate.p, up.p, out.p, n);
  return undef(env);
}

napi_value SwigluBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "swigluBackward");
  F32 gate, up, g, gGate, gUp;
  long n;
  TRY(c.args(arg("gate", gate), arg("up", up), arg("g", g), arg("gGate", gGate), arg("gUp", gUp), arg("n", n)));
  TRY(c.need("gate", gate, n) && c.need("up", up, n) && c.need("g", g, n) && c.need("gGate", gGate, n) &&
      c.need("gUp", gUp, n));
  ops().swigluBackward(gate.p, up.p, g.p, gGate.p, gUp.p, n);
  return undef(env);
}

napi_value Binary(napi_env env, napi_callback_info info) {
  Call c(env, info, "binary");
  int op;
  I32 shape, as, bs;
  F32 a, b, out;
  long aOff, bOff;
  TRY(c.args(arg("op", op, 7), arg("shape", shape), arg("a", a), arg("aOff", aOff), arg("aStrides", as), arg("b", b),
             arg("bOff", bOff), arg("bStrides", bs), arg("out", out)));
  double total;
  TRY(check_shape(c, shape, total));
  if (total == 0) return undef(env);
  TRY(c.need("out", out, total));
  TRY(check_view(c, "a", a, aOff, shape, as, "aStrides"));
  TRY(check_view(c, "b", b, bOff, shape, bs, "bStrides"));
  long sh[8], sa[8], sb[8];
  const int rank = simplify(shape, as.p, bs.p, sh, sa, sb);
  ops().binary(op, rank, sh, a.p + aOff, sa, b.p + bOff, sb, out.p);
  return undef(env);
}

napi_value CopyStrided(napi_env env, napi_callback_info info) {
  Call c(env, info, "copyStrided");
  I32 shape, xs;
  F32 x, out;
  long xOff;
  TRY(c.args(arg("shape", shape), arg("x", x), arg("xOff", xOff), arg("xStrides", xs), arg("out", out)));
  double total;
  TRY(check_shape(c, shape, total));
  if (total == 0) return undef(env);
  TRY(c.need("out", out, total));
  TRY(check_view(c, "x", x, xOff, shape, xs, "xStrides"));
  long sh[8], sx[8], dummy[8];
  const int rank = simplify(shape, xs.p, nullptr, sh, sx, dummy);
  ops().copyStrided(rank, sh, x.p + xOff, sx, out.p);
  return undef(env);
}

napi_value Affine(napi_env env, napi_callback_info info) {
  Call c(env, info, "affine");
  F32 a, out;
  long n;
  float alpha, beta;
  TRY(c.args(arg("a", a), arg("out", out), arg("n", n), arg("alpha", alpha), arg("beta", beta)));
  if (alpha != 0.0f) TRY(c.need("a", a, n));
  TRY(c.need("out", out, n));
  ops().affine(a.p, out.p, n, alpha, beta);
  return undef(env);
}

napi_value Axpy(napi_env env, napi_callback_info info) {
  Call c(env, info, "axpy");
  long n;
  float alpha;
  F32 x, y;
  TRY(c.args(arg("n", n), arg("alpha", alpha), arg("x", x), arg("y", y)));
  TRY(c.need("x", x, n) && c.need("y", y, n));
  ops().axpy(n, alpha, x.p, y.p);
  return undef(env);
}

napi_value Reduce(napi_env env, napi_callback_info info) {
  Call c(env, info, "reduce");
  int op;
  F32 x, out;
  I32n am;
  long outer, len, inner;
  TRY(c.args(arg("op", op, 1), arg("x", x), arg("out", out), arg("outer", outer), arg("len", len), arg("inner", inner),
             arg("argmax", am)));
  TRY(c.need("x", x, double(outer) * len * inner) && c.need("out", out, double(outer) * inner));
  if (am.p) TRY(c.need("argmax", am, double(outer) * inner));
  ops().reduce(op, x.p, out.p, outer, len, inner, op == 1 ? am.p : nullptr);
  return undef(env);
}

napi_value SumSquares(napi_env env, napi_callback_info info) {
  Call c(env, info, "sumSquares");
  F32 x;
  long n;
  TRY(c.args(arg("x", x), arg("n", n)));
  TRY(c.need("x", x, n));
  return number(env, ops().sumSquares(x.p, n));
}

napi_value Softmax(napi_env env, napi_callback_info info) {
  Call c(env, info, "softmax");
  F32 x, out;
  long rows, cols;
  bool lg;
  TRY(c.args(arg("x", x), arg("out", out), arg("rows", rows), arg("cols", cols), arg("log", lg)));
  TRY(c.need("x", x, double(rows) * cols) && c.need("out", out, double(rows) * cols));
  ops().softmax(x.p, out.p, rows, cols, lg);
  return undef(env);
}

napi_value SoftmaxBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "softmaxBackward");
  F32 y, gy, gx;
  long rows, cols;
  bool lg, acc;
  TRY(c.args(arg("y", y), arg("gy", gy), arg("gx", gx), arg("rows", rows), arg("cols", cols), arg("log", lg),
             arg("accumulate", acc)));
  const double n = double(rows) * cols;
  TRY(c.need("y", y, n) && c.need("gy", gy, n) && c.need("gx", gx, n));
  ops().softmaxBackward(y.p, gy.p, gx.p, rows, cols, lg, acc);
  return undef(env);
}

napi_value Rmsnorm(napi_env env, napi_callback_info info) {
  Call c(env, info, "rmsnorm");
  F32 x, w, out, rstd;
  long rows, cols;
  float eps;
  TRY(c.args(arg("x", x), arg("w", w), arg("out", out), arg("rstd", rstd), arg("rows", rows), arg("cols", cols),
             arg("eps", eps)));
  const double n = double(rows) * cols;
  TRY(c.need("x", x, n) && c.need("w", w, cols) && c.need("out", out, n) && c.need("rstd", rstd, rows));
  ops().rmsnorm(x.p, w.p, out.p, rstd.p, rows, cols, eps);
  return undef(env);
}

napi_value RmsnormBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "rmsnormBackward");
  F32 x, w, rstd, gy, gx;
  F32n gw;
  long rows, cols;
  bool acc;
  TRY(c.args(arg("x", x), arg("w", w), arg("rstd", rstd), arg("gy", gy), arg("gx", gx), arg("gw", gw),
             arg("rows", rows), arg("cols", cols), arg("accumulate", acc)));
  const double n = double(rows) * cols;
  TRY(c.need("x", x, n) && c.need("w", w, cols) && c.need("rstd", rstd, rows) && c.need("gy", gy, n) &&
      c.need("gx", gx, n));
  if (gw.p) TRY(c.need("gw", gw, cols));
  ops().rmsnormBackward(x.p, w.p, rstd.p, gy.p, gx.p, gw.p, rows, cols, acc);
  return undef(env);
}

napi_value Layernorm(napi_env env, napi_callback_info info) {
  Call c(env, info, "layernorm");
  F32 x, out, mean, rstd;
  F32n w, b;
  long rows, cols;
  float eps;
  TRY(c.args(arg("x", x), arg("w", w), arg("b", b), arg("out", out), arg("mean", mean), arg("rstd", rstd),
             arg("rows", rows), arg("cols", cols), arg("eps", eps)));
  const double n = double(rows) * cols;
  TRY(c.need("x", x, n));
  if (w.p) TRY(c.need("w", w, cols));
  if (b.p) TRY(c.need("b", b, cols));
  TRY(c.need("out", out, n) && c.need("mean", mean, rows) && c.need("rstd", rstd, rows));
  ops().layernorm(x.p, w.p, b.p, out.p, mean.p, rstd.p, rows, cols, eps);
  return undef(env);
}

napi_value LayernormBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "layernormBackward");
  F32 x, mean, rstd, gy, gx;
  F32n w, gw, gb;
  long rows, cols;
  bool acc;
  TRY(c.args(arg("x", x), arg("w", w), arg("mean", mean), arg("rstd", rstd), arg("gy", gy), arg("gx", gx),
             arg("gw", gw), arg("gb", gb), arg("rows", rows), arg("cols", cols), arg("accumulate", acc)));
  const double n = double(rows) * cols;
  TRY(c.need("x", x, n));
  if (w.p) TRY(c.need("w", w, cols));
  TRY(c.need("mean", mean, rows) && c.need("rstd", rstd, rows) && c.need("gy", gy, n) && c.need("gx", gx, n));
  if (gw.p) TRY(c.need("gw", gw, cols));
  if (gb.p) TRY(c.need("gb", gb, cols));
  ops().layernormBackward(x.p, w.p, mean.p, rstd.p, gy.p, gx.p, gw.p, gb.p, rows, cols, acc);
  return undef(env);
}

napi_value Gather(napi_env env, napi_callback_info info) {
  Call c(env, info, "gather");
  F32 table, out;
  I32 ids;
  long n, dim;
  TRY(c.args(arg("table", table), arg("ids", ids), arg("out", out), arg("n", n), arg("dim", dim)));
  if (n == 0 || dim == 0) return undef(env);
  TRY(c.need("ids", ids, n) && c.need("out", out, double(n) * dim));
  TRY(c.ids_in_range("ids", ids.p, n, table.n / dim));
  ops().gather(table.p, ids.p, out.p, n, dim);
  return undef(env);
}

napi_value ScatterAdd(napi_env env, napi_callback_info info) {
  Call c(env, info, "scatterAdd");
  F32 gy, gt;
  I32 ids;
  long n, dim;
  TRY(c.args(arg("gy", gy), arg("ids", ids), arg("gtable", gt), arg("n", n), arg("dim", dim)));
  if (n == 0 || dim == 0) return undef(env);
  TRY(c.need("ids", ids, n) && c.need("gy", gy, double(n) * dim));
  TRY(c.ids_in_range("ids", ids.p, n, gt.n / dim));
  ops().scatterAdd(gy.p, ids.p, gt.p, n, dim);
  return undef(env);
}

napi_value Rope(napi_env env, napi_callback_info info) {
  Call c(env, info, "rope");
  F32 x, out, cs, sn;
  I32 pos;
  long rows, heads, headDim, rotDim, seqLen = 0;
  bool inv, toHM = false;
  TRY(c.args(arg("x", x), arg("out", out), arg("pos", pos), arg("cos", cs), arg("sin", sn), arg("rows", rows),
             arg("heads", heads), arg("headDim", headDim), arg("rotDim", rotDim), arg("inverse", inv),
             opt("seqLen", seqLen), opt("toHeadMajor", toHM)));
  if (rotDim % 2 != 0 || rotDim > headDim) return c.range_error("argument 'rotDim' must be even and <= headDim"), nullptr;
  if (seqLen < 0 || (seqLen > 0 && rows % seqLen != 0)) {
    return c.range_error("argument 'seqLen' must be 0 or divide rows"), nullptr;
  }
  if (seqLen > 0 && x.p == out.p && rows * heads * headDim > 0) {
    return c.range_error("out must not alias x when seqLen > 0 (the layouts differ)"), nullptr;
  }
  const double n = double(rows) * heads * headDim;
  if (n == 0) return undef(env);
  TRY(c.need("x", x, n) && c.need("out", out, n) && c.need("pos", pos, rows));
  // cos/sin tables are [maxPos, rotDim / 2] (see ropeTables in src/tensor/ops/fused.ts)
  const long tw = rotDim / 2;
  if (tw > 0) {
    TRY(c.ids_in_range("pos", pos.p, rows, cs.n / tw));
    TRY(c.need("sin", sn, double(cs.n / tw) * tw));
  }
  ops().rope(x.p, out.p, pos.p, cs.p, sn.p, rows, heads, headDim, rotDim, inv, seqLen, toHM);
  return undef(env);
}

// The 14 arguments shared by attention and attentionBackward, from position `first`; q,k,v,out,lse
// are checked against the sizes they give.
bool attn_params(Call& c, size_t first, AttnArgs& a) {
  double w;
  I32n qPos, kPos, qSeg, kSeg;
  U8n mask;
  if (!c.args_from(first, arg("B", a.B), arg("Hq", a.Hq), arg("Hkv", a.Hkv, 1), arg("Tq", a.Tq), arg("Tk", a.Tk),
                   arg("D", a.D), arg("scale", a.scale), arg("causal", a.causal), arg("window", w), arg("qPos", qPos),
                   arg("kPos", kPos), arg("qSeg", qSeg), arg("kSeg", kSeg), arg("mask", mask)))
    return false;
  a.window = w > 0 ? (w > 1e15 ? static_cast<long>(1e15) : static_cast<long>(std::ceil(w))) : 0;
  if (a.Hq % a.Hkv != 0) return c.range_error("Hq must be a multiple of Hkv");
  if (qPos.p && !c.need("qPos", qPos, double(a.B) * a.Tq)) return false;
  if (kPos.p && !c.need("kPos", kPos, double(a.B) * a.Tk)) return false;
  if (qSeg.p && !c.need("qSeg", qSeg, double(a.B) * a.Tq)) return false;
  if (kSeg.p && !c.need("kSeg", kSeg, double(a.B) * a.Tk)) return false;
  if (mask.p && !c.need("mask", mask, double(a.B) * a.Tq * a.Tk)) return false;
  a.qPos = qPos.p;
  a.kPos = kPos.p;
  a.qSeg = qSeg.p;
  a.kSeg = kSeg.p;
  a.mask = mask.p;
  return true;
}

bool attn_common(Call& c, size_t first, AttnArgs& a, const F32& q, const F32& k, const F32& v, const F32& out,
                 const F32& lse) {
  if (!attn_params(c, first, a)) return false;
  const double nq = double(a.B) * a.Hq * a.Tq * a.D, nk = double(a.B) * a.Hkv * a.Tk * a.D;
  return c.need("q", q, nq) && c.need("k", k, nk) && c.need("v", v, nk) && c.need("out", out, nq) &&
         c.need("lse", lse, double(a.B) * a.Hq * a.Tq);
}

// The optional stored scores at position i: used when this call keeps any (attentionScores > 0),
// then at least that long; ignored otherwise.
bool attn_scores(Call& c, size_t i, AttnArgs& a) {
  F32n scores;
  if (!c.args_from(i, arg("scores", scores))) return false;
  a.scores = nullptr;
  if (!scores.p) return true;
  const long n = ops().attentionScores(a);
  if (n <= 0) return true;
  if (!c.need("scores", scores, double(n))) return false;
  a.scores = scores.p;
  return true;
}

napi_value AttentionScores(napi_env env, napi_callback_info info) {
  Call c(env, info, "attentionScoresSize");
  AttnArgs a = {};
  TRY(c.arity(14));
  TRY(attn_params(c, 0, a));
  return number(env, static_cast<double>(ops().attentionScores(a)));
}

napi_value Attention(napi_env env, napi_callback_info info) {
  Call c(env, info, "attention");
  F32 q, k, v, out, lse;
  AttnArgs a = {};
  TRY(c.arity(19));
  TRY(c.args_from(0, arg("q", q), arg("k", k), arg("v", v), arg("out", out), arg("lse", lse)));
  TRY(attn_common(c, 5, a, q, k, v, out, lse));
  TRY(attn_scores(c, 19, a));
  a.q = q.p;
  a.k = k.p;
  a.v = v.p;
  a.outW = out.p;
  a.lseW = lse.p;
  ops().attention(a);
  return undef(env);
}

napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "attentionBackward");
  F32 q, k, v, out, lse, go, gq, gk, gv;
  AttnArgs a = {};
  TRY(c.arity(23));
  TRY(c.args_from(0, arg("q", q), arg("k", k), arg("v", v), arg("out", out), arg("lse", lse), arg("gOut", go),
                  arg("gq", gq), arg("gk", gk), arg("gv", gv)));
  TRY(attn_common(c, 9, a, q, k, v, out, lse));
  const double nq = double(a.B) * a.Hq * a.Tq * a.D, nk = double(a.B) * a.Hkv * a.Tk * a.D;
  TRY(c.need("gOut", go, nq) && c.need("gq", gq, nq) && c.need("gk", gk, nk) && c.need("gv", gv, nk));
  TRY(attn_scores(c, 23, a));
  a.q = q.p;
  a.k = k.p;
  a.v = v.p;
  a.out = out.p;
  a.lse = lse.p;
  a.gOut = go.p;
  a.gq = gq.p;
  a.gk = gk.p;
  a.gv = gv.p;
  ops().attentionBackward(a);
  return undef(env);
}

bool check_targets(Call& c, const int32_t* t, long rows, long cols, long ignoreIndex) {
  for (long r = 0; r < rows; ++r)
    if (t[r] != ignoreIndex && (t[r] < 0 || t[r] >= cols))
      return c.range_error("argument 'targets'[%ld] = %d is out of range [0, %ld) and not ignoreIndex", r, t[r], cols);
  return true;
}

napi_value CrossEntropy(napi_env env, napi_callback_info info) {
  Call c(env, info, "crossEntropy");
  F32 logits, losses, lse;
  I32 targets;
  long rows, cols, ign;
  TRY(c.args(arg("logits", logits), arg("targets", targets), arg("losses", losses), arg("lse", lse), arg("rows", rows),
             arg("cols", cols), arg("ignoreIndex", ign, -2147483648L)));
  TRY(c.need("logits", logits, double(rows) * cols) && c.need("targets", targets, rows) &&
      c.need("losses", losses, rows) && c.need("lse", lse, rows));
  TRY(check_targets(c, targets.p, rows, cols, ign));
  return number(env, static_cast<double>(ops().crossEntropy(logits.p, targets.p, losses.p, lse.p, rows, cols, ign)));
}

napi_value CrossEntropyBackward(napi_env env, napi_callback_info info) {
  Call c(env, info, "crossEntropyBackward");
  F32 logits, lse, gl, glogits;
  I32 targets;
  long rows, cols, ign;
  bool acc;
  TRY(c.args(arg("logits", logits), arg("targets", targets), arg("lse", lse), arg("gLoss", gl),
             arg("glogits", glogits), arg("rows", rows), arg("cols", cols), arg("ignoreIndex", ign, -2147483648L),
             arg("accumulate", acc)));
  TRY(c.need("logits", logits, double(rows) * cols) && c.need("targets", targets, rows) && c.need("lse", lse, rows) &&
      c.need("gLoss", gl, rows) && c.need("glogits", glogits, double(rows) * cols));
  TRY(check_targets(c, targets.p, rows, cols, ign));
  ops().crossEntropyBackward(logits.p, targets.p, lse.p, gl.p, glogits.p, rows, cols, ign, acc);
  return undef(env);
}

napi_value Adamw(napi_env env, napi_callback_info info) {
  Call c(env, info, "adamw");
  F32 p, g, m, v;
  long n;
  float lr, b1, b2, eps, wd, bc1, bc2, gs = 1.0f;
  TRY(c.args(arg("p", p), arg("g", g), arg("m", m), arg("v", v), arg("n", n), arg("lr", lr), arg("b1", b1),
             arg("b2", b2), arg("eps", eps), arg("wd", wd), arg("bc1", bc1), arg("bc2", bc2), opt("gradScale", gs)));
  TRY(c.need("p", p, n) && c.need("g", g, n) && c.need("m", m, n) && c.need("v", v, n));
  ops().adamw(p.p, g.p, m.p, v.p, n, lr, b1, b2, eps, wd, bc1, bc2, gs);
  return undef(env);
}

// packedMatmul(M, N, K, x, xOff, codes, bits, levels, scales, scaleBf16, blockSize, out, outOff[, act8])
napi_value PackedMatmul(napi_env env, napi_callback_info info) {
  Call c(env, info, "packedMatmul");
  PackedArgs a;
  long xOff, outOff, bits;
  F32 x, levels, out;
  U8 codes;
  U16 scales;
  a.act8 = false;
  TRY(c.args(arg("M", a.M), arg("N", a.N), arg("K", a.K), arg("x", x), arg("xOff", xOff), arg("codes", codes),
             arg("bits", bits, 1), arg("levels", levels), arg("scales", scales), arg("scaleBf16", a.scaleBf16),
             arg("blockSize", a.B, 8), arg("out", out), arg("outOff", outOff), opt("act8", a.act8)));
  if (bits != 1 && bits != 2 && bits != 3 && bits != 4 && bits != 8)
    return c.range_error("bits must be 1, 2, 3, 4 or 8, got %ld", bits), nullptr;
  if (a.B % 8 != 0 || a.K % a.B != 0)
    return c.range_error("blockSize (%ld) must be a multiple of 8 that divides K (%ld)", a.B, a.K), nullptr;
  a.bits = static_cast<int>(bits);
  TRY(c.need("levels", levels, double(1L << bits)) && c.need("x", x, xOff + double(a.M) * a.K) &&
      c.need("codes", codes, double(a.N) * (a.K * bits / 8)) && c.need("scales", scales, double(a.N) * (a.K / a.B)) &&
      c.need("out", out, outOff + double(a.M) * a.N));
  if (a.M == 0 || a.N == 0) return undef(env);
  a.x = x.p + xOff;
  a.codes = codes.p;
  a.levels = levels.p;
  a.scales = scales.p;
  a.out = out.p + outOff;
  if (a.K == 0) {
    for (long i = 0; i < a.M * a.N; ++i) a.out[i] = 0.0f;
    return undef(env);
  }
  kernels().packed(a);
  return undef(env);
}

// packedLutMatmul(M, N, K, x, xOff, codes, bits, levels, scales, blockSize, out, outOff): codes and
// bf16 scales in the row-interleaved layout of PackedLutArgs (kernels.h)
napi_value PackedLutMatmul(napi_env env, napi_callback_info info) {
  Call c(env, info, "packedLutMatmul");
  PackedLutArgs a;
  long xOff, outOff, bits;
  F32 x, levels, out;
  U8 codes;
  U16 scales;
  TRY(c.args(arg("M", a.M), arg("N", a.N), arg("K", a.K), arg("x", x), arg("xOff", xOff), arg("codes", codes),
             arg("bits", bits, 1), arg("levels", levels), arg("scales", scales), arg("blockSize", a.B, 64),
             arg("out", out), arg("outOff", outOff)));
  if (bits != 1 && bits != 2) return c.range_error("bits must be 1 or 2, got %ld", bits), nullptr;
  if (a.B % 64 != 0 || a.K % a.B != 0)
    return c.range_error("blockSize (%ld) must be a multiple of 64 that divides K (%ld)", a.B, a.K), nullptr;
  a.bits = static_cast<int>(bits);
  const double tiles = double((a.N + 31) / 32);
  TRY(c.need("levels", levels, double(1L << bits)) && c.need("x", x, xOff + double(a.M) * a.K) &&
      c.need("codes", codes, tiles * 32 * (a.K * bits / 8)) && c.need("scales", scales, tiles * 32 * (a.K / a.B)) &&
      c.need("out", out, outOff + double(a.M) * a.N));
  if (a.M == 0 || a.N == 0) return undef(env);
  a.x = x.p + xOff;
  a.codes = codes.p;
  a.levels = levels.p;
  a.scales = scales.p;
  a.out = out.p + outOff;
  if (a.K == 0) {
    for (long i = 0; i < a.M * a.N; ++i) a.out[i] = 0.0f;
    return undef(env);
  }
  kernels().packedLut(a);
  return undef(env);
}

// ---------------------------------------------------------------------------------------------
// threads, paths, CPU features, probes

napi_value GetThreads(napi_env env, napi_callback_info) { return number(env, pool_threads()); }

napi_value SetThreads(napi_env env, napi_callback_info info) {
  Call c(env, info, "setThreads");
  long n;
  TRY(c.args(arg("n", n, 1)));
  pool_set_threads(static_cast<int>(n > 256 ? 256 : n));
  return undef(env);
}

// bf16Matmul(M, N, K, x, xOff, w, out, outOff, xBf16): out = x W^T, W [N, K] bf16 bit patterns
// (Bf16Args in kernels.h)
napi_value Bf16Matmul(napi_env env, napi_callback_info info) {
  Call c(env, info, "bf16Matmul");
  Bf16Args a;
  long xOff, outOff;
  F32 x, out;
  U16 w;
  TRY(c.args(arg("M", a.M), arg("N", a.N), arg("K", a.K), arg("x", x), arg("xOff", xOff), arg("w", w), arg("out", out),
             arg("outOff", outOff), arg("xBf16", a.xBf16)));
  TRY(c.need("x", x, xOff + double(a.M) * a.K) && c.need("w", w, double(a.N) * a.K) &&
      c.need("out", out, outOff + double(a.M) * a.N));
  if (a.M == 0 || a.N == 0) return undef(env);
  a.x = x.p + xOff;
  a.w = w.p;
  a.out = out.p + outOff;
  if (a.K == 0) {
    for (long i = 0; i < a.M * a.N; ++i) a.out[i] = 0.0f;
    return undef(env);
  }
  kernels().bf16(a);
  return undef(env);
}

// quantizeBlocks(w, rows, cols, kind, bits, blockSize, scaleMode, scaleBf16, eps, mid, centre, codes,
// scales) -> index of the first non-finite weight or -1 (QuantArgs in kernels.h)
napi_value QuantizeBlocks(napi_env env, napi_callback_info info) {
  Call c(env, info, "quantizeBlocks");
  QuantArgs a;
  F32 w;
  F64n mid;
  U8n codes;
  U16 scales;
  long kind, bits;
  long scaleMode;
  TRY(c.args(arg("w", w), arg("rows", a.rows), arg("cols", a.cols), arg("kind", kind), arg("bits", bits, 1), arg("blockSize", a.B, 1),
             arg("scaleMode", scaleMode), arg("scaleBf16", a.scaleBf16), arg("eps", a.eps), arg("mid", mid), arg("centre", a.centre),
             arg("codes", codes), arg("scales", scales)));
  if (kind > 3) return c.range_error("argument 'kind' must be 0..3, got %ld", kind), nullptr;
  if (bits > 8) return c.range_error("argument 'bits' must be 1..8, got %ld", bits), nullptr;
  if (scaleMode > 2) return c.range_error("argument 'scaleMode' must be 0..2, got %ld", scaleMode), nullptr;
  if (a.cols % a.B != 0) return c.range_error("block size %ld must divide cols %ld", a.B, a.cols), nullptr;
  if ((a.cols * bits) % 8 != 0) return c.range_error("rows of %ld %ld-bit codes do not end on a byte", a.cols, bits), nullptr;
  if (kind == 1 && codes.p != nullptr && mid.p == nullptr) return c.range_error("k-means codes need the midpoints"), nullptr;
  TRY(c.need("w", w, double(a.rows) * a.cols) && c.need("scales", scales, double(a.rows) * (a.cols / a.B)));
  if (codes.p != nullptr) TRY(c.need("codes", codes, double(a.rows) * (a.cols * bits / 8)));
  if (kind == 1 && mid.p != nullptr) TRY(c.need("mid", mid, double((1L << bits) - 1)));
  a.kind = static_cast<int>(kind);
  a.bits = static_cast<int>(bits);
  a.scaleMode = static_cast<int>(scaleMode);
  a.w = w.p;
  a.mid = mid.p;
  a.codes = codes.p;
  a.scales = scales.p;
  return number(env, static_cast<double>(quantize_blocks(a)));
}

// widenBf16(src, out, n): out[i] = float32 of the bf16 bit pattern src[i]
napi_value WidenBf16(napi_env env, napi_callback_info info) {
  Call c(env, info, "widenBf16");
  U16 src;
  F32 out;
  long n;
  TRY(c.args(arg("src", src), arg("out", out), arg("n", n)));
  TRY(c.need("src", src, double(n)) && c.need("out", out, double(n)));
  widen_bf16(src.p, out.p, n);
  return undef(env);
}

// kmeansLloyd(x, wt, n, c, k, maxIter, tol, assign) -> iterations (kmeans_lloyd in kernels.h)
napi_value KmeansLloyd(napi_env env, napi_callback_info info) {
  Call c(env, info, "kmeansLloyd");
  F64 x, wt, cen;
  I32 assign;
  long n, k, maxIter;
  double tol;
  TRY(c.args(arg("x", x), arg("wt", wt), arg("n", n), arg("c", cen), arg("k", k, 1), arg("maxIter", maxIter), arg("tol", tol),
             arg("assign", assign)));
  TRY(c.need("x", x, double(n)) && c.need("wt", wt, double(n)) && c.need("c", cen, double(k)) && c.need("assign", assign, double(n)));
  if (n == 0) return number(env, 0);
  return number(env, static_cast<double>(kmeans_lloyd(x.p, wt.p, n, cen.p, k, maxIter, tol, assign.p)));
}

// a family name argument of setKernelPath / familyPaths (gemm, packed, packedLut or bf16)
bool family_arg(Call& c, size_t i, Family& out) {
  char buf[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(c.env, c.argv[i], buf, sizeof buf, &len) != napi_ok) return c.type_error("family", "a string");
  for (Family f : {kGemm, kPacked, kPackedLut, kBf16})
    if (std::strcmp(buf, kFamilyNames[f]) == 0) return out = f, true;
  return c.range_error("argument 'family' must be gemm, packed, packedLut or bf16, got \"%s\"", buf);
}

// familyPaths(family): the implementations of that family this CPU and build run, best first
napi_value FamilyPaths(napi_env env, napi_callback_info info) {
  Call c(env, info, "familyPaths");
  Family fam;
  TRY(c.arity(1) && family_arg(c, 0, fam));
  const char* names[16];
  const int n = family_paths(fam, names, 16);
  napi_value arr;
  napi_create_array(env, &arr);
  for (int i = 0; i < n; ++i) napi_set_element(env, arr, static_cast<uint32_t>(i), string(env, names[i]));
  return arr;
}

// setKernelPath(family, name): forces one implementation of the gemm, packed, packedLut or bf16 family
// (tests, bench; the next setIsa undoes it); returns the name
napi_value SetKernelPath(napi_env env, napi_callback_info info) {
  Call c(env, info, "setKernelPath");
  Family fam;
  TRY(c.arity(2) && family_arg(c, 0, fam));
  char buf[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, c.argv[1], buf, sizeof buf, &len) != napi_ok) return c.type_error("path", "a string"), nullptr;
  if (!select_path(fam, buf)) return c.range_error("the %s family has no path \"%s\" that this CPU and build run", kFamilyNames[fam], buf), nullptr;
  return string(env, kernels().path[fam]);
}

// simd(): the path of the ops family ("avx512", "avx2", "generic", "neon"; the ISA level in force
// when nothing was capped; the GEMM's own path is cpuInfo().paths.gemm)
napi_value Simd(napi_env env, napi_callback_info) { return string(env, kernels().path[kOps]); }

// Reads an ISA name argument; throws for an unknown name or one this CPU / build lacks.
bool isa_arg(Call& c, size_t i, Isa& out) {
  char buf[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(c.env, c.argv[i], buf, sizeof buf, &len) != napi_ok)
    return c.type_error("isa", "a string");
  if (!isa_parse(buf, &out))
    return c.range_error("argument 'isa' must be generic, avx2, avx512 or neon, got \"%s\"", buf);
  if (!isa_supported(out))
    return c.range_error("this CPU or build lacks the %s path (best here: %s)", isa_name(out), isa_name(isa_best()));
  return true;
}

// setIsa(name) / setSimd(name): caps the kernel paths at `name` (tests, bench); returns simd().
napi_value SetIsa(napi_env env, napi_callback_info info) {
  Call c(env, info, "setIsa");
  Isa want;
  TRY(c.arity(1) && isa_arg(c, 0, want));
  select_isa(want);
  return Simd(env, info);
}

void set_prop(napi_env env, napi_value obj, const char* key, napi_value v) { napi_set_named_property(env, obj, key, v); }
napi_value boolean(napi_env env, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

// cpuInfo(): { arch, vendor, brand, family (x86 cpuid family, else 0), features: string[], isas: string[] (the paths this CPU and
// build can run, lowest first), best, isa (the cap in force), paths: { family: path }, envError }
napi_value CpuInfo(napi_env env, napi_callback_info) {
  const CpuFeatures& f = cpu_features();
  const KernelTable& t = kernels();
  napi_value o, feats, isas, paths;
  napi_create_object(env, &o);
  set_prop(env, o, "arch", string(env, f.arch));
  set_prop(env, o, "vendor", string(env, f.vendor));
  set_prop(env, o, "brand", string(env, f.brand));
  set_prop(env, o, "family", number(env, f.family));
  char list[512];
  cpu_feature_list(f, list, sizeof list);
  napi_create_array(env, &feats);
  uint32_t k = 0;
  for (char* s = list; *s;) {
    char* e = std::strchr(s, ' ');
    const size_t n = e ? static_cast<size_t>(e - s) : std::strlen(s);
    napi_value v;
    napi_create_string_utf8(env, s, n, &v);
    napi_set_element(env, feats, k++, v);
    s += n + (e ? 1 : 0);
  }
  set_prop(env, o, "features", feats);
  napi_create_array(env, &isas);
  k = 0;
  for (Isa i : {Isa::generic, Isa::avx2, Isa::neon, Isa::avx512})
    if (isa_supported(i)) napi_set_element(env, isas, k++, string(env, isa_name(i)));
  set_prop(env, o, "isas", isas);
  set_prop(env, o, "best", string(env, isa_name(isa_best())));
  set_prop(env, o, "isa", string(env, isa_name(t.cap)));
  napi_create_object(env, &paths);
  for (int fam = 0; fam < kFamilies; ++fam) set_prop(env, paths, kFamilyNames[fam], string(env, t.path[fam]));
  set_prop(env, o, "paths", paths);
  set_prop(env, o, "envError", string(env, isa_env_error()));
  set_prop(env, o, "amxPermitted", boolean(env, f.amxPermitted));
  return o;
}

// fmaPeak(iters, threads[, isa]): GFLOP/s of 12 independent FMA chains per thread on the ops table
// of `isa` (default: the one in force).
napi_value FmaPeak(napi_env env, napi_callback_info info) {
  Call c(env, info, "fmaPeak");
  long iters, threads;
  TRY(c.args(arg("iters", iters, 1), arg("threads", threads, 1)));
  const OpsTable* t = &ops();
  if (c.argc > 2) {
    napi_valuetype vt;
    if (napi_typeof(env, c.argv[2], &vt) == napi_ok && vt != napi_undefined) {
      Isa isa;
      TRY(isa_arg(c, 2, isa));
      t = table_for(isa).ops;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  const double flops = t->fmaRun(iters, static_cast<int>(threads > 256 ? 256 : threads));
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return number(env, flops / sec / 1e9);
}

// int8Peak(iters, threads): { isa, gops } of 16 vpdpbusd chains per thread with the widest int8
// dot-product instruction this CPU has (AVX-512 VNNI, else AVX-VNNI), or null when it has none.
napi_value Int8Peak(napi_env env, napi_callback_info info) {
  Call c(env, info, "int8Peak");
  long iters, threads;
  TRY(c.args(arg("iters", iters, 1), arg("threads", threads, 1)));
  const CpuFeatures& f = cpu_features();
  double (*probe)(long, int) = nullptr;
  const char* isa = "";
  if (f.avx512vnni && f.avx512f) {
    probe = int8_peak_avx512vnni;
    isa = "avx512vnni";
  } else if (f.avxvnni) {
    probe = int8_peak_avxvnni;
    isa = "avxvnni";
  }
  napi_value r;
  if (!probe) {
    napi_get_null(env, &r);
    return r;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const double ops = probe(iters, static_cast<int>(threads > 256 ? 256 : threads));
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  napi_create_object(env, &r);
  set_prop(env, r, "isa", string(env, isa));
  set_prop(env, r, "gops", number(env, ops / sec / 1e9));
  return r;
}

napi_value ReadSum(napi_env env, napi_callback_info info) {
  Call c(env, info, "readSum");
  F32 x;
  long threads;
  TRY(c.args(arg("x", x), arg("threads", threads, 1)));
  return number(env, ops().readSum(x.p, x.n, static_cast<int>(threads > 256 ? 256 : threads)));
}

// weightBuffer(bytes): a zeroed Uint8Array for a long-lived weight layout that a kernel streams on
// every call (the LUT kernel's interleaved codes and scales). On Linux, from 1 MiB on: its own
// anonymous mapping, started on a 2 MiB boundary, with its whole 2 MiB pages marked MADV_HUGEPAGE,
// so that transparent huge pages back them where the system allows it ("madvise" or "always"):
// one TLB entry per 2 MiB instead of 512, where a cold call otherwise takes a page walk every 4 KiB
// of the code stream (cold 4096 x 4096 LUT calls 8-14 % faster in a C++ A/B; docs/results/engine.md).
// The tail beyond the last whole 2 MiB stays on 4 KiB pages: no memory is added to the buffer.
// Elsewhere, or when the mapping fails, a plain ArrayBuffer (zeroed too).
#if defined(__linux__)
void unmap_weights(napi_env env, void* data, void* hint) {
  const size_t len = reinterpret_cast<size_t>(hint);
  munmap(data, len);
  int64_t left;
  napi_adjust_external_memory(env, -static_cast<int64_t>(len), &left);
}
#endif

napi_value WeightBuffer(napi_env env, napi_callback_info info) {
  Call c(env, info, "weightBuffer");
  long bytes;
  TRY(c.args(arg("bytes", bytes)));
  napi_value ab = nullptr, out;
  const size_t n = static_cast<size_t>(bytes);
#if defined(__linux__)
  constexpr size_t kHuge = size_t(2) << 20, kPage = 4096;
  if (n >= (size_t(1) << 20)) {
    const size_t len = (n + kPage - 1) / kPage * kPage;
    void* m = mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      char* base = static_cast<char*>(m);
      char* p = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(base) + kHuge - 1) & ~(kHuge - 1));
      if (p > base) munmap(base, static_cast<size_t>(p - base));                        // the gap before
      munmap(p + len, static_cast<size_t>(base + len + kHuge - (p + len)));             // and after (> 0)
      if (len >= kHuge) madvise(p, len / kHuge * kHuge, MADV_HUGEPAGE);  // a hint: failure leaves 4 KiB pages
      if (napi_create_external_arraybuffer(env, p, n, unmap_weights, reinterpret_cast<void*>(len), &ab) != napi_ok) {
        munmap(p, len);
        ab = nullptr;
        bool pending = false;
        napi_is_exception_pending(env, &pending);
        if (pending) {
          napi_value e;
          napi_get_and_clear_last_exception(env, &e);
        }
      } else {
        int64_t total;  // (V8 counts this memory towards its GC heuristics)
        napi_adjust_external_memory(env, static_cast<int64_t>(len), &total);
      }
    }
  }
#endif
  if (!ab) {
    void* data;
    if (napi_create_arraybuffer(env, n, &data, &ab) != napi_ok) return nullptr;
    if (n) std::memset(data, 0, n);
  }
  if (napi_create_typedarray(env, napi_uint8_array, n, ab, 0, &out) != napi_ok) return nullptr;
  return out;
}

napi_value Noop(napi_env env, napi_callback_info info) {
  Call c(env, info, "noop");
  F32 x;
  TRY(c.args(arg("x", x)));
  return undef(env);
}

// ---------------------------------------------------------------------------------------------
// OpenBLAS through dlopen (never linked): for benchmarks only.

typedef void (*cblas_sgemm_t)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                              float*, int);
typedef void (*cblas_sgemv_t)(int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
typedef void (*set_threads_t)(int);
typedef char* (*get_config_t)(void);
typedef char* (*get_corename_t)(void);
struct Blas {
  bool tried = false;
  void* h = nullptr;
  cblas_sgemm_t sgemm = nullptr;
  cblas_sgemv_t sgemv = nullptr;
  set_threads_t setThreads = nullptr;
  get_config_t getConfig = nullptr;
  get_corename_t getCorename = nullptr;
};
Blas g_blas;

bool blas_load() {
#ifdef TFREE_HAVE_DLOPEN
  if (!g_blas.tried) {
    g_blas.tried = true;
    const char* names[] = {"libopenblas.so.0", "libopenblas.so", "libopenblas.dylib"};
    for (const char* nm : names) {
      g_blas.h = dlopen(nm, RTLD_NOW | RTLD_LOCAL);
      if (g_blas.h) break;
    }
    if (g_blas.h) {
      g_blas.sgemm = reinterpret_cast<cblas_sgemm_t>(dlsym(g_blas.h, "cblas_sgemm"));
      g_blas.sgemv = reinterpret_cast<cblas_sgemv_t>(dlsym(g_blas.h, "cblas_sgemv"));
      g_blas.setThreads = reinterpret_cast<set_threads_t>(dlsym(g_blas.h, "openblas_set_num_threads"));
      g_blas.getConfig = reinterpret_cast<get_config_t>(dlsym(g_blas.h, "openblas_get_config"));
      g_blas.getCorename = reinterpret_cast<get_corename_t>(dlsym(g_blas.h, "openblas_get_corename"));
    }
  }
  return g_blas.sgemm && g_blas.sgemv;
#else
  return false;
#endif
}

// openblasLoad(): "OpenBLAS <config> (core <name>)" or null
napi_value OpenblasLoad(napi_env env, napi_callback_info) {
  if (!blas_load()) {
    napi_value r;
    napi_get_null(env, &r);
    return r;
  }
  char buf[400];
  std::snprintf(buf, sizeof buf, "OpenBLAS %s%s%s%s", g_blas.getConfig ? g_blas.getConfig() : "(unknown config)",
                g_blas.getCorename ? " (core " : "", g_blas.getCorename ? g_blas.getCorename() : "",
                g_blas.getCorename ? ")" : "");
  return string(env, buf);
}

bool blas_need(Call& c) {
  if (blas_load()) return true;
  napi_throw_error(c.env, "ERR_TFREE_NO_OPENBLAS", "tfree native: OpenBLAS is not available (dlopen failed)");
  return false;
}

napi_value OpenblasSgemm(napi_env env, napi_callback_info info) {
  Call c(env, info, "openblasSgemm");
  long M, N, K, threads;
  F32 A, Bm, C;
  TRY(c.args(arg("M", M), arg("N", N), arg("K", K), arg("A", A), arg("B", Bm), arg("C", C), arg("threads", threads, 1)));
  if (M > 2147483647L || N > 2147483647L || K > 2147483647L) return c.range_error("sizes exceed int range"), nullptr;
  TRY(c.need("A", A, double(M) * K) && c.need("B", Bm, double(K) * N) && c.need("C", C, double(M) * N));
  TRY(blas_need(c));
  if (g_blas.setThreads) g_blas.setThreads(static_cast<int>(threads));
  g_blas.sgemm(101, 111, 111, int(M), int(N), int(K), 1.0f, A.p, int(K > 0 ? K : 1), Bm.p, int(N > 0 ? N : 1), 0.0f,
               C.p, int(N > 0 ? N : 1));
  return undef(env);
}

napi_value OpenblasSgemv(napi_env env, napi_callback_info info) {
  Call c(env, info, "openblasSgemv");
  long M, N, threads;
  F32 A, x, y;
  TRY(c.args(arg("M", M), arg("N", N), arg("A", A), arg("x", x), arg("y", y), arg("threads", threads, 1)));
  if (M > 2147483647L || N > 2147483647L) return c.range_error("sizes exceed int range"), nullptr;
  TRY(c.need("A", A, double(M) * N) && c.need("x", x, N) && c.need("y", y, M));
  TRY(blas_need(c));
  if (g_blas.setThreads) g_blas.setThreads(static_cast<int>(threads));
  g_blas.sgemv(101, 111, int(M), int(N), 1.0f, A.p, int(N > 0 ? N : 1), x.p, 1, 0.0f, y.p, 1);
  return undef(env);
}

}  // namespace

void tfree_boxte_register(napi_env env, napi_value exports);  // boxte.cc

NAPI_MODULE_INIT() {
  kernels();  // detect the CPU and choose the paths once, at load
  struct Fn {
    const char* name;
    napi_callback cb;
  };
  const Fn fns[] = {
      {"gemm", Gemm},
      {"unary", Unary},
      {"unaryBackward", UnaryBackward},
      {"swiglu", Swiglu},
      {"swigluBackward", SwigluBackward},
      {"binary", Binary},
      {"copyStrided", CopyStrided},
      {"affine", Affine},
      {"axpy", Axpy},
      {"reduce", Reduce},
      {"sumSquares", SumSquares},
      {"softmax", Softmax},
      {"softmaxBackward", SoftmaxBackward},
      {"rmsnorm", Rmsnorm},
      {"rmsnormBackward", RmsnormBackward},
      {"layernorm", Layernorm},
      {"layernormBackward", LayernormBackward},
      {"gather", Gather},
      {"scatterAdd", ScatterAdd},
      {"rope", Rope},
      {"attention", Attention},
      {"attentionBackward", AttentionBackward},
      {"attentionScoresSize", AttentionScores},
      {"crossEntropy", CrossEntropy},
      {"crossEntropyBackward", CrossEntropyBackward},
      {"adamw", Adamw},
      {"packedMatmul", PackedMatmul},
      {"packedLutMatmul", PackedLutMatmul},
      {"weightBuffer", WeightBuffer},
      {"bf16Matmul", Bf16Matmul},
      {"quantizeBlocks", QuantizeBlocks},
      {"kmeansLloyd", KmeansLloyd},
      {"widenBf16", WidenBf16},
      {"familyPaths", FamilyPaths},
      {"setKernelPath", SetKernelPath},
      {"getThreads", GetThreads},
      {"setThreads", SetThreads},
      {"simd", Simd},
      {"setSimd", SetIsa},  // older name of setIsa
      {"setIsa", SetIsa},
      {"cpuInfo", CpuInfo},
      {"fmaPeak", FmaPeak},
      {"int8Peak", Int8Peak},
      {"readSum", ReadSum},
      {"openblasLoad", OpenblasLoad},
      {"openblasSgemm", OpenblasSgemm},
      {"openblasSgemv", OpenblasSgemv},
      {"noop", Noop},
  };
  for (const Fn& f : fns) {
    napi_value fv;
    if (napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &fv) != napi_ok) return nullptr;
    if (napi_set_named_property(env, exports, f.name, fv) != napi_ok) return nullptr;
  }
  tfree_boxte_register(env, exports);
  set_prop(env, exports, "cpuAvx2", boolean(env, isa_supported(Isa::avx2)));
  return exports;
}
