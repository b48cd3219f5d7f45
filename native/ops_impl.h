// Kernel bodies written once against a small vector "backend" B (B::V is __m256 in ops_avx2.cc and
// float in ops_generic.cc). This file is #included INSIDE a per-backend namespace by both TUs, so the
// AVX2 and generic instantiations never share a symbol. It must not be included anywhere else.
//
// Backend requirements (all static):
//   V, M (mask), W (lanes); load, loadn(p, n<W: zero fill), store, storen(p, v, n<W), set1, zero;
//   add sub mul div fma(a,b,c)=a*b+c neg abs sqrt maxp/minp (NaN-propagating) maxf (plain);
//   gt eq (-> M), sel(M, a, b) = M ? a : b, hsum hmax; exp log tanh sigmoid expm1 phi (normal CDF).
//   sumsq_d(const float*, long) -> double

#include "scratch.h"

static inline long lmin_(long a, long b) { return a < b ? a : b; }
static inline long lmax_(long a, long b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------------------------
// threading helpers
// body runs as a local copy: a body that captures by value ([=]) then keeps its pointers and
// constants in registers. The vector stores (B::store) are may_alias, so a loop reading them
// through a closure whose address escaped (to the pool) reloads every one of them after each store,
// the pointers through two dependent loads; memory-bound loops lost up to 30 % to it (AdamW on
// 124 MB: 30-33 ms with the reloads, 22-23 ms without, docs/results/engine.md, HAT eighth pass).
template <class F>
static void par_range(long n, long minPerTask, long align, const F& body) {
  const int T = pool_threads();
  long tasks = minPerTask > 0 ? n / minPerTask : 1;
  if (tasks > T) tasks = T;
  if (tasks <= 1 || T <= 1) {
    if (n > 0) {
      F local(body);
      local(0L, n);
    }
    return;
  }
  long chunk = (n + tasks - 1) / tasks;
  if (align > 1) chunk = (chunk + align - 1) / align * align;
  auto f = [&](long t, int) {
    const long a = t * chunk, b = lmin_(n, a + chunk);
    if (a < b) {
      F local(body);
      local(a, b);
    }
  };
  parallel_tasks(tasks, T, f);
}

constexpr long kElemPar = 1L << 15;      // cheap elementwise: elements per task before threading
constexpr long kElemParHeavy = 1L << 12; // transcendental elementwise
constexpr long kRowWorkPar = 1L << 14;   // row kernels: elements per task

template <class F>
static void map1(const float* x, float* out, long n, long grain, F f) {
  auto body = [=](long i0, long i1) {
    long i = i0;
    for (; i + B::W <= i1; i += B::W) B::store(out + i, f(B::load(x + i)));
    if (i < i1) B::storen(out + i, f(B::loadn(x + i, i1 - i)), i1 - i);
  };
  par_range(n, grain, 16, body);
}

// ---------------------------------------------------------------------------------------------
// activation math shared by forward and backward
static inline typename B::V gelu_tanh_s(typename B::V x) {  // sigmoid(2u), u = sqrt(2/pi)(x + 0.044715 x^3)
  const typename B::V x2 = B::mul(x, x);
  const typename B::V u = B::mul(B::mul(B::set1(0.7978845608028654f), x), B::fma(B::set1(0.044715f), x2, B::set1(1.0f)));
  return B::sigmoid(B::add(u, u));
}

static inline typename B::V gelu_pdf(typename B::V x) {  // exp(-x^2/2) / sqrt(2 pi)
  return B::mul(B::set1(0.3989422804014327f), B::exp(B::mul(B::set1(-0.5f), B::mul(x, x))));
}

static void unary_impl(int op, const float* x, float* out, long n) {
  typedef typename B::V V;
  switch (op) {
    case 0: map1(x, out, n, kElemPar, [](V v) { return B::neg(v); }); break;
    case 1: map1(x, out, n, kElemParHeavy, [](V v) { return B::exp(v); }); break;
    case 2: map1(x, out, n, kElemParHeavy, [](V v) { return B::log(v); }); break;
    case 3: map1(x, out, n, kElemPar, [](V v) { return B::sqrt(v); }); break;
    case 4: map1(x, out, n, kElemPar, [](V v) { return B::div(B::set1(1.0f), B::sqrt(v)); }); break;
    case 5: map1(x, out, n, kElemParHeavy, [](V v) { return B::mul(v, B::sigmoid(v)); }); break;
    case 6: map1(x, out, n, kElemParHeavy, [](V v) { return B::mul(v, B::phi(v)); }); break;
    case 7: map1(x, out, n, kElemParHeavy, [](V v) { return B::mul(v, gelu_tanh_s(v)); }); break;
    case 8: map1(x, out, n, kElemParHeavy, [](V v) { return B::tanh(v); }); break;
    case 9:
      map1(x, out, n, kElemParHeavy, [](V v) { return B::sel(B::gt(v, B::zero()), v, B::expm1(v)); });
      break;
    case 10: map1(x, out, n, kElemPar, [](V v) { return B::sel(B::gt(v, B::zero()), v, B::zero()); }); break;
    case 11: map1(x, out, n, kElemParHeavy, [](V v) { return B::sigmoid(v); }); break;
    case 12: map1(x, out, n, kElemPar, [](V v) { return B::abs(v); }); break;
    case 13: map1(x, out, n, kElemPar, [](V v) { return B::mul(v, v); }); break;
    case 14: map1(x, out, n, kElemPar, [](V v) { return B::div(B::set1(1.0f), v); }); break;
    default: break;
  }
}

template <class F>
static void map_bwd(const float* x, const float* y, const float* gy, float* gx, long n, bool acc, long grain, F f) {
  auto body = [=](long i0, long i1) {
    long i = i0;
    for (; i + B::W <= i1; i += B::W) {
      typename B::V r = f(B::load(x + i), B::load(y + i), B::load(gy + i));
      if (acc) r = B::add(B::load(gx + i), r);
      B::store(gx + i, r);
    }
    if (i < i1) {
      const long m = i1 - i;
      typename B::V r = f(B::loadn(x + i, m), B::loadn(y + i, m), B::loadn(gy + i, m));
      if (acc) r = B::add(B::loadn(gx + i, m), r);
      B::storen(gx + i, r, m);
    }
  };
  par_range(n, grain, 16, body);
}

static void unary_backward_impl(int op, const float* x, const float* y, const float* gy, float* gx, long n, bool acc) {
  typedef typename B::V V;
  const long G = kElemPar, H = kElemParHeavy;
  switch (op) {
    case 0: map_bwd(x, y, gy, gx, n, acc, G, [](V, V, V g) { return B::neg(g); }); break;
    case 1: map_bwd(x, y, gy, gx, n, acc, G, [](V, V yv, V g) { return B::mul(g, yv); }); break;
    case 2: map_bwd(x, y, gy, gx, n, acc, G, [](V xv, V, V g) { return B::div(g, xv); }); break;
    case 3:
      map_bwd(x, y, gy, gx, n, acc, G, [](V, V yv, V g) { return B::div(B::mul(B::set1(0.5f), g), yv); });
      break;
    case 4:
      map_bwd(x, y, gy, gx, n, acc, G,
              [](V, V yv, V g) { return B::mul(B::mul(B::set1(-0.5f), g), B::mul(yv, B::mul(yv, yv))); });
      break;
    case 5:
      map_bwd(x, y, gy, gx, n, acc, H, [](V xv, V, V g) {
        const V s = B::sigmoid(xv);
        return B::mul(g, B::mul(s, B::fma(xv, B::sub(B::set1(1.0f), s), B::set1(1.0f))));
      });
      break;
    case 6:
      map_bwd(x, y, gy, gx, n, acc, H, [](V xv, V, V g) { return B::mul(g, B::fma(xv, gelu_pdf(xv), B::phi(xv))); });
      break;
    case 7:
      map_bwd(x, y, gy, gx, n, acc, H, [](V xv, V, V g) {
        const V s = gelu_tanh_s(xv);
        // d/dx [x s(2u)] = s + x * 2 s (1 - s) * u',  u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
        const V du = B::mul(B::set1(2.0f * 0.7978845608028654f),
                            B::fma(B::set1(3.0f * 0.044715f), B::mul(xv, xv), B::set1(1.0f)));
        const V ds = B::mul(B::mul(s, B::sub(B::set1(1.0f), s)), du);
        return B::mul(g, B::fma(xv, ds, s));
      });
      break;
    case 8:
      map_bwd(x, y, gy, gx, n, acc, G, [](V, V yv, V g) { return B::mul(g, B::sub(B::set1(1.0f), B::mul(yv, yv))); });
      break;
    case 9:
      map_bwd(x, y, gy, gx, n, acc, G,
              [](V xv, V yv, V g) { return B::sel(B::gt(xv, B::zero()), g, B::mul(g, B::add(yv, B::set1(1.0f)))); });
      break;
    case 10:
      map_bwd(x, y, gy, gx, n, acc, G, [](V xv, V, V g) { return B::sel(B::gt(xv, B::zero()), g, B::zero()); });
      break;
    case 11:
      map_bwd(x, y, gy, gx, n, acc, G,
              [](V, V yv, V g) { return B::mul(g, B::mul(yv, B::sub(B::set1(1.0f), yv))); });
      break;
    case 12:
      map_bwd(x, y, gy, gx, n, acc, G, [](V xv, V, V g) {
        const V pos = B::sel(B::gt(xv, B::zero()), g, B::zero());
        return B::sel(B::gt(B::zero(), xv), B::neg(g), pos);
      });
      break;
    case 13:
      map_bwd(x, y, gy, gx, n, acc, G, [](V xv, V, V g) { return B::mul(B::mul(B::set1(2.0f), xv), g); });
      break;
    case 14:
      map_bwd(x, y, gy, gx, n, acc, G, [](V, V yv, V g) { return B::neg(B::mul(g, B::mul(yv, yv))); });
      break;
    default: break;
  }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU's gate product out = silu(gate) * up and its backward, each in one pass: the same
// vector operations, in the same order, as unary Silu then binary Mul (forward) and as the two
// products of Mul's backward then unaryBackward Silu (gUp = g * silu(gate), gGate = (g * up) *
// silu'(gate)), so the same bits as those four kernels, without the silu(gate) array in memory.
static void swiglu_impl(const float* gate, const float* up, float* out, long n) {
  typedef typename B::V V;
  auto f = [](V x, V u) { return B::mul(B::mul(x, B::sigmoid(x)), u); };
  auto body = [=](long i0, long i1) {
    long i = i0;
    for (; i + B::W <= i1; i += B::W) B::store(out + i, f(B::load(gate + i), B::load(up + i)));
    if (i < i1) {
      const long m = i1 - i;
      B::storen(out + i, f(B::loadn(gate + i, m), B::loadn(up + i, m)), m);
    }
  };
  par_range(n, kElemParHeavy, 16, body);
}

static void swiglu_backward_impl(const float* gate, const float* up, const float* g, float* gGate, float* gUp, long n) {
  typedef typename B::V V;
  auto f = [](V x, V u, V gv, V& gg, V& gu) {
    const V s = B::sigmoid(x);
    gu = B::mul(gv, B::mul(x, s));
    const V gs = B::mul(gv, u);
    gg = B::mul(gs, B::mul(s, B::fma(x, B::sub(B::set1(1.0f), s), B::set1(1.0f))));
  };
  auto body = [=](long i0, long i1) {
    long i = i0;
    for (; i + B::W <= i1; i += B::W) {
      V gg, gu;
      f(B::load(gate + i), B::load(up + i), B::load(g + i), gg, gu);
      B::store(gGate + i, gg);
      B::store(gUp + i, gu);
    }
    if (i < i1) {
      const long m = i1 - i;
      V gg, gu;
      f(B::loadn(gate + i, m), B::loadn(up + i, m), B::loadn(g + i, m), gg, gu);
      B::storen(gGate + i, gg, m);
      B::storen(gUp + i, gu, m);
    }
  };
  par_range(n, kElemParHeavy, 16, body);
}

// ---------------------------------------------------------------------------------------------
// strided walkers (binary / copyStrided). shape/strides are already simplified: rank >= 1, no
// size-1 dims except possibly a single one, innermost dim last.
template <class Inner>
static void walk_strided(int rank, const long* shape, const long* sa, const long* sb, Inner& inner, long total) {
  const long innerN = shape[rank - 1];
  auto body = [=](long s, long e) {
    long idx[8];
    long oa = 0, ob = 0;
    long rem = s;
    for (int d = rank - 1; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
      oa += idx[d] * sa[d];
      ob += sb ? idx[d] * sb[d] : 0;
    }
    long pos = s;
    while (pos < e) {
      const long j0 = idx[rank - 1];
      const long len = lmin_(innerN - j0, e - pos);
      inner(pos, oa, ob, len);
      pos += len;
      // advance the multi-index by len along the innermost dim (carry when it wraps)
      idx[rank - 1] += len;
      oa += len * sa[rank - 1];
      if (sb) ob += len * sb[rank - 1];
      for (int d = rank - 1; d > 0 && idx[d] == shape[d]; --d) {
        idx[d] = 0;
        oa -= shape[d] * sa[d];
        if (sb) ob -= shape[d] * sb[d];
        ++idx[d - 1];
        oa += sa[d - 1];
        if (sb) ob += sb[d - 1];
      }
    }
  };
  par_range(total, kElemPar, 16, body);
}

template <class F>
static void binary_run(int rank, const long* shape, const float* a, const long* as, const float* b, const long* bs,
                       float* out, long total, F f) {
  const long sa = as[rank - 1], sb = bs[rank - 1];
  auto inner = [&](long o, long oa, long ob, long len) {
    const float* pa = a + oa;
    const float* pb = b + ob;
    float* po = out + o;
    long i = 0;
    if (sa == 1 && sb == 1) {
      for (; i + B::W <= len; i += B::W) B::store(po + i, f(B::load(pa + i), B::load(pb + i)));
      if (i < len) B::storen(po + i, f(B::loadn(pa + i, len - i), B::loadn(pb + i, len - i)), len - i);
    } else if (sa == 1 && sb == 0) {
      const typename B::V vb = B::set1(*pb);
      for (; i + B::W <= len; i += B::W) B::store(po + i, f(B::load(pa + i), vb));
      if (i < len) B::storen(po + i, f(B::loadn(pa + i, len - i), vb), len - i);
    } else if (sa == 0 && sb == 1) {
      const typename B::V va = B::set1(*pa);
      for (; i + B::W <= len; i += B::W) B::store(po + i, f(va, B::load(pb + i)));
      if (i < len) B::storen(po + i, f(va, B::loadn(pb + i, len - i)), len - i);
    } else {
      for (; i < len; ++i) {
        const typename B::V r = f(B::set1(pa[i * sa]), B::set1(pb[i * sb]));
        B::storen(po + i, r, 1);
      }
    }
  };
  walk_strided(rank, shape, as, bs, inner, total);
}

static void binary_impl(int op, int rank, const long* shape, const float* a, const long* as, const float* b,
                        const long* bs, float* out) {
  typedef typename B::V V;
  long total = 1;
  for (int d = 0; d < rank; ++d) total *= shape[d];
  if (total <= 0) return;
  switch (op) {
    case 0: binary_run(rank, shape, a, as, b, bs, out, total, [](V x, V y) { return B::add(x, y); }); break;
    case 1: binary_run(rank, shape, a, as, b, bs, out, total, [](V x, V y) { return B::sub(x, y); }); break;
    case 2: binary_run(rank, shape, a, as, b, bs, out, total, [](V x, V y) { return B::mul(x, y); }); break;
    case 3: binary_run(rank, shape, a, as, b, bs, out, total, [](V x, V y) { return B::div(x, y); }); break;
    case 4: binary_run(rank, shape, a, as, b, bs, out, total, [](V x, V y) { return B::maxp(x, y); }); break;
    case 5: binary_run(rank, shape, a, as, b, bs, out, total, [](V x, V y) { return B::minp(x, y); }); break;
    case 6:
      binary_run(rank, shape, a, as, b, bs, out, total,
                 [](V x, V y) { return B::sel(B::gt(x, y), B::set1(1.0f), B::zero()); });
      break;
    case 7:
      binary_run(rank, shape, a, as, b, bs, out, total,
                 [](V x, V y) { return B::sel(B::eq(x, y), B::set1(1.0f), B::zero()); });
      break;
    default: break;
  }
}

static void copy_strided_impl(int rank, const long* shape, const float* x, const long* xs, float* out) {
  long total = 1;
  for (int d = 0; d < rank; ++d) total *= shape[d];
  if (total <= 0) return;
  const long s = xs[rank - 1];
  auto inner = [&](long o, long ox, long, long len) {
    const float* px = x + ox;
    float* po = out + o;
    if (s == 1) {
      std::memcpy(po, px, sizeof(float) * len);
    } else if (s == 0) {
      const float v = *px;
      for (long i = 0; i < len; ++i) po[i] = v;
    } else {
      for (long i = 0; i < len; ++i) po[i] = px[i * s];
    }
  };
  walk_strided(rank, shape, xs, static_cast<const long*>(nullptr), inner, total);
}

static void affine_impl(const float* a, float* out, long n, float alpha, float beta) {
  typedef typename B::V V;
  const V va = B::set1(alpha), vb = B::set1(beta);
  if (alpha == 0.0f) {
    auto body = [=](long i0, long i1) {
      for (long i = i0; i < i1; ++i) out[i] = beta;
    };
    par_range(n, kElemPar * 2, 16, body);
    return;
  }
  map1(a, out, n, kElemPar, [va, vb](V v) { return B::fma(v, va, vb); });
}

static void axpy_impl(long n, float alpha, const float* x, float* y) {
  const typename B::V va = B::set1(alpha);
  auto body = [=](long i0, long i1) {
    long i = i0;
    for (; i + B::W <= i1; i += B::W) B::store(y + i, B::fma(va, B::load(x + i), B::load(y + i)));
    if (i < i1) B::storen(y + i, B::fma(va, B::loadn(x + i, i1 - i), B::loadn(y + i, i1 - i)), i1 - i);
  };
  par_range(n, kElemPar, 16, body);
}

// sum / max of a contiguous row (vectorised)
static inline float row_sum(const float* x, long n) {
  typename B::V s0 = B::zero(), s1 = B::zero();
  long i = 0;
  for (; i + 2 * B::W <= n; i += 2 * B::W) {
    s0 = B::add(s0, B::load(x + i));
    s1 = B::add(s1, B::load(x + i + B::W));
  }
  for (; i + B::W <= n; i += B::W) s0 = B::add(s0, B::load(x + i));
  if (i < n) s1 = B::add(s1, B::loadn(x + i, n - i));
  return B::hsum(B::add(s0, s1));
}

static inline float row_max(const float* x, long n) {
  if (n < B::W) {
    float m = x[0];
    for (long i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
  }
  typename B::V m = B::load(x);
  long i = B::W;
  for (; i + B::W <= n; i += B::W) m = B::maxf(m, B::load(x + i));
  if (i < n) m = B::maxf(m, B::load(x + n - B::W));  // overlapping tail load, max is idempotent
  return B::hmax(m);
}

static void reduce_impl(int op, const float* x, float* out, long outer, long len, long inner, int32_t* argmax) {
  if (outer <= 0 || inner <= 0) return;
  if (len <= 0) {
    for (long i = 0; i < outer * inner; ++i) {
      out[i] = op == 0 ? 0.0f : -__builtin_inff();
      if (argmax) argmax[i] = 0;
    }
    return;
  }
  if (inner == 1) {
    auto body = [=](long o0, long o1) {
      for (long o = o0; o < o1; ++o) {
        const float* r = x + o * len;
        if (op == 0) {
          out[o] = row_sum(r, len);
        } else {
          const float m = row_max(r, len);
          out[o] = m;
          if (argmax) {
            long k = 0;
            while (k < len && !(r[k] == m)) ++k;
            argmax[o] = static_cast<int32_t>(k < len ? k : 0);
          }
        }
      }
    };
    par_range(outer, lmax_(1, kRowWorkPar / len), 1, body);
    return;
  }
  // inner > 1: reduce rows of length `inner` elementwise; split over (outer, inner-chunk)
  const long chunk = 256;
  const long nChunks = (inner + chunk - 1) / chunk;
  auto body = [=](long t0, long t1) {
    for (long t = t0; t < t1; ++t) {
      const long o = t / nChunks, c0 = (t % nChunks) * chunk, c1 = lmin_(inner, c0 + chunk);
      const float* base = x + o * len * inner;
      float* po = out + o * inner;
      if (op == 0) {
        for (long j = c0; j < c1; j += B::W) {
          const long m = lmin_(B::W, c1 - j);
          typename B::V s = B::zero();
          if (m == B::W) {
            for (long l = 0; l < len; ++l) s = B::add(s, B::load(base + l * inner + j));
            B::store(po + j, s);
          } else {
            for (long l = 0; l < len; ++l) s = B::add(s, B::loadn(base + l * inner + j, m));
            B::storen(po + j, s, m);
          }
        }
      } else {
        for (long j = c0; j < c1; ++j) {
          float best = base[j];
          int32_t bi = 0;
          for (long l = 1; l < len; ++l) {
            const float v = base[l * inner + j];
            if (v > best) {
              best = v;
              bi = static_cast<int32_t>(l);
            }
          }
          po[j] = best;
          if (argmax) argmax[o * inner + j] = bi;
        }
      }
    }
  };
  par_range(outer * nChunks, lmax_(1, kRowWorkPar / (len * lmin_(chunk, inner))), 1, body);
}

static double sum_squares_impl(const float* x, long n) { return B::sumsq_d(x, n); }

// ---------------------------------------------------------------------------------------------
// softmax family
static void softmax_row(const float* x, float* out, long n, bool log) {
  typedef typename B::V V;
  const float m = row_max(x, n);
  const V vm = B::set1(m);
  V s = B::zero();
  long i = 0;
  if (!log) {
    for (; i + B::W <= n; i += B::W) {
      const V e = B::exp(B::sub(B::load(x + i), vm));
      B::store(out + i, e);
      s = B::add(s, e);
    }
    if (i < n) {
      const V e = B::exp(B::sub(B::loadn(x + i, n - i), vm));
      B::storen(out + i, e, n - i);
      s = B::add(s, B::sel(B::gt(B::set1(static_cast<float>(n - i)), B::lane_index()), e, B::zero()));
    }
    const V inv = B::set1(1.0f / B::hsum(s));
    for (i = 0; i + B::W <= n; i += B::W) B::store(out + i, B::mul(B::load(out + i), inv));
    if (i < n) B::storen(out + i, B::mul(B::loadn(out + i, n - i), inv), n - i);
  } else {
    for (; i + B::W <= n; i += B::W) s = B::add(s, B::exp(B::sub(B::load(x + i), vm)));
    if (i < n) {
      const V e = B::exp(B::sub(B::loadn(x + i, n - i), vm));
      s = B::add(s, B::sel(B::gt(B::set1(static_cast<float>(n - i)), B::lane_index()), e, B::zero()));
    }
    const float lse = m + B::log1(B::hsum(s));
    const V vl = B::set1(lse);
    for (i = 0; i + B::W <= n; i += B::W) B::store(out + i, B::sub(B::load(x + i), vl));
    if (i < n) B::storen(out + i, B::sub(B::loadn(x + i, n - i), vl), n - i);
  }
}

static void softmax_impl(const float* x, float* out, long rows, long cols, bool log) {
  if (cols <= 0) return;
  auto body = [=](long r0, long r1) {
    for (long r = r0; r < r1; ++r) softmax_row(x + r * cols, out + r * cols, cols, log);
  };
  par_range(rows, lmax_(1, kRowWorkPar / 4 / cols), 1, body);
}

static inline float row_dot(const float* a, const float* b, long n) {
  typename B::V s0 = B::zero(), s1 = B::zero();
  long i = 0;
  for (; i + 2 * B::W <= n; i += 2 * B::W) {
    s0 = B::fma(B::load(a + i), B::load(b + i), s0);
    s1 = B::fma(B::load(a + i + B::W), B::load(b + i + B::W), s1);
  }
  for (; i + B::W <= n; i += B::W) s0 = B::fma(B::load(a + i), B::load(b + i), s0);
  if (i < n) s1 = B::fma(B::loadn(a + i, n - i), B::loadn(b + i, n - i), s1);
  return B::hsum(B::add(s0, s1));
}

// y[i] = y[i] + alpha * x[i]
static inline void row_axpy(float alpha, const float* x, float* y, long n) {
  const typename B::V va = B::set1(alpha);
  long i = 0;
  for (; i + B::W <= n; i += B::W) B::store(y + i, B::fma(va, B::load(x + i), B::load(y + i)));
  if (i < n) B::storen(y + i, B::fma(va, B::loadn(x + i, n - i), B::loadn(y + i, n - i)), n - i);
}

static void softmax_backward_impl(const float* y, const float* gy, float* gx, long rows, long cols, bool log, bool acc) {
  typedef typename B::V V;
  if (cols <= 0) return;
  auto body = [=](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      const float* yr = y + r * cols;
      const float* gr = gy + r * cols;
      float* xr = gx + r * cols;
      long i = 0;
      const long n = cols;
      if (!log) {
        const V d = B::set1(row_dot(gr, yr, n));
        auto f = [&](V yv, V gv) { return B::mul(yv, B::sub(gv, d)); };
        for (; i + B::W <= n; i += B::W) {
          V v = f(B::load(yr + i), B::load(gr + i));
          if (acc) v = B::add(B::load(xr + i), v);
          B::store(xr + i, v);
        }
        if (i < n) {
          V v = f(B::loadn(yr + i, n - i), B::loadn(gr + i, n - i));
          if (acc) v = B::add(B::loadn(xr + i, n - i), v);
          B::storen(xr + i, v, n - i);
        }
      } else {
        const V s = B::set1(row_sum(gr, n));
        auto f = [&](V yv, V gv) { return B::sub(gv, B::mul(B::exp(yv), s)); };
        for (; i + B::W <= n; i += B::W) {
          V v = f(B::load(yr + i), B::load(gr + i));
          if (acc) v = B::add(B::load(xr + i), v);
          B::store(xr + i, v);
        }
        if (i < n) {
          V v = f(B::loadn(yr + i, n - i), B::loadn(gr + i, n - i));
          if (acc) v = B::add(B::loadn(xr + i, n - i), v);
          B::storen(xr + i, v, n - i);
        }
      }
    }
  };
  par_range(rows, lmax_(1, kRowWorkPar / 2 / cols), 1, body);
}

// ---------------------------------------------------------------------------------------------
// normalisation
static inline float row_sumsq(const float* x, long n) {
  typename B::V s0 = B::zero(), s1 = B::zero();
  long i = 0;
  for (; i + 2 * B::W <= n; i += 2 * B::W) {
    const typename B::V a = B::load(x + i), b = B::load(x + i + B::W);
    s0 = B::fma(a, a, s0);
    s1 = B::fma(b, b, s1);
  }
  for (; i + B::W <= n; i += B::W) {
    const typename B::V a = B::load(x + i);
    s0 = B::fma(a, a, s0);
  }
  if (i < n) {
    const typename B::V a = B::loadn(x + i, n - i);
    s1 = B::fma(a, a, s1);
  }
  return B::hsum(B::add(s0, s1));
}

static void rmsnorm_impl(const float* x, const float* w, float* out, float* rstd, long rows, long cols, float eps) {
  typedef typename B::V V;
  if (cols <= 0) return;
  auto body = [=](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* o = out + r * cols;
      const float rs = 1.0f / std::sqrt(row_sumsq(xr, cols) / static_cast<float>(cols) + eps);
      rstd[r] = rs;
      const V vr = B::set1(rs);
      long i = 0;
      for (; i + B::W <= cols; i += B::W) B::store(o + i, B::mul(B::mul(B::load(xr + i), vr), B::load(w + i)));
      if (i < cols)
        B::storen(o + i, B::mul(B::mul(B::loadn(xr + i, cols - i), vr), B::loadn(w + i, cols - i)), cols - i);
    }
  };
  par_range(rows, lmax_(1, kRowWorkPar / cols), 1, body);
}

// Per-task partial sums for gw/gb, reduced at the end (gw/gb accumulate across rows).
constexpr long kNormParts = 16;
struct Partials {
  float* p = nullptr;
  long ntasks = 0;
  ~Partials() { std::free(p); }
};

static void rmsnorm_backward_impl(const float* x, const float* w, const float* rstd, const float* gy, float* gx,
                                  float* gw, long rows, long cols, bool acc) {
  typedef typename B::V V;
  if (cols <= 0 || rows <= 0) return;
  const int T = pool_threads();
  // The number of partial sums depends on the shape only (never on T), so gw/gb come out the
  // same whatever the thread count.
  long ntasks = rows * cols >= 2 * kRowWorkPar ? kNormParts : 1;
  if (ntasks > rows) ntasks = rows;
  Partials part;
  if (gw && ntasks > 1) {
    part.p = static_cast<float*>(std::calloc(static_cast<size_t>(ntasks * cols), sizeof(float)));
    if (!part.p) ntasks = 1;
  }
  const long chunk = (rows + ntasks - 1) / ntasks;
  float* const pp = part.p;
  // by value, run as a local copy (see par_range)
  auto rowsOf = [=](long t) {
    float* gwp = gw ? (ntasks > 1 ? pp + t * cols : gw) : nullptr;
    for (long r = t * chunk; r < lmin_(rows, (t + 1) * chunk); ++r) {
      const float* xr = x + r * cols;
      const float* gr = gy + r * cols;
      float* o = gx + r * cols;
      const float rs = rstd[r];
      // c = mean(gy * w * xhat) where xhat = x * rs
      V s = B::zero();
      long i = 0;
      for (; i + B::W <= cols; i += B::W) s = B::fma(B::mul(B::load(gr + i), B::load(w + i)), B::load(xr + i), s);
      if (i < cols)
        s = B::fma(B::mul(B::loadn(gr + i, cols - i), B::loadn(w + i, cols - i)), B::loadn(xr + i, cols - i), s);
      const float c = B::hsum(s) * rs * rs / static_cast<float>(cols);
      const V vr = B::set1(rs), vc = B::set1(c);
      auto f = [&](V xv, V gv, V wv) { return B::mul(vr, B::sub(B::mul(gv, wv), B::mul(xv, vc))); };
      for (i = 0; i + B::W <= cols; i += B::W) {
        const V xv = B::load(xr + i), gv = B::load(gr + i);
        V v = f(xv, gv, B::load(w + i));
        if (acc) v = B::add(B::load(o + i), v);
        B::store(o + i, v);
        if (gwp) B::store(gwp + i, B::fma(gv, B::mul(xv, vr), B::load(gwp + i)));
      }
      if (i < cols) {
        const long m = cols - i;
        const V xv = B::loadn(xr + i, m), gv = B::loadn(gr + i, m);
        V v = f(xv, gv, B::loadn(w + i, m));
        if (acc) v = B::add(B::loadn(o + i, m), v);
        B::storen(o + i, v, m);
        if (gwp) B::storen(gwp + i, B::fma(gv, B::mul(xv, vr), B::loadn(gwp + i, m)), m);
      }
    }
  };
  auto task = [&](long t, int) {
    auto local = rowsOf;
    local(t);
  };
  parallel_tasks(ntasks, T, task);
  if (gw && ntasks > 1)
    for (long t = 0; t < ntasks; ++t) row_axpy(1.0f, part.p + t * cols, gw, cols);
}

static void layernorm_impl(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd,
                           long rows, long cols, float eps) {
  typedef typename B::V V;
  if (cols <= 0) return;
  auto body = [=](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* o = out + r * cols;
      const float mu = row_sum(xr, cols) / static_cast<float>(cols);
      const V vm = B::set1(mu);
      V s = B::zero();
      long i = 0;
      for (; i + B::W <= cols; i += B::W) {
        const V d = B::sub(B::load(xr + i), vm);
        s = B::fma(d, d, s);
      }
      if (i < cols) {
        const V d = B::sel(B::gt(B::set1(static_cast<float>(cols - i)), B::lane_index()),
                           B::sub(B::loadn(xr + i, cols - i), vm), B::zero());
        s = B::fma(d, d, s);
      }
      const float rs = 1.0f / std::sqrt(B::hsum(s) / static_cast<float>(cols) + eps);
      mean[r] = mu;
      rstd[r] = rs;
      const V vr = B::set1(rs);
      for (i = 0; i < cols; i += B::W) {
        const long m = lmin_(B::W, cols - i);
        const bool full = m == B::W;
        V v = B::mul(B::sub(full ? B::load(xr + i) : B::loadn(xr + i, m), vm), vr);
        if (w) v = B::mul(v, full ? B::load(w + i) : B::loadn(w + i, m));
        if (b) v = B::add(v, full ? B::load(b + i) : B::loadn(b + i, m));
        if (full) B::store(o + i, v);
        else B::storen(o + i, v, m);
      }
    }
  };
  par_range(rows, lmax_(1, kRowWorkPar / cols), 1, body);
}

