// N-API glue of the tfree native kernels (plain C node_api.h, no node-addon-api).
//
// Every entry point unpacks its positional arguments, checks types (TypeError naming the argument)
// and checks that every typed array is long enough for the sizes/offsets/strides it is given
// (RangeError), so a bad call throws instead of corrupting memory. Then it calls the kernel table
// chosen at load time (AVX2+FMA when the CPU has it, the portable one otherwise or when
// TFREE_SIMD=generic).
#include <node_api.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__linux__) || defined(__APPLE__)
#include <dlfcn.h>
#define TFREE_HAVE_DLOPEN 1
#endif

#include "kernels.h"
#include "threadpool.h"

using namespace tfree;

namespace {

const OpsTable* g_ops = nullptr;
bool g_cpuAvx2 = false;
int g_packedIsa = kIsaGeneric;

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

void select_ops() {
  g_cpuAvx2 = cpu_has_avx2_fma();
  const char* e = std::getenv("TFREE_SIMD");
  const bool wantGeneric = e && (std::strcmp(e, "generic") == 0 || std::strcmp(e, "none") == 0);
  const OpsTable* avx = ops_avx2();
  g_ops = (!wantGeneric && g_cpuAvx2 && avx) ? avx : ops_generic();
  g_packedIsa = g_ops == ops_generic() ? kIsaGeneric : packed_isa_best();
}

// path of the packed / bf16 kernel families (packed_isa.cc): generic whenever the generic table is active
int packed_path() { return g_ops == ops_generic() ? kIsaGeneric : g_packedIsa; }

// ---------------------------------------------------------------------------------------------
// argument helpers

struct Call {
  napi_env env;
  const char* fn;
  napi_value argv[24];
  size_t argc;
};

bool throw_type(Call& c, const char* name, const char* what) {
  char msg[256];
  std::snprintf(msg, sizeof msg, "tfree native %s: argument '%s' must be %s", c.fn, name, what);
  napi_throw_type_error(c.env, "ERR_INVALID_ARG_TYPE", msg);
  return false;
}

bool throw_range(Call& c, const char* msg) {
  char full[320];
  std::snprintf(full, sizeof full, "tfree native %s: %s", c.fn, msg);
  napi_throw_range_error(c.env, "ERR_OUT_OF_RANGE", full);
  return false;
}

bool begin(Call& c, napi_env env, napi_callback_info info, const char* fn, size_t want) {
  c.env = env;
  c.fn = fn;
  c.argc = 24;
  if (napi_get_cb_info(env, info, &c.argc, c.argv, nullptr, nullptr) != napi_ok) return false;
  if (c.argc < want) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "tfree native %s: expected %zu arguments, got %zu", fn, want, c.argc);
    napi_throw_type_error(env, "ERR_MISSING_ARGS", msg);
    return false;
  }
  return true;
}

template <class T>
struct Arr {
  T* p = nullptr;
  long n = 0;  // elements
};

template <class T>
bool get_array(Call& c, size_t i, const char* name, napi_typedarray_type type, const char* tname, Arr<T>& out,
               bool nullable) {
  napi_value v = c.argv[i];
  if (nullable) {
    napi_valuetype vt;
    if (napi_typeof(c.env, v, &vt) != napi_ok) return false;
    if (vt == napi_null || vt == napi_undefined) {
      out.p = nullptr;
      out.n = 0;
      return true;
    }
  }
  napi_typedarray_type t;
  size_t len = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(c.env, v, &t, &len, &data, nullptr, nullptr) != napi_ok || t != type) {
    // napi_get_typedarray_info leaves a pending exception only in rare cases; clear it for our message
    bool pending = false;
    napi_is_exception_pending(c.env, &pending);
    if (pending) {
      napi_value ex;
      napi_get_and_clear_last_exception(c.env, &ex);
    }
    char what[64];
    std::snprintf(what, sizeof what, nullable ? "a %s or null" : "a %s", tname);
    return throw_type(c, name, what);
  }
  out.p = static_cast<T*>(data);
  out.n = static_cast<long>(len);
  return true;
}

bool f32(Call& c, size_t i, const char* name, Arr<float>& a) {
  return get_array(c, i, name, napi_float32_array, "Float32Array", a, false);
}
bool f32n(Call& c, size_t i, const char* name, Arr<float>& a) {
  return get_array(c, i, name, napi_float32_array, "Float32Array", a, true);
}
bool i32(Call& c, size_t i, const char* name, Arr<int32_t>& a) {
  return get_array(c, i, name, napi_int32_array, "Int32Array", a, false);
}
bool i32n(Call& c, size_t i, const char* name, Arr<int32_t>& a) {
  return get_array(c, i, name, napi_int32_array, "Int32Array", a, true);
}
bool u8n(Call& c, size_t i, const char* name, Arr<uint8_t>& a) {
  return get_array(c, i, name, napi_uint8_array, "Uint8Array", a, true);
}
bool u8(Call& c, size_t i, const char* name, Arr<uint8_t>& a) {
  return get_array(c, i, name, napi_uint8_array, "Uint8Array", a, false);
}
bool u16(Call& c, size_t i, const char* name, Arr<uint16_t>& a) {
  return get_array(c, i, name, napi_uint16_array, "Uint16Array", a, false);
}

bool num(Call& c, size_t i, const char* name, double& out) {
  if (napi_get_value_double(c.env, c.argv[i], &out) != napi_ok) return throw_type(c, name, "a number");
  return true;
}
bool f32v(Call& c, size_t i, const char* name, float& out) {
  double d;
  if (!num(c, i, name, d)) return false;
  out = static_cast<float>(d);
  return true;
}
// integer in [lo, 2^40]
bool integer(Call& c, size_t i, const char* name, long& out, long lo = 0) {
  double d;
  if (!num(c, i, name, d)) return false;
  if (!(d == std::floor(d)) || d < static_cast<double>(lo) || d > 1099511627776.0) {
    char msg[200];
    std::snprintf(msg, sizeof msg, "argument '%s' must be an integer >= %ld (got %g)", name, lo, d);
    return throw_range(c, msg);
  }
  out = static_cast<long>(d);
  return true;
}
bool boolean(Call& c, size_t i, const char* name, bool& out) {
  if (napi_get_value_bool(c.env, c.argv[i], &out) != napi_ok) return throw_type(c, name, "a boolean");
  return true;
}
bool opcode(Call& c, size_t i, const char* name, int maxOp, int& out) {
  long v;
  if (!integer(c, i, name, v)) return false;
  if (v > maxOp) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "argument '%s' is not a valid op code (0..%d): %ld", name, maxOp, v);
    return throw_range(c, msg);
  }
  out = static_cast<int>(v);
  return true;
}

