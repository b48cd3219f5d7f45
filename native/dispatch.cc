// Kernel selection per family (see dispatch.h). Compiled without ISA flags.
#include "dispatch.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace tfree {

const char* const kFamilyNames[kFamilies] = {"ops", "gemm", "packed", "packedLut", "boxte", "bf16"};

namespace {

KernelTable g_table = {};
char g_envError[160] = "";

#if defined(__x86_64__) || defined(__i386__)
constexpr bool kX86 = true;
#else
constexpr bool kX86 = false;
#endif
#if defined(__aarch64__)
constexpr bool kArm = true;
#else
constexpr bool kArm = false;
#endif

int rank(Isa i) {
  switch (i) {
    case Isa::generic: return 0;
    case Isa::avx2: return 1;
    case Isa::avx512: return 2;
    case Isa::neon: return 1;
  }
  return 0;
}

template <class Fn>
struct Impl {
  Isa isa;
  const char* name;
  bool (*extra)(const CpuFeatures&);  // more than the level's base features; nullptr = none
  Fn fn;                              // nullptr = not compiled in
  // listed (familyPaths) and forced (setKernelPath) when runnable, but never chosen by select_isa:
  // a path whose speed against the default has not been measured yet (amx-bf16), or one measured
  // slower here but kept tested (gemm's avx512-zmm on Zen 4)
  bool optIn = false;
};

template <class Fn, unsigned long N>
const Impl<Fn>& choose(const Impl<Fn> (&c)[N], Isa cap) {
  const CpuFeatures& f = cpu_features();
  for (const Impl<Fn>& i : c)
    if (i.fn && !i.optIn && rank(i.isa) <= rank(cap) && isa_supported(i.isa) && (!i.extra || i.extra(f))) return i;
  return c[N - 1];  // the generic one, last in every list
}

// Implementations that select_isa never picks by itself (extra returns false): test paths that
// select_path can force (runnable when their level is supported).
bool test_only(const CpuFeatures&) { return false; }

template <class Fn>
bool runnable(const Impl<Fn>& i) {
  return i.fn && isa_supported(i.isa) && (!i.extra || i.extra == test_only || i.extra(cpu_features()));
}

// A CPU that executes 512-bit operations as two 256-bit halves: AMD Zen 4 (x86 family 0x19; Zen 3,
// the same family, has no AVX-512, so only the emulation build can ask about it). Its AVX-512 f32
// GEMM (14x32 tiles) ran 1.5-3% slower than the AVX2 one (6x16) at 256..2048, 1 and 2 threads, with
// the same bits (docs/design.md "The gemm family"). Zen 5 (family 0x1A) has full 512-bit units and
// keeps the AVX-512 GEMM: unmeasured there.
bool splits_512(const CpuFeatures& f) { return std::strcmp(f.vendor, "AuthenticAMD") == 0 && f.family == 0x19; }

// Candidate lists of the gemm / packed / packedLut / bf16 families (best first, generic last),
// shared by select_isa and select_path.
const Impl<void (*)(const GemmArgs&)> kGemmImpls[] = {
    {Isa::avx512, "avx512", [](const CpuFeatures& f) { return !splits_512(f); }, kX86 ? gemm_avx512 : nullptr},
    // the same AVX-512 GEMM where "avx512" is not the default (Zen 4): listed and forced, so that the
    // tests and the bench still run it there, never chosen by select_isa. Exactly one of avx512 and
    // avx512-zmm is listed on an AVX-512 CPU, so no test runs the kernel twice.
    {Isa::avx512, "avx512-zmm", splits_512, kX86 ? gemm_avx512 : nullptr, true},
    {Isa::avx2, "avx2", nullptr, kX86 ? gemm_avx2 : nullptr},
    {Isa::neon, "neon", nullptr, kArm ? gemm_neon : nullptr},
    {Isa::generic, "generic", nullptr, gemm_generic},
};
const Impl<void (*)(const PackedArgs&)> kPackedImpls[] = {
    // int8-activation (act8) kernels with vpdpbusd; int16 mode and other layouts: the AVX2 kernel
    {Isa::avx512, "avx512-vnni", [](const CpuFeatures& f) { return f.avx512vnni && f.f16c; }, kX86 ? packed_matmul_avx512 : nullptr},
    // the AVX-VNNI kernel's 256-bit code with EVEX vpdpbusd: tests it on AVX-512 VNNI CPUs
    {Isa::avx512, "avx512-ymm", test_only, kX86 ? packed_matmul_avx512_ymm : nullptr},
    {Isa::avx2, "avxvnni", [](const CpuFeatures& f) { return f.avxvnni && f.f16c; }, kX86 ? packed_matmul_avxvnni : nullptr},
    {Isa::avx2, "avx2", nullptr, kX86 ? packed_matmul_avx2 : nullptr},
    // arm64: int8-activation sums with sdot when the CPU has asimddp, else plain ARMv8.0 NEON
    {Isa::neon, "neon-sdot", [](const CpuFeatures& f) { return f.asimddp; }, kArm ? packed_matmul_neon_sdot : nullptr},
    {Isa::neon, "neon", nullptr, kArm ? packed_matmul_neon : nullptr},
    {Isa::generic, "generic", nullptr, packed_matmul_generic},
};
const Impl<void (*)(const PackedLutArgs&)> kPackedLutImpls[] = {
    {Isa::avx512, "avx512", nullptr, kX86 ? packed_lut_matmul_avx512 : nullptr},
    {Isa::avx2, "avx2", nullptr, kX86 ? packed_lut_matmul_avx2 : nullptr},
    {Isa::neon, "neon", nullptr, kArm ? packed_lut_matmul_neon : nullptr},
    {Isa::generic, "generic", nullptr, packed_lut_matmul_generic},
};
const Impl<void (*)(const Bf16Args&)> kBf16Impls[] = {
    // AMX-BF16 tiles (TDPBF16PS) for bf16 activations and M >= 16 (fewer rows and f32 activations:
    // the avx512-bf16 kernel). optIn: listed and forced (setKernelPath, tests, the bench), NOT the
    // default, because issue 13 wants AMX only where it measurably beats AVX-512 and its speed has not
    // been measured (tested under emulation only, docs/design.md "AMX under emulation"). To make it
    // the default, on a CPU with AMX (tfree info lists amx-tile amx-bf16 amx-permitted): run the bf16
    // tests (node scripts/run-tests.mjs test/kernels/bf16_matmul.test.ts: they run amx-bf16 against
    // the float64 bound on real tiles), then time bf16Matmul with bf16 activations at batch sizes
    // 16..512 (prefill) and K, N of 4096 / 11008 on amx-bf16 vs avx512-bf16 in one interleaved run
    // (setKernelPath per call, as bench/packed.ts does); if amx-bf16 wins, set optIn false below and
    // write the figures (min, median, ratio, machine) in docs/design.md.
    {Isa::avx512, "amx-bf16", [](const CpuFeatures& f) { return f.amxTile && f.amxBf16 && f.amxPermitted && f.avx512bf16; },
     kX86 ? bf16_matmul_amx : nullptr, true},
    // vdpbf16ps for bf16 activations (f32 activations: the AVX-512F widening kernel)
    {Isa::avx512, "avx512-bf16", [](const CpuFeatures& f) { return f.avx512bf16; }, kX86 ? bf16_matmul_avx512bf16 : nullptr},
    {Isa::avx512, "avx512", nullptr, kX86 ? bf16_matmul_avx512 : nullptr},
    {Isa::avx2, "avx2", nullptr, kX86 ? bf16_matmul_avx2 : nullptr},
    {Isa::generic, "generic", nullptr, bf16_matmul_generic},
};

template <class Fn, unsigned long N>
int list_paths(const Impl<Fn> (&c)[N], const char** out, int n) {
  int k = 0;
  for (const Impl<Fn>& i : c)
    if (runnable(i) && k < n) out[k++] = i.name;
  return k;
}

template <class Fn, unsigned long N>
bool force(const Impl<Fn> (&c)[N], const char* name, Fn& slot, const char*& path) {
  for (const Impl<Fn>& i : c)
    if (std::strcmp(i.name, name) == 0 && runnable(i)) return slot = i.fn, path = i.name, true;
  return false;
}

}  // namespace

