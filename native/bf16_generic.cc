// bf16-weight matmul, portable version (see Bf16Args in kernels.h), and the bf16 rounding the SIMD
// versions share. The pure-TypeScript twin (src/tensor/kernels/js_bf16.ts) performs the same float32
// operations in the same order (ascending k, one rounding per product and per sum), so the two agree
// bit for bit.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace tfree {

void bf16_round(const float* x, long n, uint16_t* out) {
  for (long i = 0; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, x + i, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u) out[i] = static_cast<uint16_t>((b >> 16) | 0x40u);  // NaN: quiet, sign kept
    else out[i] = static_cast<uint16_t>((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
  }
}

void bf16_matmul_generic(const Bf16Args& a) {
  const long M = a.M, N = a.N, K = a.K;
  std::vector<float> xr;
  const float* x = a.x;
  if (a.xBf16) {
    std::vector<uint16_t> h(static_cast<size_t>(M * K));
    bf16_round(a.x, M * K, h.data());
    xr.resize(static_cast<size_t>(M * K));
    for (long i = 0; i < M * K; ++i) {
      const uint32_t b = static_cast<uint32_t>(h[i]) << 16;
      std::memcpy(&xr[i], &b, 4);
    }
    x = xr.data();
  }
  const int T = pool_threads();
  const long ntasks = (T <= 1 || N * K * M < 65536) ? 1 : (N < 4 * T ? N : 4 * T);
  const long chunk = (N + ntasks - 1) / ntasks;
  auto body = [&](long t, int) {
    std::vector<float> wrow(static_cast<size_t>(K));
    const long n0 = t * chunk, n1 = (n0 + chunk < N) ? n0 + chunk : N;
    for (long n = n0; n < n1; ++n) {
      for (long k = 0; k < K; ++k) {
        const uint32_t b = static_cast<uint32_t>(a.w[n * K + k]) << 16;
        std::memcpy(&wrow[k], &b, 4);
      }
      for (long m = 0; m < M; ++m) {
        const float* xm = x + m * K;
        float acc = 0.0f;
        for (long k = 0; k < K; ++k) acc = acc + xm[k] * wrow[k];
        a.out[m * N + n] = acc;
      }
    }
  };
  parallel_tasks(ntasks, 0, body);
}

}  // namespace tfree