// `need` elements must be available in array `name`
bool need(Call& c, const char* name, long have, double needed) {
  if (needed <= static_cast<double>(have)) return true;
  char msg[240];
  std::snprintf(msg, sizeof msg, "argument '%s' is too short: needs %.0f elements, has %ld", name, needed, have);
  return throw_range(c, msg);
}

// all ids in [0, rows)
bool check_ids(Call& c, const char* name, const int32_t* ids, long n, long rows) {
  for (long i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= rows) {
      char msg[200];
      std::snprintf(msg, sizeof msg, "argument '%s'[%ld] = %d is out of range [0, %ld)", name, i, ids[i], rows);
      return throw_range(c, msg);
    }
  return true;
}

napi_value undef(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}
napi_value number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

#define TRY(x) \
  if (!(x)) return nullptr
#define TRYB(x) \
  if (!(x)) return false

// ---------------------------------------------------------------------------------------------
// kernels

napi_value Gemm(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "gemm", 20));
  GemmArgs g;
  long aOff, bOff, cOff;
  Arr<float> A, Bm, C;
  TRY(integer(c, 0, "batch", g.batch));
  TRY(boolean(c, 1, "transA", g.transA));
  TRY(boolean(c, 2, "transB", g.transB));
  TRY(integer(c, 3, "M", g.M));
  TRY(integer(c, 4, "N", g.N));
  TRY(integer(c, 5, "K", g.K));
  TRY(f32v(c, 6, "alpha", g.alpha));
  TRY(f32(c, 7, "A", A));
  TRY(integer(c, 8, "aOff", aOff));
  TRY(integer(c, 9, "lda", g.lda));
  TRY(integer(c, 10, "strideA", g.strideA));
  TRY(f32(c, 11, "B", Bm));
  TRY(integer(c, 12, "bOff", bOff));
  TRY(integer(c, 13, "ldb", g.ldb));
  TRY(integer(c, 14, "strideB", g.strideB));
  TRY(f32v(c, 15, "beta", g.beta));
  TRY(f32(c, 16, "C", C));
  TRY(integer(c, 17, "cOff", cOff));
  TRY(integer(c, 18, "ldc", g.ldc));
  TRY(integer(c, 19, "strideC", g.strideC));
  if (g.batch == 0 || g.M == 0 || g.N == 0) return undef(env);
  // stored shapes: A is M x K (K x M when transA), B is K x N (N x K when transB)
  const long aRows = g.transA ? g.K : g.M, aCols = g.transA ? g.M : g.K;
  const long bRows = g.transB ? g.N : g.K, bCols = g.transB ? g.K : g.N;
  char msg[200];
  if (g.K > 0) {
    if (aRows > 1 && g.lda < aCols) {
      std::snprintf(msg, sizeof msg, "lda (%ld) must be >= %ld (the stored row length of A)", g.lda, aCols);
      return throw_range(c, msg), nullptr;
    }
    if (bRows > 1 && g.ldb < bCols) {
      std::snprintf(msg, sizeof msg, "ldb (%ld) must be >= %ld (the stored row length of B)", g.ldb, bCols);
      return throw_range(c, msg), nullptr;
    }
    TRY(need(c, "A", A.n, aOff + double(g.batch - 1) * g.strideA + double(aRows - 1) * g.lda + aCols));
    TRY(need(c, "B", Bm.n, bOff + double(g.batch - 1) * g.strideB + double(bRows - 1) * g.ldb + bCols));
  }
  if (g.M > 1 && g.ldc < g.N) {
    std::snprintf(msg, sizeof msg, "ldc (%ld) must be >= N (%ld)", g.ldc, g.N);
    return throw_range(c, msg), nullptr;
  }
  TRY(need(c, "C", C.n, cOff + double(g.batch - 1) * g.strideC + double(g.M - 1) * g.ldc + g.N));
  g.A = A.p + (g.K > 0 ? aOff : 0);
  g.B = Bm.p + (g.K > 0 ? bOff : 0);
  g.C = C.p + cOff;
  g_ops->gemm(g);
  return undef(env);
}

napi_value Unary(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "unary", 4));
  int op;
  Arr<float> x, out;
  long n;
  TRY(opcode(c, 0, "op", 14, op));
  TRY(f32(c, 1, "x", x));
  TRY(f32(c, 2, "out", out));
  TRY(integer(c, 3, "n", n));
  TRY(need(c, "x", x.n, n));
  TRY(need(c, "out", out.n, n));
  g_ops->unary(op, x.p, out.p, n);
  return undef(env);
}

napi_value UnaryBackward(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "unaryBackward", 7));
  int op;
  Arr<float> x, y, gy, gx;
  long n;
  bool acc;
  TRY(opcode(c, 0, "op", 14, op));
  TRY(f32(c, 1, "x", x));
  TRY(f32(c, 2, "y", y));
  TRY(f32(c, 3, "gy", gy));
  TRY(f32(c, 4, "gx", gx));
  TRY(integer(c, 5, "n", n));
  TRY(boolean(c, 6, "accumulate", acc));
  TRY(need(c, "x", x.n, n));
  TRY(need(c, "y", y.n, n));
  TRY(need(c, "gy", gy.n, n));
  TRY(need(c, "gx", gx.n, n));
  g_ops->unaryBackward(op, x.p, y.p, gy.p, gx.p, n, acc);
  return undef(env);
}

// Checks a strided view against its array and returns its element range. Sets *empty when the
// index space has no elements.
bool check_view(Call& c, const char* name, const Arr<float>& arr, long off, const Arr<int32_t>& shape,
                const Arr<int32_t>& strides, const char* sname) {
  if (strides.n != shape.n) {
    char msg[200];
    std::snprintf(msg, sizeof msg, "argument '%s' must have one entry per dim of shape (%ld), has %ld", sname, shape.n,
                  strides.n);
    return throw_range(c, msg);
  }
  double lo = off, hi = off;
  for (long d = 0; d < shape.n; ++d) {
    const double ext = double(shape.p[d] - 1) * strides.p[d];
    if (ext < 0) lo += ext;
    else hi += ext;
  }
  if (lo < 0) {
    char msg[200];
    std::snprintf(msg, sizeof msg, "argument '%s': offset/strides reach index %.0f < 0", name, lo);
    return throw_range(c, msg);
  }
  return need(c, name, arr.n, hi + 1);
}