static void layernorm_backward_impl(const float* x, const float* w, const float* mean, const float* rstd,
                                    const float* gy, float* gx, float* gw, float* gb, long rows, long cols, bool acc) {
  typedef typename B::V V;
  if (cols <= 0 || rows <= 0) return;
  const int T = pool_threads();
  // The number of partial sums depends on the shape only (never on T), so gw/gb come out the
  // same whatever the thread count.
  long ntasks = rows * cols >= 2 * kRowWorkPar ? kNormParts : 1;
  if (ntasks > rows) ntasks = rows;
  Partials part;
  const bool needPart = (gw || gb) && ntasks > 1;
  if (needPart) {
    part.p = static_cast<float*>(std::calloc(static_cast<size_t>(ntasks * cols * 2), sizeof(float)));
    if (!part.p) ntasks = 1;
  }
  const long chunk = (rows + ntasks - 1) / ntasks;
  auto task = [&](long t, int) {
    float* gwp = gw ? (ntasks > 1 ? part.p + t * cols * 2 : gw) : nullptr;
    float* gbp = gb ? (ntasks > 1 ? part.p + t * cols * 2 + cols : gb) : nullptr;
    for (long r = t * chunk; r < lmin_(rows, (t + 1) * chunk); ++r) {
      const float* xr = x + r * cols;
      const float* gr = gy + r * cols;
      float* o = gx + r * cols;
      const V vm = B::set1(mean[r]), vr = B::set1(rstd[r]);
      // g = gy * w; a = mean(g); c = mean(g * xhat)
      V sa = B::zero(), sc = B::zero();
      for (long i = 0; i < cols; i += B::W) {
        const long m = lmin_(B::W, cols - i);
        const bool full = m == B::W;
        V g = full ? B::load(gr + i) : B::loadn(gr + i, m);
        if (w) g = B::mul(g, full ? B::load(w + i) : B::loadn(w + i, m));
        V xh = B::mul(B::sub(full ? B::load(xr + i) : B::loadn(xr + i, m), vm), vr);
        if (!full) xh = B::sel(B::gt(B::set1(static_cast<float>(m)), B::lane_index()), xh, B::zero());
        sa = B::add(sa, g);
        sc = B::fma(g, xh, sc);
      }
      const V va = B::set1(B::hsum(sa) / static_cast<float>(cols));
      const V vc = B::set1(B::hsum(sc) / static_cast<float>(cols));
      for (long i = 0; i < cols; i += B::W) {
        const long m = lmin_(B::W, cols - i);
        const bool full = m == B::W;
        const V gyv = full ? B::load(gr + i) : B::loadn(gr + i, m);
        const V g = w ? B::mul(gyv, full ? B::load(w + i) : B::loadn(w + i, m)) : gyv;
        const V xh = B::mul(B::sub(full ? B::load(xr + i) : B::loadn(xr + i, m), vm), vr);
        V v = B::mul(vr, B::sub(B::sub(g, va), B::mul(xh, vc)));
        if (acc) v = B::add(full ? B::load(o + i) : B::loadn(o + i, m), v);
        if (full) B::store(o + i, v);
        else B::storen(o + i, v, m);
        if (gwp) {
          const V nv = B::fma(gyv, xh, full ? B::load(gwp + i) : B::loadn(gwp + i, m));
          if (full) B::store(gwp + i, nv);
          else B::storen(gwp + i, nv, m);
        }
        if (gbp) {
          const V nv = B::add(gyv, full ? B::load(gbp + i) : B::loadn(gbp + i, m));
          if (full) B::store(gbp + i, nv);
          else B::storen(gbp + i, nv, m);
        }
      }
    }
  };
  parallel_tasks(ntasks, T, task);
  if (needPart && part.p) {
    for (long t = 0; t < ntasks; ++t) {
      if (gw) row_axpy(1.0f, part.p + t * cols * 2, gw, cols);
      if (gb) row_axpy(1.0f, part.p + t * cols * 2 + cols, gb, cols);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// embedding
static void gather_impl(const float* table, const int32_t* ids, float* out, long n, long dim) {
  if (dim <= 0) return;
  auto body = [=](long i0, long i1) {
    for (long i = i0; i < i1; ++i) std::memcpy(out + i * dim, table + static_cast<long>(ids[i]) * dim, sizeof(float) * dim);
  };
  par_range(n, lmax_(1, kElemPar / dim), 1, body);
}

static void scatter_add_impl(const float* gy, const int32_t* ids, float* gtable, long n, long dim) {
  if (dim <= 0 || n <= 0) return;
  // split over columns so duplicate ids never race
  auto body = [=](long c0, long c1) {
    for (long i = 0; i < n; ++i)
      row_axpy(1.0f, gy + i * dim + c0, gtable + static_cast<long>(ids[i]) * dim + c0, c1 - c0);
  };
  const long perCol = n;
  par_range(dim, lmax_(64, kElemPar / perCol), 16, body);
}

// ---------------------------------------------------------------------------------------------
// rotary embedding (neox rotate-half)
// T > 0: one side is head-major [B, heads, T, headDim] (rows = B * T, row r = b * T + t) instead
// of token-major [rows, heads, headDim]: the output when toHM (x token-major), else the input. The
// values are the same as with T = 0 followed (or preceded) by a permute copy.
static void rope_impl(const float* x, float* out, const int32_t* pos, const float* cosT, const float* sinT, long rows,
                      long heads, long headDim, long rotDim, bool inverse, long T, bool toHM) {
  typedef typename B::V V;
  const long h = rotDim / 2;
  const long tw = h;  // table row width: rotDim / 2 (as built by ropeTables and read by the JS twin)
  auto body = [=](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      const float* c = cosT + static_cast<long>(pos[r]) * tw;
      const float* s = sinT + static_cast<long>(pos[r]) * tw;
      const long hm = T > 0 ? ((r / T) * heads * T + r % T) * headDim : 0;  // head-major row of head 0
      for (long hd = 0; hd < heads; ++hd) {
        const long tm = (r * heads + hd) * headDim, hmo = hm + hd * T * headDim;
        const float* xr = x + (T > 0 && !toHM ? hmo : tm);
        float* o = out + (T > 0 && toHM ? hmo : tm);
        for (long i = 0; i < h; i += B::W) {
          const long m = lmin_(B::W, h - i);
          const bool full = m == B::W;
          const V x0 = full ? B::load(xr + i) : B::loadn(xr + i, m);
          const V x1 = full ? B::load(xr + h + i) : B::loadn(xr + h + i, m);
          const V cv = full ? B::load(c + i) : B::loadn(c + i, m);
          V sv = full ? B::load(s + i) : B::loadn(s + i, m);
          if (inverse) sv = B::neg(sv);
          const V y0 = B::sub(B::mul(x0, cv), B::mul(x1, sv));
          const V y1 = B::fma(x0, sv, B::mul(x1, cv));
          if (full) {
            B::store(o + i, y0);
            B::store(o + h + i, y1);
          } else {
            B::storen(o + i, y0, m);
            B::storen(o + h + i, y1, m);
          }
        }
        if (o != xr && rotDim < headDim) std::memcpy(o + rotDim, xr + rotDim, sizeof(float) * (headDim - rotDim));
      }
    }
  };
  par_range(rows, lmax_(1, kElemPar / lmax_(1, heads * headDim)), 1, body);
}

// ---------------------------------------------------------------------------------------------
// attention
struct AttnVis {
  const AttnArgs* a;
  long b;
  inline long qpos(long i) const { return a->qPos ? a->qPos[b * a->Tq + i] : i + (a->Tk - a->Tq); }
  inline long kpos(long j) const { return a->kPos ? a->kPos[b * a->Tk + j] : j; }
  // key range that can possibly be visible to a query at position qp (exact when kPos is null)
  inline void range(long qp, long& j0, long& j1) const {
    j0 = 0;
    j1 = a->Tk;
    if (a->kPos) return;
    if (a->causal) j1 = lmax_(0, lmin_(a->Tk, qp + 1));
    if (a->window > 0) j0 = lmin_(a->Tk, lmax_(0, qp - a->window + 1));
  }
  inline bool visible(long i, long qp, long j) const {
    const long kp = kpos(j);
    if (a->causal && kp > qp) return false;
    if (a->window > 0 && qp - kp >= a->window) return false;
    if (a->qSeg && a->kSeg && a->qSeg[b * a->Tq + i] != a->kSeg[b * a->Tk + j]) return false;
    if (a->mask && a->mask[(b * a->Tq + i) * a->Tk + j] == 0) return false;
    return true;
  }
};

// One query row at a time (dot product and axpy per key): the path for few query rows (decoding),
// where transposing the keys for the tiled path would cost as much as the attention itself.
static void attention_rows(const AttnArgs& a) {
  const long B_ = a.B, Hq = a.Hq, Hkv = a.Hkv, Tq = a.Tq, Tk = a.Tk, D = a.D;
  const long G = Hq / Hkv;
  const long QB = 8;   // query rows per task
  const long KB = 64;  // keys per online-softmax block
  const long nqb = (Tq + QB - 1) / QB;
  const long ntasks = B_ * Hq * nqb;
  auto task = [&](long t, int) {
    const long qb = t % nqb, bh = t / nqb;
    const long b = bh / Hq, hq = bh % Hq, hk = hq / G;
    const AttnVis vis{&a, b};
    const float* kb = a.k + (b * Hkv + hk) * Tk * D;
    const float* vb = a.v + (b * Hkv + hk) * Tk * D;
    float sc[KB];
    float accBuf[512];
    float* accp = D <= 512 ? accBuf : static_cast<float*>(std::malloc(sizeof(float) * D));
    if (!accp) tfree::out_of_memory("attention", 4.0 * D);
    for (long i = qb * QB; i < lmin_(Tq, (qb + 1) * QB); ++i) {
      const long row = (b * Hq + hq) * Tq + i;
      const float* qr = a.q + row * D;
      float* o = a.outW + row * D;
      const long qp = vis.qpos(i);
      long j0, j1;
      vis.range(qp, j0, j1);
      float m = -__builtin_inff(), l = 0.0f;
      for (long d = 0; d < D; ++d) accp[d] = 0.0f;
      for (long jb = j0; jb < j1; jb += KB) {
        const long je = lmin_(j1, jb + KB);
        float bm = -__builtin_inff();
        for (long j = jb; j < je; ++j) {
          float s = -__builtin_inff();
          if (vis.visible(i, qp, j)) {
            s = a.scale * row_dot(qr, kb + j * D, D);
            bm = s > bm ? s : bm;
          }
          sc[j - jb] = s;
        }
        if (bm == -__builtin_inff()) continue;
        const float mn = bm > m ? bm : m;
        if (mn != m && l > 0.0f) {
          const float f = std::exp(m - mn);
          l *= f;
          for (long d = 0; d < D; ++d) accp[d] *= f;
        }
        m = mn;
        for (long j = jb; j < je; ++j) {
          if (sc[j - jb] == -__builtin_inff()) continue;
          const float p = B::exp1(sc[j - jb] - m);
          l += p;
          row_axpy(p, vb + j * D, accp, D);
        }
      }
      if (l > 0.0f) {
        const float inv = 1.0f / l;
        for (long d = 0; d < D; ++d) o[d] = accp[d] * inv;
        a.lseW[row] = m + std::log(l);
      } else {
        for (long d = 0; d < D; ++d) o[d] = 0.0f;
        a.lseW[row] = -__builtin_inff();
      }
    }
    if (accp != accBuf) std::free(accp);
  };
  const int T = pool_threads();
  const double work = static_cast<double>(B_) * Hq * Tq * Tk * D;
  parallel_tasks(ntasks, work < 32768 ? 1 : T, task);
}

// ---- tiled attention: blocks of query rows against blocks of kAttnKB keys, as small GEMMs ----
constexpr long kAttnQB = 32;  // query rows per block
constexpr long kAttnKB = 64;  // keys per block (a multiple of every backend's W)
// Register tile shape, declared by every backend: B::kAttnNV vectors per row and B::kAttnR rows
// (AVX2: 6 x 2 = 12 accumulators + 2 loads + 1 broadcast in its 16 registers, as the SGEMM
// microkernel's 6 x 16; 4 x 4 where there are 32 registers). The row tiling never changes a bit:
// each score is one d-ordered FMA chain and each output row of an axpy one c-ordered chain,
// whatever tile computes it.
constexpr long kAttnNV = B::kAttnNV;
static_assert(kAttnKB % (kAttnNV * B::W) == 0, "a score block is a whole number of register tiles");
constexpr int kAttnR = B::kAttnR;
static_assert(kAttnR >= 4 && kAttnR <= 8, "attention tiles of 4 to 8 rows");

// S[r * lds + j] = scale * sum_d A[r * lda + d] * Bt[d * ldb + j] for r < R, j < NV * W (one register
// tile; scale == 1 stores the sums as they are). Scaling at the store is the same multiplication
// the masking pass did before (scale * s), so S keeps its bits.
// The register tiles are never inlined, so that scripts/check-spills.sh finds each one as a
// symbol and checks that its accumulators stay in registers (a call per tile of D FMAs each is noise).
template <int R, long NV>
__attribute__((noinline)) static void attn_tile_dot(const float* A, long lda, const float* Bt, long ldb, long D, float* S, long lds,
                                                    float scale) {
  typedef typename B::V V;
  V acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (long v = 0; v < NV; ++v) acc[r][v] = B::zero();
  for (long d = 0; d < D; ++d) {
    const float* bp = Bt + d * ldb;
    V bv[NV];
#pragma GCC unroll 4
    for (long v = 0; v < NV; ++v) bv[v] = B::load(bp + v * B::W);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const V av = B::set1(A[r * lda + d]);
#pragma GCC unroll 4
      for (long v = 0; v < NV; ++v) acc[r][v] = B::fma(av, bv[v], acc[r][v]);
    }
  }
  if (scale != 1.0f) {
    const V sv = B::set1(scale);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (long v = 0; v < NV; ++v) acc[r][v] = B::mul(sv, acc[r][v]);
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (long v = 0; v < NV; ++v) B::store(S + r * lds + v * B::W, acc[r][v]);
}

// R rows of scores over the first ncols (a multiple of W, <= kAttnKB) columns: whole register
// tiles, then the remaining vectors as narrower tiles. Each score is the same d-ordered FMA
// chain whatever the tile, so the width never changes a bit of S.
template <int R>
static inline void attn_rows_dot(const float* A, long lda, const float* Bt, long ldb, long D, float* S, long lds,
                                 long ncols, float scale) {
  constexpr long NV = kAttnNV;
  long j = 0;
  for (; j + NV * B::W <= ncols; j += NV * B::W) attn_tile_dot<R, NV>(A, lda, Bt + j, ldb, D, S + j, lds, scale);
  if constexpr (NV > 2) {
    if (j + 2 * B::W <= ncols) {
      attn_tile_dot<R, 2>(A, lda, Bt + j, ldb, D, S + j, lds, scale);
      j += 2 * B::W;
    }
  }
  if constexpr (NV > 1) {
    if (j < ncols) attn_tile_dot<R, 1>(A, lda, Bt + j, ldb, D, S + j, lds, scale);
  }
}

// How many rows the next register tile of a run of n rows takes: all n when n <= kAttnR, else
// kAttnR while that leaves none or at least 4 rows, else 4; so with 6-row tiles 32 rows go as
// 6+6+6+6+4+4 rather than ending in a 2-row tile whose few accumulators cannot hide the FMA
// latency (with 4-row tiles: 4s and then the 1-3 left, as before).
static inline int attn_tile_rows(long n) {
  if (n <= kAttnR) return static_cast<int>(n);
  const long rest = n - kAttnR;
  return rest >= 4 || rest == 0 ? kAttnR : 4;
}

// Calls f(AttnTileH<R>()) with R = rows (1..kAttnR): the tile height as a compile-time constant.
template <int R>
struct AttnTileH {
  static constexpr int value = R;
};
template <int R = kAttnR, class F>
static inline void attn_with_rows(int rows, F&& f) {
  if constexpr (R >= 1) {
    if (rows == R) {
      f(AttnTileH<R>());
      return;
    }
    attn_with_rows<R - 1>(rows, f);
  }
}

// The columns of a block of nk keys that the score tiles cover: nk rounded up to whole vectors.
static inline long attn_cols(long nk) { return (nk + B::W - 1) / B::W * B::W; }

// The largest hi[r .. r + rows) (hi: per row of a block, how many of its keys the row can see at
// most, from the row's key range; null: every key of the block, n).
static inline long attn_tile_hi(const long* hi, long r, int rows, long n) {
  if (!hi) return n;
  long m = 0;
  for (int i = 0; i < rows; ++i) m = hi[r + i] > m ? hi[r + i] : m;
  return lmin_(n, m);
}

// S[r * lds + j] = scale * sum_d A[r * lda + d] * Bt[d * ldb + j] for r < nr, j < ncols (ncols: the
// keys of the block rounded up to whole vectors; the keys past the range are zero padding, masked
// later). With hi, each register tile of rows stops at the vector holding its rows' last visible
// key (the causal diagonal): the columns it leaves are past every one of its rows' ranges, which
// the mask pass sets to -inf whatever they hold.
static void attn_dot(const float* A, long lda, long nr, const float* Bt, long ldb, long D, float* S, long lds,
                     long ncols, float scale, const long* hi) {
  for (long r = 0; r < nr;) {
    const int rows = attn_tile_rows(nr - r);
    const long nct = lmin_(ncols, attn_cols(attn_tile_hi(hi, r, rows, ncols)));
    if (nct > 0)
      attn_with_rows(rows, [&](auto R) { attn_rows_dot<decltype(R)::value>(A + r * lda, lda, Bt, ldb, D, S + r * lds, lds, nct, scale); });
    r += rows;
  }
}

// C[r * ldc + d] += sum_{c < nc} coef[r * crs + c * ccs] * X[c * ldx + d] for r < R, d < D
template <int R>
__attribute__((noinline)) static void attn_tile_axpy(const float* coef, long crs, long ccs, long nc, const float* X,
                                                     long ldx, float* C, long ldc, long D) {
  typedef typename B::V V;
  constexpr long NV = kAttnNV;
  long d = 0;
  for (; d + NV * B::W <= D; d += NV * B::W) {
    V acc[R][NV];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (long v = 0; v < NV; ++v) acc[r][v] = B::load(C + r * ldc + d + v * B::W);
    for (long c = 0; c < nc; ++c) {
      const float* xp = X + c * ldx + d;
      V xv[NV];
#pragma GCC unroll 4
      for (long v = 0; v < NV; ++v) xv[v] = B::load(xp + v * B::W);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const V cv = B::set1(coef[r * crs + c * ccs]);
#pragma GCC unroll 4
        for (long v = 0; v < NV; ++v) acc[r][v] = B::fma(cv, xv[v], acc[r][v]);
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (long v = 0; v < NV; ++v) B::store(C + r * ldc + d + v * B::W, acc[r][v]);
  }
  for (; d < D; d += B::W) {
    const long m = lmin_(B::W, D - d);
    V acc[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r] = m == B::W ? B::load(C + r * ldc + d) : B::loadn(C + r * ldc + d, m);
    for (long c = 0; c < nc; ++c) {
      const V xv = m == B::W ? B::load(X + c * ldx + d) : B::loadn(X + c * ldx + d, m);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r] = B::fma(B::set1(coef[r * crs + c * ccs]), xv, acc[r]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      if (m == B::W) B::store(C + r * ldc + d, acc[r]);
      else B::storen(C + r * ldc + d, acc[r], m);
    }
  }
}

// With hi (per row r: its coefficients from hi[r] on are zeros), each register tile stops at its
// rows' largest hi: the terms it leaves are 0 * x, which add nothing to a sum (x finite).
static void attn_axpy(const float* coef, long crs, long ccs, long nr, long nc, const float* X, long ldx, float* C,
                      long ldc, long D, const long* hi) {
  for (long r = 0; r < nr;) {
    const int rows = attn_tile_rows(nr - r);
    const long nct = attn_tile_hi(hi, r, rows, nc);
    if (nct > 0)
      attn_with_rows(rows, [&](auto R) { attn_tile_axpy<decltype(R)::value>(coef + r * crs, crs, ccs, nct, X, ldx, C + r * ldc, ldc, D); });
    r += rows;
  }
}

// The key-side sums of the backward: C[j * ldc + d] += sum_{c < nq} coef[c * ccs + j] * X[c * ldx + d]
// for the nk keys j of a block (rows of C) over its nq query rows c. With hi (per query row c: the
// row sees none of the keys from hi[c] on, its coefficients there are zeros), a register tile of
// keys j0 .. starts at the first query row that sees key j0 or a later one: the rows before add
// only 0 * x.
static void attn_axpy_keys(const float* coef, long ccs, long nk, long nq, const float* X, long ldx, float* C, long ldc,
                           long D, const long* hi) {
  long c0 = 0;
  for (long j = 0; j < nk;) {
    const int rows = attn_tile_rows(nk - j);
    if (hi)
      while (c0 < nq && hi[c0] <= j) ++c0;
    // rows c0.. may still hold a smaller hi (ranges that are not monotone): their zeros are summed
    const long cs = hi ? c0 : 0;
    if (cs < nq)
      attn_with_rows(rows, [&](auto R) {
        attn_tile_axpy<decltype(R)::value>(coef + cs * ccs + j, 1, ccs, nq - cs, X + cs * ldx, ldx, C + j * ldc, ldc, D);
      });
    j += rows;
  }
}

// Every backend declares B::kAttnT8: whether it has B::transpose8x8(src, lds, dst, ldd)
// (dst[d * ldd + j] = src[j * lds + d] for j, d < 8) for the key transpose; else element by element.
// One (batch, kv head) group of attn_transpose: dst[d * ldt + j] = src[j * D + d], zero padded
// from Tk to ldt (X = B: a template, so that the 8 x 8 branch is compiled only where it exists).
template <class X = B>
static void attn_transpose_group(const float* src, long Tk, long D, float* dst, long ldt) {
  long j0 = 0;
  if constexpr (X::kAttnT8) {
    const long d0 = D & ~7L;
    for (; j0 + 8 <= Tk; j0 += 8)
      for (long d = 0; d < d0; d += 8) X::transpose8x8(src + j0 * D + d, D, dst + d * ldt + j0, ldt);
    for (long d = d0; d < D; ++d) {  // the last D % 8 rows of the transpose
      float* o = dst + d * ldt;
      for (long j = 0; j < j0; ++j) o[j] = src[j * D + d];
    }
  }
  for (long d = 0; d < D; ++d) {
    float* o = dst + d * ldt;
    for (long j = j0; j < Tk; ++j) o[j] = src[j * D + d];
    for (long j = Tk; j < ldt; ++j) o[j] = 0.0f;
  }
}

// Scratch of n floats aligned to 64 bytes (free with std::free), zeroed when zero is true. The
// attention's register tiles load 2 or 4 vectors per row: from a 16-byte-aligned malloc block
// (what glibc returns for large sizes) every other 32-byte load crosses a cache line.
static float* attn_alloc(long n, bool zero) {
  const size_t bytes = (sizeof(float) * static_cast<size_t>(n) + 63) / 64 * 64;
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes == 0 ? 64 : bytes));
  if (p && zero) std::memset(p, 0, bytes);
  return p;
}

// Keys (or values) of every (batch, kv head) transposed to [D][ldt] with ldt = Tk rounded up to
// 16 floats + kAttnKB (zero padded; rows start on 64-byte lines), so that a block of scores is a
// row of broadcasts times contiguous key vectors (a copy: same bits).
// The calling thread's buffer for the transposed keys (slot 0) or values (slot 1), grown on demand
// and kept, as the SGEMM's packing buffer is: a fresh block of a few MB per call came from mmap,
// with its page faults, on every attention call.
static float* attn_scratch(int slot, long n) {
  thread_local Scratch buf[2] = {{nullptr, 0}, {nullptr, 0}};
  return scratch_floats(buf[slot], static_cast<size_t>(n));
}

static float* attn_transpose(int slot, const float* x, long groups, long Tk, long D, long& ldt) {
  ldt = (Tk + 15) / 16 * 16 + kAttnKB;
  float* t = attn_scratch(slot, groups * D * ldt);
  if (!t) return nullptr;
  auto body = [&](long g, int) { attn_transpose_group(x + g * Tk * D, Tk, D, t + g * D * ldt, ldt); };
  parallel_tasks(groups, static_cast<double>(groups) * Tk * D < 65536 ? 1 : pool_threads(), body);
  return t;
}

// The visible keys of a block of query rows: the union of the rows' key ranges, and whether the
// rows' segment ids are all one value (-1 if not, or without segments).
struct AttnRows {
  long qp[kAttnQB];
  long j0[kAttnQB], j1[kAttnQB];
  long J0, J1;
  bool oneSeg;
  int32_t seg;
  int32_t segLo, segHi;  // the rows' smallest and largest segment ids (with segments)
  void init(const AttnVis& vis, long i0, long nr) {
    J0 = vis.a->Tk;
    J1 = 0;
    for (long r = 0; r < nr; ++r) {
      qp[r] = vis.qpos(i0 + r);
      vis.range(qp[r], j0[r], j1[r]);
      if (j0[r] < j1[r]) {
        J0 = lmin_(J0, j0[r]);
        J1 = lmax_(J1, j1[r]);
      }
    }
    oneSeg = false;
    seg = 0;
    if (vis.a->qSeg && vis.a->kSeg) {
      const int32_t* qs = vis.a->qSeg + vis.b * vis.a->Tq + i0;
      oneSeg = true;
      seg = qs[0];
      segLo = segHi = seg;
      for (long r = 1; r < nr; ++r) {
        oneSeg = oneSeg && qs[r] == seg;
        segLo = qs[r] < segLo ? qs[r] : segLo;
        segHi = qs[r] > segHi ? qs[r] : segHi;
      }
    }
  }
  // Whether no query of the rows can see any of the keys jb .. jb+nk for their segments: every key's
  // segment id lies outside [segLo, segHi] (the encoder connector's words see only their own bytes,
  // a few of the 512). Such a block's scores are all -inf: its probabilities and gradients are
  // zeros, so skipping it leaves every sum as it was.
  bool segments_miss(const AttnVis& vis, long jb, long nk) const {
    const AttnArgs& a = *vis.a;
    if (!a.qSeg || !a.kSeg) return false;
    const int32_t* ks = a.kSeg + vis.b * a.Tk + jb;
    for (long j = 0; j < nk; ++j)
      if (ks[j] >= segLo && ks[j] <= segHi) return false;
    return true;
  }
};

// Sets the scores S[nr][attn_cols(nk)] (row stride kAttnKB, already scaled by attn_dot) of keys
// jb.. jb+nk that a query cannot see (and the columns from nk on) to -inf.
static void attn_mask_block(const AttnVis& vis, const AttnRows& rows, long i0, long nr, long jb, long nk, float* S) {
  const long nc = attn_cols(nk);
  const AttnArgs& a = *vis.a;
  bool exact = a.kPos == nullptr && a.mask == nullptr;  // the rows' key ranges say it all
  if (exact && a.qSeg && a.kSeg) {
    exact = rows.oneSeg;
    const int32_t* ks = a.kSeg + vis.b * a.Tk + jb;
    for (long j = 0; exact && j < nk; ++j) exact = ks[j] == rows.seg;
  }
  // segments only (no positions that matter, no mask): a query sees the keys of its segment
  const bool segOnly = !exact && a.mask == nullptr && !a.causal && a.window <= 0 && a.qSeg && a.kSeg;
  for (long r = 0; r < nr; ++r) {
    float* s = S + r * kAttnKB;
    if (exact) {
      const long lo = lmin_(nk, lmax_(0, rows.j0[r] - jb)), hi = lmax_(lo, lmin_(nk, rows.j1[r] - jb));
      for (long j = 0; j < lo; ++j) s[j] = -__builtin_inff();
      for (long j = hi; j < nc; ++j) s[j] = -__builtin_inff();
    } else if (segOnly) {
      const int32_t qs = a.qSeg[vis.b * a.Tq + i0 + r];
      const int32_t* ks = a.kSeg + vis.b * a.Tk + jb;
      for (long j = 0; j < nk; ++j) s[j] = ks[j] == qs ? s[j] : -__builtin_inff();
      for (long j = nk; j < nc; ++j) s[j] = -__builtin_inff();
    } else {
      for (long j = 0; j < nk; ++j)
        if (!vis.visible(i0 + r, rows.qp[r], jb + j)) s[j] = -__builtin_inff();
      for (long j = nk; j < nc; ++j) s[j] = -__builtin_inff();
    }
  }
}

// Stored scores (training): the forward keeps the scaled, masked scores of every block it
// computes (rows at stride kAttnKB, the block's attn_cols(nk) columns, -inf where masked) and the
// backward reads them instead of its first score product, its mask pass and its key transpose:
// the same bits, since both sides computed them with the same calls. Layout: per (batch, query
// block) a run of Hq x nblk blocks of kAttnQB x kAttnKB floats (nblk: the key blocks from J0 to
// J1), head by head; offs[b * nqb + qb] is where the run starts (B * nqb + 1 entries). Only where
// the tiled path runs both ways with the same key blocks (no key-chunked backward) and the scores
// take at most 4 MiB or kAttnScoresMax times the floats of q (causal: sequences up to about 16 D).
constexpr double kAttnScoresMax = 8.0;
static long attn_scores_layout(const AttnArgs& a, long* offs) {
  const long B_ = a.B, Hq = a.Hq, Hkv = a.Hkv, Tq = a.Tq, Tk = a.Tk, D = a.D;
  if (B_ <= 0 || Hq <= 0 || Hkv <= 0 || Tq < 8 || Tk <= 0 || D <= 0) return 0;
  const double work = static_cast<double>(B_) * Hq * Tq * Tk * D;
  if (work >= 32768 && B_ * Hkv < 8) return 0;  // attention_backward_impl splits the keys into chunks
  const long nqb = (Tq + kAttnQB - 1) / kAttnQB;
  long total = 0;
  AttnRows rows;
  for (long b = 0; b < B_; ++b) {
    const AttnVis vis{&a, b};
    for (long qb = 0; qb < nqb; ++qb) {
      const long i0 = qb * kAttnQB, nr = lmin_(Tq, i0 + kAttnQB) - i0;
      rows.init(vis, i0, nr);
      const long nblk = rows.J1 > rows.J0 ? (rows.J1 - rows.J0 + kAttnKB - 1) / kAttnKB : 0;
      if (offs) offs[b * nqb + qb] = total;
      total += Hq * nblk * kAttnQB * kAttnKB;
    }
  }
  if (offs) offs[B_ * nqb] = total;
  if (total > (1L << 20) && static_cast<double>(total) > kAttnScoresMax * static_cast<double>(B_) * Hq * Tq * D) return 0;
  return total;
}
static long attention_scores_impl(const AttnArgs& a) { return attn_scores_layout(a, nullptr); }

// The stored scores of (batch b, query head hq, query block qb) with nblk key blocks, or null.
static float* attn_scores_run(const AttnArgs& a, const long* offs, long b, long hq, long qb, long nblk) {
  if (!a.scores) return nullptr;
  const long nqb = (a.Tq + kAttnQB - 1) / kAttnQB;
  return a.scores + offs[b * nqb + qb] + hq * nblk * kAttnQB * kAttnKB;
}

static void attention_impl(const AttnArgs& a) {
  typedef typename B::V V;
  const long B_ = a.B, Hq = a.Hq, Hkv = a.Hkv, Tq = a.Tq, Tk = a.Tk, D = a.D;
  if (B_ <= 0 || Hq <= 0 || Tq <= 0 || D <= 0) return;
  if (Tq < 8 || Tk <= 0) {
    attention_rows(a);
    return;
  }
  const long G = Hq / Hkv;
  long ldt = 0;
  float* kt = attn_transpose(0, a.k, B_ * Hkv, Tk, D, ldt);
  // stored scores: the backward relies on every computed block being written
  long* offs = nullptr;
  if (a.scores) {
    offs = static_cast<long*>(std::malloc(sizeof(long) * static_cast<size_t>(B_ * ((Tq + kAttnQB - 1) / kAttnQB) + 1)));
    if (!kt || !offs) tfree::out_of_memory("attention", 8.0 * B_ * Hkv * D * Tk);
    attn_scores_layout(a, offs);
  }
  if (!kt) {
    attention_rows(a);
    return;
  }
  const long nqb = (Tq + kAttnQB - 1) / kAttnQB;
  const long ntasks = B_ * Hq * nqb;
  const V ninf = B::set1(-__builtin_inff());
  auto task = [&](long t, int) {
    const long qb = t % nqb, bh = t / nqb;
    const long b = bh / Hq, hq = bh % Hq, hk = hq / G;
    const AttnVis vis{&a, b};
    const long i0 = qb * kAttnQB, nr = lmin_(Tq, i0 + kAttnQB) - i0;
    const float* ktb = kt ? kt + (b * Hkv + hk) * D * ldt : nullptr;
    const float* vb = a.v + (b * Hkv + hk) * Tk * D;
    const float* qb0 = a.q + ((b * Hq + hq) * Tq + i0) * D;
    float* acc = attn_alloc(nr * D, true);
    if (!acc) tfree::out_of_memory("attention", 4.0 * nr * D);
    alignas(64) float S[kAttnQB * kAttnKB];
    float m[kAttnQB], l[kAttnQB];
    AttnRows rows;
    rows.init(vis, i0, nr);
    for (long r = 0; r < nr; ++r) {
      m[r] = -__builtin_inff();
      l[r] = 0.0f;
    }
    const long nblk = rows.J1 > rows.J0 ? (rows.J1 - rows.J0 + kAttnKB - 1) / kAttnKB : 0;
    float* sv = attn_scores_run(a, offs, b, hq, qb, nblk);
    for (long jb = rows.J0; jb < rows.J1; jb += kAttnKB) {
      const long nk = lmin_(rows.J1, jb + kAttnKB) - jb, nc = attn_cols(nk);
      if (rows.segments_miss(vis, jb, nk)) continue;
      long hi[kAttnQB];  // per row: the keys of the block past its range (causal) are never visible
      for (long r = 0; r < nr; ++r) hi[r] = lmax_(0, lmin_(nk, rows.j1[r] - jb));
      attn_dot(qb0, D, nr, ktb + jb, ldt, D, S, kAttnKB, nc, a.scale, hi);
      attn_mask_block(vis, rows, i0, nr, jb, nk, S);
      float* svb = sv ? sv + (jb - rows.J0) / kAttnKB * (kAttnQB * kAttnKB) : nullptr;
      for (long r = 0; r < nr; ++r) {
        float* s = S + r * kAttnKB;
        V mv = ninf;
        if (svb) {
          float* o = svb + r * kAttnKB;
          for (long j = 0; j < nc; j += B::W) {
            const V x = B::load(s + j);
            B::store(o + j, x);
            mv = B::maxf(mv, x);
          }
        } else {
          for (long j = 0; j < nc; j += B::W) mv = B::maxf(mv, B::load(s + j));
        }
        const float bm = B::hmax(mv);
        if (bm == -__builtin_inff()) {
          for (long j = 0; j < nc; j += B::W) B::store(s + j, B::zero());
          continue;
        }
        const float mn = bm > m[r] ? bm : m[r];
        if (mn != m[r] && l[r] > 0.0f) {
          const float f = std::exp(m[r] - mn);
          l[r] *= f;
          const V fv = B::set1(f);
          float* ar = acc + r * D;
          long d = 0;
          for (; d + B::W <= D; d += B::W) B::store(ar + d, B::mul(fv, B::load(ar + d)));
          if (d < D) B::storen(ar + d, B::mul(fv, B::loadn(ar + d, D - d)), D - d);
        }
        m[r] = mn;
        const V mvv = B::set1(mn);
        V sum = B::zero();
        for (long j = 0; j < nc; j += B::W) {
          const V x = B::load(s + j);
          const V p = B::sel(B::gt(x, ninf), B::exp(B::sub(x, mvv)), B::zero());
          B::store(s + j, p);
          sum = B::add(sum, p);
        }
        l[r] += B::hsum(sum);
      }
      attn_axpy(S, kAttnKB, 1, nr, nk, vb + jb * D, D, acc, D, D, hi);
    }
    for (long r = 0; r < nr; ++r) {
      const long row = (b * Hq + hq) * Tq + i0 + r;
      float* o = a.outW + row * D;
      const float* ar = acc + r * D;
      if (l[r] > 0.0f) {
        const float inv = 1.0f / l[r];
        for (long d = 0; d < D; ++d) o[d] = ar[d] * inv;
        a.lseW[row] = m[r] + std::log(l[r]);
      } else {
        for (long d = 0; d < D; ++d) o[d] = 0.0f;
        a.lseW[row] = -__builtin_inff();
      }
    }
    std::free(acc);
  };
  const int T = pool_threads();
  const double work = static_cast<double>(B_) * Hq * Tq * Tk * D;
  parallel_tasks(ntasks, work < 32768 ? 1 : T, task);
  std::free(offs);
}

static void attention_backward_impl(const AttnArgs& a) {
  typedef typename B::V V;
  const long B_ = a.B, Hq = a.Hq, Hkv = a.Hkv, Tq = a.Tq, Tk = a.Tk, D = a.D;
  if (B_ <= 0 || Hq <= 0 || Tq <= 0 || Tk <= 0 || D <= 0) return;
  const long G = Hq / Hkv;
  const int T = pool_threads();
  const double work = static_cast<double>(B_) * Hq * Tq * Tk * D;
  const int useT = work < 32768 ? 1 : T;
  // with the forward's scores (the caller sized them with attentionScores) no key transpose
  long* offs = nullptr;
  if (a.scores) {
    offs = static_cast<long*>(std::malloc(sizeof(long) * static_cast<size_t>(B_ * ((Tq + kAttnQB - 1) / kAttnQB) + 1)));
    if (!offs) tfree::out_of_memory("attention backward", 8.0 * B_ * ((Tq + kAttnQB - 1) / kAttnQB) + 8);
    attn_scores_layout(a, offs);
  }
  long ldt = 0;
  float* kt = a.scores ? nullptr : attn_transpose(0, a.k, B_ * Hkv, Tk, D, ldt);
  float* vt = kt || a.scores ? attn_transpose(1, a.v, B_ * Hkv, Tk, D, ldt) : nullptr;
  // Split the keys into chunks (partial gq sums) when there are few (batch, kv head) groups; the
  // split depends on the shape only, never on the thread count, so gq is the same for any T.
  constexpr long kAttnUnits = 8;
  long nchunks = 1;
  if (work >= 32768 && B_ * Hkv < kAttnUnits) nchunks = lmin_(Tk, (kAttnUnits + B_ * Hkv - 1) / (B_ * Hkv));
  const long kchunk = (Tk + nchunks - 1) / nchunks;
  const long groupQ = G * Tq * D;  // gq floats of one (b, kv head) group
  float* gqPart = nullptr;
  if (nchunks > 1) {
    gqPart = static_cast<float*>(std::calloc(static_cast<size_t>(B_ * Hkv * nchunks * groupQ), sizeof(float)));
    if (!gqPart) nchunks = 1;
  }
  const long ntasks = B_ * Hkv * nchunks;
  if ((!kt && !a.scores) || !vt) tfree::out_of_memory("attention backward", 8.0 * B_ * Hkv * D * ldt);
  const V ninf = B::set1(-__builtin_inff());
  auto task = [&](long t, int) {
    const long ch = t % nchunks, bk = t / nchunks;
    const long b = bk / Hkv, hk = bk % Hkv;
    const long c0 = ch * kchunk, c1 = lmin_(Tk, c0 + kchunk);
    const AttnVis vis{&a, b};
    const float* kb = a.k + (b * Hkv + hk) * Tk * D;
    const float* ktb = kt + (b * Hkv + hk) * D * ldt;
    const float* vtb = vt + (b * Hkv + hk) * D * ldt;
    float* gkb = a.gk + (b * Hkv + hk) * Tk * D;
    float* gvb = a.gv + (b * Hkv + hk) * Tk * D;
    float* gqa = attn_alloc(kAttnQB * D, false);
    if (!gqa) tfree::out_of_memory("attention backward", 4.0 * kAttnQB * D);
    alignas(64) float P[kAttnQB * kAttnKB];
    alignas(64) float dS[kAttnQB * kAttnKB];
    float Di[kAttnQB], lse[kAttnQB];
    AttnRows rows;
    for (long g = 0; g < G; ++g) {
      const long hq = hk * G + g;
      for (long i0 = 0; i0 < Tq; i0 += kAttnQB) {
        const long nr = lmin_(Tq, i0 + kAttnQB) - i0;
        const long row0 = (b * Hq + hq) * Tq + i0;
        const float* qr = a.q + row0 * D;
        const float* gor = a.gOut + row0 * D;
        rows.init(vis, i0, nr);
        const long J0 = lmax_(rows.J0, c0), J1 = lmin_(rows.J1, c1);
        if (J0 >= J1) continue;
        bool any = false;
        for (long r = 0; r < nr; ++r) {
          lse[r] = a.lse[row0 + r];
          any = any || lse[r] > -__builtin_inff();
          Di[r] = row_dot(gor + r * D, a.out + (row0 + r) * D, D);
        }
        if (!any) continue;
        for (long i = 0; i < nr * D; ++i) gqa[i] = 0.0f;
        // nchunks == 1 wherever there are stored scores, so J0 / J1 are the forward's
        const long nblk = rows.J1 > rows.J0 ? (rows.J1 - rows.J0 + kAttnKB - 1) / kAttnKB : 0;
        const float* sv = attn_scores_run(a, offs, b, hq, i0 / kAttnQB, nblk);
        for (long jb = J0; jb < J1; jb += kAttnKB) {
          const long nk = lmin_(J1, jb + kAttnKB) - jb, nc = attn_cols(nk);
          if (rows.segments_miss(vis, jb, nk)) continue;
          const float* svb = sv ? sv + (jb - rows.J0) / kAttnKB * (kAttnQB * kAttnKB) : nullptr;
          long hi[kAttnQB];  // as in the forward
          for (long r = 0; r < nr; ++r) hi[r] = lmax_(0, lmin_(nk, rows.j1[r] - jb));
          if (!svb) {
            attn_dot(qr, D, nr, ktb + jb, ldt, D, P, kAttnKB, nc, a.scale, hi);
            attn_mask_block(vis, rows, i0, nr, jb, nk, P);
          }
          // columns past a row tile's keys are not computed: the pass below zeroes their dS
          attn_dot(gor, D, nr, vtb + jb, ldt, D, dS, kAttnKB, nc, 1.0f, hi);
          const V sc = B::set1(a.scale);
          for (long r = 0; r < nr; ++r) {
            float* p = P + r * kAttnKB;
            const float* ps = svb ? svb + r * kAttnKB : p;  // the scores: stored, or just computed in P
            float* ds = dS + r * kAttnKB;
            if (!(lse[r] > -__builtin_inff())) {  // fully masked row: zero gradients
              for (long j = 0; j < nc; j += B::W) {
                B::store(p + j, B::zero());
                B::store(ds + j, B::zero());
              }
              continue;
            }
            const V lv = B::set1(lse[r]), dv = B::set1(Di[r]);
            for (long j = 0; j < nc; j += B::W) {
              const V x = B::load(ps + j);
              const auto seen = B::gt(x, ninf);
              const V pv = B::sel(seen, B::exp(B::sub(x, lv)), B::zero());
              B::store(p + j, pv);
              B::store(ds + j, B::sel(seen, B::mul(B::mul(pv, B::sub(B::load(ds + j), dv)), sc), B::zero()));
            }
          }
          // gv[j] += sum_r P[r][j] dO[r]; gk[j] += sum_r dS[r][j] q[r]; gq[r] += sum_j dS[r][j] k[j]
          attn_axpy_keys(P, kAttnKB, nk, nr, gor, D, gvb + jb * D, D, D, hi);
          attn_axpy_keys(dS, kAttnKB, nk, nr, qr, D, gkb + jb * D, D, D, hi);
          attn_axpy(dS, kAttnKB, 1, nr, nk, kb + jb * D, D, gqa, D, D, hi);
        }
        for (long r = 0; r < nr; ++r) {
          if (!(lse[r] > -__builtin_inff())) continue;
          float* dst = nchunks > 1 ? gqPart + (bk * nchunks + ch) * groupQ + (g * Tq + i0 + r) * D : a.gq + (row0 + r) * D;
          row_axpy(1.0f, gqa + r * D, dst, D);
        }
      }
    }
    std::free(gqa);
  };
  parallel_tasks(ntasks, useT, task);
  if (nchunks > 1) {
    for (long bk = 0; bk < B_ * Hkv; ++bk) {
      const long b = bk / Hkv, hk = bk % Hkv;
      float* dst = a.gq + (b * Hq + hk * G) * Tq * D;  // the G query heads of this group are contiguous
      for (long ch = 0; ch < nchunks; ++ch) row_axpy(1.0f, gqPart + (bk * nchunks + ch) * groupQ, dst, groupQ);
    }
    std::free(gqPart);
  }
  std::free(offs);
}

// ---------------------------------------------------------------------------------------------
// cross-entropy
static inline float row_lse(const float* x, long n) {
  typedef typename B::V V;
  const float m = row_max(x, n);
  if (m == -__builtin_inff()) return m;
  const V vm = B::set1(m);
  V s = B::zero();
  long i = 0;
  for (; i + B::W <= n; i += B::W) s = B::add(s, B::exp(B::sub(B::load(x + i), vm)));
  if (i < n) {
    const V e = B::exp(B::sub(B::loadn(x + i, n - i), vm));
    s = B::add(s, B::sel(B::gt(B::set1(static_cast<float>(n - i)), B::lane_index()), e, B::zero()));
  }
  return m + B::log1(B::hsum(s));
}

static long cross_entropy_impl(const float* logits, const int32_t* targets, float* losses, float* lse, long rows,
                               long cols, long ignoreIndex) {
  if (cols <= 0) return 0;
  auto body = [=](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      const float* x = logits + r * cols;
      const float l = row_lse(x, cols);
      lse[r] = l;
      const long t = targets[r];
      losses[r] = t == ignoreIndex ? 0.0f : l - x[t];
    }
  };
  par_range(rows, lmax_(1, kRowWorkPar / 4 / cols), 1, body);
  long count = 0;
  for (long r = 0; r < rows; ++r) count += targets[r] != ignoreIndex;
  return count;
}

