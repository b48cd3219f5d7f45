// Quantizer kernels, portable C++ (QuantArgs and kmeans_lloyd in kernels.h). The pure-TypeScript
// twins (src/tensor/kernels/js_quant.ts) perform the same float64 operations in the same order, so
// the two agree bit for bit; rows are split across the pool, and no result depends on the split.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace tfree {

namespace {

// float32 bits -> float16 bits, nearest even (the rule of f32BitsToF16 in src/tensor/kernels/half.ts)
uint16_t f32_bits_to_f16(uint32_t u) {
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t exp = (u >> 23) & 0xffu;
  const uint32_t mant = u & 0x7fffffu;
  if (exp == 0xffu) {
    if (mant == 0) return static_cast<uint16_t>(sign | 0x7c00u);
    return static_cast<uint16_t>(sign | 0x7c00u | 0x0200u | (mant >> 13));
  }
  if (exp > 142) return static_cast<uint16_t>(sign | 0x7c00u);
  if (exp >= 113) {
    uint32_t h = ((exp - 112) << 10) | (mant >> 13);
    const uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) != 0)) h++;
    return static_cast<uint16_t>(sign | h);
  }
  const uint32_t shift = 126 - exp;
  if (shift > 24) return static_cast<uint16_t>(sign);
  const uint32_t m = mant | 0x800000u;
  uint32_t q = m >> shift;
  const uint32_t rest = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (q & 1u) != 0)) q++;
  return static_cast<uint16_t>(sign | q);
}

uint16_t scale_bits(double s, bool bf16) {
  const float f = static_cast<float>(s);  // nearest float32, as Float32Array storage
  if (bf16) {
    uint16_t h;
    bf16_round(&f, 1, &h);
    return h;
  }
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return f32_bits_to_f16(u);
}

inline long bucketize(const double* mid, long nm, double v) {
  long lo = 0, hi = nm;
  while (lo < hi) {
    const long m = static_cast<long>(static_cast<unsigned long>(lo + hi) >> 1);
    if (v > mid[m]) lo = m + 1;
    else hi = m;
  }
  return lo;
}

inline double clampd(double v, double lo, double hi) { return std::max(lo, std::min(hi, v)); }

// bucketize for 2^bits - 1 ascending midpoints: the number of midpoints below v, as a branch-free
// binary search over the complete tree (same result as bucketize: the predicate v > mid[j] is
// monotone in j)
inline long count_below(const double* mid, int bits, double v) {
  long lo = 0;
  for (long step = 1L << (bits - 1); step > 0; step >>= 1) lo += v > mid[lo + step - 1] ? step : 0;
  return lo;
}

// round half to even of |v| < 2^51 (default rounding mode; the clamped values here are within
// +-127): adding and subtracting 1.5 * 2^52 rounds to an integer in the current mode. Unlike
// std::nearbyint (a libm call without SSE4.1) it is inlined. -0.5 .. -0 gives +0, not -0:
// the same code either way.
inline double round_even(double v) {
  const double big = 6755399441055744.0;  // 1.5 * 2^52
  return (v + big) - big;  // two roundings: no -ffast-math here (fp-contract off above)
}

// codes of one block into cb[0..B): one loop per kind, no branch per weight (vectorisable)
void block_codes(const QuantArgs& a, const float* w, long B, double sv, double mu, double qmax, uint8_t* cb) {
  const int bits = a.bits;
  if (a.kind == 2) {
    for (long i = 0; i < B; ++i) cb[i] = static_cast<double>(w[i]) - mu >= 0 ? 1 : 0;
    return;
  }
  if (!(sv > 0)) {  // w/s is 0: int 0, ternary 0 + 1, k-means the bucket of 0
    const uint8_t c = a.kind == 1 ? static_cast<uint8_t>(count_below(a.mid, bits, 0.0)) : a.kind == 3 ? 1 : 0;
    for (long i = 0; i < B; ++i) cb[i] = c;
    return;
  }
  if (a.kind == 1) {
    for (long i = 0; i < B; ++i) cb[i] = static_cast<uint8_t>(count_below(a.mid, bits, static_cast<double>(w[i]) / sv));
    return;
  }
  // int: two's complement in `bits` bits of round_even(clamp(w/s)); ternary: that of clamp to +-1, plus 1
  const double lim = a.kind == 3 ? 1.0 : qmax;
  const int32_t add = a.kind == 3 ? 1 : 0;
  const int32_t mask = (1 << bits) - 1;
  for (long i = 0; i < B; ++i) {
    const double q = round_even(clampd(static_cast<double>(w[i]) / sv, -lim, lim));
    cb[i] = static_cast<uint8_t>((static_cast<int32_t>(q) + add) & mask);
  }
}

