// Non-arm64 builds: no NEON path; dispatch.cc never selects it (ops_neon() is null).
#if !defined(__aarch64__)
#include "kernels.h"

namespace tfree {
const OpsTable* ops_neon() { return nullptr; }
void gemm_neon(const GemmArgs& g) { gemm_generic(g); }
void packed_matmul_neon(const PackedArgs& a) { packed_matmul_generic(a); }
void packed_matmul_neon_sdot(const PackedArgs& a) { packed_matmul_generic(a); }
void packed_lut_matmul_neon(const PackedLutArgs& a) { packed_lut_matmul_generic(a); }
}  // namespace tfree
#endif  // !__aarch64__
