// Non-x86 builds: no AVX2/AVX-512 paths; dispatch.cc falls back to the generic kernels.
#include "kernels.h"

namespace tfree {
const OpsTable* ops_avx512() { return nullptr; }
const OpsTable* ops_avx2() { return nullptr; }
void gemm_avx512(const GemmArgs&) {}
double int8_peak_avx512vnni(long, int) { return 0; }
double int8_peak_avxvnni(long, int) { return 0; }
void gemm_avx2(const GemmArgs&) {}
void packed_matmul_avx2(const PackedArgs& a) { packed_matmul_generic(a); }
void packed_lut_matmul_avx2(const PackedLutArgs& a) { packed_lut_matmul_generic(a); }
void packed_matmul_avx512(const PackedArgs& a) { packed_matmul_generic(a); }
void packed_matmul_avx512_ymm(const PackedArgs& a) { packed_matmul_generic(a); }
void packed_matmul_avxvnni(const PackedArgs& a) { packed_matmul_generic(a); }
void packed_lut_matmul_avx512(const PackedLutArgs& a) { packed_lut_matmul_generic(a); }
void bf16_matmul_avx2(const Bf16Args& a) { bf16_matmul_generic(a); }
void bf16_matmul_avx512(const Bf16Args& a) { bf16_matmul_generic(a); }
void bf16_matmul_avx512bf16(const Bf16Args& a) { bf16_matmul_generic(a); }
void bf16_matmul_amx(const Bf16Args& a) { bf16_matmul_generic(a); }
}  // namespace tfree