int family_paths(Family fam, const char** out, int n) {
  switch (fam) {
    case kGemm: return list_paths(kGemmImpls, out, n);
    case kPacked: return list_paths(kPackedImpls, out, n);
    case kPackedLut: return list_paths(kPackedLutImpls, out, n);
    case kBf16: return list_paths(kBf16Impls, out, n);
    default: return 0;
  }
}

bool select_path(Family fam, const char* name) {
  kernels();
  switch (fam) {
    case kGemm: return force(kGemmImpls, name, g_table.gemm, g_table.path[kGemm]);
    case kPacked: return force(kPackedImpls, name, g_table.packed, g_table.path[kPacked]);
    case kPackedLut: return force(kPackedLutImpls, name, g_table.packedLut, g_table.path[kPackedLut]);
    case kBf16: return force(kBf16Impls, name, g_table.bf16, g_table.path[kBf16]);
    default: return false;
  }
}

const char* isa_name(Isa i) {
  switch (i) {
    case Isa::generic: return "generic";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::neon: return "neon";
  }
  return "generic";
}

bool isa_parse(const char* s, Isa* out) {
  for (Isa i : {Isa::generic, Isa::avx2, Isa::avx512, Isa::neon})
    if (std::strcmp(s, isa_name(i)) == 0) return *out = i, true;
  if (std::strcmp(s, "none") == 0) return *out = Isa::generic, true;  // old TFREE_SIMD=none
  return false;
}

