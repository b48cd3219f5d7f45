// Driver of the SIMD bf16-weight kernels (bf16_avx2.cc, bf16_avx512.cc, bf16_avx512bf16.cc),
// templated on a vector type V. Each of those translation units defines its V in an anonymous
// namespace, so every instantiation has internal linkage and none compiled with one file's flags is
// shared with another (see threadpool.h).
//
// V provides: kW (elements per step), kRows (activation rows per weight pass), xelem (the
// activation element the kernel reads: float, or uint16_t bf16 bits), kPermute (float activations
// stored per block of kW as its even elements, then its odd ones: the widening kernels split a
// vector of bf16 weights into even (vpslld 16) and odd (vpand 0xffff0000) float32 halves, two
// instructions per 2 x kW/2 weights), acc type, zero(), loadw(const uint16_t*), loadx(const
// xelem*), step(acc, x, w) (acc + the kW products), add(acc, acc), hsum(acc).
// Rows of W are split over the thread pool; for M > kRows, W is walked in tiles of rows that stay in
// L2 while every group of kRows activation rows passes over them. Per row: two accumulators per
// activation row; the K % kW tail is one more step on a zero-padded copy of the weights. The result for (m, n)
// depends only on (m, n) and the inputs, never on the thread count.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels.h"
#include "threadpool.h"

template <class V, int MR>
void bf16_rows(const tfree::Bf16Args& a, const typename V::xelem* x, long ldx, long n0, long n1, long m0) {
  using acc_t = typename V::acc;
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
        const typename V::xelem* xj = x + (m0 + j) * ldx + k;
        acc0[j] = V::step(acc0[j], V::loadx(xj), w0);
        acc1[j] = V::step(acc1[j], V::loadx(xj + W), w1);
      }
    }
    if (k < kf) {
      const auto w0 = V::loadw(wr + k);
      for (int j = 0; j < MR; ++j) acc0[j] = V::step(acc0[j], V::loadx(x + (m0 + j) * ldx + k), w0);
      k += W;
    }
    if (k < K) {  // tail: a zero-padded copy of the weights (the activations are zero-padded already)
      alignas(64) uint16_t wt[W] = {0};
      std::memcpy(wt, wr + k, static_cast<size_t>(K - k) * 2);
      const auto w0 = V::loadw(wt);
      for (int j = 0; j < MR; ++j) acc1[j] = V::step(acc1[j], V::loadx(x + (m0 + j) * ldx + k), w0);
    }
    for (int j = 0; j < MR; ++j) a.out[(m0 + j) * N + n] = V::hsum(V::add(acc0[j], acc1[j]));
  }
}

template <class V>
void bf16_run(const tfree::Bf16Args& a) {
  using namespace tfree;
  using xe = typename V::xelem;
  constexpr int W = V::kW;
  const long M = a.M, N = a.N, K = a.K;
  // activations: rows of ldx = K rounded up to W, zero-padded; float32 (rounded to bf16 in the
  // xBf16 mode) in the kernel's order per block of W (V::kPermute: even elements, then odd), or
  // bf16 bit patterns
  const long ldx = (K + W - 1) / W * W;
  xe* x = static_cast<xe*>(std::calloc(static_cast<size_t>(M * ldx + W), sizeof(xe)));
  uint16_t* h = static_cast<uint16_t*>(std::malloc(static_cast<size_t>(K) * 2 + 2));
  if (!x || !h) {
    std::free(x);
    std::free(h);
    return bf16_matmul_generic(a);
  }
  for (long m = 0; m < M; ++m) {
    const float* xm = a.x + m * K;
    xe* xo = x + m * ldx;
    if constexpr (std::is_same<xe, float>::value) {
      if (a.xBf16) {
        bf16_round(xm, K, h);
        for (long k = 0; k < K; ++k) {
          const uint32_t b = static_cast<uint32_t>(h[k]) << 16;
          std::memcpy(xo + k, &b, 4);
        }
      } else {
        std::memcpy(xo, xm, static_cast<size_t>(K) * 4);
      }
      if (V::kPermute) {
        alignas(64) float blk[W];
        for (long b = 0; b < ldx; b += W) {
          for (int i = 0; i < W / 2; ++i) {
            blk[i] = xo[b + 2 * i];
            blk[W / 2 + i] = xo[b + 2 * i + 1];
          }
          std::memcpy(xo + b, blk, sizeof blk);
        }
      }
    } else {
      bf16_round(xm, K, xo);
    }
  }
  std::free(h);
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
          case 1: bf16_rows<V, 1>(a, x, ldx, n0, n1, m0); break;
          case 2: bf16_rows<V, 2>(a, x, ldx, n0, n1, m0); break;
          case 3: bf16_rows<V, 3>(a, x, ldx, n0, n1, m0); break;
          case 4: bf16_rows<V, 4>(a, x, ldx, n0, n1, m0); break;
          case 5: bf16_rows<V, (V::kRows >= 5 ? 5 : 1)>(a, x, ldx, n0, n1, m0); break;
          default: bf16_rows<V, V::kRows>(a, x, ldx, n0, n1, m0); break;
        }
      }
    }
  };
  parallel_tasks(ntasks, 0, body);
  std::free(x);
}