static void cross_entropy_backward_impl(const float* logits, const int32_t* targets, const float* lse,
                                        const float* gLoss, float* glogits, long rows, long cols, long ignoreIndex,
                                        bool acc) {
  typedef typename B::V V;
  if (cols <= 0) return;
  auto body = [=](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      const float* x = logits + r * cols;
      float* g = glogits + r * cols;
      const long t = targets[r];
      if (t == ignoreIndex) {
        if (!acc) std::memset(g, 0, sizeof(float) * cols);
        continue;
      }
      const float gl = gLoss[r];
      const V vl = B::set1(lse[r]), vg = B::set1(gl);
      long i = 0;
      for (; i + B::W <= cols; i += B::W) {
        V v = B::mul(vg, B::exp(B::sub(B::load(x + i), vl)));
        if (acc) v = B::add(B::load(g + i), v);
        B::store(g + i, v);
      }
      if (i < cols) {
        const long m = cols - i;
        V v = B::mul(vg, B::exp(B::sub(B::loadn(x + i, m), vl)));
        if (acc) v = B::add(B::loadn(g + i, m), v);
        B::storen(g + i, v, m);
      }
      g[t] -= gl;
    }
  };
  par_range(rows, lmax_(1, kRowWorkPar / 4 / cols), 1, body);
}

