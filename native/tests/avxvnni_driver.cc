// Checks the AVX-VNNI packed kernel (packed_avxvnni.cc, VEX vpdpbusd) against the portable one on
// random and edge-case inputs, for CPUs (or emulators) that have AVX-VNNI: the AVX-512 CPUs the
// tests run on lack it (scripts/check-avxvnni.sh runs this under qemu-x86_64 -cpu max).
// Exit status 0 when every case agrees to float32 rounding (1e-5 relative), 1 otherwise.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../kernels.h"
#include "../threadpool.h"

using namespace tfree;

int main() {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  int cases = 0, bad = 0;
  struct Shape {
    long M, N, K, B;
  };
  const Shape shapes[] = {{1, 37, 128, 64}, {3, 41, 352, 32}, {2, 70, 1024, 64}, {5, 33, 640, 128}, {1, 19, 1088, 64}, {4, 9, 96, 32}};
  for (int bits : {1, 2, 4, 8}) {
    for (int lv = 0; lv < 2; ++lv) {  // integer levels, then k-means-like float levels
      if (bits == 8 && lv == 1) continue;  // kmeans8 has no fast path
      const int nl = 1 << bits;
      std::vector<float> levels(static_cast<size_t>(nl));
      for (int i = 0; i < nl; ++i) levels[i] = lv == 0 ? static_cast<float>(i < nl / 2 ? i : i - nl) : nd(rng);
      for (const Shape& s : shapes) {
        for (int threads : {1, 2}) {
          pool_set_threads(threads);
          std::vector<float> x(static_cast<size_t>(s.M * s.K));
          for (float& v : x) v = nd(rng);
          if (s.K > 40) x[33] = 0.0f;  // an exact zero
          const long rb = s.K * bits / 8, nB = s.K / s.B;
          std::vector<uint8_t> codes(static_cast<size_t>(s.N * rb));
          for (uint8_t& c : codes) c = static_cast<uint8_t>(rng());
          std::vector<uint16_t> scales(static_cast<size_t>(s.N * nB));
          for (uint16_t& h : scales) {
            const float f = 0.01f + 0.1f * std::fabs(nd(rng));
            uint32_t b;
            std::memcpy(&b, &f, 4);
            h = static_cast<uint16_t>(b >> 16);
          }
          std::vector<float> ref(static_cast<size_t>(s.M * s.N), NAN), out(static_cast<size_t>(s.M * s.N), NAN);
          PackedArgs a;
          a.M = s.M;
          a.N = s.N;
          a.K = s.K;
          a.x = x.data();
          a.codes = codes.data();
          a.bits = bits;
          a.levels = levels.data();
          a.scales = scales.data();
          a.scaleBf16 = true;
          a.B = s.B;
          a.act8 = true;
          a.out = ref.data();
          packed_matmul_generic(a);
          a.out = out.data();
          packed_matmul_avxvnni(a);
          ++cases;
          for (size_t i = 0; i < ref.size(); ++i)
            if (!(std::fabs(out[i] - ref[i]) <= 1e-5f * (1.0f + std::fabs(ref[i])))) {
              if (bad < 10)
                std::printf("MISMATCH bits %d levels %s M%ld N%ld K%ld B%ld %dT [%zu]: %g vs %g\n", bits, lv ? "float" : "int", s.M, s.N,
                            s.K, s.B, threads, i, out[i], ref[i]);
              ++bad;
              break;
            }
        }
      }
    }
  }
  std::printf("avxvnni driver: %d cases, %d mismatching\n", cases, bad);
  return bad == 0 ? 0 : 1;
}
