// The one place that chooses a kernel implementation per kernel family (dispatch.cc).
//
// An ISA level ("path") is a named set of kernels; TFREE_ISA (or setIsa/setSimd from JS) caps the
// level, and each family then takes its best implementation at or below the cap that this CPU can
// run. Levels, lowest first: x86 generic < avx2 < avx512; aarch64 generic < neon.
//
// To add an implementation: add a line to that family's candidate list in dispatch.cc (best first),
// naming its level, its display name and, when it needs more than the level's base features (e.g.
// avx512vnni, avxvnni, amx), a predicate on CpuFeatures. To add a family: a field in KernelTable,
// a name in kFamilyNames and a candidate list in build_table() (also in family_paths / select_path
// when tests and benches should run each of its implementations).
#pragma once
#include "cpu.h"
#include "kernels.h"

namespace tfree {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2, neon = 3 };

enum Family : int { kOps = 0, kGemm, kPacked, kPackedLut, kBoxte, kBf16, kFamilies };
extern const char* const kFamilyNames[kFamilies];  // "ops", "gemm", "packed", "packedLut", "boxte", "bf16"

struct KernelTable {
  Isa cap;                                       // the level in force
  const OpsTable* ops;                           // elementwise, norms, attention, adamw, ...
  void (*gemm)(const GemmArgs&);                 // f32 GEMM and GEMV (gemm_<isa>.cc)
  void (*packed)(const PackedArgs&);             // packed-weight matmul
  void (*packedLut)(const PackedLutArgs&);       // activation lookup-table matmul
  Isa boxte;                                     // boxte.cc's inner loops (avx512, avx2 or generic)
  void (*bf16)(const Bf16Args&);                 // bf16-weight matmul
  const char* path[kFamilies];                   // display name of the implementation chosen per family
};

const KernelTable& kernels();                    // selected at load (TFREE_ISA / TFREE_SIMD), see select_isa

const char* isa_name(Isa i);
bool isa_parse(const char* name, Isa* out);      // false for an unknown name
bool isa_supported(Isa i);                       // compiled in and the CPU (and OS) has its base features
Isa isa_best();                                  // highest supported level
// Selects the kernels for level `cap`; false (nothing changed) when unsupported.
bool select_isa(Isa cap);
// The table level `cap` would select (generic when unsupported), without selecting it.
KernelTable table_for(Isa cap);
// What TFREE_ISA (else TFREE_SIMD) asked for at load when it could not be honoured, else "".
const char* isa_env_error();
// Implementations of the gemm, packed, packedLut and bf16 families this CPU and build run, best
// first (display names, e.g. "avx512-vnni", "avx512-ymm", "avxvnni", "avx2", "generic"); at most n.
int family_paths(Family fam, const char** out, int n);
// Forces one implementation of such a family by display name, whatever the cap (tests, bench);
// false (nothing changed) when unknown or unsupported. The next select_isa undoes it.
bool select_path(Family fam, const char* name);

}  // namespace tfree
