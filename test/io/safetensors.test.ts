import { test } from 'node:test';
import assert from 'node:assert/strict';
import fsMod from 'node:fs';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { syncBuiltinESMExports } from 'node:module';
import { spawnSync } from 'node:child_process';
import {
  DTYPES,
  SafetensorsError,
  bf16BitsToNumber,
  bf16ToF32,
  dtypeSize,
  f16BitsToNumber,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  firstNonFinite,
  fromFloat32,
  int64ToNumbers,
  lazyTensorFrom,
  numberToBf16Bits,
  numberToF16Bits,
  numbersToInt64,
  openCheckpoint,
  openSafetensors,
  openSafetensorsBuffer,
  parseSafetensorsHeader,
  serializeSafetensors,
  writeSafetensors,
  writeShardedSafetensors,
} from '../../src/io/index.js';
import type { DType, TensorData, TensorEntries, WritableTensor } from '../../src/io/index.js';

// ---------------------------------------------------------------------------
// helpers

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tfree-'));
}

function withTmp(fn: (dir: string) => void): void {
  const dir = tmpDir();
  try {
    fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const f32 = (xs: number[]): Float32Array => Float32Array.from(xs);

/** A raw safetensors image from a header (object or exact JSON text) and a data buffer. */
function rawFile(header: unknown, data: Uint8Array | number = 0, headerLength?: number): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, headerLength ?? json.length, true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

function expectError(fn: () => unknown, code: string, tensor: string | undefined, message: RegExp): SafetensorsError {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e;
    assert.equal(e.code, code, `code of: ${e.message}`);
    assert.equal(e.tensor, tensor, `tensor of: ${e.message}`);
    assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected SafetensorsError ${code}`);
}

function sameBits(a: ArrayLike<number> | BigInt64Array, b: ArrayLike<number> | BigInt64Array): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (typeof x === 'number' && typeof y === 'number' && Number.isNaN(x)) assert.ok(Number.isNaN(y), `element ${i}`);
    else assert.ok(Object.is(x, y), `element ${i}: ${String(x)} vs ${String(y)}`);
  }
}

/** Records fs.readSync calls made while `fn` runs (the io module uses the live ESM binding). */
function spyReads<T>(fn: () => T): { result: T; calls: Array<{ length: number; position: number }> } {
  const orig = fsMod.readSync;
  const calls: Array<{ length: number; position: number }> = [];
  const wrapper = function (...args: unknown[]): number {
    calls.push({ length: Number(args[3]), position: Number(args[4]) });
    return Reflect.apply(orig, fsMod, args) as number;
  };
  fsMod.readSync = wrapper as unknown as typeof fsMod.readSync;
  syncBuiltinESMExports();
  try {
    return { result: fn(), calls };
  } finally {
    fsMod.readSync = orig;
    syncBuiltinESMExports();
  }
}

// ---------------------------------------------------------------------------
// dtype conversions

test('f16: known values, subnormals, inf, NaN, ties', () => {
  const cases: Array<[number, number]> = [
    [1.0, 0x3c00],
    [-2.5, 0xc100],
    [65504, 0x7bff],
    [65519, 0x7bff],
    [65520, 0x7c00], // tie between 65504 (odd) and 65536 -> even = inf
    [1e6, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [0, 0x0000],
    [-0, 0x8000],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie -> even (0)
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 units -> even (2)
    [5 * 2 ** -25, 0x0002], // tie between 2 and 3 units -> even (2)
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -14 - 2 ** -26, 0x0400], // rounds up from subnormal into normal
    [1 + 2 ** -11, 0x3c00], // tie -> even
    [1 + 3 * 2 ** -11, 0x3c02], // tie -> even (up)
    [1 + 2 ** -11 + 2 ** -20, 0x3c01],
    [-(2 ** -24), 0x8001],
  ];
  for (const [x, bits] of cases) {
    assert.equal(numberToF16Bits(x), bits, `encode ${x}`);
  }
  for (const [x, bits] of cases) {
    if (bits === 0x7c00 || bits === 0xfc00) assert.equal(f16BitsToNumber(bits), x > 0 ? Infinity : -Infinity);
  }
  assert.equal(f16BitsToNumber(0x3c00), 1);
  assert.equal(f16BitsToNumber(0xc100), -2.5);
  assert.equal(f16BitsToNumber(0x7bff), 65504);
  assert.equal(f16BitsToNumber(0x0001), 2 ** -24);
  assert.equal(f16BitsToNumber(0x03ff), 1023 * 2 ** -24);
  assert.ok(Object.is(f16BitsToNumber(0x8000), -0));
  const nanBits = numberToF16Bits(NaN);
  assert.equal(nanBits & 0x7c00, 0x7c00);
  assert.notEqual(nanBits & 0x3ff, 0);
  assert.ok(Number.isNaN(f16BitsToNumber(0x7e00)));
  // array versions agree with the scalar ones
  const xs = cases.map((c) => c[0]);
  assert.deepEqual([...f32ToF16(f32(xs))], cases.map((c) => c[1]));
  assert.deepEqual([...f32ToF16(xs)], cases.map((c) => c[1]));
  const back = f16ToF32(Uint16Array.from([0x3c00, 0xc100, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x7e00]));
  assert.deepEqual([...back.slice(0, 6)], [1, -2.5, 65504, 2 ** -24, Infinity, -Infinity]);
  assert.ok(Number.isNaN(back[6]));
});

test('bf16: known values, subnormals, inf, NaN, ties', () => {
  const bitsOf = (u: number): number => new Float32Array(new Uint32Array([u]).buffer)[0];
  const cases: Array<[number, number]> = [
    [1.0, 0x3f80],
    [-2.5, 0xc020],
    [65504, 0x4780], // 0x477fe000 rounds up to 65536
    [1 + 2 ** -8, 0x3f80], // tie -> even
    [1 + 3 * 2 ** -8, 0x3f82], // tie -> even (up)
    [1 + 2 ** -8 + 2 ** -20, 0x3f81],
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
    [3.4028234663852886e38, 0x7f80], // FLT_MAX rounds to inf
    [0, 0],
    [-0, 0x8000],
    [bitsOf(0x00000001), 0x0000], // f32 subnormal below half a bf16 ulp
    [bitsOf(0x00008000), 0x0000], // tie -> even (0)
    [bitsOf(0x00018000), 0x0002], // tie -> even (2)
    [bitsOf(0x00010000), 0x0001], // smallest bf16 subnormal, exact
    [bitsOf(0x80010000), 0x8001],
  ];
  for (const [x, bits] of cases) assert.equal(numberToBf16Bits(x), bits, `encode ${x}`);
  assert.deepEqual([...f32ToBf16(f32(cases.map((c) => c[0])))], cases.map((c) => c[1]));
  assert.equal(bf16BitsToNumber(0x3f80), 1);
  assert.equal(bf16BitsToNumber(0xc020), -2.5);
  assert.equal(bf16BitsToNumber(0x4780), 65536);
  assert.equal(bf16BitsToNumber(0x0001), 2 ** -133);
  assert.equal(bf16BitsToNumber(0xff80), -Infinity);
  const nan = numberToBf16Bits(NaN);
  assert.ok(Number.isNaN(bf16BitsToNumber(nan)));
  // a NaN whose payload sits only in the low 16 bits must not become inf
  assert.ok(Number.isNaN(bf16BitsToNumber(numberToBf16Bits(bitsOf(0x7f800001)))));
  assert.ok(Number.isNaN(bf16BitsToNumber(numberToBf16Bits(bitsOf(0xff800001)))));
});

test('f16/bf16: every bit pattern round-trips; random float32 values match a reference RNE', () => {
  const h = new Uint16Array(65536).map((_, i) => i);
  for (const [enc, dec, expBits] of [
    [f32ToF16, f16ToF32, 0x7c00],
    [f32ToBf16, bf16ToF32, 0x7f80],
  ] as const) {
    const back = enc(dec(h));
    for (let i = 0; i < 65536; i++) {
      const isNaN = (i & expBits) === expBits && (i & (expBits === 0x7c00 ? 0x3ff : 0x7f)) !== 0;
      if (isNaN) assert.ok((back[i] & expBits) === expBits && (back[i] & ~expBits & 0x7fff) !== 0, `NaN ${i}`);
      else assert.equal(back[i], i, `pattern ${i.toString(16)}`);
    }
  }
  // Reference: nearest representable value by distance, ties to even bit pattern.
  const rng = mulberry32(7);
  for (const [toBits, fromBits, maxPattern, overflowValue] of [
    [numberToF16Bits, f16BitsToNumber, 0x7bff, 65536],
    [numberToBf16Bits, bf16BitsToNumber, 0x7f7f, 2 ** 128],
  ] as const) {
    const table = new Float64Array(maxPattern + 2);
    for (let i = 0; i <= maxPattern; i++) table[i] = fromBits(i);
    table[maxPattern + 1] = overflowValue; // the inf pattern, valued as the next power of two
    const u = new Uint32Array(1);
    const fv = new Float32Array(u.buffer);
    for (let k = 0; k < 60000; k++) {
      u[0] = Math.floor(rng() * 2 ** 32);
      if (k % 3 === 0) u[0] = (u[0] & 0x80000000) | ((u[0] & 0x7fffffff) % 0x48000000); // bias to the f16 range
      const x = fv[0];
      if (!Number.isFinite(x)) continue;
      const ax = Math.abs(x);
      let lo = 0;
      let hi = maxPattern + 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (table[mid] <= ax) lo = mid;
        else hi = mid - 1;
      }
      let want = lo;
      if (lo <= maxPattern && table[lo] !== ax) {
        const dLo = ax - table[lo];
        const dHi = table[lo + 1] - ax;
        if (dHi < dLo || (dHi === dLo && (lo & 1) === 1)) want = lo + 1;
      }
      const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
      assert.equal(toBits(x), want | sign, `x=${x}`);
    }
  }
});

test('int64 <-> numbers: exact within 2^53, error beyond', () => {
  const ok = BigInt64Array.from([0n, -1n, 2n ** 53n, -(2n ** 53n), 123456789012345n]);
  assert.deepEqual([...int64ToNumbers(ok)], [0, -1, 2 ** 53, -(2 ** 53), 123456789012345]);
  assert.throws(() => int64ToNumbers(BigInt64Array.from([1n, 2n ** 53n + 1n])), /element 1 .*2\^53/);
  assert.throws(() => int64ToNumbers(BigInt64Array.from([-(2n ** 63n)])), RangeError);
  assert.deepEqual([...numbersToInt64([1, -7, 2 ** 53])], [1n, -7n, 2n ** 53n]);
  assert.throws(() => numbersToInt64([1.5]), RangeError);
  assert.deepEqual([...fromFloat32('BF16', f32([1, -2.5]))], [0x3f80, 0xc020]);
  assert.deepEqual([...fromFloat32('F16', f32([1, -2.5]))], [0x3c00, 0xc100]);
});

// ---------------------------------------------------------------------------
// round trips

function allDTypeTensors(): Array<[string, TensorData]> {
  return [
    ['f64', { dtype: 'F64', shape: [2, 2], data: Float64Array.from([1.5, -0, Math.PI, 1e300]) }],
    ['f32', { dtype: 'F32', shape: [3], data: f32([1, -2.5, Infinity]) }],
    ['f16', { dtype: 'F16', shape: [2, 3], data: f32ToF16([1, -2.5, 65504, 2 ** -24, -Infinity, NaN]) }],
    ['bf16', { dtype: 'BF16', shape: [5], data: f32ToBf16([1, -2.5, 3.0e38, 2 ** -133, NaN]) }],
    ['i64', { dtype: 'I64', shape: [3], data: BigInt64Array.from([-(2n ** 53n), 42n, 2n ** 53n]) }],
    ['i32', { dtype: 'I32', shape: [2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1]) }],
    ['i16', { dtype: 'I16', shape: [2], data: Int16Array.from([-32768, 32767]) }],
    ['i8', { dtype: 'I8', shape: [1, 3], data: Int8Array.from([-128, 0, 127]) }],
    ['u8', { dtype: 'U8', shape: [4], data: Uint8Array.from([0, 1, 200, 255]) }],
    ['bool', { dtype: 'BOOL', shape: [3], data: Uint8Array.from([1, 0, 1]) }],
    ['scalar', { dtype: 'F32', shape: [], data: f32([7]) }],
    ['empty', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
  ];
}

test('round trip of every dtype through a file, with metadata, readAs f32/f64', () => {
  withTmp((dir) => {
    const p = path.join(dir, 'all.safetensors');
    const tensors = allDTypeTensors();
    assert.deepEqual([...new Set(tensors.map(([, t]) => t.dtype))].sort(), [...DTYPES].sort());
    const meta = { format: 'pt', note: 'héllo ✓', __proto__x: 'y' };
    const res = writeSafetensors(p, tensors, meta);
    const size = fs.statSync(p).size;
    assert.equal(res.fileSize, size);
    const bytes = fs.readFileSync(p);
    const n = bytes.readUInt32LE(0);
    assert.equal(bytes.readUInt32LE(4), 0);
    assert.equal((8 + n) % 8, 0, 'data buffer starts 8-byte aligned');
    assert.equal(size - 8 - n, res.dataBytes);
    assert.match(bytes.subarray(8, 8 + n).toString('utf8'), /^\{"__metadata__":\{.*\} *$/);
    const f = openSafetensors(p);
    try {
      assert.deepEqual(f.names(), tensors.map(([name]) => name));
      assert.deepEqual(f.metadata, meta);
      for (const [name, t] of tensors) {
        const info = f.info(name);
        assert.equal(info.dtype, t.dtype);
        assert.deepEqual(info.shape, t.shape);
        assert.equal(info.byteLength, t.data.length * dtypeSize(t.dtype));
        const r = f.read(name);
        assert.equal(r.dtype, t.dtype);
        assert.deepEqual(r.shape, t.shape);
        assert.equal(r.data.constructor, t.data.constructor);
        sameBits(r.data, t.data);
        assert.equal(r.data.byteOffset % dtypeSize(t.dtype), 0);
      }
      sameBits(f.readAs('f16', 'f32').data, f32([1, -2.5, 65504, 2 ** -24, -Infinity, NaN]));
      sameBits(f.readAs('bf16', 'f32').data, f32([1, -2.5, bf16BitsToNumber(numberToBf16Bits(3.0e38)), 2 ** -133, NaN]));
      sameBits(f.readAs('i8', 'f32').data, [-128, 0, 127]);
      sameBits(f.readAs('i64', 'f64').data, [-(2 ** 53), 42, 2 ** 53]);
      sameBits(f.readAs('f64', 'f64').data, [1.5, -0, Math.PI, 1e300]);
      sameBits(f.readAs('f64', 'f32').data, f32([1.5, -0, Math.PI, Infinity]));
      assert.deepEqual(f.readAs('u8', 'f64').shape, [4]);
      expectError(() => f.read('nope'), 'NOT_FOUND', 'nope', /no such tensor/);
    } finally {
      f.close();
    }
    expectError(() => f.read('f32'), 'CLOSED', 'f32', /closed/);
    f.close(); // idempotent
  });
});

test('i64 beyond 2^53 reads raw but readAs fails with a SafetensorsError naming the tensor', () => {
  const img = serializeSafetensors({ big: { dtype: 'I64', shape: [2], data: BigInt64Array.from([1n, 2n ** 60n]) } });
  const f = openSafetensorsBuffer(img, 'mem');
  assert.deepEqual([...(f.read('big').data as BigInt64Array)], [1n, 2n ** 60n]);
  expectError(() => f.readAs('big', 'f64'), 'CONVERSION', 'big', /element 1 .*2\^53/);
});

test('write order: array order kept, integer-like names included; metadata keys like __proto__ survive', () => {
  const entries: Array<[string, WritableTensor]> = [
    ['z', { dtype: 'U8', shape: [1], data: Uint8Array.from([1]) }],
    ['10', { dtype: 'U8', shape: [1], data: Uint8Array.from([2]) }],
    ['2', { dtype: 'U8', shape: [1], data: Uint8Array.from([3]) }],
    ['a.b', { dtype: 'U8', shape: [0], data: new Uint8Array(0) }],
    ['ü/ñ "q"', { dtype: 'U8', shape: [1], data: Uint8Array.from([4]) }],
  ];
  const meta = JSON.parse('{"__proto__": "p", "k": ""}') as Record<string, string>;
  const f = openSafetensorsBuffer(serializeSafetensors(entries, meta));
  assert.deepEqual(f.names(), entries.map((e) => e[0]));
  assert.deepEqual(Object.keys(f.metadata), ['__proto__', 'k']);
  assert.equal(Object.getPrototypeOf(f.metadata), Object.prototype);
  assert.deepEqual(f.names().map((n) => [...(f.read(n).data as Uint8Array)]), [[1], [2], [3], [], [4]]);
  // empty metadata and no tensors at all is a valid file
  const g = openSafetensorsBuffer(serializeSafetensors([]));
  assert.deepEqual(g.names(), []);
  assert.deepEqual(g.metadata, {});
});

test('writing in memory and to a file gives the same bytes; header parse is shared', () => {
  withTmp((dir) => {
    const p = path.join(dir, 'x.safetensors');
    const t = allDTypeTensors();
    writeSafetensors(p, t, { a: 'b' });
    const img = serializeSafetensors(t, { a: 'b' });
    assert.deepEqual(new Uint8Array(fs.readFileSync(p)), img);
    const h = parseSafetensorsHeader(img, img.length, 'img');
    assert.equal(h.dataStart % 8, 0);
    assert.deepEqual([...h.tensors.keys()], t.map((e) => e[0]));
  });
});

// ---------------------------------------------------------------------------
// lazy reading

test('open reads only the header; read() does one positioned read of exactly one tensor', () => {
  withTmp((dir) => {
    const p = path.join(dir, 'lazy.safetensors');
    const a = f32([1, 2, 3, 4]);
    const c = Int32Array.from([5, 6]);
    writeSafetensors(p, [
      ['a', { dtype: 'F32', shape: [4], data: a }],
      ['b', { dtype: 'U8', shape: [1000], data: new Uint8Array(1000).fill(7) }],
      ['c', { dtype: 'I32', shape: [2], data: c }],
    ]);
    // Corrupt tensor b's region: other tensors still read fine (nothing else is touched).
    const fd = fs.openSync(p, 'r+');
    const n = Number(fs.readFileSync(p).readBigUInt64LE(0));
    fs.writeSync(fd, Buffer.alloc(1000, 0xee), 0, 1000, 8 + n + 16);
    fs.closeSync(fd);
    const { result: f, calls: openCalls } = spyReads(() => openSafetensors(p));
    try {
      const total = openCalls.reduce((s, c) => s + c.length, 0);
      assert.equal(total, 8 + n, 'open reads exactly the length prefix and the header');
      const { result: rc, calls } = spyReads(() => f.read('c'));
      assert.deepEqual(calls, [{ length: 8, position: 8 + n + 16 + 1000 }]);
      assert.deepEqual([...(rc.data as Int32Array)], [5, 6]);
      const { result: ra, calls: callsA } = spyReads(() => f.read('a'));
      assert.deepEqual(callsA, [{ length: 16, position: 8 + n }]);
      assert.deepEqual([...(ra.data as Float32Array)], [1, 2, 3, 4]);
      assert.ok((f.read('b').data as Uint8Array).every((x) => x === 0xee));
      // reading into a caller buffer
      const buf = new Uint8Array(64);
      const r = f.read('a', { into: buf.subarray(8) });
      assert.equal(r.data.buffer, buf.buffer);
      assert.deepEqual([...(r.data as Float32Array)], [1, 2, 3, 4]);
      expectError(() => f.read('a', { into: new Uint8Array(8) }), 'INVALID_ARGUMENT', 'a', /needs 16/);
      expectError(() => f.read('a', { into: buf.subarray(2) }), 'INVALID_ARGUMENT', 'a', /multiple of the F32 element size/);
    } finally {
      f.close();
    }
  });
});

test('a file truncated after opening gives a TRUNCATED error on read', () => {
  withTmp((dir) => {
    const p = path.join(dir, 't.safetensors');
    writeSafetensors(p, { a: { dtype: 'F32', shape: [1000], data: new Float32Array(1000) } });
    const f = openSafetensors(p);
    try {
      fs.truncateSync(p, fs.statSync(p).size - 100);
      expectError(() => f.read('a'), 'TRUNCATED', 'a', /file ended after 3900 of 4000 bytes/);
    } finally {
      f.close();
    }
  });
});

// ---------------------------------------------------------------------------
// atomic writes

function listDir(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

test('atomic write: no temp file after success; failure mid-write leaves no target and no temp file', () => {
  withTmp((dir) => {
    const p = path.join(dir, 'm.safetensors');
    writeSafetensors(p, { a: { dtype: 'F32', shape: [2], data: f32([1, 2]) } });
    assert.deepEqual(listDir(dir), ['m.safetensors']);

    // lazily produced data of the wrong length: detected after the header and tensor "a" were written
    const q = path.join(dir, 'q.safetensors');
    let loaded = 0;
    expectError(
      () =>
        writeSafetensors(q, [
          ['a', { dtype: 'F32', shape: [2], load: () => (loaded++, f32([1, 2])) }],
          ['b', { dtype: 'F32', shape: [2, 2], load: () => (loaded++, f32([1, 2, 3])) }],
        ]),
      'SIZE_MISMATCH',
      'b',
      /data has 3 elements but shape \[2, 2\] needs 4/,
    );
    assert.equal(loaded, 2);
    assert.deepEqual(listDir(dir), ['m.safetensors']);

    // a throwing loader
    expectError(
      () => writeSafetensors(q, [['x', { dtype: 'U8', shape: [1], load: () => { throw new Error('disk on fire'); } }]]),
      'INVALID_ARGUMENT',
      'x',
      /load\(\) failed: disk on fire/,
    );
    assert.deepEqual(listDir(dir), ['m.safetensors']);

    // failure over an existing file leaves the old content intact
    const before = fs.readFileSync(p);
    expectError(
      () => writeSafetensors(p, [['b', { dtype: 'I8', shape: [3], load: () => new Int8Array(2) }]]),
      'SIZE_MISMATCH',
      'b',
      /needs 3/,
    );
    assert.deepEqual(fs.readFileSync(p), before);
    assert.deepEqual(listDir(dir), ['m.safetensors']);

    // rename failure (target is a non-empty folder): temp file removed, IO error
    const d = path.join(dir, 'adir');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'keep'), 'x');
    expectError(() => writeSafetensors(d, { a: { dtype: 'U8', shape: [1], data: Uint8Array.from([1]) } }), 'IO', undefined, /write failed/);
    assert.deepEqual(listDir(dir), ['adir', 'm.safetensors']);

    // eager data problems are found before anything is created
    expectError(() => writeSafetensors(q, { w: { dtype: 'F32', shape: [2, 3], data: f32([1, 2]) } }), 'SIZE_MISMATCH', 'w', /data has 2 elements but shape \[2, 3\] needs 6/);
    assert.deepEqual(listDir(dir), ['adir', 'm.safetensors']);
  });
});

test('writer input validation names the tensor', () => {
  const bad = (t: unknown): TensorEntries => ({ t: t as WritableTensor });
  expectError(() => serializeSafetensors(bad({ dtype: 'F32', shape: [2], data: Float64Array.from([1, 2]) })), 'INVALID_ARGUMENT', 't', /must be a Float32Array, got Float64Array/);
  expectError(() => serializeSafetensors(bad({ dtype: 'BF16', shape: [2], data: f32([1, 2]) })), 'INVALID_ARGUMENT', 't', /must be a Uint16Array/);
  expectError(() => serializeSafetensors(bad({ dtype: 'F8', shape: [2], data: f32([1, 2]) })), 'UNKNOWN_DTYPE', 't', /unknown dtype string "F8"/);
  expectError(() => serializeSafetensors(bad({ dtype: 'F32', shape: [-1], data: f32([]) })), 'INVALID_SHAPE', 't', /shape\[0\] must be a non-negative integer, got number -1/);
  expectError(() => serializeSafetensors(bad({ dtype: 'F32', shape: [1.5], data: f32([]) })), 'INVALID_SHAPE', 't', /shape\[0\]/);
  expectError(() => serializeSafetensors(bad({ dtype: 'F32', shape: 3, data: f32([]) })), 'INVALID_SHAPE', 't', /shape must be an array/);
  expectError(() => serializeSafetensors(bad(null)), 'INVALID_ARGUMENT', 't', /must be an object/);
  expectError(() => serializeSafetensors(bad({ dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data: f32([]) })), 'INVALID_SHAPE', 't', /too large/);
  const one: TensorData = { dtype: 'U8', shape: [1], data: Uint8Array.from([1]) };
  expectError(() => serializeSafetensors([['a', one], ['a', one]]), 'DUPLICATE', 'a', /given twice/);
  expectError(() => serializeSafetensors([['__metadata__', one]]), 'INVALID_ARGUMENT', '__metadata__', /reserved/);
  expectError(() => serializeSafetensors({ a: one }, { k: 1 as unknown as string }), 'INVALID_METADATA', undefined, /key "k" must be a string, got number 1/);
});

// ---------------------------------------------------------------------------
// header validation

test('validation: file length and header length', () => {
  withTmp((dir) => {
    const p = path.join(dir, 'short.safetensors');
    fs.writeFileSync(p, Buffer.from([1, 2, 3, 4, 5]));
    expectError(() => openSafetensors(p), 'TRUNCATED', undefined, /short\.safetensors: file is 5 bytes, shorter than the 8-byte header length prefix/);
    fs.writeFileSync(p, rawFile('{}', 0, 100));
    expectError(() => openSafetensors(p), 'TRUNCATED', undefined, /header length 100 .*needs 108 bytes but the file is only 10 bytes/);
    const huge = new Uint8Array(16);
    new DataView(huge.buffer).setUint32(0, 200_000_000, true);
    fs.writeFileSync(p, huge);
    expectError(() => openSafetensors(p), 'HEADER_TOO_LARGE', undefined, /header length 200000000 .*exceeds the limit of 100000000/);
    new DataView(huge.buffer).setUint32(4, 0xffffffff, true);
    fs.writeFileSync(p, huge);
    expectError(() => openSafetensors(p), 'HEADER_TOO_LARGE', undefined, /header length \d+ \(bytes 0\.\.8\) exceeds the limit/);
    expectError(() => openSafetensors(path.join(dir, 'missing.safetensors')), 'IO', undefined, /cannot open: ENOENT/);
    expectError(() => openSafetensors(dir), 'IO', undefined, /not a regular file|EISDIR/);
  });
});

test('validation: header text', () => {
  const open = (b: Uint8Array): unknown => openSafetensorsBuffer(b, 'h.st');
  const bad = Buffer.concat([Buffer.from('{"a'), Buffer.from([0xff, 0xfe]), Buffer.from('":1}')]);
  const img = new Uint8Array(8 + bad.length);
  new DataView(img.buffer).setUint32(0, bad.length, true);
  img.set(bad, 8);
  expectError(() => open(img), 'INVALID_HEADER', undefined, /h\.st: header is not valid UTF-8 \(bad byte sequence at file byte 11\)/);
  expectError(() => open(rawFile('{"a": ')), 'INVALID_HEADER', undefined, /header \(file bytes 8\.\.14\) is not valid JSON/);
  expectError(() => open(rawFile('[1, 2]')), 'INVALID_HEADER', undefined, /must be a JSON object starting with '\{', got "\[1, 2\]"/);
  expectError(() => open(rawFile('')), 'INVALID_HEADER', undefined, /got nothing/);
  expectError(() => open(rawFile('{} x')), 'INVALID_HEADER', undefined, /not valid JSON/);
  // padding with spaces is fine
  assert.deepEqual((open(rawFile('{}      ')) as { names(): string[] }).names(), []);
  // deep nesting must not overflow the stack
  const deep = `{"__metadata__": ${'['.repeat(100000)}${']'.repeat(100000)}}`;
  expectError(() => open(rawFile(deep)), 'INVALID_METADATA', undefined, /__metadata__ must be an object of string values, got an array of length 1/);
  const deep2 = `{"t": {"dtype": "F32", "shape": [${'['.repeat(50000)}${']'.repeat(50000)}], "data_offsets": [0, 0]}}`;
  expectError(() => open(rawFile(deep2)), 'INVALID_SHAPE', 't', /shape\[0\] must be a non-negative integer, got an array of length 1/);
});

test('validation: entries', () => {
  const open = (h: unknown, data = 0): unknown => openSafetensorsBuffer(rawFile(h, data), 'e.st');
  const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  expectError(() => open({ w: 5 }), 'INVALID_ENTRY', 'w', /e\.st: tensor "w": header entry must be an object with dtype, shape and data_offsets, got number 5/);
  expectError(() => open({ w: [1] }), 'INVALID_ENTRY', 'w', /got an array of length 1/);
  expectError(() => open({ w: { shape: [2], data_offsets: [0, 8] } }, 8), 'INVALID_ENTRY', 'w', /missing "dtype"/);
  expectError(() => open({ w: { dtype: 'F32', data_offsets: [0, 8] } }, 8), 'INVALID_ENTRY', 'w', /missing "shape"/);
  expectError(() => open({ w: { dtype: 'F32', shape: [2] } }, 8), 'INVALID_ENTRY', 'w', /missing "data_offsets"/);
  expectError(() => open({ w: { ...ok, dtype: 4 } }, 8), 'INVALID_ENTRY', 'w', /dtype must be a string, got number 4/);
  expectError(() => open({ w: { ...ok, dtype: 'F8_E4M3' } }, 8), 'UNKNOWN_DTYPE', 'w', /unknown dtype "F8_E4M3" \(supported: F64, F32/);
  expectError(() => open({ w: { ...ok, dtype: 'f32' } }, 8), 'UNKNOWN_DTYPE', 'w', /unknown dtype "f32"/);
  expectError(() => open({ w: { ...ok, shape: '2' } }, 8), 'INVALID_SHAPE', 'w', /shape must be an array of non-negative integers, got string "2"/);
  expectError(() => open({ w: { ...ok, shape: [2, -1] } }, 8), 'INVALID_SHAPE', 'w', /shape\[1\] must be a non-negative integer, got number -1 \(shape \[2, -1\]\)/);
  expectError(() => open({ w: { ...ok, shape: [2.5] } }, 8), 'INVALID_SHAPE', 'w', /shape\[0\] .*got number 2\.5/);
  expectError(() => open({ w: { ...ok, shape: [null] } }, 8), 'INVALID_SHAPE', 'w', /got null/);
  expectError(() => open('{"w": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 8]}}', 8), 'INVALID_SHAPE', 'w', /got number Infinity/);
  expectError(() => open({ w: { ...ok, data_offsets: [0] } }, 8), 'INVALID_OFFSETS', 'w', /data_offsets must be an array \[begin, end\], got an array of length 1/);
  expectError(() => open({ w: { ...ok, data_offsets: { a: 1 } } }, 8), 'INVALID_OFFSETS', 'w', /got an object/);
  expectError(() => open({ w: { ...ok, data_offsets: [0, '8'] } }, 8), 'INVALID_OFFSETS', 'w', /two non-negative integers, got \[number 0, string "8"\]/);
  expectError(() => open({ w: { ...ok, data_offsets: [-8, 0] } }, 8), 'INVALID_OFFSETS', 'w', /non-negative/);
  expectError(() => open({ w: { ...ok, data_offsets: [0.5, 8.5] } }, 8), 'INVALID_OFFSETS', 'w', /non-negative integers/);
  expectError(() => open({ w: { ...ok, data_offsets: [8, 0] } }, 8), 'INVALID_OFFSETS', 'w', /data_offsets \[8, 0\] have begin > end/);
  expectError(() => open({ w: { ...ok, data_offsets: [0, 12] } }, 12), 'SIZE_MISMATCH', 'w', /data_offsets \[0, 12\] span 12 bytes but shape \[2\] of F32 needs 8 bytes \(2 elements x 4 bytes\)/);
  expectError(() => open({ w: { ...ok, shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, 8), 'SIZE_MISMATCH', 'w', /needs more than 2\^53 bytes/);
  expectError(() => open({ w: ok }, 4), 'OUT_OF_BOUNDS', 'w', /data_offsets \[0, 8\] \(file bytes 62\.\.70\) go beyond the data buffer of 4 bytes \(file is 66 bytes\)/);
  // a giant claimed tensor in a tiny file: rejected before any allocation
  expectError(() => open({ w: { dtype: 'F64', shape: [2 ** 40], data_offsets: [0, 2 ** 43] } }, 0), 'OUT_OF_BOUNDS', 'w', /go beyond the data buffer of 0 bytes/);
});

test('validation: coverage (overlaps, gaps, trailing bytes)', () => {
  const open = (h: unknown, data: number): unknown => openSafetensorsBuffer(rawFile(h, data), 'c.st');
  const t = (b: number, e: number): unknown => ({ dtype: 'U8', shape: [e - b], data_offsets: [b, e] });
  expectError(() => open({ a: t(0, 8), b: t(4, 12) }, 12), 'OVERLAP', 'b', /data_offsets \[4, 12\] overlap tensor "a" which ends at offset 8/);
  expectError(() => open({ a: t(0, 8), b: t(0, 8) }, 8), 'OVERLAP', 'b', /overlap tensor "a"/);
  expectError(() => open({ a: t(0, 8), z: t(3, 3) }, 8), 'OVERLAP', 'z', /data_offsets \[3, 3\] overlap/);
  expectError(() => open({ a: t(0, 4), b: t(6, 8) }, 8), 'GAP', 'b', /gap of 2 unused bytes after tensor "a" \(ends at offset 4\) .*contiguously/);
  expectError(() => open({ b: t(2, 8) }, 8), 'GAP', 'b', /gap of 2 unused bytes after the start of the data buffer/);
  expectError(() => open({ a: t(0, 4) }, 8), 'GAP', undefined, /data buffer has 8 bytes .* but the last tensor "a" ends at offset 4: 4 trailing bytes/);
  expectError(() => open({}, 3), 'GAP', undefined, /the header lists no tensors: 3 trailing bytes/);
  // zero-size tensors at a boundary and any header order are fine
  const f = openSafetensorsBuffer(rawFile({ b: t(4, 8), e: t(4, 4), a: t(0, 4), z: t(8, 8) }, 8));
  assert.deepEqual(f.names(), ['a', 'e', 'b', 'z']);
});

test('validation: metadata and duplicate keys', () => {
  const open = (h: string | object, data = 0): unknown => openSafetensorsBuffer(rawFile(h, data), 'm.st');
  expectError(() => open({ __metadata__: [] }), 'INVALID_METADATA', undefined, /__metadata__ must be an object of string values, got an array/);
  expectError(() => open({ __metadata__: 'x' }), 'INVALID_METADATA', undefined, /got string "x"/);
  expectError(() => open({ __metadata__: { a: 'b', n: 1 } }), 'INVALID_METADATA', undefined, /__metadata__ value of key "n" must be a string, got number 1/);
  expectError(() => open({ __metadata__: { n: { x: 'y' } } }), 'INVALID_METADATA', undefined, /got an object/);
  assert.deepEqual((open({ __metadata__: null }) as { metadata: object }).metadata, {});
  const dup = '{"a": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}, "a": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}';
  expectError(() => open(dup), 'DUPLICATE', 'a', /tensor "a": appears twice in the header \(second time at file byte 69\)/);
  const dup2 = '{"a": {"dtype": "U8", "shape": [0], "dtype": "U8", "data_offsets": [0, 0]}}';
  expectError(() => open(dup2), 'DUPLICATE', 'a', /duplicate JSON key "dtype" in the header/);
  const dup3 = '{"__metadata__": {"k": "1", "k": "2"}}';
  expectError(() => open(dup3), 'DUPLICATE', '__metadata__', /duplicate JSON key "k"/);
  // escaped spellings of the same key are duplicates too; equal strings as values are not
  const dup4 = '{"\\u0061": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}, "a": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}';
  expectError(() => open(dup4), 'DUPLICATE', 'a', /appears twice/);
  const okSame = '{"__metadata__": {"a": "a", "b": "a"}}';
  assert.deepEqual((open(okSame) as { metadata: object }).metadata, { a: 'a', b: 'a' });
});

// ---------------------------------------------------------------------------
// sharded checkpoints

function shardTensors(): Array<[string, TensorData]> {
  const out: Array<[string, TensorData]> = [];
  for (let i = 0; i < 10; i++) {
    const n = 10 + i * 7;
    const data = new Float32Array(n).map((_, k) => i * 1000 + k);
    out.push([`layers.${i}.weight`, { dtype: i % 2 === 0 ? 'F32' : 'BF16', shape: [n], data: i % 2 === 0 ? data : f32ToBf16(data) } as TensorData]);
  }
  return out;
}

test('sharded round trip: Hugging Face file names and index, lazy reads across shards', () => {
  withTmp((dir) => {
    const ck = path.join(dir, 'ckpt');
    const tensors = shardTensors();
    const total = tensors.reduce((s, [, t]) => s + t.data.byteLength, 0);
    const res = writeShardedSafetensors(ck, tensors, { maxShardBytes: 200, metadata: { format: 'pt' } });
    const n = res.files.length;
    assert.ok(n >= 3, `expected several shards, got ${n}`);
    assert.equal(res.totalSize, total);
    const names = res.files.map((f) => path.basename(f));
    assert.deepEqual(names, Array.from({ length: n }, (_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`));
    assert.deepEqual(listDir(ck), [...names, 'model.safetensors.index.json'].sort());
    const index = JSON.parse(fs.readFileSync(path.join(ck, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: { total_size: number };
      weight_map: Record<string, string>;
    };
    assert.deepEqual(Object.keys(index), ['metadata', 'weight_map']);
    assert.deepEqual(index.metadata, { total_size: total });
    assert.deepEqual(Object.keys(index.weight_map), tensors.map(([name]) => name));
    // each shard holds exactly the tensors mapped to it, within the size limit (greedy, in order)
    for (const file of res.files) {
      const f = openSafetensors(file);
      const mine = Object.entries(index.weight_map).filter(([, s]) => s === path.basename(file)).map(([t]) => t);
      assert.deepEqual(f.names(), mine);
      assert.ok(f.header.dataLength <= 200 || f.names().length === 1);
      assert.deepEqual(f.metadata, { format: 'pt' });
      f.close();
    }
    for (const target of [ck, path.join(ck, 'model.safetensors.index.json')]) {
      const c = openCheckpoint(target);
      try {
        assert.ok(c.sharded);
        assert.equal(c.totalSize, total);
        assert.deepEqual(c.names(), tensors.map(([name]) => name));
        assert.deepEqual(c.metadata, { format: 'pt' });
        for (const [name, t] of tensors) {
          const r = c.read(name);
          assert.equal(r.dtype, t.dtype);
          sameBits(r.data, t.data);
          const ff = c.readAs(name, 'f32');
          sameBits(ff.data, t.dtype === 'F32' ? t.data : bf16ToF32(t.data as Uint16Array));
          assert.equal(path.basename(c.info(name).file), index.weight_map[name]);
        }
        expectError(() => c.read('nope'), 'NOT_FOUND', 'nope', /no such tensor \(the checkpoint has 10 tensors\)/);
      } finally {
        c.close();
      }
    }
    // a tensor bigger than the limit gets a shard of its own
    const big = writeShardedSafetensors(path.join(dir, 'big'), tensors, { maxShardBytes: 1 });
    assert.equal(big.files.length, 10);
  });
});

