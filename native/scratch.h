// A working buffer that a thread keeps across calls: 64-byte aligned, grown on demand, never freed
// (no allocation, page faults or free per call). Hold the Scratch thread_local, so that every pool
// thread and every calling JS thread has its own. Used by the SGEMM drivers (packing and the team's
// shared B blocks), the LUT driver's tables and the attention's key / value transposes.
// #included INSIDE each file's anonymous namespace (like transpose8_avx2.h), after <cstdlib>: every
// file gets its own copy, none shared through the linker.
#pragma once

struct Scratch {
  void* p;
  size_t cap;  // bytes
};

// At least `bytes` bytes of s, or null when the allocation failed.
inline void* scratch_bytes(Scratch& s, size_t bytes) {
  if (s.cap < bytes) {
    std::free(s.p);
    const size_t n = (bytes + 63) / 64 * 64;  // C11 aligned_alloc wants a multiple of the alignment
    s.p = std::aligned_alloc(64, n > 0 ? n : 64);
    s.cap = s.p ? bytes : 0;
  }
  return s.p;
}

inline float* scratch_floats(Scratch& s, size_t n) { return static_cast<float*>(scratch_bytes(s, n * sizeof(float))); }
