// The driver of the activation-side lookup-table matmul (kernels.h, PackedLutArgs), shared by the
// ISA files packed_lut_avx2.cc, packed_lut_avx512.cc and packed_lut_neon.cc: setup, the table
// build (one task per activation row and chunk of 16 groups), the split of the 32-row tiles over
// the pool, and the fallback to the portable kernel when a buffer cannot be allocated.
//
// Included inside each file's anonymous namespace (internal linkage: the per-ISA objects must
// define no weak symbols, see scripts/check-spills.sh). The file then supplies
//   struct Kern {
//     template <int BITS, int MG> static void tile(const LutCtx& c, long tile, long m0);
//     static void tables(const float* x, long K, int bits, const int16_t* L8, int8_t* tab, float* ts);
//   };
// and calls lut_matmul<Kern>(a). The including file has already included <cstdint>, <cstdlib>,
// kernels.h and threadpool.h (at file scope).
#pragma once

struct LutCtx {
  const PackedLutArgs* a;
  long nU, nB, rb, nT;
  float ls;
  const int8_t* tab;  // M x nU x Q x 16
  const float* ts;    // M x nU
  // software prefetch distances in bytes (codes; scales) for the x86 kernels: measured on
  // 4096 x 4096 and 4096 x 11008 with cold caches, 20-25% faster than the hardware prefetchers alone
  long pd = 4096, spd = 1024;
};

// A 64-byte aligned heap buffer (no standard containers in the per-ISA objects: weak symbols).
template <class T>
struct LutBuf {
  T* p;
  explicit LutBuf(long n) : p(static_cast<T*>(std::aligned_alloc(64, static_cast<size_t>(((n > 0 ? n : 1) * sizeof(T) + 63) / 64 * 64)))) {}
  ~LutBuf() { std::free(p); }
  LutBuf(const LutBuf&) = delete;
  LutBuf& operator=(const LutBuf&) = delete;
};

template <class Kern, int BITS>
void lut_run(const LutCtx& c) {
  const PackedLutArgs& a = *c.a;
  const long M = a.M, nT = c.nT;
  const int T = pool_threads();
  long ntasks = (T <= 1 || a.N * a.K * (M < 2 ? M : 2) < 262144) ? 1 : 8L * T;
  if (ntasks > nT) ntasks = nT;
  const long chunk = (nT + ntasks - 1) / ntasks;
  auto body = [&](long t, int) {
    const long t0 = t * chunk, t1 = (t0 + chunk < nT) ? t0 + chunk : nT;
    for (long tile = t0; tile < t1; ++tile) {
      long m0 = 0;
      for (; m0 + 2 <= M; m0 += 2) Kern::template tile<BITS, 2>(c, tile, m0);
      if (m0 < M) Kern::template tile<BITS, 1>(c, tile, m0);
    }
  };
  parallel_tasks(ntasks, 0, body);
}

template <class Kern>
void lut_matmul(const PackedLutArgs& a) {
  LutCtx c;
  c.a = &a;
  c.nU = a.K / 64;
  c.nB = a.K / a.B;
  c.rb = a.K * a.bits / 8;
  c.nT = (a.N + 31) / 32;
  const int Q = 16 * a.bits;
  int16_t L8[4];
  packed_levels_i8(a.levels, 1 << a.bits, L8, &c.ls);
  LutBuf<int8_t> tab(a.M * c.nU * Q * 16);
  LutBuf<float> ts(a.M * c.nU);
  if (!tab.p || !ts.p) {
    packed_lut_matmul_generic(a);
    return;
  }
  // tables: one task per activation row and chunk of 16 groups (each group's tables are independent)
  const long gpt = 16, tpr = (c.nU + gpt - 1) / gpt;
  auto build = [&](long t, int) {
    const long m = t / tpr, g0 = (t % tpr) * gpt, g1 = (g0 + gpt < c.nU) ? g0 + gpt : c.nU;
    Kern::tables(a.x + m * a.K + g0 * 64, (g1 - g0) * 64, a.bits, L8, tab.p + (m * c.nU + g0) * Q * 16, ts.p + m * c.nU + g0);
  };
  if (pool_threads() > 1 && a.M * tpr > 1) {
    parallel_tasks(a.M * tpr, 0, build);
  } else {
    for (long t = 0; t < a.M * tpr; ++t) build(t, 0);
  }
  c.tab = tab.p;
  c.ts = ts.p;
  if (a.bits == 1) lut_run<Kern, 1>(c);
  else lut_run<Kern, 2>(c);
}