test('sharded writer: one shard -> model.safetensors, stale layouts replaced, baseName', () => {
  withTmp((dir) => {
    const tensors = shardTensors();
    writeShardedSafetensors(dir, tensors, { maxShardBytes: 200 });
    assert.ok(fs.existsSync(path.join(dir, 'model.safetensors.index.json')));
    const r = writeShardedSafetensors(dir, tensors, { maxShardBytes: 1e9, metadata: { a: 'b' } });
    assert.equal(r.indexFile, undefined);
    assert.deepEqual(r.files, [path.join(dir, 'model.safetensors')]);
    assert.ok(!fs.existsSync(path.join(dir, 'model.safetensors.index.json')), 'stale index removed');
    let c = openCheckpoint(dir);
    assert.ok(!c.sharded);
    assert.deepEqual(c.names(), tensors.map(([name]) => name));
    assert.deepEqual(c.metadata, { a: 'b' });
    c.close();
    c = openCheckpoint(path.join(dir, 'model.safetensors'));
    assert.equal(c.names().length, 10);
    c.close();
    writeShardedSafetensors(dir, tensors, { maxShardBytes: 200 });
    assert.ok(!fs.existsSync(path.join(dir, 'model.safetensors')), 'stale single file removed');
    writeShardedSafetensors(dir, tensors.slice(0, 2), { maxShardBytes: 100, baseName: 'adapter' });
    c = openCheckpoint(dir, { baseName: 'adapter' });
    assert.deepEqual(c.names(), tensors.slice(0, 2).map(([name]) => name));
    c.close();
    expectError(() => writeShardedSafetensors(dir, tensors, { maxShardBytes: 0 }), 'INVALID_ARGUMENT', undefined, /maxShardBytes must be a positive integer/);
    expectError(() => writeShardedSafetensors(dir, tensors, { maxShardBytes: 10, baseName: '../x' }), 'INVALID_ARGUMENT', undefined, /baseName/);
    assert.ok(listDir(dir).every((f) => !f.includes('.tmp-')));
  });
});

