// Self-test of native/emu/amx_emu.h (force-included; compiled like the emulated kernel: -mavx2
// -mfma): the emulated tile instructions against the scalar reference of amx_ref.h. Random tile
// configurations (partial rows and bytes per row, tiles in any order), loads and stores with strides
// (a store must write nothing outside its rows x colsb), TILEZERO, TILERELEASE and reconfiguration,
// and TDPBF16PS on every shape up to 16 x 16 pairs x 16 with special inputs: NaN (quiet and
// signalling bf16), +-inf, +-0, denormal bf16 and float32 (DAZ), products that overflow, sums near
// 2^-126 (FTZ, including a sum that rounds to 2^-126 on the denormal grid but is tiny after rounding
// to 24 bits), cancellations. Then the faults: an invalid configuration or TDPBF16PS shape must end
// the process (fork). Prints one line; exit 1 on a mismatch. Run by scripts/test-avx512-emu.sh.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "amx_ref.h"
#include "selftest_rng.h"

namespace {

uint64_t g_state = 0x243F6A8885A308D3ull;
uint64_t rnd() { return tfree_emu::splitmix64(g_state); }

int g_tinyBias = 0;  // exponent centre of the "small" values (varies per round)

uint16_t rbf16() {
  const uint16_t sign = (rnd() & 1) ? 0x8000 : 0;
  const uint16_t man = static_cast<uint16_t>(rnd() & 0x7f);
  auto withExp = [&](int e) { return static_cast<uint16_t>(sign | ((e + 127) << 7) | man); };
  switch (rnd() % 16) {
    case 0: return sign;                                                   // +-0
    case 1: return sign | 0x7f80;                                          // +-inf
    case 2: return sign | 0x7fc0 | (rnd() & 0x3f);                         // quiet NaN, payload
    case 3: return sign | 0x7f80 | static_cast<uint16_t>(1 + rnd() % 0x3f);  // signalling NaN
    case 4: return sign | static_cast<uint16_t>(1 + rnd() % 0x7f);         // denormal (DAZ)
    case 5: return withExp(100 + static_cast<int>(rnd() % 27));           // large: products overflow
    case 6:
    case 7: return withExp(g_tinyBias + static_cast<int>(rnd() % 9) - 4);  // products near 2^(2 bias)
    case 8: return static_cast<uint16_t>(rnd());                           // any bits
    default: return withExp(static_cast<int>(rnd() % 9) - 4);              // ordinary
  }
}
uint32_t rf32() {
  const uint32_t sign = (rnd() & 1) ? 0x80000000u : 0;
  switch (rnd() % 10) {
    case 0: return sign;
    case 1: return sign | 0x7f800000u;
    case 2: return sign | 0x7fc00000u | static_cast<uint32_t>(rnd() & 0x3fffff);
    case 3: return sign | static_cast<uint32_t>(1 + rnd() % 0x7fffff);                    // denormal (DAZ)
    case 4: return sign | static_cast<uint32_t>(0x00800000u + rnd() % 0x01000000u);       // near 2^-126
    case 5: return sign | (static_cast<uint32_t>(2 * g_tinyBias + 127 + static_cast<int>(rnd() % 5) - 2) << 23) | static_cast<uint32_t>(rnd() & 0x7fffff);
    default: return sign | (static_cast<uint32_t>(127 + static_cast<int>(rnd() % 9) - 4) << 23) | static_cast<uint32_t>(rnd() & 0x7fffff);
  }
}

long g_cases = 0, g_fail = 0;

// tile contents as stored by both (float32 cells where `fp`: any two NaNs equal, as in the AVX-512
// self-test: which NaN an operation passes on is not part of what the kernels rely on)
void compare(const char* what, int variant, const uint8_t* emu, const uint8_t* ref, size_t n, bool fp) {
  ++g_cases;
  bool ok = std::memcmp(emu, ref, n) == 0;
  if (!ok && fp && n % 4 == 0) {
    ok = true;
    for (size_t i = 0; i < n && ok; i += 4) {
      float e, r;
      std::memcpy(&e, emu + i, 4);
      std::memcpy(&r, ref + i, 4);
      ok = std::memcmp(&e, &r, 4) == 0 || (e != e && r != r);
    }
  }
  if (ok) return;
  if (++g_fail <= 8) {
    std::fprintf(stderr, "amx-emu self-test: %s (case %d) differs from the reference:\n", what, variant);
    for (size_t i = 0; i < n; i += 4) {
      if (std::memcmp(emu + i, ref + i, 4) == 0) continue;
      uint32_t e, r;
      std::memcpy(&e, emu + i, 4);
      std::memcpy(&r, ref + i, 4);
      if (fp && (e & 0x7fffffffu) > 0x7f800000u && (r & 0x7fffffffu) > 0x7f800000u) continue;  // two NaNs
      std::fprintf(stderr, "  byte %zu: emu %08x ref %08x\n", i, e, r);
      break;
    }
  }
}

void make_config(uint8_t* cfg, const int* rows, const int* colsb) {
  std::memset(cfg, 0, 64);
  cfg[0] = 1;
  for (int i = 0; i < 8; ++i) {
    cfg[16 + 2 * i] = static_cast<uint8_t>(colsb[i]);
    cfg[48 + i] = static_cast<uint8_t>(rows[i]);
  }
}

// every tile stored by both through a canary-filled buffer with a random stride
void compare_all(const RefTiles& ref, int variant, int dstTile) {
  for (int t = 0; t < 8; ++t) {
    // C: float cells (NaNs compared as equal) need a stride of whole cells
    const long stride = t == dstTile ? ref.colsb[t] + 4 * static_cast<long>(rnd() % 6) : ref.colsb[t] + static_cast<long>(rnd() % 24);
    static uint8_t e[16 * 96 + 64], r[16 * 96 + 64];
    std::memset(e, 0xa5, sizeof e);
    std::memset(r, 0xa5, sizeof r);
    tfemu_tile_stored(t, e, stride);
    ref_stored(ref, t, r, stride);
    compare(t == dstTile ? "tdpbf16ps (stored C)" : "tileloadd / tilestored", variant, e, r, sizeof e, t == dstTile);
  }
}

void test_random(int rounds) {
  RefTiles ref;
  ref_clear(ref);
  static uint8_t mem[16 * 256];
  for (int v = 0; v < rounds; ++v) {
    g_tinyBias = -63 + static_cast<int>(rnd() % 21) - 10;  // products around 2^-126 +- 2^20
    // shapes: C m x n, A m x kp pairs, B kp x n; the other tiles any valid shape
    const int m = 1 + static_cast<int>(rnd() % 16), n = 1 + static_cast<int>(rnd() % 16), kp = 1 + static_cast<int>(rnd() % 16);
    int perm[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int i = 7; i > 0; --i) std::swap(perm[i], perm[rnd() % (i + 1)]);
    const int d = perm[0], a = perm[1], b = perm[2];
    int rows[8], colsb[8];
    for (int t = 0; t < 8; ++t) {
      rows[t] = 1 + static_cast<int>(rnd() % 16);
      colsb[t] = 1 + static_cast<int>(rnd() % 64);  // any byte count (loads / stores only)
    }
    rows[d] = m, colsb[d] = 4 * n;
    rows[a] = m, colsb[a] = 4 * kp;
    rows[b] = kp, colsb[b] = 4 * n;
    uint8_t cfg[64];
    make_config(cfg, rows, colsb);
    tfemu_tile_loadconfig(cfg);
    ref_loadconfig(ref, cfg);
    compare_all(ref, v, -1);  // all zero after LDTILECFG
    for (int t = 0; t < 8; ++t) {
      const long stride = colsb[t] + static_cast<long>(rnd() % 64);
      for (size_t i = 0; i + 4 <= sizeof mem; i += 4) {
        uint32_t w = t == d ? rf32() : static_cast<uint32_t>(rbf16()) | (static_cast<uint32_t>(rbf16()) << 16);
        std::memcpy(mem + i, &w, 4);
      }
      tfemu_tile_loadd(t, mem, stride);
      ref_loadd(ref, t, mem, stride);
    }
    compare_all(ref, v, -1);
    const int reps = 1 + static_cast<int>(rnd() % 2);  // accumulate once or twice
    for (int r = 0; r < reps; ++r) {
      tfemu_tile_dpbf16ps(d, a, b);
      ref_dpbf16ps(ref, d, a, b);
    }
    compare_all(ref, v, d);
    if (rnd() % 4 == 0) {
      const int z = static_cast<int>(rnd() % 8);
      tfemu_tile_zero(z);
      ref_zero(ref, z);
      compare_all(ref, v, d);
    }
    if (rnd() % 8 == 0) {
      tfemu_tile_release();
      ref_clear(ref);
      ++g_cases;
      if (tfemu_amx.configured) compare("tilerelease (still configured)", v, reinterpret_cast<const uint8_t*>("\1"), reinterpret_cast<const uint8_t*>("\0"), 1, false);
    }
  }
}

// C tile (1 x 1) after one TDPBF16PS of fixed pairs, emulation and reference
float one_element(const uint16_t* aPairs, const uint16_t* bPairs, int kp, float c0, float* refOut) {
  int rows[8] = {1, 1, kp, 1, 1, 1, 1, 1}, colsb[8] = {4, 4 * kp, 4, 4, 4, 4, 4, 4};
  uint8_t cfg[64];
  make_config(cfg, rows, colsb);
  tfemu_tile_loadconfig(cfg);
  RefTiles ref;
  ref_loadconfig(ref, cfg);
  uint8_t am[64] = {}, bm[16 * 4] = {};
  std::memcpy(am, aPairs, 4 * kp);
  for (int k = 0; k < kp; ++k) std::memcpy(bm + 4 * k, bPairs + 2 * k, 4);
  tfemu_tile_loadd(0, &c0, 4);
  tfemu_tile_loadd(1, am, 64);
  tfemu_tile_loadd(2, bm, 4);
  ref_loadd(ref, 0, reinterpret_cast<const uint8_t*>(&c0), 4);
  ref_loadd(ref, 1, am, 64);
  ref_loadd(ref, 2, bm, 4);
  tfemu_tile_dpbf16ps(0, 1, 2);
  ref_dpbf16ps(ref, 0, 1, 2);
  float e, r;
  tfemu_tile_stored(0, &e, 4);
  ref_stored(ref, 0, reinterpret_cast<uint8_t*>(&r), 4);
  *refOut = r;
  return e;
}

uint16_t bf(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>(b >> 16);  // exact for the values below
}

// hand-made cases with known answers
void test_fixed() {
  struct Case {
    const char* what;
    float a[6], b[6];  // 3 pairs: (even, odd) each
    float c0, want;
  } cases[] = {
      // even sums: 2^-126, + 2^-149 = 2^-126 + 2^-149, - 3 2^-150 = 2^-126 - 2^-150, which rounds to
      // 2^-126 on the denormal grid (a tie, to even) but is tiny rounded to 24 bits: flushed to +0
      {"FTZ after rounding", {0x1p-63f, 0, 0x1p-75f, 0, -0x1.8p-74f, 0}, {0x1p-63f, 0, 0x1p-74f, 0, 0x1p-75f, 0}, 0.0f, 0.0f},
      // 2^-126 + 2^-149 - 2^-150 = 2^-126 + 2^-150: not tiny, rounds to 2^-126 (even)
      {"not tiny", {0x1p-63f, 0, 0x1p-75f, 0, -0x1p-75f, 0}, {0x1p-63f, 0, 0x1p-74f, 0, 0x1p-75f, 0}, 0.0f, 0x1p-126f},
      // the even and odd sums are kept apart until the end: even 2^30, then 2^30 + 1 = 2^30 (24 bits),
      // odd -2^30: C = 0 + (2^30 - 2^30) = 0 (adding each product into C in turn would give 1)
      {"two sums", {0x1p15f, 0x1p15f, 1.0f, 0, 0, 0}, {0x1p15f, -0x1p15f, 1.0f, 0, 0, 0}, 0.0f, 0.0f},
      // C + (even + odd), the denormal C read as zero
      {"even, odd, then C", {1.0f, 1.0f, 0, 0, 0, 0}, {1.0f, 2.0f, 0, 0, 0, 0}, 0x1p-140f /* denormal C: DAZ */, 3.0f},
      {"inf - inf", {INFINITY, 1.0f, 0, 0, 0, 0}, {1.0f, -INFINITY, 0, 0, 0, 0}, 0.0f, NAN},
      {"overflow", {0x1p127f, 0, 0, 0, 0, 0}, {0x1p127f, 0, 0, 0, 0, 0}, 1.0f, INFINITY},
  };
  int i = 0;
  for (const Case& c : cases) {
    uint16_t ap[6], bp[6];
    for (int j = 0; j < 6; ++j) ap[j] = bf(c.a[j]), bp[j] = bf(c.b[j]);
    float r;
    const float e = one_element(ap, bp, 3, c.c0, &r);
    compare(c.what, i, reinterpret_cast<const uint8_t*>(&e), reinterpret_cast<const uint8_t*>(&r), 4, true);
    const float want = c.want;
    compare(c.what, 100 + i, reinterpret_cast<const uint8_t*>(&e), reinterpret_cast<const uint8_t*>(&want), 4, true);
    ++i;
  }
}

// the emulation's faults (what the real instruction raises #UD / #GP for) end the process
int g_fault = 0;
void fault_body() {
  int rows[8] = {16, 16, 16, 16, 16, 16, 16, 16}, colsb[8] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t cfg[64];
  switch (g_fault) {
    case 0: tfemu_tile_release(); tfemu_tile_zero(0); break;                               // not configured
    case 1: rows[3] = 17; make_config(cfg, rows, colsb); tfemu_tile_loadconfig(cfg); break;  // rows > 16
    case 2: colsb[3] = 65; make_config(cfg, rows, colsb); tfemu_tile_loadconfig(cfg); break;
    case 3: rows[3] = 0; make_config(cfg, rows, colsb); tfemu_tile_loadconfig(cfg); break;   // rows 0, colsb not
    case 4: make_config(cfg, rows, colsb); cfg[5] = 1; tfemu_tile_loadconfig(cfg); break;    // reserved byte
    case 5: make_config(cfg, rows, colsb); cfg[0] = 2; tfemu_tile_loadconfig(cfg); break;    // palette 2
    case 6: make_config(cfg, rows, colsb); tfemu_tile_loadconfig(cfg); tfemu_tile_dpbf16ps(0, 0, 1); break;  // same tile
    case 7: rows[1] = 8; make_config(cfg, rows, colsb); tfemu_tile_loadconfig(cfg); tfemu_tile_dpbf16ps(0, 1, 2); break;  // C rows != A rows
    case 8: colsb[1] = 32; make_config(cfg, rows, colsb); tfemu_tile_loadconfig(cfg); tfemu_tile_dpbf16ps(0, 1, 2); break;  // A colsb / 4 != B rows
    case 9: colsb[2] = 32; make_config(cfg, rows, colsb); tfemu_tile_loadconfig(cfg); tfemu_tile_dpbf16ps(0, 1, 2); break;  // C colsb != B colsb
    case 10: colsb[0] = 62; colsb[2] = 62; make_config(cfg, rows, colsb); tfemu_tile_loadconfig(cfg); tfemu_tile_dpbf16ps(0, 1, 2); break;  // colsb % 4
    case 11: rows[5] = 0; colsb[5] = 0; make_config(cfg, rows, colsb); tfemu_tile_loadconfig(cfg); tfemu_tile_zero(5); break;  // tile not in the config
  }
}
void test_faults() {
  for (g_fault = 0; g_fault < 12; ++g_fault) {
    std::fflush(stdout);
    const pid_t p = fork();
    if (p == 0) {
      const struct rlimit none = {0, 0};
      setrlimit(RLIMIT_CORE, &none);  // no core file for the abort
      if (!std::freopen("/dev/null", "w", stderr)) _exit(3);
      fault_body();
      _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    ++g_cases;
    if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT) && ++g_fail <= 8)
      std::fprintf(stderr, "amx-emu self-test: fault case %d did not end the process\n", g_fault);
  }
}

}  // namespace

int main() {
  test_fixed();
  test_random(4000);
  test_faults();
  if (g_fail) {
    std::printf("amx-emu: FAIL tile self-test: %ld of %ld cases differ from the scalar reference (native/emu/amx_ref.h)\n", g_fail, g_cases);
    return 1;
  }
  std::printf("amx-emu: tile self-test: %ld cases, every emulated tile instruction equals its scalar reference (native/emu/amx_ref.h)\n", g_cases);
  return 0;
}