bool check_shape(Call& c, const Arr<int32_t>& shape, double& total) {
  if (shape.n > 8) return throw_range(c, "argument 'shape' has rank > 8");
  total = 1;
  for (long d = 0; d < shape.n; ++d) {
    if (shape.p[d] < 0) return throw_range(c, "argument 'shape' has a negative size");
    total *= shape.p[d];
  }
  return true;
}

// Drops size-1 dims and merges dims that are contiguous for every operand. Returns the rank (>= 1).
int simplify(const Arr<int32_t>& shape, const int32_t* s0, const int32_t* s1, long* oshape, long* o0, long* o1) {
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

napi_value Binary(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "binary", 9));
  int op;
  Arr<int32_t> shape, as, bs;
  Arr<float> a, b, out;
  long aOff, bOff;
  TRY(opcode(c, 0, "op", 7, op));
  TRY(i32(c, 1, "shape", shape));
  TRY(f32(c, 2, "a", a));
  TRY(integer(c, 3, "aOff", aOff));
  TRY(i32(c, 4, "aStrides", as));
  TRY(f32(c, 5, "b", b));
  TRY(integer(c, 6, "bOff", bOff));
  TRY(i32(c, 7, "bStrides", bs));
  TRY(f32(c, 8, "out", out));
  double total;
  TRY(check_shape(c, shape, total));
  if (total == 0) return undef(env);
  TRY(need(c, "out", out.n, total));
  TRY(check_view(c, "a", a, aOff, shape, as, "aStrides"));
  TRY(check_view(c, "b", b, bOff, shape, bs, "bStrides"));
  long sh[8], sa[8], sb[8];
  const int rank = simplify(shape, as.p, bs.p, sh, sa, sb);
  g_ops->binary(op, rank, sh, a.p + aOff, sa, b.p + bOff, sb, out.p);
  return undef(env);
}

napi_value CopyStrided(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "copyStrided", 5));
  Arr<int32_t> shape, xs;
  Arr<float> x, out;
  long xOff;
  TRY(i32(c, 0, "shape", shape));
  TRY(f32(c, 1, "x", x));
  TRY(integer(c, 2, "xOff", xOff));
  TRY(i32(c, 3, "xStrides", xs));
  TRY(f32(c, 4, "out", out));
  double total;
  TRY(check_shape(c, shape, total));
  if (total == 0) return undef(env);
  TRY(need(c, "out", out.n, total));
  TRY(check_view(c, "x", x, xOff, shape, xs, "xStrides"));
  long sh[8], sx[8], dummy[8];
  const int rank = simplify(shape, xs.p, nullptr, sh, sx, dummy);
  g_ops->copyStrided(rank, sh, x.p + xOff, sx, out.p);
  return undef(env);
}

napi_value Affine(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "affine", 5));
  Arr<float> a, out;
  long n;
  float alpha, beta;
  TRY(f32(c, 0, "a", a));
  TRY(f32(c, 1, "out", out));
  TRY(integer(c, 2, "n", n));
  TRY(f32v(c, 3, "alpha", alpha));
  TRY(f32v(c, 4, "beta", beta));
  if (alpha != 0.0f) TRY(need(c, "a", a.n, n));
  TRY(need(c, "out", out.n, n));
  g_ops->affine(a.p, out.p, n, alpha, beta);
  return undef(env);
}

napi_value Axpy(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "axpy", 4));
  long n;
  float alpha;
  Arr<float> x, y;
  TRY(integer(c, 0, "n", n));
  TRY(f32v(c, 1, "alpha", alpha));
  TRY(f32(c, 2, "x", x));
  TRY(f32(c, 3, "y", y));
  TRY(need(c, "x", x.n, n));
  TRY(need(c, "y", y.n, n));
  g_ops->axpy(n, alpha, x.p, y.p);
  return undef(env);
}

napi_value Reduce(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "reduce", 7));
  int op;
  Arr<float> x, out;
  Arr<int32_t> am;
  long outer, len, inner;
  TRY(opcode(c, 0, "op", 1, op));
  TRY(f32(c, 1, "x", x));
  TRY(f32(c, 2, "out", out));
  TRY(integer(c, 3, "outer", outer));
  TRY(integer(c, 4, "len", len));
  TRY(integer(c, 5, "inner", inner));
  TRY(i32n(c, 6, "argmax", am));
  TRY(need(c, "x", x.n, double(outer) * len * inner));
  TRY(need(c, "out", out.n, double(outer) * inner));
  if (am.p) TRY(need(c, "argmax", am.n, double(outer) * inner));
  g_ops->reduce(op, x.p, out.p, outer, len, inner, op == 1 ? am.p : nullptr);
  return undef(env);
}

napi_value SumSquares(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "sumSquares", 2));
  Arr<float> x;
  long n;
  TRY(f32(c, 0, "x", x));
  TRY(integer(c, 1, "n", n));
  TRY(need(c, "x", x.n, n));
  return number(env, g_ops->sumSquares(x.p, n));
}

napi_value Softmax(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "softmax", 5));
  Arr<float> x, out;
  long rows, cols;
  bool lg;
  TRY(f32(c, 0, "x", x));
  TRY(f32(c, 1, "out", out));
  TRY(integer(c, 2, "rows", rows));
  TRY(integer(c, 3, "cols", cols));
  TRY(boolean(c, 4, "log", lg));
  TRY(need(c, "x", x.n, double(rows) * cols));
  TRY(need(c, "out", out.n, double(rows) * cols));
  g_ops->softmax(x.p, out.p, rows, cols, lg);
  return undef(env);
}

napi_value SoftmaxBackward(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "softmaxBackward", 7));
  Arr<float> y, gy, gx;
  long rows, cols;
  bool lg, acc;
  TRY(f32(c, 0, "y", y));
  TRY(f32(c, 1, "gy", gy));
  TRY(f32(c, 2, "gx", gx));
  TRY(integer(c, 3, "rows", rows));
  TRY(integer(c, 4, "cols", cols));
  TRY(boolean(c, 5, "log", lg));
  TRY(boolean(c, 6, "accumulate", acc));
  const double n = double(rows) * cols;
  TRY(need(c, "y", y.n, n));
  TRY(need(c, "gy", gy.n, n));
  TRY(need(c, "gx", gx.n, n));
  g_ops->softmaxBackward(y.p, gy.p, gx.p, rows, cols, lg, acc);
  return undef(env);
}