// ---------------------------------------------------------------------------------------------
// optimiser
// gs != 1: the gradient is read as fma(g, gs, 0), the value affine(g, g, n, gs, 0) (gradient
// clipping's scaling pass) would have stored, so clipping fused into the update gives the same bits.
// The loop works on local copies of the pointers and constants: the vector stores are may_alias,
// so a loop that read them through the lambda's closure reloaded every one of them (the pointers
// through two dependent loads) after each store; 31 M floats then took 30-33 ms instead of 22-23.
struct AdamwK {
  typename B::V b1, b1c, b2, b2c, ibc1, ibc2, eps, lr, dec, gs;
};
template <bool kScaled>
static inline void adamw_range(float* p, const float* g, float* m, float* v, long i0, long i1, const AdamwK k) {
  typedef typename B::V V;
  auto step = [k](V pv, V gv, V mv, V vv, V& po, V& mo, V& vo) {
    if (kScaled) gv = B::fma(gv, k.gs, B::zero());
    mo = B::fma(k.b1, mv, B::mul(k.b1c, gv));
    vo = B::fma(k.b2, vv, B::mul(k.b2c, B::mul(gv, gv)));
    const V upd = B::div(B::mul(mo, k.ibc1), B::add(B::sqrt(B::mul(vo, k.ibc2)), k.eps));
    po = B::sub(B::sub(pv, B::mul(k.lr, upd)), B::mul(k.dec, pv));
  };
  long i = i0;
  for (; i + B::W <= i1; i += B::W) {
    V po, mo, vo;
    step(B::load(p + i), B::load(g + i), B::load(m + i), B::load(v + i), po, mo, vo);
    B::store(p + i, po);
    B::store(m + i, mo);
    B::store(v + i, vo);
  }
  if (i < i1) {
    const long r = i1 - i;
    V po, mo, vo;
    step(B::loadn(p + i, r), B::loadn(g + i, r), B::loadn(m + i, r), B::loadn(v + i, r), po, mo, vo);
    B::storen(p + i, po, r);
    B::storen(m + i, mo, r);
    B::storen(v + i, vo, r);
  }
}

