// The addon's AdamW kernel outside node (HAT eighth pass, docs/results/engine.md): dlopen()s a built
// tfree_native.node (RTLD_LAZY: its N-API symbols are never called), takes an ops table by its
// exported symbol and times table->adamw on four malloc'ed (huge 0) or 2 MiB-aligned MADV_HUGEPAGE
// (huge 1) arrays; with PLAIN=1 the same arithmetic as a plain loop in this file instead, for the
// same memory in the same process. Values (init): 0 = g N(0,1e-3), m = v = 0; 1 = realistic moments
// (m 1e-4 N, v 1e-7 |N|); 2 = subnormal g^2, m and v. Prints ms per call.
//
// Build: g++ -O2 -std=c++17 -Inative experiments/native/adamw_dlopen.cc -ldl -lpthread -o /tmp/adamw_dlopen
// Run:   ADDON=native/build/Release/tfree_native.node TFREE_THREADS=1 /tmp/adamw_dlopen [n 31000000] [huge 1]
//        [init 1] [reps 8]   (SYM=_ZN5tfree11ops_genericEv for the generic path; default ops_avx2)
#include <dlfcn.h>
#include <immintrin.h>
#include <sys/mman.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "kernels.h"
using namespace tfree;

__attribute__((target("avx2,fma"), noinline)) static void plain_adamw(float* p, const float* g, float* m, float* v, long n,
                                                                      float lr, float b1, float b2, float eps, float wd,
                                                                      float bc1, float bc2) {
  const __m256 vb1 = _mm256_set1_ps(b1), vb1c = _mm256_set1_ps(1.0f - b1), vb2 = _mm256_set1_ps(b2),
               vb2c = _mm256_set1_ps(1.0f - b2);
  const __m256 ibc1 = _mm256_set1_ps(1.0f / bc1), ibc2 = _mm256_set1_ps(1.0f / bc2), veps = _mm256_set1_ps(eps),
               vlr = _mm256_set1_ps(lr), vdec = _mm256_set1_ps(lr * wd);
  for (long i = 0; i + 8 <= n; i += 8) {
    const __m256 pv = _mm256_loadu_ps(p + i), gv = _mm256_loadu_ps(g + i), mv = _mm256_loadu_ps(m + i),
                 vv = _mm256_loadu_ps(v + i);
    const __m256 mo = _mm256_fmadd_ps(vb1, mv, _mm256_mul_ps(vb1c, gv));
    const __m256 vo = _mm256_fmadd_ps(vb2, vv, _mm256_mul_ps(vb2c, _mm256_mul_ps(gv, gv)));
    const __m256 upd = _mm256_div_ps(_mm256_mul_ps(mo, ibc1), _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vo, ibc2)), veps));
    const __m256 po = _mm256_sub_ps(_mm256_sub_ps(pv, _mm256_mul_ps(vlr, upd)), _mm256_mul_ps(vdec, pv));
    _mm256_storeu_ps(p + i, po);
    _mm256_storeu_ps(m + i, mo);
    _mm256_storeu_ps(v + i, vo);
  }
}

static float* alloc(long n, int huge) {
  const size_t bytes = static_cast<size_t>(n) * 4;
  if (!huge) return static_cast<float*>(std::malloc(bytes));
  const size_t rounded = (bytes + (1UL << 21) - 1) & ~((1UL << 21) - 1);
  void* q = std::aligned_alloc(1UL << 21, rounded);
  if (q) madvise(q, rounded, MADV_HUGEPAGE);
  return static_cast<float*>(q);
}

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 31000000;
  const int huge = argc > 2 ? std::atoi(argv[2]) : 1;
  const int init = argc > 3 ? std::atoi(argv[3]) : 1;
  const int reps = argc > 4 ? std::atoi(argv[4]) : 8;
  const char* addon = std::getenv("ADDON");
  const char* sym = std::getenv("SYM") ? std::getenv("SYM") : "_ZN5tfree8ops_avx2Ev";
  const bool plain = std::getenv("PLAIN") != nullptr;
  void* h = addon ? dlopen(addon, RTLD_LAZY) : nullptr;
  if (!h) {
    std::fprintf(stderr, "adamw_dlopen: set ADDON to a built tfree_native.node (%s)\n", addon ? dlerror() : "unset");
    return 2;
  }
  auto table = reinterpret_cast<const OpsTable* (*)()>(dlsym(h, sym));
  if (!table) {
    std::fprintf(stderr, "adamw_dlopen: no symbol %s\n", sym);
    return 2;
  }
  const OpsTable* t = table();
  float *p = alloc(n, huge), *g = alloc(n, huge), *m = alloc(n, huge), *v = alloc(n, huge);
  if (!p || !g || !m || !v) return 1;
  std::mt19937 r(1);
  std::normal_distribution<float> d(0.f, 1.f);
  for (long i = 0; i < n; i++) {
    p[i] = 0.02f * d(r);
    g[i] = init == 2 ? 1e-21f * d(r) : 1e-3f * d(r);
    m[i] = init == 2 ? 1e-39f * d(r) : init ? 1e-4f * d(r) : 0.f;
    v[i] = init == 2 ? 1e-40f * std::fabs(d(r)) : init ? 1e-7f * std::fabs(d(r)) : 0.f;
  }
  std::printf("%s %s:", plain ? "plain loop" : sym, plain ? "" : addon);
  for (int k = 0; k < reps; k++) {
    const auto t0 = std::chrono::steady_clock::now();
    if (plain) plain_adamw(p, g, m, v, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 0.3f);
    else t->adamw(p, g, m, v, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 0.3f, 1.0f);
    std::printf(" %.2f", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::printf(" ms\n");
  return 0;
}