test('re-sharding a checkpoint through lazy tensors reads each tensor only when written', () => {
  withTmp((dir) => {
    const tensors = shardTensors();
    writeShardedSafetensors(path.join(dir, 'a'), new Map(tensors), { maxShardBytes: 150, metadata: { v: '1' } });
    const src = openCheckpoint(path.join(dir, 'a'));
    try {
      const { result: lazy, calls } = spyReads(() => src.names().map((n): [string, WritableTensor] => [n, lazyTensorFrom(src, n)]));
      assert.equal(calls.length, 0, 'making lazy tensors reads nothing');
      writeShardedSafetensors(path.join(dir, 'b'), lazy, { maxShardBytes: 400, metadata: src.metadata });
    } finally {
      src.close();
    }
    const out = openCheckpoint(path.join(dir, 'b'));
    try {
      assert.deepEqual(out.names(), tensors.map(([n]) => n));
      assert.deepEqual(out.metadata, { v: '1' });
      for (const [n, t] of tensors) sameBits(out.read(n).data, t.data);
    } finally {
      out.close();
    }
  });
});

test('checkpoint validation: missing shard, misplaced and duplicated tensors, bad index', () => {
  withTmp((dir) => {
    const tensors = shardTensors();
    const res = writeShardedSafetensors(dir, tensors, { maxShardBytes: 200 });
    const indexPath = res.indexFile as string;
    const good = JSON.parse(fs.readFileSync(indexPath, 'utf8')) as { metadata: object; weight_map: Record<string, string> };
    const shard1 = path.basename(res.files[0]);
    const shard2 = path.basename(res.files[1]);
    const first = tensors[0][0];
    const withMap = (wm: Record<string, unknown>, extra: object = {}): void => fs.writeFileSync(indexPath, JSON.stringify({ ...good, weight_map: wm, ...extra }));

    withMap({ ...good.weight_map, [first]: 'model-00009-of-00009.safetensors' });
    expectError(() => openCheckpoint(dir), 'INVALID_INDEX', first, /is mapped to shard "model-00009-of-00009.safetensors", which does not exist/);
    withMap({ ...good.weight_map, [first]: shard2 });
    expectError(() => openCheckpoint(dir), 'INVALID_INDEX', first, new RegExp(`is stored in shard "${shard1}" but the weight_map maps it to "${shard2}"$`));
    const { [first]: _dropped, ...rest } = good.weight_map;
    withMap(rest);
    expectError(() => openCheckpoint(dir), 'INVALID_INDEX', first, /is stored in shard .* but missing from the weight_map/);
    withMap({ ...good.weight_map, ghost: shard1 });
    expectError(() => openCheckpoint(dir), 'INVALID_INDEX', 'ghost', new RegExp(`is mapped to shard "${shard1}", which does not contain it`));
    withMap({ ...good.weight_map, [first]: '../evil.safetensors' });
    expectError(() => openCheckpoint(dir), 'INVALID_INDEX', first, /must be a relative path inside the checkpoint folder/);
    withMap({ ...good.weight_map, [first]: `./${shard1}` }); // same shard, spelled differently
    openCheckpoint(dir).close();
    withMap({ ...good.weight_map, [first]: `sub/../../${shard1}` });
    expectError(() => openCheckpoint(dir), 'INVALID_INDEX', first, /must be a relative path inside/);
    withMap({ ...good.weight_map, [first]: 5 });
    expectError(() => openCheckpoint(dir), 'INVALID_INDEX', first, /weight_map value must be a file name, got number 5/);
    fs.writeFileSync(indexPath, JSON.stringify({ metadata: {} }));
    expectError(() => openCheckpoint(dir), 'INVALID_INDEX', undefined, /"weight_map" must be an object/);
    withMap(good.weight_map, { metadata: { total_size: -1 } });
    expectError(() => openCheckpoint(dir), 'INVALID_INDEX', undefined, /total_size/);
    fs.writeFileSync(indexPath, '{"weight_map": {"a": "x", "a": "y"}}');
    expectError(() => openCheckpoint(dir), 'DUPLICATE', 'weight_map', /duplicate JSON key "a" in the index/);
    fs.writeFileSync(indexPath, '{"weight_map": ');
    expectError(() => openCheckpoint(dir), 'INVALID_INDEX', undefined, /index .*is not valid JSON/);

    // the same tensor stored in two shards
    withMap(good.weight_map);
    const s2 = openSafetensors(res.files[1]);
    const dupName = s2.names()[0];
    const moved = s2.read(dupName);
    s2.close();
    const s1 = openSafetensors(res.files[0]);
    const s1tensors: Array<[string, TensorData]> = s1.names().map((nm) => [nm, s1.read(nm)]);
    s1.close();
    writeSafetensors(res.files[0], [...s1tensors, [dupName, moved]]);
    expectError(() => openCheckpoint(dir), 'DUPLICATE', dupName, /appears twice/);
    writeSafetensors(res.files[0], s1tensors);
    openCheckpoint(dir).close();

    // a corrupt shard reports the shard file
    fs.writeFileSync(res.files[2], Buffer.from([1, 2, 3]));
    const e = expectError(() => openCheckpoint(dir), 'TRUNCATED', undefined, /shorter than the 8-byte/);
    assert.equal(e.file, res.files[2]);

    // layout problems
    fs.writeFileSync(path.join(dir, 'model.safetensors'), serializeSafetensors([]));
    expectError(() => openCheckpoint(dir), 'INVALID_INDEX', undefined, /holds both model\.safetensors and model\.safetensors\.index\.json/);
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    expectError(() => openCheckpoint(empty), 'NOT_FOUND', undefined, /neither model\.safetensors nor model\.safetensors\.index\.json/);
    expectError(() => openCheckpoint(path.join(dir, 'nothing')), 'IO', undefined, /no such file or folder/);
  });
});