// packs B codes (B * bits a multiple of 8) MSB first into B * bits / 8 bytes
void pack_block(const uint8_t* cb, long B, int bits, uint8_t* o) {
  if (bits == 8) {
    std::memcpy(o, cb, static_cast<size_t>(B));
  } else if (bits == 4) {
    for (long j = 0; j < B / 2; ++j) o[j] = static_cast<uint8_t>((cb[2 * j] << 4) | cb[2 * j + 1]);
  } else if (bits == 2) {
    for (long j = 0; j < B / 4; ++j)
      o[j] = static_cast<uint8_t>((cb[4 * j] << 6) | (cb[4 * j + 1] << 4) | (cb[4 * j + 2] << 2) | cb[4 * j + 3]);
  } else if (bits == 1) {
    for (long j = 0; j < B / 8; ++j) {
      uint32_t v = 0;
      for (int t = 0; t < 8; ++t) v = (v << 1) | cb[8 * j + t];
      o[j] = static_cast<uint8_t>(v);
    }
  } else {
    uint32_t acc = 0;
    int nacc = 0;
    for (long i = 0; i < B; ++i) {
      acc = ((acc << bits) | cb[i]) & 0xffffu;
      nacc += bits;
      if (nacc >= 8) {
        nacc -= 8;
        *o++ = static_cast<uint8_t>((acc >> nacc) & 0xffu);
      }
    }
  }
}

void quantize_rows(const QuantArgs& a, long r0, long r1) {
  const long B = a.B, cols = a.cols, nb = cols / B;
  const int bits = a.bits;
  const double qmax = std::ldexp(1.0, bits - 1) - 1.0;
  const long rb = cols * bits / 8, bb = B * bits / 8;
  std::vector<uint8_t> cb(static_cast<size_t>(B));
  for (long r = r0; r < r1; ++r) {
    for (long b = 0; b < nb; ++b) {
      const float* w = a.w + r * cols + b * B;
      double s = 0.0;
      if (a.scaleMode == 0) {
        for (long i = 0; i < B; ++i) s = std::max(s, std::fabs(static_cast<double>(w[i])));
      } else {
        for (long i = 0; i < B; ++i) s += std::fabs(static_cast<double>(w[i]));
        s /= static_cast<double>(B);
      }
      s = std::max(s, a.eps);
      if (a.kind == 0 && a.scaleMode != 2) s /= qmax;
      const uint16_t h = scale_bits(s, a.scaleBf16);
      a.scales[r * nb + b] = h;
      if (a.codes == nullptr) continue;
      float svf;
      packed_scales_f32(&h, 1, a.scaleBf16, &svf);
      double mu = a.centre;
      if (a.kind == 2 && std::isnan(a.centre)) {
        mu = 0.0;
        for (long i = 0; i < B; ++i) mu += static_cast<double>(w[i]);
        mu /= static_cast<double>(B);
      }
      block_codes(a, w, B, static_cast<double>(svf), mu, qmax, cb.data());
      pack_block(cb.data(), B, bits, a.codes + r * rb + b * bb);
    }
  }
}

}  // namespace

