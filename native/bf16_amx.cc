// bf16-weight matmul with AMX-BF16 tiles (TDPBF16PS), the xBf16 mode of Bf16Args (kernels.h):
// out[m, n] = sum_k bf16(x[m, k]) * w[n, k], float32 accumulation. Compiled with -mamx-tile
// -mamx-bf16 only (binding.gyp): everything but the tile instructions is plain x86-64 code, and
// nothing here runs unless dispatch.cc chose the `amx-bf16` path (cpu.cc: amx-tile, amx-bf16 and
// Linux's permission for the tile state, amx-permitted) or a test forced it.
//
// Scheme (what the result is, bit for bit, given TDPBF16PS):
//  - x is rounded to bf16 by bf16_round (the rule of the xBf16 mode, as the avx512-bf16 path does),
//    into rows of Kp = K rounded up to 32 (zeros after K), Mp = M rounded up to 16 rows (zero rows).
//  - W is re-laid per call, per block of 32 output columns, into the pair layout TDPBF16PS wants
//    for its B operand: for 16 columns, row p (k pair p) holds, for n = 0..15, the pair
//    (w[n][2p], w[n][2p + 1]) (64 bytes); zero pairs past K and zero columns past N.
//  - Every tile is 16 rows x 64 bytes (one configuration, palette 1): C tiles of 16 x 16 float32,
//    A tiles of 16 rows x 16 pairs of x, B tiles of 16 pairs x 16 columns. For each C tile,
//    starting from zero (TILEZERO), one TDPBF16PS per chunk of 32 k, chunks in ascending order;
//    within a chunk TDPBF16PS keeps two sums per element (even k and odd k, each an FMA per pair,
//    from +0) and adds their sum to C (native/emu/amx_emu.h spells the SDM's pseudo-code out), with
//    denormal inputs read as zero and tiny results flushed to zero. The padding adds exact zero
//    products only.
//  - Up to 2 x 2 C tiles at once (32 rows x 32 columns: tmm0..3; A in tmm4, tmm5; B in tmm6, tmm7).
//    Full C tiles are stored into out, partial ones (M or N tails) through a 16 x 16 buffer.
// Threads take blocks of 32 columns (never K), so the bits do not depend on the thread count.
// M < kAmxMinRows (GEMV, decoding) and the f32-activation mode go to the avx512-bf16 kernel:
// AMX pays where a tile of 16 rows is filled (batches, prefill), not for one row.
//
// GCC 12 writes tileloadd as an asm statement without a memory operand and ldtilecfg as one that
// reads 8 bytes: compiler barriers below make the stores of the buffers they read happen first.
#include <immintrin.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "threadpool.h"