// ---------------------------------------------------------------------------
// fuzzing

const JSON_ALPHABET = '{}[]":,0123456789 -.eEabcdfFIUBLOT_tnsrpho\\u';

function randomValidTensors(rng: () => number): Array<[string, TensorData]> {
  const count = Math.floor(rng() * 5);
  const out: Array<[string, TensorData]> = [];
  for (let i = 0; i < count; i++) {
    const dtype = DTYPES[Math.floor(rng() * DTYPES.length)];
    const rank = Math.floor(rng() * 3);
    const shape = Array.from({ length: rank }, () => Math.floor(rng() * 4));
    const numel = shape.reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(numel * dtypeSize(dtype)).map(() => Math.floor(rng() * 256));
    const data = dtype === 'I64' ? new BigInt64Array(bytes.buffer) : dtypeView(dtype, bytes);
    out.push([`t${i}${rng() < 0.2 ? '.ü' : ''}`, { dtype, shape, data } as TensorData]);
  }
  return out;
}

function dtypeView(dtype: DType, bytes: Uint8Array): TensorData['data'] {
  switch (dtype) {
    case 'F64':
      return new Float64Array(bytes.buffer);
    case 'F32':
      return new Float32Array(bytes.buffer);
    case 'F16':
    case 'BF16':
      return new Uint16Array(bytes.buffer);
    case 'I64':
      return new BigInt64Array(bytes.buffer);
    case 'I32':
      return new Int32Array(bytes.buffer);
    case 'I16':
      return new Int16Array(bytes.buffer);
    case 'I8':
      return new Int8Array(bytes.buffer);
    default:
      return bytes;
  }
}

