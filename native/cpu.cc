// CPU feature detection (see cpu.h). Compiled without ISA flags: it must run on every CPU.
#include "cpu.h"

#include <cstdio>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define TFREE_CPU_X86 1
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif
#if defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace tfree {
namespace {

#ifdef TFREE_CPU_X86
unsigned long long xgetbv0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

bool bit(unsigned v, int b) { return (v >> b) & 1u; }

void detect_x86(CpuFeatures& f) {
  unsigned a, b, c, d;
  const unsigned maxLeaf = __get_cpuid_max(0, nullptr);
  if (maxLeaf == 0) return;
  __cpuid(0, a, b, c, d);
  std::memcpy(f.vendor, &b, 4);
  std::memcpy(f.vendor + 4, &d, 4);
  std::memcpy(f.vendor + 8, &c, 4);
  f.vendor[12] = 0;
  if (__get_cpuid_max(0x80000000, nullptr) >= 0x80000004) {
    unsigned r[12];
    for (unsigned i = 0; i < 3; ++i) __cpuid(0x80000002 + i, r[4 * i], r[4 * i + 1], r[4 * i + 2], r[4 * i + 3]);
    std::memcpy(f.brand, r, 48);
    f.brand[48] = 0;
    // trim leading/trailing blanks
    char* s = f.brand;
    while (*s == ' ') ++s;
    std::memmove(f.brand, s, std::strlen(s) + 1);
    for (long i = static_cast<long>(std::strlen(f.brand)) - 1; i >= 0 && f.brand[i] == ' '; --i) f.brand[i] = 0;
  }
  __cpuid(1, a, b, c, d);
  const unsigned baseFamily = (a >> 8) & 0xF;
  f.family = baseFamily == 0xF ? baseFamily + ((a >> 20) & 0xFF) : baseFamily;
  const bool osxsave = bit(c, 27);
  f.avx = bit(c, 28);
  f.fma = bit(c, 12);
  f.f16c = bit(c, 29);
  unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  f.osYmm = (xcr0 & 0x6) == 0x6;                 // SSE + AVX state
  f.osZmm = f.osYmm && (xcr0 & 0xE0) == 0xE0;    // opmask, ZMM_Hi256, Hi16_ZMM
  f.osAmx = (xcr0 & 0x60000) == 0x60000;         // XTILECFG, XTILEDATA
  if (maxLeaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned subleaves = a;
    f.avx2 = bit(b, 5);
    f.avx512f = bit(b, 16);
    f.avx512dq = bit(b, 17);
    f.avx512ifma = bit(b, 21);
    f.avx512cd = bit(b, 28);
    f.avx512bw = bit(b, 30);
    f.avx512vl = bit(b, 31);
    f.avx512vbmi = bit(c, 1);
    f.avx512vnni = bit(c, 11);
    f.amxBf16 = bit(d, 22);
    f.avx512fp16 = bit(d, 23);
    f.amxTile = bit(d, 24);
    f.amxInt8 = bit(d, 25);
    if (subleaves >= 1) {
      __cpuid_count(7, 1, a, b, c, d);
      f.avxvnni = bit(a, 4);
      f.avx512bf16 = bit(a, 5);
    }
  }
  // a feature counts only when the OS saves the registers it uses
  if (!f.osYmm) f.avx = f.avx2 = f.fma = f.f16c = f.avxvnni = false;
  if (!f.osZmm)
    f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512cd = f.avx512vnni = f.avx512bf16 = f.avx512fp16 =
        f.avx512vbmi = f.avx512ifma = false;
  if (!f.osAmx) f.amxTile = f.amxBf16 = f.amxInt8 = false;
#ifdef TFREE_EMU_AVX512
  // the AVX-512 emulation build (scripts/test-avx512-emu.sh), never the production addon: the
  // AVX-512 F/BW/VL/DQ, VNNI, BF16 and AVX-VNNI paths run through the portable intrinsics of
  // native/emu/avx512_emu.h, on any CPU with AVX2, FMA and F16C
  if (f.avx2 && f.fma && f.f16c) {
    f.osZmm = true;
    f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512vnni = f.avx512bf16 = f.avxvnni = true;
    // and AMX-TILE / AMX-BF16 (bf16_amx.cc through native/emu/amx_emu.h: a per-thread tile state in
    // memory, nothing for the OS to grant)
    f.osAmx = f.amxTile = f.amxBf16 = f.amxPermitted = true;
  }
#endif
#if defined(__linux__) && defined(__x86_64__) && !defined(TFREE_EMU_AVX512)
  if (f.amxTile) {
    // Linux >= 5.16 hands out the 8 KiB tile state only on request (ARCH_REQ_XCOMP_PERM = 0x1023,
    // XFEATURE_XTILEDATA = 18); without it the first tile instruction faults.
    f.amxPermitted = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
  }
#endif
}
#endif

void detect(CpuFeatures& f) {
  std::memset(&f, 0, sizeof f);
  f.arch = "other";
#if defined(__x86_64__)
  f.arch = "x86_64";
#elif defined(__i386__)
  f.arch = "x86";
#elif defined(__aarch64__)
  f.arch = "aarch64";
#endif
#ifdef TFREE_CPU_X86
  detect_x86(f);
#endif
#if defined(__aarch64__)
  f.neon = true;  // Advanced SIMD is mandatory in AArch64
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  f.asimddp = (hw >> 20) & 1;  // HWCAP_ASIMDDP
  f.i8mm = (hw2 >> 13) & 1;    // HWCAP2_I8MM
  f.bf16 = (hw2 >> 14) & 1;    // HWCAP2_BF16
#elif defined(__APPLE__)
  auto has = [](const char* name) {
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname(name, &v, &len, nullptr, 0) == 0 && v != 0;
  };
  f.asimddp = has("hw.optional.arm.FEAT_DotProd");
  f.i8mm = has("hw.optional.arm.FEAT_I8MM");
  f.bf16 = has("hw.optional.arm.FEAT_BF16");
#endif
#endif
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures r;
    detect(r);
    return r;
  }();
  return f;
}

