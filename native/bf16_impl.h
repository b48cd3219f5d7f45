// Driver of the SIMD bf16-weight kernels (bf16_avx2.cc, bf16_avx512.cc, bf16_avx512bf16.cc),
// templated on a vector type V. Each of those translation units defines its V in an anonymous
// namespace, so every instantiation has internal linkage and none compiled with one file's flags is
// shared with another (see threadpool.h).
//
// V provides: kW (elements per vector step), kRows (activation rows per weight pass), xelem (the
// activation element the kernel reads: float, or uint16_t bf16 bits), acc / wv / xv types, zero(),
// loadw(const uint16_t*), loadx(const xelem*), step(acc, xv, wv) (acc + the kW products),
// add(acc, acc), hsum(acc).
// Rows of W are split over the thread pool; for M > kRows, W is walked in tiles of rows that stay in
// L2 while every group of kRows activation rows passes over them. Per row: two accumulators per
// activation row; the K % kW tail is one more step on zero-padded copies. The result for (m, n)
// depends only on (m, n) and the inputs, never on the thread count.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels.h"
#include "threadpool.h"

template <class V, int MR>
void bf16_rows(const tfree::Bf16Args& a, const typename V::xelem* x, long n0, long n1, long m0) {
  using acc_t = typename V::acc;
  using xe = typename V::xelem;
  constexpr int W = V::kW;
  const long K = a.K, N = a.N;
  const long kf = K / W * W;
  for (long n = n0; n < n1; ++n) {
    const uint16_t* wr = a.w + n * K;
    acc_t acc0[MR], acc1[MR];
    for (int j = 0; j < MR; ++j) acc0[j] = acc1[j] = V::zero();
    long k = 0;
    for (; k + 2 * W <= K; k += 2 * W) {
      const auto w0 = V::loadw(wr + k), w1 = V::loadw(wr + k + W);
      for (int j = 0; j < MR; ++j) {
        const xe* xj = x + (m0 + j) * K + k;
        acc0[j] = V::step(acc0[j], V::loadx(xj), w0);
        acc1[j] = V::step(acc1[j], V::loadx(xj + W), w1);
      }
    }
    if (k < kf) {
      const auto w0 = V::loadw(wr + k);
      for (int j = 0; j < MR; ++j) acc0[j] = V::step(acc0[j], V::loadx(x + (m0 + j) * K + k), w0);
      k += W;
    }
    if (k < K) {  // tail: zero-padded copies
      alignas(64) uint16_t wt[W] = {0};
      std::memcpy(wt, wr + k, static_cast<size_t>(K - k) * 2);
      const auto w0 = V::loadw(wt);
      for (int j = 0; j < MR; ++j) {
        alignas(64) xe xt[W] = {0};
        std::memcpy(xt, x + (m0 + j) * K + k, static_cast<size_t>(K - k) * sizeof(xe));
        acc1[j] = V::step(acc1[j], V::loadx(xt), w0);
      }
    }
    for (int j = 0; j < MR; ++j) a.out[(m0 + j) * N + n] = V::hsum(V::add(acc0[j], acc1[j]));
  }
}

template <class V>
void bf16_run(const tfree::Bf16Args& a) {
  using namespace tfree;
  using xe = typename V::xelem;
  const long M = a.M, N = a.N, K = a.K;
  const xe* x;
  void* buf = nullptr;
  if constexpr (std::is_same<xe, float>::value) {
    x = a.x;
    if (a.xBf16) {  // activations rounded to bf16, as float32 values
      float* xr = static_cast<float*>(std::malloc(static_cast<size_t>(M * K) * 6 + 8));
      if (!xr) return bf16_matmul_generic(a);
      uint16_t* h = reinterpret_cast<uint16_t*>(xr + M * K);
      bf16_round(a.x, M * K, h);
      for (long i = 0; i < M * K; ++i) {
        const uint32_t b = static_cast<uint32_t>(h[i]) << 16;
        std::memcpy(xr + i, &b, 4);
      }
      buf = xr;
      x = xr;
    }
  } else {  // bf16 bit patterns
    uint16_t* h = static_cast<uint16_t*>(std::malloc(static_cast<size_t>(M * K) * 2 + 2));
    if (!h) return bf16_matmul_generic(a);
    bf16_round(a.x, M * K, h);
    buf = h;
    x = h;
  }
  const int T = pool_threads();
  const long mr = M < V::kRows ? M : V::kRows;
  long ntasks = (T <= 1 || N * K * mr < 262144) ? 1 : 8L * T;
  if (ntasks > N) ntasks = N;
  const long chunk = (N + ntasks - 1) / ntasks;
  long tileRows = 131072 / (2 * (K > 0 ? K : 1));  // 128 KiB of weights per tile
  if (tileRows < 1) tileRows = 1;
  auto body = [&](long t, int) {
    const long t0 = t * chunk, t1 = (t0 + chunk < N) ? t0 + chunk : N;
    for (long n0 = t0; n0 < t1; n0 += tileRows) {
      const long n1 = (n0 + tileRows < t1) ? n0 + tileRows : t1;
      for (long m0 = 0; m0 < M; m0 += V::kRows) {
        switch (M - m0 >= V::kRows ? V::kRows : M - m0) {
          case 1: bf16_rows<V, 1>(a, x, n0, n1, m0); break;
          case 2: bf16_rows<V, 2>(a, x, n0, n1, m0); break;
          case 3: bf16_rows<V, 3>(a, x, n0, n1, m0); break;
          case 4: bf16_rows<V, 4>(a, x, n0, n1, m0); break;
          case 5: bf16_rows<V, (V::kRows >= 5 ? 5 : 1)>(a, x, n0, n1, m0); break;
          default: bf16_rows<V, V::kRows>(a, x, n0, n1, m0); break;
        }
      }
    }
  };
  parallel_tasks(ntasks, 0, body);
  std::free(buf);
}
