// Activation-side lookup-table matmul for 1- and 2-bit codes (see PackedLutArgs in kernels.h),
// portable version, and the table builder the AVX2 version shares (so both use the same int8
// tables, bit for bit). The pure-TypeScript twin (src/tensor/kernels/js_packed_lut.ts) performs the
// same float32 operations in the same order.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace tfree {

void packed_lut_tables(const float* x, long K, int bits, const int16_t* L8, int8_t* tab, float* ts) {
  const int E = 4 / bits, Q = 64 / E;
  const unsigned mask = (1u << bits) - 1;
  float T[32 * 16];
  for (long u = 0; u * 64 < K; ++u) {
    const float* xg = x + u * 64;
    float amax = 0.0f;
    bool finite = true;
    for (int q = 0; q < Q; ++q) {
      for (int j = 0; j < 16; ++j) {
        float t = 0.0f;
        for (int i = 0; i < E; ++i) t = t + static_cast<float>(L8[(j >> (4 - bits * (i + 1))) & mask]) * xg[q * E + i];
        T[q * 16 + j] = t;
        const float a = std::fabs(t);
        if (!(a <= 3.4e38f)) finite = false;
        else if (a > amax) amax = a;
      }
    }
    int8_t* tg = tab + u * Q * 16;
    if (!finite || amax == 0.0f) {
      std::memset(tg, 0, static_cast<size_t>(Q) * 16);
      ts[u] = finite ? 0.0f : NAN;
      continue;
    }
    const float inv = 127.0f / amax;
    for (int i = 0; i < Q * 16; ++i) tg[i] = static_cast<int8_t>(std::nearbyint(T[i] * inv));
    ts[u] = amax / 127.0f;
  }
}

void packed_lut_matmul_generic(const PackedLutArgs& a) {
  const long M = a.M, N = a.N, K = a.K, B = a.B;
  const long nU = K / 64, nB = K / B, rb = K * a.bits / 8, ss = rb * 32 / a.bits;  // bytes per code stream
  const int Q = 16 * a.bits;  // tables per group of 64 activations (64 / (4 / bits))
  int16_t L8[4];
  float ls;
  packed_levels_i8(a.levels, 1 << a.bits, L8, &ls);
  std::vector<int8_t> tab(static_cast<size_t>(M * nU * Q * 16));
  std::vector<float> ts(static_cast<size_t>(M * nU));
  for (long m = 0; m < M; ++m) packed_lut_tables(a.x + m * K, K, a.bits, L8, tab.data() + m * nU * Q * 16, ts.data() + m * nU);
  const int T = pool_threads();
  const long ntasks = (T <= 1 || N * K * M < 65536) ? 1 : (N < 4 * T ? N : 4 * T);
  const long chunk = (N + ntasks - 1) / ntasks;
  auto body = [&](long t, int) {
    const long n0 = t * chunk, n1 = (n0 + chunk < N) ? n0 + chunk : N;
    for (long n = n0; n < n1; ++n) {
      const long tile = n / 32, r = n % 32;
      const uint8_t* col = a.codes + tile * rb * 32 + r;
      for (long m = 0; m < M; ++m) {
        float acc = 0.0f;
        for (long u = 0; u < nU; ++u) {
          const int8_t* tg = tab.data() + (m * nU + u) * Q * 16;
          int32_t s = 0;
          for (int q = 0; q < Q; ++q) {
            // code byte q / 2 of the group: stream q / 16, byte u * 8 + q / 2 % 8 of it
            const uint8_t byte = col[(q / 16) * ss + (u * 8 + q / 2 % 8) * 32];
            s += tg[q * 16 + ((q & 1) ? (byte & 15) : (byte >> 4))];
          }
          float sc;
          packed_scales_f32(a.scales + (tile * nB + u * 64 / B) * 32 + r, 1, true, &sc);
          const float comb = sc * ls * ts[m * nU + u];
          acc += static_cast<float>(s) * comb;
        }
        a.out[m * N + n] = acc;
      }
    }
  };
  parallel_tasks(ntasks, 0, body);
}

}  // namespace tfree
