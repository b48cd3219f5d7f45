// The only ARM64 file built with -march=armv8.2-a+dotprod: the int8 group dot products of
// packed_neon.cc with sdot (16 int8 products into 4 int32 lanes per instruction). Reached only
// through packed_matmul_neon_sdot, which dispatch.cc chooses only when cpu.cc found asimddp
// (getauxval(AT_HWCAP) & HWCAP_ASIMDDP; sysctl on macOS). No inline functions or
// standard containers here (a weak symbol compiled with +dotprod could be picked by the linker for
// code that runs on CPUs without it). Compiled to nothing on other architectures.
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstdint>

namespace tfree {

// s[u] = sum_{i < U} w[uU + i] * x[uU + i] for u < nU (exact: |s| <= U * 128 * 127)
void packed_neon_dot_groups_sdot(const int8_t* w, const int8_t* x, long U, long nU, int32_t* s) {
  for (long u = 0; u < nU; ++u) {
    const int8_t* wg = w + u * U;
    const int8_t* xg = x + u * U;
    int32x4_t a0 = vdupq_n_s32(0), a1 = vdupq_n_s32(0);
    long i = 0;
    for (; i + 32 <= U; i += 32) {
      a0 = vdotq_s32(a0, vld1q_s8(wg + i), vld1q_s8(xg + i));
      a1 = vdotq_s32(a1, vld1q_s8(wg + i + 16), vld1q_s8(xg + i + 16));
    }
    for (; i + 16 <= U; i += 16) a0 = vdotq_s32(a0, vld1q_s8(wg + i), vld1q_s8(xg + i));
    int32_t t = vaddvq_s32(vaddq_s32(a0, a1));
    for (; i < U; ++i) t += static_cast<int32_t>(wg[i]) * xg[i];
    s[u] = t;
  }
}

}  // namespace tfree
#endif  // __aarch64__
