/**
 * Uniform(-1, 1) test data from a seeded xorshift32: fast enough for the 64 MiB probe buffers and
 * the same numbers for the same seed everywhere (bench/main.ts, experiments/sgemm_ab.ts).
 */
export function randArray(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  return a;
}
