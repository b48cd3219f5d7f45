// CPU features, detected once at addon load (cpu.cc). x86: cpuid + xgetbv (a feature counts only
// when the OS saves its register state: YMM for AVX/AVX2, ZMM + opmask for AVX-512, tile data for
// AMX, the latter also after Linux granted it through arch_prctl(ARCH_REQ_XCOMP_PERM)). aarch64:
// getauxval(AT_HWCAP/AT_HWCAP2) on Linux, sysctl on macOS. Nothing here is compiled with ISA flags.
#pragma once

namespace tfree {

struct CpuFeatures {
  const char* arch;  // "x86_64", "aarch64" or "other"
  char vendor[13];   // x86 cpuid vendor ("GenuineIntel", "AuthenticAMD"), else ""
  char brand[49];    // x86 brand string, else ""
  // x86 cpuid leaf 1 family (base family, plus the extended family when the base is 0xF), else 0:
  // e.g. AMD Zen 3 and Zen 4 = 0x19, Zen 5 = 0x1A
  unsigned family;
  // x86 (all false elsewhere)
  bool osYmm, osZmm, osAmx;  // XCR0: AVX state, AVX-512 state (opmask + ZMM), AMX tile state
  bool avx, avx2, fma, f16c;
  bool avx512f, avx512bw, avx512vl, avx512dq, avx512cd, avx512vnni, avx512bf16, avx512fp16, avx512vbmi, avx512ifma;
  bool avxvnni;                        // VEX-encoded vpdpbusd (Alder Lake, Sapphire Rapids, ...)
  bool amxTile, amxBf16, amxInt8;      // CPU has them
  bool amxPermitted;                   // and Linux granted XTILEDATA to this process
  // aarch64 (all false elsewhere)
  bool neon, asimddp, i8mm, bf16;
};

// Detected on first call (thread-safe static); never changes afterwards.
const CpuFeatures& cpu_features();

// "name name ..." of the features present (for tfree info); writes at most n bytes.
void cpu_feature_list(const CpuFeatures& f, char* out, unsigned long n);

}  // namespace tfree
