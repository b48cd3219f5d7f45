// The emulation self-tests' random source (emu_selftest.cc, amx_selftest.cc): splitmix64, one
// stream per program, each seeded by its own constant so the two draw different inputs.
#pragma once

#include <cstdint>

namespace tfree_emu {

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace tfree_emu
