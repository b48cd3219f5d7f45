// Internal kernel tables, one file family per ISA: ops_<isa>.cc + gemm_<isa>.cc (+ packed_<isa>.cc,
// packed_lut_<isa>.cc), each compiled with its own flags (binding.gyp; never -march=native):
// generic (portable C++), avx2 (-mavx2 -mfma), avx512 (-mavx512f/bw/vl/dq), neon (arm64 builds;
// ARMv8-A base, +dotprod on packed_neon_dot.cc only). dispatch.cc picks one implementation per
// kernel family at load time from the CPU features (cpu.cc) and TFREE_ISA.
// Offsets are already applied to all pointers and every size was bounds-checked by addon.cc.
#pragma once
#include <cstdint>

namespace tfree {

struct GemmArgs {
  long batch;
  bool transA, transB;
  long M, N, K;
  float alpha, beta;
  const float* A;
  long lda, strideA;
  const float* B;
  long ldb, strideB;
  float* C;
  long ldc, strideC;
};

struct AttnArgs {
  const float *q, *k, *v;
  const float* out;  // backward only
  float* outW;       // forward only
  float* lseW;       // forward only
  const float* lse;  // backward only
  const float* gOut;
  float *gq, *gk, *gv;
  long B, Hq, Hkv, Tq, Tk, D;
  float scale;
  bool causal;
  long window;
  const int32_t *qPos, *kPos, *qSeg, *kSeg;
  const uint8_t* mask;
  // stored scores (training; null = none): the forward writes the scaled, masked scores of every
  // block it computes, the backward reads them instead of computing them again; attentionScores
  // gives the floats they take (0 where the backend keeps none for this call)
  float* scores;
};

struct OpsTable {
  const char* name;
  void (*unary)(int op, const float* x, float* out, long n);
  void (*unaryBackward)(int op, const float* x, const float* y, const float* gy, float* gx, long n, bool acc);
  void (*swiglu)(const float* gate, const float* up, float* out, long n);
  void (*swigluBackward)(const float* gate, const float* up, const float* g, float* gGate, float* gUp, long n);
  // shape/strides already simplified (rank <= 8); pointers already offset.
  void (*binary)(int op, int rank, const long* shape, const float* a, const long* as, const float* b, const long* bs, float* out);
  void (*copyStrided)(int rank, const long* shape, const float* x, const long* xs, float* out);
  void (*affine)(const float* a, float* out, long n, float alpha, float beta);
  void (*axpy)(long n, float alpha, const float* x, float* y);
  void (*reduce)(int op, const float* x, float* out, long outer, long len, long inner, int32_t* argmax);
  double (*sumSquares)(const float* x, long n);
  void (*softmax)(const float* x, float* out, long rows, long cols, bool log);
  void (*softmaxBackward)(const float* y, const float* gy, float* gx, long rows, long cols, bool log, bool acc);
  void (*rmsnorm)(const float* x, const float* w, float* out, float* rstd, long rows, long cols, float eps);
  void (*rmsnormBackward)(const float* x, const float* w, const float* rstd, const float* gy, float* gx, float* gw,
                          long rows, long cols, bool acc);
  void (*layernorm)(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd, long rows,
                    long cols, float eps);
  void (*layernormBackward)(const float* x, const float* w, const float* mean, const float* rstd, const float* gy,
                            float* gx, float* gw, float* gb, long rows, long cols, bool acc);
  void (*gather)(const float* table, const int32_t* ids, float* out, long n, long dim);
  void (*scatterAdd)(const float* gy, const int32_t* ids, float* gtable, long n, long dim);
  // T > 0: head-major [B, heads, T, headDim] output (toHM) or input (!toHM), see rope_impl
  void (*rope)(const float* x, float* out, const int32_t* pos, const float* cos, const float* sin, long rows,
               long heads, long headDim, long rotDim, bool inverse, long T, bool toHM);
  void (*attention)(const AttnArgs& a);
  void (*attentionBackward)(const AttnArgs& a);
  long (*attentionScores)(const AttnArgs& a);
  long (*crossEntropy)(const float* logits, const int32_t* targets, float* losses, float* lse, long rows, long cols,
                       long ignoreIndex);
  void (*crossEntropyBackward)(const float* logits, const int32_t* targets, const float* lse, const float* gLoss,
                               float* glogits, long rows, long cols, long ignoreIndex, bool acc);
  // gs: gradient scale (1: none), applied as affine(g, g, n, gs, 0) would (clipping fused in)
  void (*adamw)(float* p, const float* g, float* m, float* v, long n, float lr, float b1, float b2, float eps, float wd,
                float bc1, float bc2, float gs);
  // diagnostics
  double (*readSum)(const float* x, long n, int threads);
  double (*fmaRun)(long iters, int threads);  // runs 12 FMA chains x iters per thread; returns the flops done (caller times it)
};

const OpsTable* ops_avx512();   // nullptr when not compiled in (non-x86 build)
const OpsTable* ops_avx2();     // nullptr when not compiled in (non-x86 build)
const OpsTable* ops_neon();     // nullptr when not compiled in (non-arm64 build)
const OpsTable* ops_generic();

// int8 dot-product probes (probe_vnni.cc, bench only): run 16 vpdpbusd chains x iters per thread;
// return the integer ops done (caller times it). Call only when the CPU has the feature.
double int8_peak_avx512vnni(long iters, int threads);
double int8_peak_avxvnni(long iters, int threads);

// f32 GEMM / GEMV of the gemm TUs (the gemm family of dispatch.cc; GemmArgs above)
void gemm_avx512(const GemmArgs& g);
void gemm_avx2(const GemmArgs& g);
void gemm_neon(const GemmArgs& g);
void gemm_generic(const GemmArgs& g);

// ---- packed-weight matmul (packed_generic.cc, packed_avx2.cc) ----------------------------------
// out[m*N + n] = sum_k x[m*K + k] * scale[n, k/B] * levels[code[n, k]] for m < M, n < N, with codes
// packed per row as an MSB-first bit stream of `bits`-bit codes (rows of K*bits/8 bytes) and block
// scales stored as bf16 or f16 bit patterns [N, K/B]. Both implementations compute the same
// function: x is rounded to int16 per group of U = (B % 64 == 0 ? 64 : B) values (scale
// absmax/32767), levels to int16 fixed point (exact when they are integers), exact integer sums
// per group, float32 accumulation across groups.
//
// act8 selects the activation precision (both modes are one exact function each, shared by all
// implementations): false = int16 activations (above); true = int8 activations, x rounded per
// group to q = nearbyint(x * 127/absmax) (scale absmax/127) and levels to int8 (exact when they
// are integers with |L| <= 128, else L8 = nearbyint(L * 64/max|L|), scale max|L|/64: 7 bits with
// the sign, so that the AVX2 kernel's offset form applies, see packed_avx2.cc).
struct PackedArgs {
  long M, N, K;
  const float* x;
  const uint8_t* codes;
  int bits;
  const float* levels;  // 2^bits entries
  const uint16_t* scales;
  bool scaleBf16;
  long B;
  float* out;
  bool act8 = false;
};

void packed_matmul_generic(const PackedArgs& a);
void packed_matmul_avx2(const PackedArgs& a);  // falls back to the generic one for unsupported layouts
// ARM64 NEON (packed_neon.cc): bit-identical to the generic one, every layout. The _sdot variant
// computes int8-activation sums with sdot (packed_neon_dot.cc; call it only when the CPU has
// asimddp), the plain one with ARMv8.0 NEON. On other architectures: the generic kernel (neon_stub.cc).
void packed_matmul_neon(const PackedArgs& a);
void packed_matmul_neon_sdot(const PackedArgs& a);

// shared helpers (defined in packed_generic.cc; not inline, see threadpool.h)
// int16 levels and their scale: levels ~= L16 * ls (exact, ls = 1, when all are integers with |L| <= 8191)
void packed_levels_i16(const float* levels, int n, int16_t* L16, float* ls);
// int8 levels (act8 mode): exact when all are integers with |L| <= 128, else nearbyint(L * 64/max|L|)
void packed_levels_i8(const float* levels, int n, int16_t* L8, float* ls);
// x [K] -> integers per group of U in natural order, q = nearbyint(x * (qmax / absmax)) with qmax
// 32767 (int16 mode) or 127 (int8 mode); xs[g] = group absmax / qmax (NaN when the group holds a
// non-finite value, its q all 0)
void packed_quantize_x(const float* x, long K, long U, float qmax, int16_t* xq, float* xs);
// block scales of one row -> float32
void packed_scales_f32(const uint16_t* s, long n, bool bf16, float* out);


// ---- activation-side lookup-table matmul (packed_lut_generic.cc, packed_lut_avx2.cc) -----------
// For 1- and 2-bit codes, blocks B % 64 == 0, bf16 scales, int8-activation precision. Each 4-bit
// nibble of a packed row holds E = 4/bits consecutive codes (MSB first); per activation row and
// per nibble position q (E activations x[qE .. qE+E-1]) a table of 16 sums
//   T[q][j] = sum_{i<E} L8[code_i(j)] * x[qE + i]   (float32, i ascending, code_i(j) = bits i of j
//   from the MSB side; L8 = the int8-mode levels of packed_levels_i8)
// is built; per group u of 64 activations (Q = 64/E tables) the tables are rounded to int8:
// t = nearbyint(T * (127/amax)), ts[u] = amax/127, amax = max |T| over the group (non-finite -> NaN
// scale, zero tables). out[m, n] = float32 sum over u (ascending) of
//   float(S[n, u]) * ((sc[n, u*64/B] * ls) * ts[u]),  S[n, u] = sum_q t[q][nibble(n, q)] (exact).
// Weights in the row-interleaved layout (packedLutLayout in src/tensor/kernels/js_packed_lut.ts):
// tiles of 32 rows (the last zero-padded) of rb * 32 code bytes (rb = K bits / 8), each `bits`
// streams of ss = rb * 32 / bits bytes: byte j = u * 8 bits + 8 h + jj (group u of 64 weights,
// jj < 8) of row 32 tile + r at codes[tile * rb * 32 + h * ss + (u * 8 + jj) * 32 + r] (1-bit: one
// stream, codes[(tile * rb + j) * 32 + r]; 2-bit: two, so that a pair of tiles is four streams);
// scales[(tile * nB + b) * 32 + r] = bf16 scale of block b of that row.
struct PackedLutArgs {
  long M, N, K;
  const float* x;
  const uint8_t* codes;  // interleaved
  int bits;              // 1 or 2
  const float* levels;
  const uint16_t* scales;  // interleaved bf16
  long B;
  float* out;
};

void packed_lut_matmul_generic(const PackedLutArgs& a);
void packed_lut_matmul_avx2(const PackedLutArgs& a);
void packed_lut_matmul_neon(const PackedLutArgs& a);  // bit-identical to the generic one (tbl)
// tables of one activation row: tab [K/64][Q][16] int8, ts [K/64] (shared by both implementations)
void packed_lut_tables(const float* x, long K, int bits, const int16_t* L8, int8_t* tab, float* ts);


// ---- packed / LUT kernels beyond AVX2 (chosen in dispatch.cc) ----------------------------------
// packed_avx512.cc (-mavx512f/bw/vl/dq/vnni): int8-activation (act8) decode kernel with vpdpbusd,
// 512-bit, and the same kernel on 256-bit vectors with EVEX encoding (a test path for the code of
// the AVX-VNNI kernel on AVX-512 CPUs). packed_avxvnni.cc (-mavx2 -mfma -mavxvnni): the 256-bit
// kernel with VEX vpdpbusd. Same function as packed_matmul_generic (act8 mode only; int16 mode and
// layouts without a fast path fall back to the AVX2 kernel).
void packed_matmul_avx512(const PackedArgs& a);
void packed_matmul_avx512_ymm(const PackedArgs& a);
void packed_matmul_avxvnni(const PackedArgs& a);
// packed_lut_avx512.cc (-mavx512f/bw/vl): 512-bit lookup-table kernel, bit-identical to the others
void packed_lut_matmul_avx512(const PackedLutArgs& a);

// ---- bf16-weight matmul (bf16_generic.cc, bf16_avx2.cc, bf16_avx512.cc, bf16_avx512bf16.cc, bf16_amx.cc)
// out[m*N + n] = sum_k xr[m*K + k] * f32(W[n*K + k]) for m < M, n < N, W [N, K] bf16 bit patterns
// (widened exactly: bits << 16), float32 accumulation. Two modes:
//   xBf16 false: xr = x (f32 activations, the widening kernels: W widened to f32 in registers)
//   xBf16 true:  xr = bf16(x), x rounded to bf16 (nearest, ties to even; NaN stays NaN) first, so
//                every product is exact in float32 (8 x 8 significant bits): the function that
//                vdpbf16ps computes, up to its flushing of denormal inputs and outputs to zero.
// Summation order: the portable kernel and the TS twin add the products in ascending k, one
// rounding per product and per addition, and agree bit for bit; the SIMD kernels sum in lanes
// (fused multiply-add; vdpbf16ps two products per lane step) and differ from them only by float32
// rounding (every order is within (K + 1) * 2^-24 * sum |xr * w| of the exact sum).
struct Bf16Args {
  long M, N, K;
  const float* x;
  const uint16_t* w;
  float* out;
  bool xBf16;
};
void bf16_matmul_generic(const Bf16Args& a);
void bf16_matmul_avx2(const Bf16Args& a);
void bf16_matmul_avx512(const Bf16Args& a);      // AVX-512F widening
void bf16_matmul_avx512bf16(const Bf16Args& a);  // vdpbf16ps (xBf16 mode only; else the widening one)
// AMX-BF16 tiles (bf16_amx.cc, -mamx-tile -mamx-bf16): the xBf16 mode for M >= 16 (TDPBF16PS, two
// sums per element per 32 k, see the file); M < 16 and f32 activations: bf16_matmul_avx512bf16.
// Call only when the CPU has AMX-TILE, AMX-BF16 and AVX512_BF16 and Linux granted the tile state.
void bf16_matmul_amx(const Bf16Args& a);
// x -> bf16 bit patterns (nearest even; NaN -> quiet NaN with its sign) (bf16_generic.cc)
void bf16_round(const float* x, long n, uint16_t* out);
// ---- quantizers (quant_generic.cc; the rules of src/compress/quantize.ts and kmeans.ts) --------
// Block quantizer of one weight matrix (twin: quantizeBlocksJs in src/tensor/kernels/js_quant.ts):
// scales [rows, cols/B] as bf16/f16 bit patterns of the block statistic (absmax or mean|w|, floored
// at eps, / (2^(bits-1) - 1) for int kinds unless meanstep; rounded to float32, then to 16 bits,
// nearest even) and, when codes != nullptr, codes packed per row as an MSB-first bit stream.
// kind 0 int, 1 kmeans (mid: 2^bits - 1 ascending midpoints), 2 bin (centre, or the block mean when
// NaN), 3 ternary; scaleMode 0 absmax, 1 absmean, 2 meanstep. float64 arithmetic in the twin's order,
// rows split across the pool (bit-identical at any thread count). Returns the first non-finite
// weight's index (nothing written) or -1.
struct QuantArgs {
  const float* w;
  long rows, cols;
  int kind, bits;
  long B;
  int scaleMode;
  bool scaleBf16;
  double eps;
  const double* mid;
  double centre;
  uint8_t* codes;  // nullptr: scales only
  uint16_t* scales;
};
long quantize_blocks(const QuantArgs& a);
// out[i] = float32(src[i]) for bf16 bit patterns (exact: bits << 16), split across the pool
void widen_bf16(const uint16_t* src, float* out, long n);
// Lloyd iterations of the scalar weighted k-means (twin: kmeansLloydJs); single-threaded, float64,
// samples in ascending order. Returns the iterations run.
long kmeans_lloyd(const double* x, const double* wt, long n, double* c, long k, long maxIter, double tol, int32_t* assign);
// A kernel whose working memory cannot be allocated stops the process with one line on stderr
// (what and how many bytes) instead of returning a result it did not compute. Defined in
// dispatch.cc (compiled without ISA flags).
[[noreturn]] void out_of_memory(const char* what, double bytes);

}  // namespace tfree