napi_value Rmsnorm(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "rmsnorm", 7));
  Arr<float> x, w, out, rstd;
  long rows, cols;
  float eps;
  TRY(f32(c, 0, "x", x));
  TRY(f32(c, 1, "w", w));
  TRY(f32(c, 2, "out", out));
  TRY(f32(c, 3, "rstd", rstd));
  TRY(integer(c, 4, "rows", rows));
  TRY(integer(c, 5, "cols", cols));
  TRY(f32v(c, 6, "eps", eps));
  const double n = double(rows) * cols;
  TRY(need(c, "x", x.n, n));
  TRY(need(c, "w", w.n, cols));
  TRY(need(c, "out", out.n, n));
  TRY(need(c, "rstd", rstd.n, rows));
  g_ops->rmsnorm(x.p, w.p, out.p, rstd.p, rows, cols, eps);
  return undef(env);
}

napi_value RmsnormBackward(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "rmsnormBackward", 9));
  Arr<float> x, w, rstd, gy, gx, gw;
  long rows, cols;
  bool acc;
  TRY(f32(c, 0, "x", x));
  TRY(f32(c, 1, "w", w));
  TRY(f32(c, 2, "rstd", rstd));
  TRY(f32(c, 3, "gy", gy));
  TRY(f32(c, 4, "gx", gx));
  TRY(f32n(c, 5, "gw", gw));
  TRY(integer(c, 6, "rows", rows));
  TRY(integer(c, 7, "cols", cols));
  TRY(boolean(c, 8, "accumulate", acc));
  const double n = double(rows) * cols;
  TRY(need(c, "x", x.n, n));
  TRY(need(c, "w", w.n, cols));
  TRY(need(c, "rstd", rstd.n, rows));
  TRY(need(c, "gy", gy.n, n));
  TRY(need(c, "gx", gx.n, n));
  if (gw.p) TRY(need(c, "gw", gw.n, cols));
  g_ops->rmsnormBackward(x.p, w.p, rstd.p, gy.p, gx.p, gw.p, rows, cols, acc);
  return undef(env);
}

napi_value Layernorm(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "layernorm", 9));
  Arr<float> x, w, b, out, mean, rstd;
  long rows, cols;
  float eps;
  TRY(f32(c, 0, "x", x));
  TRY(f32n(c, 1, "w", w));
  TRY(f32n(c, 2, "b", b));
  TRY(f32(c, 3, "out", out));
  TRY(f32(c, 4, "mean", mean));
  TRY(f32(c, 5, "rstd", rstd));
  TRY(integer(c, 6, "rows", rows));
  TRY(integer(c, 7, "cols", cols));
  TRY(f32v(c, 8, "eps", eps));
  const double n = double(rows) * cols;
  TRY(need(c, "x", x.n, n));
  if (w.p) TRY(need(c, "w", w.n, cols));
  if (b.p) TRY(need(c, "b", b.n, cols));
  TRY(need(c, "out", out.n, n));
  TRY(need(c, "mean", mean.n, rows));
  TRY(need(c, "rstd", rstd.n, rows));
  g_ops->layernorm(x.p, w.p, b.p, out.p, mean.p, rstd.p, rows, cols, eps);
  return undef(env);
}

napi_value LayernormBackward(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "layernormBackward", 11));
  Arr<float> x, w, mean, rstd, gy, gx, gw, gb;
  long rows, cols;
  bool acc;
  TRY(f32(c, 0, "x", x));
  TRY(f32n(c, 1, "w", w));
  TRY(f32(c, 2, "mean", mean));
  TRY(f32(c, 3, "rstd", rstd));
  TRY(f32(c, 4, "gy", gy));
  TRY(f32(c, 5, "gx", gx));
  TRY(f32n(c, 6, "gw", gw));
  TRY(f32n(c, 7, "gb", gb));
  TRY(integer(c, 8, "rows", rows));
  TRY(integer(c, 9, "cols", cols));
  TRY(boolean(c, 10, "accumulate", acc));
  const double n = double(rows) * cols;
  TRY(need(c, "x", x.n, n));
  if (w.p) TRY(need(c, "w", w.n, cols));
  TRY(need(c, "mean", mean.n, rows));
  TRY(need(c, "rstd", rstd.n, rows));
  TRY(need(c, "gy", gy.n, n));
  TRY(need(c, "gx", gx.n, n));
  if (gw.p) TRY(need(c, "gw", gw.n, cols));
  if (gb.p) TRY(need(c, "gb", gb.n, cols));
  g_ops->layernormBackward(x.p, w.p, mean.p, rstd.p, gy.p, gx.p, gw.p, gb.p, rows, cols, acc);
  return undef(env);
}

napi_value Gather(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "gather", 5));
  Arr<float> table, out;
  Arr<int32_t> ids;
  long n, dim;
  TRY(f32(c, 0, "table", table));
  TRY(i32(c, 1, "ids", ids));
  TRY(f32(c, 2, "out", out));
  TRY(integer(c, 3, "n", n));
  TRY(integer(c, 4, "dim", dim));
  if (n == 0 || dim == 0) return undef(env);
  TRY(need(c, "ids", ids.n, n));
  TRY(need(c, "out", out.n, double(n) * dim));
  TRY(check_ids(c, "ids", ids.p, n, table.n / dim));
  g_ops->gather(table.p, ids.p, out.p, n, dim);
  return undef(env);
}

napi_value ScatterAdd(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "scatterAdd", 5));
  Arr<float> gy, gt;
  Arr<int32_t> ids;
  long n, dim;
  TRY(f32(c, 0, "gy", gy));
  TRY(i32(c, 1, "ids", ids));
  TRY(f32(c, 2, "gtable", gt));
  TRY(integer(c, 3, "n", n));
  TRY(integer(c, 4, "dim", dim));
  if (n == 0 || dim == 0) return undef(env);
  TRY(need(c, "ids", ids.n, n));
  TRY(need(c, "gy", gy.n, double(n) * dim));
  TRY(check_ids(c, "ids", ids.p, n, gt.n / dim));
  g_ops->scatterAdd(gy.p, ids.p, gt.p, n, dim);
  return undef(env);
}

