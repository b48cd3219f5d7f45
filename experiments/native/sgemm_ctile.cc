// C++ probe of what the C tiles cost the AVX2 SGEMM microkernel in situ (issue 13): one thread,
// M = N = K = n, the 1-thread driver's blocking (KC 256, MC rows of packed A, all n columns of packed
// B per k block) and loop order (each 16-column B micro-panel against every 6-row A micro-panel of
// the A block), timing only the microkernel calls (packing is replaced by one touch of the packed
// blocks per block). The microkernel is the built addon's (dlopen, symbol
// tfree_sgemm_ukernel_avx2_6x16); the variants differ only in where C lives and in extra prefetches:
//   realC    C is an n x n row-major matrix, ldc n (what the GEMM does)
//   hotC     every tile writes the same 6 x 16 buffer (ldc 16): no C traffic at all
//   ldc+16   C with ldc n + 16 (rows no longer 4 KiB-multiples apart)
//   pfD T1   realC, and before each tile the driver prefetches (prefetcht1) the C tile D tiles further on
// Variants alternate within each round; prints best and median GFLOP/s of the kernel calls (compare
// with the 1-thread FMA probe, `node dist/bench/main.js --only peak`, about 101-102 here).
//
// Build and run (from the repo root, after the addon is built; args: n MC rounds):
//   g++ -O2 -mavx2 -mfma experiments/native/sgemm_ctile.cc -ldl -o /tmp/sgemm_ctile
//   flock /work/bench.lock /tmp/sgemm_ctile native/build/Release/tfree_native.node 2048 144 7
#include <dlfcn.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

typedef void (*Ukernel)(long, const float*, const float*, float*, long, float, float);

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: sgemm_ctile ADDON.node n MC rounds\n");
    return 2;
  }
  void* h = dlopen(argv[1], RTLD_LAZY);  // lazy: the N-API symbols of the addon stay unresolved
  if (!h) {
    std::fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  const Ukernel uk = reinterpret_cast<Ukernel>(dlsym(h, "tfree_sgemm_ukernel_avx2_6x16"));
  if (!uk) {
    std::fprintf(stderr, "no tfree_sgemm_ukernel_avx2_6x16 in %s\n", argv[1]);
    return 1;
  }
  const long MR = 6, NR = 16, KC = 256;
  const long n = std::atol(argv[2]), MC = std::atol(argv[3]);
  const int rounds = std::atoi(argv[4]);
  if (n % NR != 0 || n % KC != 0 || MC % MR != 0 || rounds < 1) {
    std::fprintf(stderr, "n must be a multiple of 256, MC of 6\n");
    return 2;
  }
  auto alloc = [](size_t floats) {
    float* p = static_cast<float*>(std::aligned_alloc(64, (floats * 4 + 63) / 64 * 64));
    std::memset(p, 0, floats * 4);
    return p;
  };
  float* C = alloc(n * n);
  float* Cpad = alloc(n * (n + 16));
  float* hot = alloc(MR * NR);
  float* Ap = alloc(MC * KC);
  float* Bp = alloc(KC * n);
  for (long i = 0; i < MC * KC; ++i) Ap[i] = 1e-3f * static_cast<float>(i % 7);
  for (long i = 0; i < KC * n; ++i) Bp[i] = 1e-3f * static_cast<float>(i % 5);
  const char* names[] = {"realC", "hotC", "ldc+16", "pf1 T1", "pf2 T1", "pf3 T1"};
  const int nv = 6;
  std::vector<std::vector<double>> res(nv);
  for (int r = 0; r < rounds; ++r)
    for (int v = 0; v < nv; ++v) {
      const long D = v >= 3 ? v - 2 : 0;  // prefetch distance in tiles
      double t = 0;
      long flops = 0;
      for (long pc = 0; pc < n; pc += KC) {
        for (long i = 0; i < KC * n; i += 16) Bp[i] += 0.0f;  // "pack B"
        for (long ic = 0; ic + MC <= n; ic += MC) {
          for (long i = 0; i < MC * KC; i += 16) Ap[i] += 0.0f;  // "pack A"
          const double t0 = now();
          for (long jr = 0; jr < n; jr += NR)
            for (long ir = 0; ir < MC; ir += MR) {
              if (D > 0) {
                long pr = ir + D * MR, pj = jr;
                if (pr >= MC) pr -= MC, pj += NR;
                if (pj < n) {
                  const float* cn = C + (ic + pr) * n + pj;
                  for (long i = 0; i < MR; ++i) _mm_prefetch(reinterpret_cast<const char*>(cn + i * n), _MM_HINT_T1);
                }
              }
              float* c;
              long ldc;
              if (v == 1) c = hot, ldc = NR;
              else if (v == 2) c = Cpad + (ic + ir) * (n + 16) + jr, ldc = n + 16;
              else c = C + (ic + ir) * n + jr, ldc = n;
              uk(KC, Ap + ir * KC, Bp + jr * KC, c, ldc, 1.0f, pc == 0 ? 0.0f : 1.0f);
            }
          t += now() - t0;
          flops += 2 * MC * n * KC;
        }
      }
      res[v].push_back(static_cast<double>(flops) / t / 1e9);
    }
  std::printf("n %ld, MC %ld, KC %ld, %d rounds: microkernel GFLOP/s best / median\n", n, MC, KC, rounds);
  for (int v = 0; v < nv; ++v) {
    std::vector<double> x = res[v];
    std::sort(x.begin(), x.end());
    std::printf("%-8s %6.1f / %6.1f\n", names[v], x.back(), x[x.size() / 2]);
  }
  return 0;
}