function pick<T>(rng: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)];
}

function randomJsonHeaderFile(rng: () => number): Uint8Array {
  const header: Record<string, unknown> = {};
  const entries = Math.floor(rng() * 5);
  let offset = 0;
  const dtypes: unknown[] = [...DTYPES, ...DTYPES, 'F8_E4M3', 'f32', '', 7, null];
  for (let i = 0; i < entries; i++) {
    const dtype = pick(rng, dtypes);
    const rank = Math.floor(rng() * 4);
    const shape: unknown[] = Array.from({ length: rank }, () => (rng() < 0.9 ? Math.floor(rng() * 5) : pick(rng, [-1, 1.5, '2', null, 2 ** 53, 1e300, [], 2 ** 31])));
    const size = isKnown(dtype) ? dtypeSize(dtype) : 4;
    const numel = shape.reduce<number>((a, b) => a * (typeof b === 'number' ? b : 1), 1);
    let bytes = Number.isFinite(numel) ? numel * size : 0;
    if (rng() < 0.1) bytes += pick(rng, [-1, 1, size, -size]);
    let begin = offset;
    if (rng() < 0.1) begin += pick(rng, [-1, 1, -8, 8, 1000]);
    const entry: Record<string, unknown> = { dtype, shape, data_offsets: [begin, begin + bytes] };
    if (rng() < 0.05) delete entry[pick(rng, ['dtype', 'shape', 'data_offsets'])];
    if (rng() < 0.05) entry.data_offsets = pick(rng, [[0], [1, 0], ['0', 4], null, [0, 2 ** 60], [-4, 0]]);
    if (rng() < 0.05) entry.extra = 'x';
    const name = pick(rng, ['w', 'b', '__proto__', 'constructor', '', 'ü', 'toString', `t${i}`, `t${i}`, `t${i}`, '0', '1']);
    header[name] = rng() < 0.03 ? pick(rng, [1, 'x', null, []]) : entry;
    offset = begin + bytes;
  }
  if (rng() < 0.3) header.__metadata__ = pick(rng, [{ a: 'b' }, { a: 1 }, null, [], 'x', { __proto__x: '' }]);
  let dataLen = Math.max(0, offset);
  if (rng() < 0.15) dataLen = Math.max(0, dataLen + pick(rng, [-1, 1, -4, 16]));
  dataLen = Math.min(dataLen, 4096);
  let json = JSON.stringify(header);
  if (rng() < 0.3) json += ' '.repeat(Math.floor(rng() * 8));
  const data = new Uint8Array(dataLen).map(() => Math.floor(rng() * 256));
  return rawFile(json, data);
}

