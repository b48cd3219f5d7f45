// AVX-512 SGEMM: not yet written.
#include "kernels.h"

namespace tfree {
void gemm_avx512(const GemmArgs& g) { gemm_avx2(g); }
}  // namespace tfree
