// The driver of the activation-side lookup-table matmul (kernels.h, PackedLutArgs), shared by the
// ISA files packed_lut_avx2.cc, packed_lut_avx512.cc and packed_lut_neon.cc: setup, the table
// build (chunks of 16 groups of one activation row, at the start of the one parallel section), the
// split of the 32-row tiles over the pool, and the fallback to the portable kernel when the table
// buffer cannot be allocated.
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
  int8_t* tab;  // M x nU x Q x 16
  float* ts;    // M x nU
  // software prefetch distances in bytes (codes; scales) for the x86 kernels: measured on
  // 4096 x 4096 and 4096 x 11008 with cold caches, 20-25% faster than the hardware prefetchers alone
  long pd = 4096, spd = 1024;
  // a tile's codes are `bits` streams of ss = rb * 32 / bits bytes (kernels.h, PackedLutArgs): stream
  // h holds code bytes 8 h .. 8 h + 7 of each group of 64 activations (256 bytes per group)
  long ss;
};

#include "scratch.h"

// The tables of the calling thread (of the including file; a second JS thread gets its own).
thread_local Scratch tl_lut = {nullptr, 0};

inline void lut_spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// A single activation row, where the file's Kern has tile_pair<BITS>(c, tile, 0) (two tiles per
// table load): the tiles [t0, t0 + 2) as one pair; true if it ran them. Otherwise (overload by
// int / long) false.
template <class Kern, int BITS>
auto lut_pair(int, const LutCtx& c, long t0) -> decltype(Kern::template tile_pair<BITS>(c, t0, 0), bool()) {
  Kern::template tile_pair<BITS>(c, t0, 0);
  return true;
}
template <class Kern, int BITS>
bool lut_pair(long, const LutCtx&, long) {
  return false;
}