function isKnown(d: unknown): d is DType {
  return typeof d === 'string' && (DTYPES as readonly string[]).includes(d);
}

/** Parses and reads every tensor; returns 'ok' or the SafetensorsError code; rethrows anything else. */
function exercise(open: () => { names(): string[]; read(n: string): TensorData; readAs(n: string, t: 'f32'): TensorData<'F32'>; readAs(n: string, t: 'f64'): TensorData<'F64'>; close(): void }): string {
  try {
    const f = open();
    try {
      for (const n of f.names()) {
        const t = f.read(n);
        assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1));
        f.readAs(n, 'f32');
        f.readAs(n, 'f64');
      }
    } finally {
      f.close();
    }
    return 'ok';
  } catch (e) {
    if (e instanceof SafetensorsError) return e.code;
    throw e;
  }
}

test('fuzz: truncations, byte flips, random bytes and random headers only ever raise SafetensorsError', () => {
  const rng = mulberry32(0x5afe7e);
  const t0 = Date.now();
  const bases: Uint8Array[] = [];
  for (let i = 0; i < 40; i++) {
    const meta = rng() < 0.5 ? { k: `v${i}`, ü: 'ñ' } : undefined;
    bases.push(serializeSafetensors(randomValidTensors(rng), meta));
  }
  const cases: Array<[string, Uint8Array]> = [];
  // (a) truncations: every position of a few files, random positions of the rest
  for (let b = 0; b < bases.length; b++) {
    const img = bases[b];
    if (b < 8) for (let cut = 0; cut < img.length; cut++) cases.push(['truncate', img.subarray(0, cut)]);
    else for (let k = 0; k < 40; k++) cases.push(['truncate', img.subarray(0, Math.floor(rng() * img.length))]);
  }
  // (b) random byte flips in the header (mostly) and data
  for (let k = 0; k < 4000; k++) {
    const img = pick(rng, bases).slice();
    const n = new DataView(img.buffer).getUint32(0, true);
    const flips = 1 + Math.floor(rng() * 3);
    for (let j = 0; j < flips; j++) {
      const inHeader = rng() < 0.8 || img.length <= 8 + n;
      const pos = inHeader ? Math.floor(rng() * (8 + n)) : 8 + n + Math.floor(rng() * (img.length - 8 - n));
      const mode = rng();
      if (mode < 0.4) img[pos] ^= 1 << Math.floor(rng() * 8);
      else if (mode < 0.8 && pos >= 8) img[pos] = JSON_ALPHABET.charCodeAt(Math.floor(rng() * JSON_ALPHABET.length));
      else img[pos] = Math.floor(rng() * 256);
    }
    cases.push(['flip', img]);
  }
  // (b2) structured mutations of header numbers and strings (keeps the JSON valid more often,
  // so offsets, shapes and dtypes get through to the semantic checks); the header length is fixed up
  for (let k = 0; k < 4000; k++) {
    const img = pick(rng, bases);
    const n = new DataView(img.buffer, img.byteOffset).getUint32(0, true);
    let text = Buffer.from(img.subarray(8, 8 + n)).toString('utf8');
    const edits = 1 + Math.floor(rng() * 2);
    for (let j = 0; j < edits; j++) {
      const digits = [...text.matchAll(/\d+/g)];
      const mode = rng();
      if (digits.length > 0 && mode < 0.7) {
        const m = pick(rng, digits);
        const at = m.index ?? 0;
        const repl = pick(rng, ['0', '1', '2', '3', '4', '7', '8', '16', '-1', '1.5', '1e3', '9007199254740993', String(Number(m[0]) + 1), String(Math.max(0, Number(m[0]) - 1))]);
        text = text.slice(0, at) + repl + text.slice(at + m[0].length);
      } else if (mode < 0.85) {
        text = text.replace(pick(rng, ['"F32"', '"BF16"', '"U8"', '"I64"', '"F16"', '"BOOL"']), `"${pick(rng, [...DTYPES, 'X'])}"`);
      } else {
        text = text.replace(pick(rng, ['"shape"', '"dtype"', '"data_offsets"', '[', ']']), pick(rng, ['"shape"', '"dtype"', '"data_offsets"', '[[', '', '"x"']));
      }
    }
    const keepLength = rng() < 0.2;
    const header = Buffer.from(text, 'utf8');
    const out = rawFile(header.toString('utf8'), img.subarray(8 + n), keepLength ? n : undefined);
    cases.push(['mutate', out]);
  }
  // (c) random bytes with a plausible header length
  for (let k = 0; k < 1500; k++) {
    const len = 8 + Math.floor(rng() * 300);
    const img = new Uint8Array(len);
    const json = rng() < 0.5;
    for (let i = 8; i < len; i++) img[i] = json ? JSON_ALPHABET.charCodeAt(Math.floor(rng() * JSON_ALPHABET.length)) : Math.floor(rng() * 256);
    if (json) img[8] = 0x7b;
    const n = rng() < 0.9 ? Math.floor(rng() * (len - 7)) : Math.floor(rng() * 2 ** 32);
    new DataView(img.buffer).setUint32(0, n, true);
    if (rng() < 0.05) new DataView(img.buffer).setUint32(4, Math.floor(rng() * 2 ** 32), true);
    cases.push(['random', img]);
  }
  // (d) random JSON headers with random dtypes, shapes and offsets
  for (let k = 0; k < 4000; k++) cases.push(['json', randomJsonHeaderFile(rng)]);

  const outcomes = new Map<string, Map<string, number>>();
  const failures: string[] = [];
  cases.forEach(([kind, img], i) => {
    try {
      const code = exercise(() => openSafetensorsBuffer(img, `case${i}`));
      const m = outcomes.get(kind) ?? new Map<string, number>();
      m.set(code, (m.get(code) ?? 0) + 1);
      outcomes.set(kind, m);
    } catch (e) {
      if (failures.length < 5) failures.push(`case ${i} (${kind}): ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}; bytes=${Buffer.from(img).toString('base64').slice(0, 400)}`);
      else failures.push('');
    }
  });
  assert.ok(cases.length >= 10000, `only ${cases.length} cases`);
  assert.deepEqual(failures.filter((f) => f !== ''), [], `${failures.length} of ${cases.length} cases threw something other than SafetensorsError`);
  // sanity: both outcomes occur, and many different validation paths are hit
  const json = outcomes.get('json') as Map<string, number>;
  assert.ok((json.get('ok') ?? 0) > 500, `json ok count ${json.get('ok')}`);
  assert.ok((outcomes.get('flip')?.get('ok') ?? 0) > 100);
  assert.ok((outcomes.get('mutate')?.get('ok') ?? 0) > 100);
  const codes = new Set([...outcomes.values()].flatMap((m) => [...m.keys()]));
  for (const c of ['ok', 'TRUNCATED', 'HEADER_TOO_LARGE', 'INVALID_HEADER', 'UNKNOWN_DTYPE', 'INVALID_SHAPE', 'INVALID_OFFSETS', 'SIZE_MISMATCH', 'OUT_OF_BOUNDS', 'OVERLAP', 'GAP', 'INVALID_METADATA', 'INVALID_ENTRY', 'DUPLICATE', 'CONVERSION']) {
    assert.ok(codes.has(c), `fuzzing never produced ${c}`);
  }
  const summary = [...outcomes].map(([k, m]) => `${k}: ${[...m].map(([c, n]) => `${c}=${n}`).join(' ')}`).join('\n');
  console.log(`fuzz: ${cases.length} in-memory cases in ${Date.now() - t0} ms\n${summary}`);

  // A few hundred of them through real files: same outcome as in memory.
  withTmp((dir) => {
    const t1 = Date.now();
    const p = path.join(dir, 'fuzz.safetensors');
    const frng = mulberry32(99);
    let count = 0;
    for (let k = 0; k < 400; k++) {
      const i = Math.floor(frng() * cases.length);
      const img = cases[i][1];
      fs.writeFileSync(p, img);
      const viaFile = exercise(() => openSafetensors(p));
      const viaMem = exercise(() => openSafetensorsBuffer(img));
      assert.equal(viaFile, viaMem, `case ${i}`);
      count++;
    }
    console.log(`fuzz: ${count} real-file cases in ${Date.now() - t1} ms`);
  });
});

