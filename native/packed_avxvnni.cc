// Packed-weight matmul, int8 activations (act8), with AVX-VNNI: the 256-bit kernel of
// packed_vnni_impl.h with the VEX encoding of vpdpbusd (compiled with -mavx2 -mfma -mf16c -mavxvnni;
// for CPUs that have AVX-VNNI without AVX-512, e.g. Intel Alder Lake and later client cores). The
// same code with the EVEX encoding is packed_matmul_avx512_ymm, which the tests run on AVX-512 CPUs.
// int16 mode and layouts without a fast path take the AVX2 kernel.
#include <immintrin.h>

#define TFREE_DPBUSD256 _mm256_dpbusd_avx_epi32
#include "packed_vnni_impl.h"

namespace tfree {

void packed_matmul_avxvnni(const PackedArgs& a) {
  if (!vnni_matmul<Y256>(a)) packed_matmul_avx2(a);
}

}  // namespace tfree