static void adamw_impl(float* p, const float* g, float* m, float* v, long n, float lr, float b1, float b2, float eps,
                       float wd, float bc1, float bc2, float gs) {
  AdamwK k;
  k.b1 = B::set1(b1);
  k.b1c = B::set1(1.0f - b1);
  k.b2 = B::set1(b2);
  k.b2c = B::set1(1.0f - b2);
  k.ibc1 = B::set1(1.0f / bc1);
  k.ibc2 = B::set1(1.0f / bc2);
  k.eps = B::set1(eps);
  k.lr = B::set1(lr);
  k.dec = B::set1(lr * wd);
  k.gs = B::set1(gs);
  const bool scaled = gs != 1.0f;
  auto body = [p, g, m, v, k, scaled](long i0, long i1) {
    if (scaled) adamw_range<true>(p, g, m, v, i0, i1, k);
    else adamw_range<false>(p, g, m, v, i0, i1, k);
  };
  par_range(n, kElemPar, 16, body);
}

// ---------------------------------------------------------------------------------------------

// ---- diagnostics: the read-bandwidth and FMA probes. The driving (thread split, clamping, sums)
// is the same for every backend; B supplies the per-thread loops (read_range, fma_chains), the
// chunk alignment of its read loop (kReadAlign) and the flops one fma_chains iteration does.
struct ReadCtx {
  const float* x;
  long n;
  int parts;
  double sums[256];
};
static void read_task(void* c, long t, int) {
  ReadCtx* r = static_cast<ReadCtx*>(c);
  const long chunk = ((r->n + r->parts - 1) / r->parts + (B::kReadAlign - 1)) & ~(B::kReadAlign - 1);
  const long i0 = t * chunk;
  const long i1 = i0 + chunk < r->n ? i0 + chunk : r->n;
  r->sums[t] = i0 < i1 ? B::read_range(r->x, i0, i1) : 0.0;
}
static double read_sum(const float* x, long n, int threads) {
  ReadCtx c;
  c.x = x;
  c.n = n;
  c.parts = threads < 1 ? 1 : (threads > 256 ? 256 : threads);
  const int pt = pool_threads();
  if (c.parts > pt) c.parts = pt;
  pool_run_static(c.parts, read_task, &c);
  double s = 0;
  for (int t = 0; t < c.parts; ++t) s += c.sums[t];
  return s;
}
struct FmaCtx {
  long iters;
  float sink[256];
};
static void fma_task(void* c, long t, int) {
  FmaCtx* f = static_cast<FmaCtx*>(c);
  f->sink[t] = B::fma_chains(f->iters, t);
}
// Runs the FMA chains on `threads` threads; returns the flops executed (the caller times it).
static double fma_peak(long iters, int threads) {
  FmaCtx c;
  c.iters = iters < 1 ? 1 : iters;
  int nt = threads < 1 ? 1 : threads;
  const int pt = pool_threads();
  if (nt > pt) nt = pt;
  pool_run_static(nt, fma_task, &c);
  volatile float sink = 0;
  for (int t = 0; t < nt; ++t) sink = sink + c.sink[t];
  return static_cast<double>(c.iters) * nt * B::kFmaFlopsPerIter;
}