napi_value Rope(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "rope", 10));
  Arr<float> x, out, cs, sn;
  Arr<int32_t> pos;
  long rows, heads, headDim, rotDim;
  bool inv;
  TRY(f32(c, 0, "x", x));
  TRY(f32(c, 1, "out", out));
  TRY(i32(c, 2, "pos", pos));
  TRY(f32(c, 3, "cos", cs));
  TRY(f32(c, 4, "sin", sn));
  TRY(integer(c, 5, "rows", rows));
  TRY(integer(c, 6, "heads", heads));
  TRY(integer(c, 7, "headDim", headDim));
  TRY(integer(c, 8, "rotDim", rotDim));
  TRY(boolean(c, 9, "inverse", inv));
  if (rotDim % 2 != 0 || rotDim > headDim) return throw_range(c, "argument 'rotDim' must be even and <= headDim"), nullptr;
  const double n = double(rows) * heads * headDim;
  if (n == 0) return undef(env);
  TRY(need(c, "x", x.n, n));
  TRY(need(c, "out", out.n, n));
  TRY(need(c, "pos", pos.n, rows));
  // cos/sin tables are [maxPos, rotDim / 2] (see ropeTables in src/tensor/ops/fused.ts)
  const long tw = rotDim / 2;
  if (tw > 0) {
    TRY(check_ids(c, "pos", pos.p, rows, cs.n / tw));
    TRY(need(c, "sin", sn.n, double(cs.n / tw) * tw));
  }
  g_ops->rope(x.p, out.p, pos.p, cs.p, sn.p, rows, heads, headDim, rotDim, inv);
  return undef(env);
}

bool attn_common(Call& c, size_t i0, AttnArgs& a, long lens[5]) {
  // i0: index of B; the five arrays q,k,v,out,lse length already in lens (q,k,v,out,lse)
  TRYB(integer(c, i0 + 0, "B", a.B));
  TRYB(integer(c, i0 + 1, "Hq", a.Hq));
  TRYB(integer(c, i0 + 2, "Hkv", a.Hkv, 1));
  TRYB(integer(c, i0 + 3, "Tq", a.Tq));
  TRYB(integer(c, i0 + 4, "Tk", a.Tk));
  TRYB(integer(c, i0 + 5, "D", a.D));
  TRYB(f32v(c, i0 + 6, "scale", a.scale));
  TRYB(boolean(c, i0 + 7, "causal", a.causal));
  double w;
  TRYB(num(c, i0 + 8, "window", w));
  a.window = w > 0 ? (w > 1e15 ? static_cast<long>(1e15) : static_cast<long>(std::ceil(w))) : 0;
  Arr<int32_t> qPos, kPos, qSeg, kSeg;
  Arr<uint8_t> mask;
  TRYB(i32n(c, i0 + 9, "qPos", qPos));
  TRYB(i32n(c, i0 + 10, "kPos", kPos));
  TRYB(i32n(c, i0 + 11, "qSeg", qSeg));
  TRYB(i32n(c, i0 + 12, "kSeg", kSeg));
  TRYB(u8n(c, i0 + 13, "mask", mask));
  if (a.Hq % a.Hkv != 0) return throw_range(c, "Hq must be a multiple of Hkv");
  const double nq = double(a.B) * a.Hq * a.Tq * a.D, nk = double(a.B) * a.Hkv * a.Tk * a.D;
  TRYB(need(c, "q", lens[0], nq));
  TRYB(need(c, "k", lens[1], nk));
  TRYB(need(c, "v", lens[2], nk));
  TRYB(need(c, "out", lens[3], nq));
  TRYB(need(c, "lse", lens[4], double(a.B) * a.Hq * a.Tq));
  if (qPos.p) TRYB(need(c, "qPos", qPos.n, double(a.B) * a.Tq));
  if (kPos.p) TRYB(need(c, "kPos", kPos.n, double(a.B) * a.Tk));
  if (qSeg.p) TRYB(need(c, "qSeg", qSeg.n, double(a.B) * a.Tq));
  if (kSeg.p) TRYB(need(c, "kSeg", kSeg.n, double(a.B) * a.Tk));
  if (mask.p) TRYB(need(c, "mask", mask.n, double(a.B) * a.Tq * a.Tk));
  a.qPos = qPos.p;
  a.kPos = kPos.p;
  a.qSeg = qSeg.p;
  a.kSeg = kSeg.p;
  a.mask = mask.p;
  return true;
}

napi_value Attention(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "attention", 19));
  Arr<float> q, k, v, out, lse;
  TRY(f32(c, 0, "q", q));
  TRY(f32(c, 1, "k", k));
  TRY(f32(c, 2, "v", v));
  TRY(f32(c, 3, "out", out));
  TRY(f32(c, 4, "lse", lse));
  AttnArgs a = {};
  long lens[5] = {q.n, k.n, v.n, out.n, lse.n};
  TRY(attn_common(c, 5, a, lens));
  a.q = q.p;
  a.k = k.p;
  a.v = v.p;
  a.outW = out.p;
  a.lseW = lse.p;
  g_ops->attention(a);
  return undef(env);
}

napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "attentionBackward", 23));
  Arr<float> q, k, v, out, lse, go, gq, gk, gv;
  TRY(f32(c, 0, "q", q));
  TRY(f32(c, 1, "k", k));
  TRY(f32(c, 2, "v", v));
  TRY(f32(c, 3, "out", out));
  TRY(f32(c, 4, "lse", lse));
  TRY(f32(c, 5, "gOut", go));
  TRY(f32(c, 6, "gq", gq));
  TRY(f32(c, 7, "gk", gk));
  TRY(f32(c, 8, "gv", gv));
  AttnArgs a = {};
  long lens[5] = {q.n, k.n, v.n, out.n, lse.n};
  TRY(attn_common(c, 9, a, lens));
  const double nq = double(a.B) * a.Hq * a.Tq * a.D, nk = double(a.B) * a.Hkv * a.Tk * a.D;
  TRY(need(c, "gOut", go.n, nq));
  TRY(need(c, "gq", gq.n, nq));
  TRY(need(c, "gk", gk.n, nk));
  TRY(need(c, "gv", gv.n, nk));
  a.q = q.p;
  a.k = k.p;
  a.v = v.p;
  a.out = out.p;
  a.lse = lse.p;
  a.gOut = go.p;
  a.gq = gq.p;
  a.gk = gk.p;
  a.gv = gv.p;
  g_ops->attentionBackward(a);
  return undef(env);
}

