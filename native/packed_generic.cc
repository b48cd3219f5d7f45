// Packed-weight matmul, portable version (see PackedArgs in kernels.h; both activation modes), and the helpers the AVX2
// version shares. The pure-TypeScript twin (src/tensor/kernels/js_packed.ts) computes the same
// function with the same float32 operations, so the two agree bit for bit.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace tfree {

namespace {

// levels as integers: exact when all are integers with |L| <= intMax, else nearbyint(L * q / max|L|)
// with scale max|L| / q
void levels_fixed(const float* levels, int n, float intMax, float q, int16_t* out, float* ls) {
  bool integral = true;
  float mx = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float a = std::fabs(levels[i]);
    if (!(a <= intMax) || levels[i] != std::nearbyint(levels[i])) integral = false;
    if (a > mx) mx = a;
  }
  if (integral) {
    for (int i = 0; i < n; ++i) out[i] = static_cast<int16_t>(levels[i]);
    *ls = 1.0f;
    return;
  }
  if (!(mx > 0.0f) || !std::isfinite(mx)) {  // all zero, or non-finite levels: NaN propagates through ls
    for (int i = 0; i < n; ++i) out[i] = 0;
    *ls = std::isfinite(mx) ? 0.0f : NAN;
    return;
  }
  const float inv = q / mx;
  for (int i = 0; i < n; ++i) out[i] = static_cast<int16_t>(std::nearbyint(levels[i] * inv));
  *ls = mx / q;
}

}  // namespace

void packed_levels_i16(const float* levels, int n, int16_t* L16, float* ls) { levels_fixed(levels, n, 8191.0f, 8191.0f, L16, ls); }

void packed_levels_i8(const float* levels, int n, int16_t* L8, float* ls) { levels_fixed(levels, n, 128.0f, 64.0f, L8, ls); }

void packed_quantize_x(const float* x, long K, long U, float qmax, int16_t* xq, float* xs) {
  for (long g = 0; g * U < K; ++g) {
    const float* xg = x + g * U;
    float amax = 0.0f;
    bool finite = true;
    for (long i = 0; i < U; ++i) {
      const float a = std::fabs(xg[i]);
      if (!(a <= 3.4e38f)) finite = false;
      else if (a > amax) amax = a;
    }
    int16_t* q = xq + g * U;
    if (!finite || amax == 0.0f) {
      for (long i = 0; i < U; ++i) q[i] = 0;
      xs[g] = finite ? 0.0f : NAN;
      continue;
    }
    const float inv = qmax / amax;
    for (long i = 0; i < U; ++i) q[i] = static_cast<int16_t>(std::nearbyint(xg[i] * inv));
    xs[g] = amax / qmax;
  }
}

void packed_scales_f32(const uint16_t* s, long n, bool bf16, float* out) {
  for (long i = 0; i < n; ++i) {
    const uint32_t h = s[i];
    uint32_t bits;
    if (bf16) {
      bits = h << 16;
    } else {
      const uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
      if (e == 0x1f) {
        bits = sign | 0x7f800000u | (m << 13);
      } else if (e != 0) {
        bits = sign | ((e + 112) << 23) | (m << 13);
      } else if (m == 0) {
        bits = sign;
      } else {  // subnormal: m * 2^-24
        float v = static_cast<float>(m) * 5.9604644775390625e-8f;
        std::memcpy(&bits, &v, 4);
        bits |= sign;
      }
    }
    std::memcpy(out + i, &bits, 4);
  }
}

namespace {

inline uint32_t code_at(const uint8_t* row, long i, int bits) {
  if (bits == 8) return row[i];
  uint32_t c = 0;
  long bit = i * bits;
  for (int t = 0; t < bits; ++t, ++bit) c = (c << 1) | ((row[bit >> 3] >> (7 - (bit & 7))) & 1u);
  return c;
}

}  // namespace

void packed_matmul_generic(const PackedArgs& a) {
  const long M = a.M, N = a.N, K = a.K, B = a.B;
  const long U = (B % 64 == 0) ? 64 : B;
  const long nU = K / U, nB = K / B;
  const long gpb = B / U;  // activation groups per scale block
  const int nl = 1 << a.bits;
  int16_t L16[256];
  float ls;
  if (a.act8) packed_levels_i8(a.levels, nl, L16, &ls);
  else packed_levels_i16(a.levels, nl, L16, &ls);
  std::vector<int16_t> x16(static_cast<size_t>(M * K));
  std::vector<float> xs(static_cast<size_t>(M * nU));
  const float qmax = a.act8 ? 127.0f : 32767.0f;
  for (long m = 0; m < M; ++m) packed_quantize_x(a.x + m * K, K, U, qmax, x16.data() + m * K, xs.data() + m * nU);
  const long rb = K * a.bits / 8;
  const int T = pool_threads();
  const long ntasks = (T <= 1 || N * K * M < 65536) ? 1 : (N < 4 * T ? N : 4 * T);
  const long chunk = (N + ntasks - 1) / ntasks;
  auto body = [&](long t, int) {
    std::vector<int16_t> wrow(static_cast<size_t>(K));
    std::vector<float> sc(static_cast<size_t>(nB));
    const long n0 = t * chunk, n1 = (n0 + chunk < N) ? n0 + chunk : N;
    for (long n = n0; n < n1; ++n) {
      const uint8_t* row = a.codes + n * rb;
      for (long k = 0; k < K; ++k) wrow[k] = L16[code_at(row, k, a.bits)];
      packed_scales_f32(a.scales + n * nB, nB, a.scaleBf16, sc.data());
      for (long m = 0; m < M; ++m) {
        const int16_t* xq = x16.data() + m * K;
        float acc = 0.0f;
        // groups of U nest in blocks of B (U = 64 or B): block b holds groups b * gpb .. (b + 1) * gpb - 1
        for (long b = 0, u = 0; b < nB; ++b) {
          for (long j = 0; j < gpb; ++j, ++u) {
            int64_t s = 0;
            for (long i = u * U; i < (u + 1) * U; ++i) s += static_cast<int32_t>(wrow[i]) * xq[i];
            const float comb = sc[b] * ls * xs[m * nU + u];
            acc += static_cast<float>(s) * comb;
          }
        }
        a.out[m * N + n] = acc;
      }
    }
  };
  parallel_tasks(ntasks, 0, body);
}

}  // namespace tfree
