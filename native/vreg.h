// TF_VREG: the inline-asm constraint that keeps a vector value in a register (an empty asm with it
// stops the compiler from folding or dropping a chain, as the FMA / VNNI peak probes need). The
// AVX-512 emulation build (native/emu/avx512_emu.h: no zmm registers, a __m512 is two __m256)
// keeps the value in memory instead.
#pragma once
#ifdef TFREE_EMU_AVX512
#define TF_VREG "+m"
#else
#define TF_VREG "+v"
#endif
