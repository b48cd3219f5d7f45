// The x86 path of the packed-weight and bf16-weight kernel families beyond AVX2: one small CPU
// check (to be replaced by the addon's common CPU-features table) and the dispatch by path.
// Compiled with the portable flags.
#include <cstring>

#include "kernels.h"

namespace tfree {

namespace {
struct Cpu {
  bool avx2 = false, avx512 = false, avxvnni = false, bf16 = false;
  Cpu() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    // __builtin_cpu_supports also checks that the OS saves the registers (XCR0)
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
    avxvnni = avx2 && __builtin_cpu_supports("avxvnni") && __builtin_cpu_supports("f16c");
    bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
#endif
  }
};
const Cpu& cpu() {
  static const Cpu c;
  return c;
}
const char* const kNames[] = {"generic", "avx2", "avxvnni", "avx512-ymm", "avx512"};
}  // namespace

bool packed_isa_supported(int isa) {
#if defined(__x86_64__) || defined(__i386__)
  switch (isa) {
    case kIsaGeneric: return true;
    case kIsaAvx2: return cpu().avx2;
    case kIsaAvxVnni: return cpu().avxvnni;
    case kIsaAvx512Ymm:
    case kIsaAvx512: return cpu().avx512;
    default: return false;
  }
#else
  return isa == kIsaGeneric;
#endif
}

int packed_isa_best() {
  if (packed_isa_supported(kIsaAvx512)) return kIsaAvx512;
  if (packed_isa_supported(kIsaAvxVnni)) return kIsaAvxVnni;
  if (packed_isa_supported(kIsaAvx2)) return kIsaAvx2;
  return kIsaGeneric;
}

const char* packed_isa_name(int isa) { return isa >= 0 && isa <= kIsaAvx512 ? kNames[isa] : "?"; }

int packed_isa_parse(const char* name) {
  for (int i = 0; i <= kIsaAvx512; ++i)
    if (std::strcmp(name, kNames[i]) == 0) return i;
  return -1;
}

bool cpu_has_avx512_bf16() { return cpu().bf16; }

void packed_matmul_isa(int isa, const PackedArgs& a) {
  switch (isa) {
    case kIsaAvx512: return packed_matmul_avx512(a);
    case kIsaAvx512Ymm: return packed_matmul_avx512_ymm(a);
    case kIsaAvxVnni: return packed_matmul_avxvnni(a);
    case kIsaAvx2: return packed_matmul_avx2(a);
    default: return packed_matmul_generic(a);
  }
}

void packed_lut_matmul_isa(int isa, const PackedLutArgs& a) {
  switch (isa) {
    case kIsaAvx512: return packed_lut_matmul_avx512(a);
    case kIsaAvx512Ymm:
    case kIsaAvxVnni:
    case kIsaAvx2: return packed_lut_matmul_avx2(a);
    default: return packed_lut_matmul_generic(a);
  }
}

void bf16_matmul_isa(int isa, const Bf16Args& a) {
  switch (isa) {
    case kIsaAvx512: return cpu().bf16 ? bf16_matmul_avx512bf16(a) : bf16_matmul_avx512(a);
    case kIsaAvx512Ymm:
    case kIsaAvxVnni:
    case kIsaAvx2: return bf16_matmul_avx2(a);
    default: return bf16_matmul_generic(a);
  }
}

}  // namespace tfree