bool check_targets(Call& c, const int32_t* t, long rows, long cols, long ignoreIndex) {
  for (long r = 0; r < rows; ++r)
    if (t[r] != ignoreIndex && (t[r] < 0 || t[r] >= cols)) {
      char msg[200];
      std::snprintf(msg, sizeof msg, "argument 'targets'[%ld] = %d is out of range [0, %ld) and not ignoreIndex", r,
                    t[r], cols);
      return throw_range(c, msg);
    }
  return true;
}

napi_value CrossEntropy(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "crossEntropy", 7));
  Arr<float> logits, losses, lse;
  Arr<int32_t> targets;
  long rows, cols, ign;
  TRY(f32(c, 0, "logits", logits));
  TRY(i32(c, 1, "targets", targets));
  TRY(f32(c, 2, "losses", losses));
  TRY(f32(c, 3, "lse", lse));
  TRY(integer(c, 4, "rows", rows));
  TRY(integer(c, 5, "cols", cols));
  TRY(integer(c, 6, "ignoreIndex", ign, -2147483648L));
  TRY(need(c, "logits", logits.n, double(rows) * cols));
  TRY(need(c, "targets", targets.n, rows));
  TRY(need(c, "losses", losses.n, rows));
  TRY(need(c, "lse", lse.n, rows));
  TRY(check_targets(c, targets.p, rows, cols, ign));
  return number(env, static_cast<double>(g_ops->crossEntropy(logits.p, targets.p, losses.p, lse.p, rows, cols, ign)));
}

napi_value CrossEntropyBackward(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "crossEntropyBackward", 9));
  Arr<float> logits, lse, gl, glogits;
  Arr<int32_t> targets;
  long rows, cols, ign;
  bool acc;
  TRY(f32(c, 0, "logits", logits));
  TRY(i32(c, 1, "targets", targets));
  TRY(f32(c, 2, "lse", lse));
  TRY(f32(c, 3, "gLoss", gl));
  TRY(f32(c, 4, "glogits", glogits));
  TRY(integer(c, 5, "rows", rows));
  TRY(integer(c, 6, "cols", cols));
  TRY(integer(c, 7, "ignoreIndex", ign, -2147483648L));
  TRY(boolean(c, 8, "accumulate", acc));
  TRY(need(c, "logits", logits.n, double(rows) * cols));
  TRY(need(c, "targets", targets.n, rows));
  TRY(need(c, "lse", lse.n, rows));
  TRY(need(c, "gLoss", gl.n, rows));
  TRY(need(c, "glogits", glogits.n, double(rows) * cols));
  TRY(check_targets(c, targets.p, rows, cols, ign));
  g_ops->crossEntropyBackward(logits.p, targets.p, lse.p, gl.p, glogits.p, rows, cols, ign, acc);
  return undef(env);
}

napi_value Adamw(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "adamw", 12));
  Arr<float> p, g, m, v;
  long n;
  float lr, b1, b2, eps, wd, bc1, bc2;
  TRY(f32(c, 0, "p", p));
  TRY(f32(c, 1, "g", g));
  TRY(f32(c, 2, "m", m));
  TRY(f32(c, 3, "v", v));
  TRY(integer(c, 4, "n", n));
  TRY(f32v(c, 5, "lr", lr));
  TRY(f32v(c, 6, "b1", b1));
  TRY(f32v(c, 7, "b2", b2));
  TRY(f32v(c, 8, "eps", eps));
  TRY(f32v(c, 9, "wd", wd));
  TRY(f32v(c, 10, "bc1", bc1));
  TRY(f32v(c, 11, "bc2", bc2));
  TRY(need(c, "p", p.n, n));
  TRY(need(c, "g", g.n, n));
  TRY(need(c, "m", m.n, n));
  TRY(need(c, "v", v.n, n));
  g_ops->adamw(p.p, g.p, m.p, v.p, n, lr, b1, b2, eps, wd, bc1, bc2);
  return undef(env);
}

// ---------------------------------------------------------------------------------------------
// extras

napi_value GetThreads(napi_env env, napi_callback_info) { return number(env, pool_threads()); }

napi_value SetThreads(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "setThreads", 1));
  long n;
  TRY(integer(c, 0, "n", n, 1));
  pool_set_threads(static_cast<int>(n > 256 ? 256 : n));
  return undef(env);
}

napi_value Simd(napi_env env, napi_callback_info) {
  napi_value s;
  napi_create_string_utf8(env, g_ops->name, NAPI_AUTO_LENGTH, &s);
  return s;
}

// setSimd("avx2" | "generic"): switch the kernel table (tests / diagnostics); returns the active name.
napi_value SetSimd(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "setSimd", 1));
  char buf[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, c.argv[0], buf, sizeof buf, &len) != napi_ok)
    return throw_type(c, "mode", "a string"), nullptr;
  if (std::strcmp(buf, "generic") == 0) {
    g_ops = ops_generic();
  } else if (std::strcmp(buf, "avx2") == 0) {
    if (!g_cpuAvx2 || !ops_avx2()) return throw_range(c, "this CPU lacks AVX2+FMA"), nullptr;
    g_ops = ops_avx2();
  } else {
    return throw_range(c, "argument 'mode' must be \"avx2\" or \"generic\""), nullptr;
  }
  return Simd(env, info);
}

napi_value FmaPeak(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "fmaPeak", 2));
  long iters, threads;
  TRY(integer(c, 0, "iters", iters, 1));
  TRY(integer(c, 1, "threads", threads, 1));
  const auto t0 = std::chrono::steady_clock::now();
  const double flops = g_ops->fmaRun(iters, static_cast<int>(threads > 256 ? 256 : threads));
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return number(env, flops / sec / 1e9);
}

napi_value ReadSum(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "readSum", 2));
  Arr<float> x;
  long threads;
  TRY(f32(c, 0, "x", x));
  TRY(integer(c, 1, "threads", threads, 1));
  return number(env, g_ops->readSum(x.p, x.n, static_cast<int>(threads > 256 ? 256 : threads)));
}

napi_value Noop(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "noop", 1));
  Arr<float> x;
  TRY(f32(c, 0, "x", x));
  return undef(env);
}