static const OpsTable* make_table(const char* name) {
  static OpsTable t;
  t.name = name;
  t.unary = unary_impl;
  t.unaryBackward = unary_backward_impl;
  t.swiglu = swiglu_impl;
  t.swigluBackward = swiglu_backward_impl;
  t.binary = binary_impl;
  t.copyStrided = copy_strided_impl;
  t.affine = affine_impl;
  t.axpy = axpy_impl;
  t.reduce = reduce_impl;
  t.sumSquares = sum_squares_impl;
  t.softmax = softmax_impl;
  t.softmaxBackward = softmax_backward_impl;
  t.rmsnorm = rmsnorm_impl;
  t.rmsnormBackward = rmsnorm_backward_impl;
  t.layernorm = layernorm_impl;
  t.layernormBackward = layernorm_backward_impl;
  t.gather = gather_impl;
  t.scatterAdd = scatter_add_impl;
  t.rope = rope_impl;
  t.attention = attention_impl;
  t.attentionBackward = attention_backward_impl;
  t.attentionScores = attention_scores_impl;
  t.crossEntropy = cross_entropy_impl;
  t.crossEntropyBackward = cross_entropy_backward_impl;
  t.adamw = adamw_impl;
  t.readSum = read_sum;
  t.fmaRun = fma_peak;
  return &t;
}