void cpu_feature_list(const CpuFeatures& f, char* out, unsigned long n) {
  const struct {
    bool on;
    const char* name;
  } all[] = {
      {f.avx, "avx"},
      {f.avx2, "avx2"},
      {f.fma, "fma"},
      {f.f16c, "f16c"},
      {f.avx512f, "avx512f"},
      {f.avx512bw, "avx512bw"},
      {f.avx512vl, "avx512vl"},
      {f.avx512dq, "avx512dq"},
      {f.avx512cd, "avx512cd"},
      {f.avx512vnni, "avx512vnni"},
      {f.avx512bf16, "avx512bf16"},
      {f.avx512fp16, "avx512fp16"},
      {f.avx512vbmi, "avx512vbmi"},
      {f.avx512ifma, "avx512ifma"},
      {f.avxvnni, "avxvnni"},
      {f.amxTile, "amx-tile"},
      {f.amxBf16, "amx-bf16"},
      {f.amxInt8, "amx-int8"},
      {f.amxPermitted, "amx-permitted"},
      {f.neon, "neon"},
      {f.asimddp, "asimddp"},
      {f.i8mm, "i8mm"},
      {f.bf16, "bf16"},
#ifdef TFREE_EMU_AVX512
      {f.avx512f, "emulated:avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,avxvnni,amx-tile,amx-bf16"},
#endif
  };
  if (n == 0) return;
  out[0] = 0;
  unsigned long used = 0;
  for (const auto& e : all) {
    if (!e.on) continue;
    const int w = std::snprintf(out + used, n - used, used ? " %s" : "%s", e.name);
    if (w < 0 || used + static_cast<unsigned long>(w) >= n) break;
    used += static_cast<unsigned long>(w);
  }
}

}  // namespace tfree