// OpenBLAS through dlopen (never linked): for benchmarks only.
typedef void (*cblas_sgemm_t)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                              float*, int);
typedef void (*cblas_sgemv_t)(int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
typedef void (*set_threads_t)(int);
typedef char* (*get_config_t)(void);
struct Blas {
  bool tried = false;
  void* h = nullptr;
  cblas_sgemm_t sgemm = nullptr;
  cblas_sgemv_t sgemv = nullptr;
  set_threads_t setThreads = nullptr;
  get_config_t getConfig = nullptr;
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
    }
  }
  return g_blas.sgemm && g_blas.sgemv;
#else
  return false;
#endif
}

napi_value OpenblasLoad(napi_env env, napi_callback_info) {
  napi_value r;
  if (!blas_load()) {
    napi_get_null(env, &r);
    return r;
  }
  char buf[300];
  std::snprintf(buf, sizeof buf, "OpenBLAS %s", g_blas.getConfig ? g_blas.getConfig() : "(unknown config)");
  napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &r);
  return r;
}

bool blas_need(Call& c) {
  if (blas_load()) return true;
  napi_throw_error(c.env, "ERR_TFREE_NO_OPENBLAS", "tfree native: OpenBLAS is not available (dlopen failed)");
  return false;
}

napi_value OpenblasSgemm(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "openblasSgemm", 7));
  long M, N, K, threads;
  Arr<float> A, Bm, C;
  TRY(integer(c, 0, "M", M));
  TRY(integer(c, 1, "N", N));
  TRY(integer(c, 2, "K", K));
  TRY(f32(c, 3, "A", A));
  TRY(f32(c, 4, "B", Bm));
  TRY(f32(c, 5, "C", C));
  TRY(integer(c, 6, "threads", threads, 1));
  if (M > 2147483647L || N > 2147483647L || K > 2147483647L) return throw_range(c, "sizes exceed int range"), nullptr;
  TRY(need(c, "A", A.n, double(M) * K));
  TRY(need(c, "B", Bm.n, double(K) * N));
  TRY(need(c, "C", C.n, double(M) * N));
  TRY(blas_need(c));
  if (g_blas.setThreads) g_blas.setThreads(static_cast<int>(threads));
  g_blas.sgemm(101, 111, 111, int(M), int(N), int(K), 1.0f, A.p, int(K > 0 ? K : 1), Bm.p, int(N > 0 ? N : 1), 0.0f,
               C.p, int(N > 0 ? N : 1));
  return undef(env);
}

napi_value OpenblasSgemv(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "openblasSgemv", 6));
  long M, N, threads;
  Arr<float> A, x, y;
  TRY(integer(c, 0, "M", M));
  TRY(integer(c, 1, "N", N));
  TRY(f32(c, 2, "A", A));
  TRY(f32(c, 3, "x", x));
  TRY(f32(c, 4, "y", y));
  TRY(integer(c, 5, "threads", threads, 1));
  if (M > 2147483647L || N > 2147483647L) return throw_range(c, "sizes exceed int range"), nullptr;
  TRY(need(c, "A", A.n, double(M) * N));
  TRY(need(c, "x", x.n, N));
  TRY(need(c, "y", y.n, M));
  TRY(blas_need(c));
  if (g_blas.setThreads) g_blas.setThreads(static_cast<int>(threads));
  g_blas.sgemv(101, 111, int(M), int(N), 1.0f, A.p, int(N > 0 ? N : 1), x.p, 1, 0.0f, y.p, 1);
  return undef(env);
}

// packedMatmul(M, N, K, x, xOff, codes, bits, levels, scales, scaleBf16, blockSize, out, outOff[, act8])
napi_value PackedMatmul(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "packedMatmul", 13));
  PackedArgs a;
  long xOff, outOff, bits;
  Arr<float> x, levels, out;
  Arr<uint8_t> codes;
  Arr<uint16_t> scales;
  TRY(integer(c, 0, "M", a.M));
  TRY(integer(c, 1, "N", a.N));
  TRY(integer(c, 2, "K", a.K));
  TRY(f32(c, 3, "x", x));
  TRY(integer(c, 4, "xOff", xOff));
  TRY(u8(c, 5, "codes", codes));
  TRY(integer(c, 6, "bits", bits, 1));
  TRY(f32(c, 7, "levels", levels));
  TRY(u16(c, 8, "scales", scales));
  TRY(boolean(c, 9, "scaleBf16", a.scaleBf16));
  TRY(integer(c, 10, "blockSize", a.B, 8));
  TRY(f32(c, 11, "out", out));
  TRY(integer(c, 12, "outOff", outOff));
  a.act8 = false;
  if (c.argc > 13) {
    napi_valuetype t;
    if (napi_typeof(env, c.argv[13], &t) != napi_ok) return nullptr;
    if (t != napi_undefined) TRY(boolean(c, 13, "act8", a.act8));
  }
  char msg[200];
  if (bits != 1 && bits != 2 && bits != 3 && bits != 4 && bits != 8) {
    std::snprintf(msg, sizeof msg, "bits must be 1, 2, 3, 4 or 8, got %ld", bits);
    return throw_range(c, msg), nullptr;
  }
  if (a.B % 8 != 0 || a.K % a.B != 0) {
    std::snprintf(msg, sizeof msg, "blockSize (%ld) must be a multiple of 8 that divides K (%ld)", a.B, a.K);
    return throw_range(c, msg), nullptr;
  }
  a.bits = static_cast<int>(bits);
  TRY(need(c, "levels", levels.n, double(1L << bits)));
  TRY(need(c, "x", x.n, xOff + double(a.M) * a.K));
  TRY(need(c, "codes", codes.n, double(a.N) * (a.K * bits / 8)));
  TRY(need(c, "scales", scales.n, double(a.N) * (a.K / a.B)));
  TRY(need(c, "out", out.n, outOff + double(a.M) * a.N));
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
  packed_matmul_isa(packed_path(), a);
  return undef(env);
}