namespace {
#include "scratch.h"

constexpr long kAmxMinRows = 16;

thread_local Scratch tl_panel = {nullptr, 0};

struct alignas(64) TileConfig {
  uint8_t palette, startRow;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

inline void barrier(const void* p) { __asm__ volatile("" : : "r"(p) : "memory"); }

void tiles_configure() {
  TileConfig c;
  std::memset(&c, 0, sizeof c);
  c.palette = 1;
  for (int t = 0; t < 8; ++t) {
    c.colsb[t] = 64;
    c.rows[t] = 16;
  }
  barrier(&c);
  _tile_loadconfig(&c);
}

// W rows n0 .. n0 + 15 (those < N) -> panel [Kp / 2][16][2] bf16: pair p of column j at 2 (16 p + j)
void relayout(const uint16_t* w, long N, long K, long n0, long Kp, uint16_t* panel) {
  std::memset(panel, 0, static_cast<size_t>(Kp) * 16 * 2);
  for (long j = 0; j < 16 && n0 + j < N; ++j) {
    const uint16_t* wr = w + (n0 + j) * K;
    for (long k = 0; k < K; ++k) panel[(k >> 1) * 32 + 2 * j + (k & 1)] = wr[k];
  }
}

struct Job {
  const uint16_t* x;  // [Mp][Kp] bf16
  long M, N, Kp;
  float* out;
};

// a C tile (stored by st(address, stride): the tile's number must be a literal in the asm) at (m0,
// n0) into out, through a buffer when partial
template <class St>
inline void store_tile(const Job& b, long m0, long n0, St st) {
  const long rows = b.M - m0 < 16 ? b.M - m0 : 16, cols = b.N - n0 < 16 ? b.N - n0 : 16;
  if (rows <= 0 || cols <= 0) return;
  if (rows == 16 && cols == 16) {
    st(b.out + m0 * b.N + n0, b.N * 4);
    return;
  }
  alignas(64) float c[16 * 16];
  st(c, 64);
  for (long r = 0; r < rows; ++r) std::memcpy(b.out + (m0 + r) * b.N + n0, c + 16 * r, static_cast<size_t>(cols) * 4);
}

// MT x NT C tiles (1 or 2 each) of rows m0.. and the columns of the panels p0, p1
template <int MT, int NT>
void block(const Job& b, long m0, long n0, const uint16_t* p0, const uint16_t* p1) {
  _tile_zero(0);
  if constexpr (NT == 2) _tile_zero(1);
  if constexpr (MT == 2) _tile_zero(2);
  if constexpr (MT == 2 && NT == 2) _tile_zero(3);
  const long ldx = b.Kp * 2;  // bytes
  const uint16_t* x0 = b.x + m0 * b.Kp;
  const uint16_t* x1 = x0 + 16 * b.Kp;
  for (long k = 0; k < b.Kp; k += 32) {
    _tile_loadd(4, x0 + k, ldx);
    _tile_loadd(6, p0 + k * 16, 64);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (NT == 2) {
      _tile_loadd(7, p1 + k * 16, 64);
      _tile_dpbf16ps(1, 4, 7);
    }
    if constexpr (MT == 2) {
      _tile_loadd(5, x1 + k, ldx);
      _tile_dpbf16ps(2, 5, 6);
      if constexpr (NT == 2) _tile_dpbf16ps(3, 5, 7);
    }
  }
  store_tile(b, m0, n0, [](float* p, long s) { _tile_stored(0, p, s); });
  if constexpr (NT == 2) store_tile(b, m0, n0 + 16, [](float* p, long s) { _tile_stored(1, p, s); });
  if constexpr (MT == 2) store_tile(b, m0 + 16, n0, [](float* p, long s) { _tile_stored(2, p, s); });
  if constexpr (MT == 2 && NT == 2) store_tile(b, m0 + 16, n0 + 16, [](float* p, long s) { _tile_stored(3, p, s); });
}

}  // namespace

namespace tfree {

void bf16_matmul_amx(const Bf16Args& a) {
  const long M = a.M, N = a.N, K = a.K;
  if (!a.xBf16 || M < kAmxMinRows || N <= 0 || K <= 0) return bf16_matmul_avx512bf16(a);
  const long Kp = (K + 31) / 32 * 32, Mp = (M + 15) / 16 * 16;
  uint16_t* x = static_cast<uint16_t*>(std::aligned_alloc(64, (static_cast<size_t>(Mp) * Kp * 2 + 63) / 64 * 64));
  if (!x) return bf16_matmul_avx512bf16(a);
  for (long m = 0; m < Mp; ++m) {
    uint16_t* xr = x + m * Kp;
    if (m < M) bf16_round(a.x + m * K, K, xr);
    std::memset(xr + (m < M ? K : 0), 0, static_cast<size_t>(Kp - (m < M ? K : 0)) * 2);
  }
  barrier(x);
  const Job b = {x, M, N, Kp, a.out};
  const long nblocks = (N + 31) / 32;
  bool failed = false;
  auto body = [&](long t, int) {
    const long n0 = 32 * t;
    const bool two = N - n0 > 16;
    uint16_t* p = static_cast<uint16_t*>(scratch_bytes(tl_panel, static_cast<size_t>(Kp) * 64));
    if (!p) {
      __atomic_store_n(&failed, true, __ATOMIC_RELAXED);  // (rare) the caller recomputes everything below
      return;
    }
    relayout(a.w, N, K, n0, Kp, p);
    if (two) relayout(a.w, N, K, n0 + 16, Kp, p + Kp * 16);
    barrier(p);
    tiles_configure();
    for (long m0 = 0; m0 < Mp; m0 += 32) {
      const bool twoRows = Mp - m0 > 16;
      if (twoRows && two) block<2, 2>(b, m0, n0, p, p + Kp * 16);
      else if (twoRows) block<2, 1>(b, m0, n0, p, nullptr);
      else if (two) block<1, 2>(b, m0, n0, p, p + Kp * 16);
      else block<1, 1>(b, m0, n0, p, nullptr);
    }
    _tile_release();
  };
  parallel_tasks(nblocks, 0, body);
  std::free(x);
  if (failed) bf16_matmul_avx512bf16(a);
}

}  // namespace tfree