test('a temp file left by a killed write of the same target is removed by its next write; those of running processes and other targets stay', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfree-stale-'));
  try {
    const target = path.join(dir, 'model.safetensors');
    const dead = spawnSync(process.execPath, ['-e', '']).pid; // a process that has ended
    const stale = `model.safetensors.tmp-${dead}-abcdefgh`;
    const live = `model.safetensors.tmp-${process.ppid}-abcdefgh`;
    const other = `other.safetensors.tmp-${dead}-abcdefgh`;
    for (const n of [stale, live, other]) fs.writeFileSync(path.join(dir, n), 'partial');
    writeSafetensors(target, { w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } });
    assert.deepEqual(fs.readdirSync(dir).sort(), [live, 'model.safetensors', other].sort());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('firstNonFinite: the first NaN or infinity of F32/F64 values and F16/BF16 bit patterns, else -1', () => {
  assert.equal(firstNonFinite('F32', Float32Array.of(1, -2, 3e38)), -1);
  assert.equal(firstNonFinite('F32', Float32Array.of(0, Infinity, NaN)), 1);
  assert.equal(firstNonFinite('F64', Float64Array.of(0, 1, -Infinity)), 2);
  assert.equal(firstNonFinite('BF16', f32ToBf16(Float32Array.of(1, 3e38, NaN, Infinity))), 2);
  assert.equal(firstNonFinite('F16', f32ToF16(Float32Array.of(65504, -65504, 1e6))), 2); // 1e6 rounds to infinity in f16
  assert.equal(firstNonFinite('F16', f32ToF16(Float32Array.of(65504, 1))), -1);
});