// packedLutMatmul(M, N, K, x, xOff, codes, bits, levels, scales, blockSize, out, outOff): codes and
// bf16 scales in the row-interleaved layout of PackedLutArgs (kernels.h)
napi_value PackedLutMatmul(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "packedLutMatmul", 12));
  PackedLutArgs a;
  long xOff, outOff, bits;
  Arr<float> x, levels, out;
  Arr<uint8_t> codes;
  Arr<uint16_t> scales;
  TRY(integer(c, 0, "M", a.M));
  TRY(integer(c, 1, "N", a.N));
  TRY(integer(c, 2, "K", a.K));
  TRY(f32(c, 3, "x", x));
  TRY(integer(c, 4, "xOff", xOff));
  TRY(u8(c, 5, "codes", codes));
  TRY(integer(c, 6, "bits", bits, 1));
  TRY(f32(c, 7, "levels", levels));
  TRY(u16(c, 8, "scales", scales));
  TRY(integer(c, 9, "blockSize", a.B, 64));
  TRY(f32(c, 10, "out", out));
  TRY(integer(c, 11, "outOff", outOff));
  char msg[200];
  if (bits != 1 && bits != 2) {
    std::snprintf(msg, sizeof msg, "bits must be 1 or 2, got %ld", bits);
    return throw_range(c, msg), nullptr;
  }
  if (a.B % 64 != 0 || a.K % a.B != 0) {
    std::snprintf(msg, sizeof msg, "blockSize (%ld) must be a multiple of 64 that divides K (%ld)", a.B, a.K);
    return throw_range(c, msg), nullptr;
  }
  a.bits = static_cast<int>(bits);
  const double tiles = double((a.N + 31) / 32);
  TRY(need(c, "levels", levels.n, double(1L << bits)));
  TRY(need(c, "x", x.n, xOff + double(a.M) * a.K));
  TRY(need(c, "codes", codes.n, tiles * 32 * (a.K * bits / 8)));
  TRY(need(c, "scales", scales.n, tiles * 32 * (a.K / a.B)));
  TRY(need(c, "out", out.n, outOff + double(a.M) * a.N));
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
  packed_lut_matmul_isa(packed_path(), a);
  return undef(env);
}

// bf16Matmul(M, N, K, x, xOff, w, out, outOff, xBf16): out = x W^T, W [N, K] bf16 bit patterns
// (Bf16Args in kernels.h)
napi_value Bf16Matmul(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "bf16Matmul", 9));
  Bf16Args a;
  long xOff, outOff;
  Arr<float> x, out;
  Arr<uint16_t> w;
  TRY(integer(c, 0, "M", a.M));
  TRY(integer(c, 1, "N", a.N));
  TRY(integer(c, 2, "K", a.K));
  TRY(f32(c, 3, "x", x));
  TRY(integer(c, 4, "xOff", xOff));
  TRY(u16(c, 5, "w", w));
  TRY(f32(c, 6, "out", out));
  TRY(integer(c, 7, "outOff", outOff));
  TRY(boolean(c, 8, "xBf16", a.xBf16));
  TRY(need(c, "x", x.n, xOff + double(a.M) * a.K));
  TRY(need(c, "w", w.n, double(a.N) * a.K));
  TRY(need(c, "out", out.n, outOff + double(a.M) * a.N));
  if (a.M == 0 || a.N == 0) return undef(env);
  a.x = x.p + xOff;
  a.w = w.p;
  a.out = out.p + outOff;
  if (a.K == 0) {
    for (long i = 0; i < a.M * a.N; ++i) a.out[i] = 0.0f;
    return undef(env);
  }
  bf16_matmul_isa(packed_path(), a);
  return undef(env);
}

napi_value GetPackedIsa(napi_env env, napi_callback_info) {
  napi_value s;
  napi_create_string_utf8(env, packed_isa_name(packed_path()), NAPI_AUTO_LENGTH, &s);
  return s;
}

// setPackedIsa("auto" | "generic" | "avx2" | "avxvnni" | "avx512-ymm" | "avx512"): the path of the
// packed / bf16 kernel families while the AVX2 table is active (tests, bench); returns the active one.
napi_value SetPackedIsa(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "setPackedIsa", 1));
  char buf[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, c.argv[0], buf, sizeof buf, &len) != napi_ok)
    return throw_type(c, "path", "a string"), nullptr;
  const int isa = std::strcmp(buf, "auto") == 0 ? packed_isa_best() : packed_isa_parse(buf);
  if (isa < 0) return throw_range(c, "argument 'path' must be auto, generic, avx2, avxvnni, avx512-ymm or avx512"), nullptr;
  if (!packed_isa_supported(isa)) {
    char msg[120];
    std::snprintf(msg, sizeof msg, "this CPU lacks the %s path", buf);
    return throw_range(c, msg), nullptr;
  }
  g_packedIsa = isa;
  return GetPackedIsa(env, info);
}

// packedIsaSupported(name): whether this CPU and build run that path
napi_value PackedIsaSupported(napi_env env, napi_callback_info info) {
  Call c;
  TRY(begin(c, env, info, "packedIsaSupported", 1));
  char buf[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, c.argv[0], buf, sizeof buf, &len) != napi_ok)
    return throw_type(c, "path", "a string"), nullptr;
  const int isa = packed_isa_parse(buf);
  napi_value r;
  napi_get_boolean(env, isa >= 0 && packed_isa_supported(isa), &r);
  return r;
}

}  // namespace

void tfree_boxte_register(napi_env env, napi_value exports);  // boxte.cc

NAPI_MODULE_INIT() {
  if (!g_ops) select_ops();
  struct Fn {
    const char* name;
    napi_callback cb;
  };
  const Fn fns[] = {
      {"gemm", Gemm},
      {"unary", Unary},
      {"unaryBackward", UnaryBackward},
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
      {"crossEntropy", CrossEntropy},
      {"crossEntropyBackward", CrossEntropyBackward},
      {"adamw", Adamw},
      {"packedMatmul", PackedMatmul},
      {"packedLutMatmul", PackedLutMatmul},
      {"bf16Matmul", Bf16Matmul},
      {"packedIsa", GetPackedIsa},
      {"setPackedIsa", SetPackedIsa},
      {"packedIsaSupported", PackedIsaSupported},
      {"getThreads", GetThreads},
      {"setThreads", SetThreads},
      {"simd", Simd},
      {"setSimd", SetSimd},
      {"fmaPeak", FmaPeak},
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
  napi_value cpu;
  napi_get_boolean(env, g_cpuAvx2, &cpu);
  napi_set_named_property(env, exports, "cpuAvx2", cpu);
  napi_get_boolean(env, cpu_has_avx512_bf16(), &cpu);
  napi_set_named_property(env, exports, "cpuAvx512Bf16", cpu);
  return exports;
}