long quantize_blocks(const QuantArgs& a) {
  const long rows = a.rows, cols = a.cols;
  const int T = pool_threads();
  const long work = rows * cols;
  const long ntasks = (T <= 1 || work < (1L << 16) || rows < 2) ? 1 : std::min(rows, 8L * T);
  const long chunk = (rows + ntasks - 1) / ntasks;
  // the first non-finite weight: the smallest index over all rows
  std::vector<long> bad(static_cast<size_t>(ntasks), -1);
  auto check = [&](long t, int) {
    const long r0 = t * chunk, r1 = std::min(rows, r0 + chunk);
    const float* w = a.w;
    for (long i = r0 * cols; i < r1 * cols; ++i) {
      uint32_t u;
      std::memcpy(&u, w + i, 4);
      if ((u & 0x7f800000u) == 0x7f800000u) {
        bad[static_cast<size_t>(t)] = i;
        return;
      }
    }
  };
  parallel_tasks(ntasks, 0, check);
  for (long t = 0; t < ntasks; ++t)
    if (bad[static_cast<size_t>(t)] >= 0) return bad[static_cast<size_t>(t)];
  auto body = [&](long t, int) {
    const long r0 = t * chunk, r1 = std::min(rows, r0 + chunk);
    if (r0 < r1) quantize_rows(a, r0, r1);
  };
  parallel_tasks(ntasks, 0, body);
  return -1;
}

void widen_bf16(const uint16_t* src, float* out, long n) {
  const int T = pool_threads();
  const long ntasks = (T <= 1 || n < (1L << 18)) ? 1 : 4L * T;
  const long chunk = ((n + ntasks - 1) / ntasks + 15) / 16 * 16;
  auto body = [&](long t, int) {
    const long i0 = t * chunk, i1 = std::min(n, i0 + chunk);
    for (long i = i0; i < i1; ++i) {
      const uint32_t b = static_cast<uint32_t>(src[i]) << 16;
      std::memcpy(out + i, &b, 4);
    }
  };
  parallel_tasks(ntasks, 0, body);
}

long kmeans_lloyd(const double* x, const double* wt, long n, double* c, long k, long maxIter, double tol, int32_t* assign) {
  std::vector<double> sum(static_cast<size_t>(k)), cnt(static_cast<size_t>(k)), mid(static_cast<size_t>(k > 1 ? k - 1 : 0));
  // k a power of two (2..2^16): the assignment by count_below over the complete tree of k - 1 midpoints
  int bits = 0;
  if (k >= 2 && k <= 65536 && (k & (k - 1)) == 0)
    while ((1L << bits) < k) ++bits;
  long it = 0;
  for (; it < maxIter; ++it) {
    for (long i = 0; i + 1 < k; ++i) mid[static_cast<size_t>(i)] = (c[i] + c[i + 1]) / 2;
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(cnt.begin(), cnt.end(), 0.0);
    long changed = 0;
    if (bits > 0) {  // k = 2^bits: the branch-free search (same assignments: the midpoints ascend)
      double* sp = sum.data();
      double* cp = cnt.data();
      for (long i = 0; i < n; ++i) {
        const int32_t j = static_cast<int32_t>(count_below(mid.data(), bits, x[i]));
        changed += j != assign[i];
        assign[i] = j;
        sp[j] += wt[i] * x[i];
        cp[j] += wt[i];
      }
    } else {
      for (long i = 0; i < n; ++i) {
        const int32_t j = static_cast<int32_t>(bucketize(mid.data(), k - 1, x[i]));
        if (j != assign[i]) ++changed;
        assign[i] = j;
        sum[static_cast<size_t>(j)] += wt[i] * x[i];
        cnt[static_cast<size_t>(j)] += wt[i];
      }
    }
    for (long j = 0; j < k; ++j)
      if (cnt[static_cast<size_t>(j)] > 0) c[j] = sum[static_cast<size_t>(j)] / cnt[static_cast<size_t>(j)];
    for (long j = 1; j < k; ++j)
      if (c[j] < c[j - 1]) c[j] = c[j - 1];
    if (static_cast<double>(changed) / static_cast<double>(n) <= tol) {
      ++it;
      break;
    }
  }
  return it;
}

}  // namespace tfree