// One parallel section per call: the tables are built at its start by the threads that run its
// first tasks (chunks of 16 groups of one activation row, handed out by an atomic counter; every
// thread waits until all chunks are done before its first tile), so the pool is woken once and no
// thread idles at a barrier between the table pass and the tiles. On x86 each task first prefetches
// the start of its code and scale streams, so the memory reads begin while the tables are built.
// The tiles: one contiguous range per thread (task), taken two tiles at a time from its front (its
// code stream runs on through the range: the kernel's prefetches run ahead into the next pair); a
// thread whose range is done takes pairs from the back of the others' ranges, so a thread that
// starts late or runs slower (other load) leaves no tail. Each range's front and back sit in one
// 64-bit word, claimed by compare-and-swap. (Before: 8 tasks per thread, each a new stream; the
// ranges with the kernel's pair-aware prefetch made cold calls 7-15 % faster: docs/results/engine.md.)
template <class Kern, int BITS>
void lut_run(const LutCtx& c, const int16_t* L8) {
  const PackedLutArgs& a = *c.a;
  const long M = a.M, nT = c.nT, nU = c.nU;
  const int Q = 16 * a.bits;
  const int T = pool_threads();
  long nr = (T <= 1 || a.N * a.K * (M < 2 ? M : 2) < 262144) ? 1 : T;  // ranges
  if (nr > (nT + 1) / 2) nr = (nT + 1) / 2;
  // 16 groups per chunk: a chunk's 16 table scales fill one 64-byte line of ts (aligned when nU is a
  // multiple of 16). With 8, two threads building neighbouring chunks wrote the two halves of a line
  // of ts one float at a time, and the line went back and forth between the cores: 1.9 us per chunk
  // of kmeans2 instead of 0.56 (experiments/native/lut_phases.cc), tables done 9 us into a 4096²
  // call instead of ~3
  const long gpt = 16, tpr = (nU + gpt - 1) / gpt, nchunks = M * tpr;
  // (a small matmul runs its tiles in one range, but its tables still on every thread)
  const long nrun = (T > 1 && nchunks > 1 && nr < T) ? T : nr;
  long nextChunk = 0, doneChunks = 0;  // (GCC __atomic builtins: no std::atomic in the per-ISA objects)
  // range r: tiles [front, back), low / high 32 bits; ranges start on even tiles
  uint64_t stateBuf[64];
  uint64_t* state = nr <= 64 ? stateBuf : static_cast<uint64_t*>(std::malloc(static_cast<size_t>(nr) * sizeof(uint64_t)));
  if (!state) nr = 1, state = stateBuf;
  for (long r = 0; r < nr; ++r) {
    const uint64_t f = static_cast<uint64_t>(nT * r / nr / 2 * 2), b = static_cast<uint64_t>(r + 1 == nr ? nT : nT * (r + 1) / nr / 2 * 2);
    state[r] = f | b << 32;
  }
  auto build = [&](long t) {
    const long m = t / tpr, g0 = (t % tpr) * gpt, g1 = (g0 + gpt < nU) ? g0 + gpt : nU;
    Kern::tables(a.x + m * a.K + g0 * 64, (g1 - g0) * 64, a.bits, L8, c.tab + (m * nU + g0) * Q * 16, c.ts + m * nU + g0);
  };
  // claims up to 2 tiles of range r, from its front or back; returns the first (count in *n), or -1
  auto claim = [&](long r, bool front, long* n) -> long {
    uint64_t s = __atomic_load_n(&state[r], __ATOMIC_ACQUIRE);
    for (;;) {
      const long f = static_cast<long>(s & 0xFFFFFFFFu), b = static_cast<long>(s >> 32);
      if (f >= b) return -1;
      const long k = b - f < 2 ? b - f : 2;
      const uint64_t ns = front ? static_cast<uint64_t>(f + k) | (s & ~uint64_t(0xFFFFFFFFu)) : (s & 0xFFFFFFFFu) | static_cast<uint64_t>(b - k) << 32;
      if (__atomic_compare_exchange_n(&state[r], &s, ns, true, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        *n = k;
        return front ? f : b - k;
      }
    }
  };
  auto run = [&](long t0, long n) {
    if (M == 1 && n == 2 && lut_pair<Kern, BITS>(0, c, t0)) return;
    for (long tile = t0; tile < t0 + n; ++tile) {
      long m0 = 0;
      for (; m0 + 2 <= M; m0 += 2) Kern::template tile<BITS, 2>(c, tile, m0);
      if (m0 < M) Kern::template tile<BITS, 1>(c, tile, m0);
    }
  };
  auto body = [&](long t, int tid) {
    (void)tid;
#ifdef LUT_TRACE
    LUT_TRACE(0, t, tid);
#endif
    if (__atomic_load_n(&doneChunks, __ATOMIC_ACQUIRE) < nchunks) {
#if defined(__x86_64__) || defined(__i386__)
      if (t < nr) {  // the start of the range's first two tiles
        const long t0 = static_cast<long>(__atomic_load_n(&state[t], __ATOMIC_RELAXED) & 0xFFFFFFFFu);
        for (long nt = 0; nt < 2 && t0 + nt < nT; ++nt) {
          const char* cp = reinterpret_cast<const char*>(a.codes + (t0 + nt) * c.rb * 32);
          const char* sp = reinterpret_cast<const char*>(a.scales + (t0 + nt) * c.nB * 32);
          for (long h = 0; h < a.bits; ++h)
            for (long l = 0; l < c.pd / a.bits; l += 64) __builtin_prefetch(cp + h * c.ss + l, 0, 3);
          for (long l = 0; l < c.spd; l += 64) __builtin_prefetch(sp + l, 0, 3);
        }
      }
#endif
      for (long k; (k = __atomic_fetch_add(&nextChunk, 1, __ATOMIC_RELAXED)) < nchunks;) {
        build(k);
        __atomic_fetch_add(&doneChunks, 1, __ATOMIC_RELEASE);
      }
      while (__atomic_load_n(&doneChunks, __ATOMIC_ACQUIRE) < nchunks) lut_spin_pause();
#ifdef LUT_TRACE
      LUT_TRACE(1, t, tid);
#endif
    }
    long n;
    if (t < nr)
      for (long t0; (t0 = claim(t, true, &n)) >= 0;) {
        run(t0, n);
#ifdef LUT_TRACE
        LUT_TRACE(3, t0, tid);
#endif
      }
    for (long i = 1; i < nr; ++i) {  // then the others' ranges, from their back
      const long r = (t + i) % nr;
      for (long t0; (t0 = claim(r, false, &n)) >= 0;) run(t0, n);
    }
#ifdef LUT_TRACE
    LUT_TRACE(2, t, tid);
#endif
  };
  parallel_tasks(nrun, 0, body);
  if (state != stateBuf) std::free(state);
}

template <class Kern>
void lut_matmul(const PackedLutArgs& a) {
  LutCtx c;
  c.a = &a;
  c.nU = a.K / 64;
  c.nB = a.K / a.B;
  c.rb = a.K * a.bits / 8;
  c.ss = c.rb * 32 / a.bits;
  c.nT = (a.N + 31) / 32;
  const int Q = 16 * a.bits;
  int16_t L8[4];
  packed_levels_i8(a.levels, 1 << a.bits, L8, &c.ls);
  const size_t tabBytes = static_cast<size_t>(a.M * c.nU * Q * 16);  // a multiple of 256
  char* buf = static_cast<char*>(scratch_bytes(tl_lut, tabBytes + static_cast<size_t>(a.M * c.nU) * sizeof(float)));
  if (!buf) {
    packed_lut_matmul_generic(a);
    return;
  }
  c.tab = reinterpret_cast<int8_t*>(buf);
  c.ts = reinterpret_cast<float*>(buf + tabBytes);
  if (a.bits == 1) lut_run<Kern, 1>(c, L8);
  else lut_run<Kern, 2>(c, L8);
}