bool isa_supported(Isa i) {
  const CpuFeatures& f = cpu_features();
  switch (i) {
    case Isa::generic: return true;
    case Isa::avx2: return kX86 && f.avx2 && f.fma;
    case Isa::avx512: return kX86 && f.avx2 && f.fma && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
    case Isa::neon: return kArm && f.neon;
  }
  return false;
}

Isa isa_best() {
  for (Isa i : {Isa::avx512, Isa::avx2, Isa::neon})
    if (isa_supported(i)) return i;
  return Isa::generic;
}

namespace {

// The implementation per family for level `cap` (supported).
KernelTable build_table(Isa cap) {
  KernelTable t = {};
  t.cap = cap;
  {
    // Getters, called only for the chosen path: each ISA file builds its table in code compiled
    // with that ISA's flags (the compiler may vectorise the stores with it), so calling
    // ops_avx512() on a CPU without AVX-512 is an illegal instruction.
    const Impl<const OpsTable* (*)()> c[] = {
        {Isa::avx512, "avx512", nullptr, ops_avx512},
        {Isa::avx2, "avx2", nullptr, ops_avx2},
        {Isa::neon, "neon", nullptr, ops_neon},
        {Isa::generic, "generic", nullptr, ops_generic},
    };
    const auto& i = choose(c, cap);
    t.ops = i.fn();
    t.path[kOps] = i.name;
  }
  {
    const auto& i = choose(kGemmImpls, cap);
    t.gemm = i.fn;
    t.path[kGemm] = i.name;
  }
  {
    const auto& i = choose(kPackedImpls, cap);
    t.packed = i.fn;
    t.path[kPacked] = i.name;
  }
  {
    const auto& i = choose(kPackedLutImpls, cap);
    t.packedLut = i.fn;
    t.path[kPackedLut] = i.name;
  }
  {
    const auto& i = choose(kBf16Impls, cap);
    t.bf16 = i.fn;
    t.path[kBf16] = i.name;
  }
  {
    // boxte.cc keeps its loops to itself; the table only says which of them to run
    const Impl<bool> c[] = {
        {Isa::avx512, "avx512", nullptr, kX86},
        {Isa::avx2, "avx2", nullptr, kX86},
        {Isa::generic, "generic", nullptr, true},
    };
    const auto& i = choose(c, cap);
    t.boxte = i.isa;
    t.path[kBoxte] = i.name;
  }
  return t;
}

}  // namespace

bool select_isa(Isa cap) {
  if (!isa_supported(cap)) return false;
  g_table = build_table(cap);
  return true;
}

KernelTable table_for(Isa cap) { return build_table(isa_supported(cap) ? cap : Isa::generic); }

const KernelTable& kernels() {
  static const bool once = [] {
    Isa want = isa_best();
    const char* var = "TFREE_ISA";
    const char* e = std::getenv(var);
    if (!e || !*e) {
      var = "TFREE_SIMD";  // older name, same values
      e = std::getenv(var);
    }
    if (e && *e) {
      Isa asked;
      if (!isa_parse(e, &asked))
        std::snprintf(g_envError, sizeof g_envError, "%s=%s is not a known path (generic, avx2, avx512, neon)", var, e);
      else if (!isa_supported(asked))
        std::snprintf(g_envError, sizeof g_envError, "%s=%s: this CPU or build lacks that path (best here: %s)", var, e,
                      isa_name(isa_best()));
      else
        want = asked;
    }
    select_isa(want);
    return true;
  }();
  (void)once;
  return g_table;
}

const char* isa_env_error() {
  kernels();
  return g_envError;
}

void out_of_memory(const char* what, double bytes) {
  std::fprintf(stderr, "tfree: out of memory: the native %s kernel could not allocate %.0f bytes of working memory\n", what, bytes);
  std::fflush(stderr);
  std::abort();
}

}  // namespace tfree
