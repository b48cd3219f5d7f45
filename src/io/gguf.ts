/**
 * GGUF files (version 3, little-endian), as specified in ggml's `docs/gguf.md`: a header
 * (magic `GGUF`, version, tensor count, metadata count), typed metadata key-value pairs, tensor
 * infos (name, dims with the fastest-varying dim first, ggml type, offset relative to the data
 * section), padding to `general.alignment` (default 32), then the tensor data, each tensor at an
 * aligned offset.
 *
 * Tensor types written and read here: F32, F16, and the ggml block formats Q8_0 and Q4_0 with the
 * rules of ggml's reference quantizers (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`), in
 * float32 arithmetic:
 *   Q8_0  blocks of 32: f16 d, int8 q[32];  d = amax/127, q = roundf(x * (1/d))  (half away from 0)
 *   Q4_0  blocks of 32: f16 d, u8 qs[16];   m = the value of largest |x| (first one on ties),
 *         d = m / -8, q = min(15, trunc(x * (1/d) + 8.5)); qs[j] = q[j] | q[j+16] << 4
 *   with 1/d taken from the float32 d (0 when d is 0) and d stored as f16 (round to nearest even).
 * Dequantization: Q8_0 x = d*q; Q4_0 x = d*(nibble - 8), low nibbles are elements 0..15.
 *
 * The writer streams: tensor data is produced one tensor at a time and written to a temp file
 * that is fsynced and renamed over the target at the end, yielding to the event loop between
 * tensors so that an interrupt can stop it cleanly (temp file removed, target untouched).
 */
import * as fs from 'node:fs';
import { f16ToF32, firstNonFinite, f32ToF16, numberToF16Bits, f16BitsToNumber } from './dtype.js';
import { removeStaleTemps, syncFolder, writeAll } from './safetensors.js';
import * as nodePath from 'node:path';

/** A malformed GGUF file or an invalid value to write; the message names the file (and key or tensor). */
export class GgufError extends Error {
  override readonly name = 'GgufError';
}

/** The ggml tensor types this module handles, with their ids in the ggml_type enum. */
export const GGML_TYPES = Object.freeze({ F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const);
export type GgmlType = keyof typeof GGML_TYPES;

/** Weights per block and bytes per block of a ggml type. */
export function ggmlBlock(type: GgmlType): { size: number; bytes: number } {
  switch (type) {
    case 'F32':
      return { size: 1, bytes: 4 };
    case 'F16':
      return { size: 1, bytes: 2 };
    case 'Q8_0':
      return { size: 32, bytes: 34 };
    case 'Q4_0':
      return { size: 32, bytes: 18 };
  }
}

/** Bytes of a tensor with `numel` elements whose first dim is `ne0` (blocks never straddle rows). */
export function ggmlBytes(type: GgmlType, ne0: number, numel: number): number {
  const b = ggmlBlock(type);
  if (ne0 % b.size !== 0) throw new GgufError(`a ${type} tensor needs its first dimension to be a multiple of ${b.size}, got ${ne0}`);
  return (numel / b.size) * b.bytes;
}

// ---- metadata values --------------------------------------------------------------------------

/** Metadata value types (gguf_metadata_value_type). */
export const GGUF_VALUE_TYPES = Object.freeze({ u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const);
export type GgufScalarType = Exclude<keyof typeof GGUF_VALUE_TYPES, 'array'>;

/** One metadata value: a scalar, or an array of scalars of one type. */
export type GgufValue =
  | { type: 'string'; value: string }
  | { type: 'bool'; value: boolean }
  | { type: Exclude<GgufScalarType, 'string' | 'bool'>; value: number }
  | { type: 'array'; itemType: 'string'; value: readonly string[] }
  | { type: 'array'; itemType: Exclude<GgufScalarType, 'string' | 'bool'>; value: ArrayLike<number> }
  | { type: 'array'; itemType: 'bool'; value: readonly boolean[] };

export const gv = {
  str: (value: string): GgufValue => ({ type: 'string', value }),
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  strs: (value: readonly string[]): GgufValue => ({ type: 'array', itemType: 'string', value }),
  i32s: (value: ArrayLike<number>): GgufValue => ({ type: 'array', itemType: 'i32', value }),
  f32s: (value: ArrayLike<number>): GgufValue => ({ type: 'array', itemType: 'f32', value }),
};

/** A growable little-endian byte buffer. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private need(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length;
    while (cap < this.length + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.length));
    this.buf = nb;
    this.view = new DataView(nb.buffer);
  }
  u8(v: number): void {
    this.need(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  u32(v: number): void {
    this.need(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number): void {
    this.need(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  scalar(t: GgufScalarType, v: number | boolean | string): void {
    const p = this.length;
    switch (t) {
      case 'u8':
      case 'i8':
      case 'bool':
        this.need(1);
        if (t === 'i8') this.view.setInt8(p, v as number);
        else this.view.setUint8(p, t === 'bool' ? (v ? 1 : 0) : (v as number));
        this.length += 1;
        return;
      case 'u16':
      case 'i16':
        this.need(2);
        if (t === 'u16') this.view.setUint16(p, v as number, true);
        else this.view.setInt16(p, v as number, true);
        this.length += 2;
        return;
      case 'u32':
      case 'i32':
      case 'f32':
        this.need(4);
        if (t === 'u32') this.view.setUint32(p, v as number, true);
        else if (t === 'i32') this.view.setInt32(p, v as number, true);
        else this.view.setFloat32(p, v as number, true);
        this.length += 4;
        return;
      case 'u64':
      case 'i64':
      case 'f64':
        this.need(8);
        if (t === 'u64') this.view.setBigUint64(p, BigInt(v as number), true);
        else if (t === 'i64') this.view.setBigInt64(p, BigInt(v as number), true);
        else this.view.setFloat64(p, v as number, true);
        this.length += 8;
        return;
      case 'string': {
        const b = Buffer.from(v as string, 'utf8');
        this.u64(b.length);
        this.bytes(b);
        return;
      }
    }
  }
  bytes(b: Uint8Array): void {
    this.need(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const KEY_RE = /^[a-z0-9_]+(\.[a-z0-9_]+)*$/;

function checkScalar(key: string, t: GgufScalarType, v: unknown): void {
  const bad = (why: string): never => {
    throw new GgufError(`metadata "${key}": ${why}`);
  };
  if (t === 'string') {
    if (typeof v !== 'string') bad(`expected a string, got ${typeof v}`);
    return;
  }
  if (t === 'bool') {
    if (typeof v !== 'boolean') bad(`expected a boolean, got ${typeof v}`);
    return;
  }
  if (typeof v !== 'number' || Number.isNaN(v)) bad(`expected a number, got ${String(v)}`);
  const n = v as number;
  if (t === 'f32' || t === 'f64') return;
  const ranges: Record<string, [number, number]> = { u8: [0, 255], i8: [-128, 127], u16: [0, 65535], i16: [-32768, 32767], u32: [0, 2 ** 32 - 1], i32: [-(2 ** 31), 2 ** 31 - 1], u64: [0, Number.MAX_SAFE_INTEGER], i64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] };
  const [lo, hi] = ranges[t];
  if (!Number.isInteger(n) || n < lo || n > hi) bad(`${n} is not a ${t}`);
}

function writeValue(w: ByteWriter, key: string, v: GgufValue): void {
  if (v.type === 'array') {
    w.u32(GGUF_VALUE_TYPES.array);
    w.u32(GGUF_VALUE_TYPES[v.itemType]);
    w.u64(v.value.length);
    for (let i = 0; i < v.value.length; i++) {
      const x = v.value[i];
      checkScalar(key, v.itemType, x);
      w.scalar(v.itemType, x);
    }
    return;
  }
  checkScalar(key, v.type, v.value);
  w.u32(GGUF_VALUE_TYPES[v.type]);
  w.scalar(v.type, v.value);
}

// ---- writing ------------------------------------------------------------------------------------

/** One tensor to write: dims in ggml order (ne0 = the contiguous dim first), its type, and a producer of its bytes. */
export interface GgufTensorSpec {
  name: string;
  dims: readonly number[];
  type: GgmlType;
  /** called once, when the tensor's turn comes; must return exactly the tensor's bytes */
  data: () => Uint8Array;
}

export interface GgufWriteOptions {
  /** data alignment (default 32; written as general.alignment when not 32) */
  alignment?: number;
}

function alignUp(n: number, a: number): number {
  return n + ((a - (n % a)) % a);
}

/** Builds the header, metadata and tensor infos (padded to the alignment) and the data offsets. */
function planGguf(metadata: ReadonlyArray<[string, GgufValue]>, tensors: readonly GgufTensorSpec[], alignment: number): { head: Uint8Array; offsets: number[]; sizes: number[]; total: number } {
  if (!Number.isInteger(alignment) || alignment < 8 || alignment % 8 !== 0) throw new GgufError(`alignment must be a positive multiple of 8, got ${alignment}`);
  const meta: [string, GgufValue][] = [...metadata];
  const keys = new Set<string>();
  for (const [k] of meta) {
    if (!KEY_RE.test(k) || k.length > 65535) throw new GgufError(`metadata key "${k}" is not a lower_snake_case dotted ASCII key`);
    if (keys.has(k)) throw new GgufError(`metadata key "${k}" is given twice`);
    keys.add(k);
  }
  if (alignment !== 32 && !keys.has('general.alignment')) meta.push(['general.alignment', gv.u32(alignment)]);
  const w = new ByteWriter();
  w.bytes(Buffer.from('GGUF', 'latin1'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(meta.length);
  for (const [k, v] of meta) {
    w.scalar('string', k);
    writeValue(w, k, v);
  }
  const offsets: number[] = [];
  const sizes: number[] = [];
  const names = new Set<string>();
  let off = 0;
  for (const t of tensors) {
    if (Buffer.byteLength(t.name, 'utf8') > 64) throw new GgufError(`tensor name "${t.name}" is longer than 64 bytes`);
    if (names.has(t.name)) throw new GgufError(`tensor "${t.name}" is given twice`);
    names.add(t.name);
    if (t.dims.length < 1 || t.dims.length > 4 || t.dims.some((d) => !Number.isSafeInteger(d) || d < 1)) throw new GgufError(`tensor "${t.name}": bad dims [${t.dims.join(', ')}]`);
    const numel = t.dims.reduce((a, b) => a * b, 1);
    let size: number;
    try {
      size = ggmlBytes(t.type, t.dims[0], numel);
    } catch (e) {
      throw new GgufError(`tensor "${t.name}": ${(e as Error).message}`);
    }
    off = alignUp(off, alignment);
    offsets.push(off);
    sizes.push(size);
    off += size;
    w.scalar('string', t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPES[t.type]);
    w.u64(offsets[offsets.length - 1]);
  }
  const headLen = alignUp(w.length, alignment);
  w.bytes(new Uint8Array(headLen - w.length));
  return { head: w.result(), offsets, sizes, total: headLen + off };
}

/** Thrown by `writeGgufAsync` when `shouldStop` asked to stop; the temp file is gone, `path` untouched. */
export class GgufInterrupted extends Error {
  override readonly name = 'GgufInterrupted';
}

/**
 * Writes a GGUF v3 file atomically. Everything (keys, types, shapes, sizes) is checked before the
 * first byte is written; tensor data is produced and written one tensor at a time, yielding to the
 * event loop after each (so a SIGINT handler can run). When `shouldStop()` returns true the temp
 * file is removed, `path` is left untouched and `GgufInterrupted` is thrown. Returns the file size.
 */
export async function writeGgufAsync(path: string, metadata: ReadonlyArray<[string, GgufValue]>, tensors: readonly GgufTensorSpec[], opts: GgufWriteOptions & { shouldStop?: () => boolean } = {}): Promise<{ fileSize: number }> {
  const alignment = opts.alignment ?? 32;
  const plan = planGguf(metadata, tensors, alignment);
  const pad = new Uint8Array(alignment);
  removeStaleTemps(path);
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  fs.mkdirSync(nodePath.dirname(nodePath.resolve(path)), { recursive: true }); // a missing folder is created, as atomicWrite does
  const fd = fs.openSync(tmp, 'wx');
  let open = true;
  try {
    writeAll(fd, plan.head);
    let pos = 0;
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      if (plan.offsets[i] > pos) writeAll(fd, pad.subarray(0, plan.offsets[i] - pos));
      const bytes = t.data();
      if (bytes.length !== plan.sizes[i]) throw new GgufError(`tensor "${t.name}": ${bytes.length} bytes produced, ${t.type} [${t.dims.join(', ')}] needs ${plan.sizes[i]}`);
      writeAll(fd, bytes);
      pos = plan.offsets[i] + bytes.length;
      await new Promise((r) => setImmediate(r));
      if (opts.shouldStop?.() === true) throw new GgufInterrupted(`${path}: stopped after ${i + 1} of ${tensors.length} tensors; nothing written`);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    open = false;
    fs.renameSync(tmp, path);
    syncFolder(nodePath.dirname(path));
    return { fileSize: plan.total };
  } catch (e) {
    if (open) fs.closeSync(fd);
    try {
      fs.unlinkSync(tmp);
    } catch {
      // keep the original error
    }
    throw e;
  }
}

// ---- block quantization (ggml reference rules) -------------------------------------------------

const fr = Math.fround;

function checkFinite(x: Float32Array, what: string): void {
  const bad = firstNonFinite('F32', x);
  if (bad >= 0) throw new GgufError(`${what}: value ${bad} is ${x[bad]}; cannot quantize non-finite weights`);
}

/** roundf: round half away from zero. */
function roundf(v: number): number {
  return v < 0 ? -Math.round(-v) : Math.round(v);
}

/** Q8_0 blocks of x (length a multiple of 32), by ggml's quantize_row_q8_0_ref. */
export function quantizeQ8_0(x: Float32Array, what = 'tensor'): Uint8Array {
  if (x.length % 32 !== 0) throw new GgufError(`${what}: Q8_0 needs a multiple of 32 values, got ${x.length}`);
  checkFinite(x, what);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 34);
  const dv = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    dv.setUint16(b * 34, numberToF16Bits(d), true);
    for (let j = 0; j < 32; j++) dv.setInt8(b * 34 + 2 + j, roundf(fr(x[b * 32 + j] * id)));
  }
  return out;
}

/** Q4_0 blocks of x (length a multiple of 32), by ggml's quantize_row_q4_0_ref. */
export function quantizeQ4_0(x: Float32Array, what = 'tensor'): Uint8Array {
  if (x.length % 32 !== 0) throw new GgufError(`${what}: Q4_0 needs a multiple of 32 values, got ${x.length}`);
  checkFinite(x, what);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 18);
  for (let b = 0; b < nb; b++) {
    const o = b * 32;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[o + j];
      const a = v < 0 ? -v : v;
      if (amax < a) {
        amax = a;
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d !== 0 ? fr(1 / d) : 0;
    const h = numberToF16Bits(d);
    const ob = b * 18;
    out[ob] = h & 0xff;
    out[ob + 1] = h >> 8;
    for (let j = 0; j < 16; j++) {
      // x*id + 8.5 lies in [0, 17): trunc is floor (| 0)
      let q0 = fr(fr(x[o + j] * id) + 8.5) | 0;
      let q1 = fr(fr(x[o + 16 + j] * id) + 8.5) | 0;
      if (q0 > 15) q0 = 15;
      if (q1 > 15) q1 = 15;
      out[ob + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** Float32 values of `numel` elements of a tensor of type `type` stored in `bytes`. */
export function dequantizeGgml(type: GgmlType, bytes: Uint8Array, numel: number): Float32Array {
  const need = ggmlBytes(type, type === 'F32' || type === 'F16' ? 1 : 32, numel);
  if (bytes.length < need) throw new GgufError(`${type}: ${bytes.length} bytes for ${numel} values, need ${need}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(numel);
  if (type === 'F32') {
    for (let i = 0; i < numel; i++) out[i] = dv.getFloat32(i * 4, true);
  } else if (type === 'F16') {
    const h = new Uint16Array(numel);
    for (let i = 0; i < numel; i++) h[i] = dv.getUint16(i * 2, true);
    out.set(f16ToF32(h));
  } else if (type === 'Q8_0') {
    for (let b = 0; b < numel / 32; b++) {
      const d = f16BitsToNumber(dv.getUint16(b * 34, true));
      for (let j = 0; j < 32; j++) out[b * 32 + j] = d * dv.getInt8(b * 34 + 2 + j);
    }
  } else {
    for (let b = 0; b < numel / 32; b++) {
      const d = f16BitsToNumber(dv.getUint16(b * 18, true));
      for (let j = 0; j < 16; j++) {
        const q = bytes[b * 18 + 2 + j];
        out[b * 32 + j] = d * ((q & 15) - 8);
        out[b * 32 + 16 + j] = d * ((q >> 4) - 8);
      }
    }
  }
  return out;
}

/** Encodes f32 values as a tensor of `type` (F32 little-endian, F16 round to nearest even, Q8_0, Q4_0). */
export function encodeGgml(type: GgmlType, x: Float32Array, what = 'tensor'): Uint8Array {
  switch (type) {
    case 'F32': {
      const out = new Uint8Array(x.length * 4);
      const dv = new DataView(out.buffer);
      for (let i = 0; i < x.length; i++) dv.setFloat32(i * 4, x[i], true);
      return out;
    }
    case 'F16': {
      const h = f32ToF16(x);
      const out = new Uint8Array(x.length * 2);
      const dv = new DataView(out.buffer);
      for (let i = 0; i < h.length; i++) dv.setUint16(i * 2, h[i], true);
      return out;
    }
    case 'Q8_0':
      return quantizeQ8_0(x, what);
    case 'Q4_0':
      return quantizeQ4_0(x, what);
  }
}

// ---- reading ------------------------------------------------------------------------------------

export interface GgufTensorInfo {
  name: string;
  /** ggml order: ne0 (contiguous) first */
  dims: number[];
  type: GgmlType;
  /** absolute byte offset of the data in the file */
  offset: number;
  byteLength: number;
}

export interface GgufFile {
  path: string;
  version: number;
  alignment: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  /** absolute offset of the data section */
  dataOffset: number;
}

/** Reads sequential little-endian values from a file through a growing window. */
class FileCursor {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  pos = 0;
  constructor(
    private readonly fd: number,
    private readonly size: number,
    private readonly path: string,
  ) {}
  private ensure(n: number): void {
    if (this.pos + n > this.size) throw new GgufError(`${this.path}: truncated (reading ${n} bytes at offset ${this.pos}, file has ${this.size})`);
    if (this.pos >= this.start && this.pos + n <= this.start + this.buf.length) return;
    const len = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
    this.buf = Buffer.alloc(len);
    fs.readSync(this.fd, this.buf, 0, len, this.pos);
    this.start = this.pos;
  }
  private at(n: number): number {
    this.ensure(n);
    const o = this.pos - this.start;
    this.pos += n;
    return o;
  }
  u8(): number {
    const o = this.at(1);
    return this.buf.readUInt8(o);
  }
  i8(): number {
    const o = this.at(1);
    return this.buf.readInt8(o);
  }
  u16(): number {
    const o = this.at(2);
    return this.buf.readUInt16LE(o);
  }
  i16(): number {
    const o = this.at(2);
    return this.buf.readInt16LE(o);
  }
  u32(): number {
    const o = this.at(4);
    return this.buf.readUInt32LE(o);
  }
  i32(): number {
    const o = this.at(4);
    return this.buf.readInt32LE(o);
  }
  f32(): number {
    const o = this.at(4);
    return this.buf.readFloatLE(o);
  }
  f64(): number {
    const o = this.at(8);
    return this.buf.readDoubleLE(o);
  }
  u64(): number {
    const o = this.at(8);
    const v = this.buf.readBigUInt64LE(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError(`${this.path}: 64-bit value ${v} at offset ${this.pos - 8} is too large`);
    return Number(v);
  }
  i64(): number {
    const o = this.at(8);
    return Number(this.buf.readBigInt64LE(o));
  }
  str(): string {
    const n = this.u64();
    if (n > this.size) throw new GgufError(`${this.path}: string length ${n} at offset ${this.pos - 8} exceeds the file`);
    const o = this.at(n);
    return this.buf.toString('utf8', o, o + n);
  }
}

const TYPE_BY_ID = new Map<number, GgmlType>(Object.entries(GGML_TYPES).map(([k, v]) => [v, k as GgmlType]));
const VALUE_TYPE_BY_ID = new Map<number, keyof typeof GGUF_VALUE_TYPES>(Object.entries(GGUF_VALUE_TYPES).map(([k, v]) => [v, k as keyof typeof GGUF_VALUE_TYPES]));

function readScalar(c: FileCursor, t: GgufScalarType): number | boolean | string {
  switch (t) {
    case 'u8':
      return c.u8();
    case 'i8':
      return c.i8();
    case 'u16':
      return c.u16();
    case 'i16':
      return c.i16();
    case 'u32':
      return c.u32();
    case 'i32':
      return c.i32();
    case 'f32':
      return c.f32();
    case 'bool':
      return c.u8() !== 0;
    case 'string':
      return c.str();
    case 'u64':
      return c.u64();
    case 'i64':
      return c.i64();
    case 'f64':
      return c.f64();
  }
}

/**
 * Parses a GGUF file's header, metadata and tensor infos (no tensor data is read). Tensor types
 * other than F32/F16/Q8_0/Q4_0 are rejected naming the tensor.
 */
export function readGgufHeader(path: string): GgufFile {
  const fd = fs.openSync(path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const c = new FileCursor(fd, size, path);
    const magic = [c.u8(), c.u8(), c.u8(), c.u8()];
    if (String.fromCharCode(...magic) !== 'GGUF') throw new GgufError(`${path}: not a GGUF file (magic ${magic.map((b) => b.toString(16).padStart(2, '0')).join(' ')})`);
    const version = c.u32();
    if (version !== 3 && version !== 2) throw new GgufError(`${path}: GGUF version ${version} is not supported (2 or 3)`);
    const nTensors = c.u64();
    const nKv = c.u64();
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < nKv; i++) {
      const key = c.str();
      const tid = c.u32();
      const t = VALUE_TYPE_BY_ID.get(tid);
      if (t === undefined) throw new GgufError(`${path}: metadata "${key}" has unknown value type ${tid}`);
      if (t === 'array') {
        const iid = c.u32();
        const it = VALUE_TYPE_BY_ID.get(iid);
        if (it === undefined || it === 'array') throw new GgufError(`${path}: metadata "${key}" is an array of unsupported type ${iid}`);
        const n = c.u64();
        if (n > size) throw new GgufError(`${path}: metadata "${key}" claims ${n} elements`);
        if (it === 'string') {
          const v: string[] = [];
          for (let j = 0; j < n; j++) v.push(c.str());
          metadata.set(key, { type: 'array', itemType: 'string', value: v });
        } else if (it === 'bool') {
          const v: boolean[] = [];
          for (let j = 0; j < n; j++) v.push(c.u8() !== 0);
          metadata.set(key, { type: 'array', itemType: 'bool', value: v });
        } else {
          const v = new Float64Array(n);
          for (let j = 0; j < n; j++) v[j] = readScalar(c, it) as number;
          metadata.set(key, { type: 'array', itemType: it, value: v });
        }
      } else {
        metadata.set(key, { type: t, value: readScalar(c, t) } as GgufValue);
      }
    }
    const al = metadata.get('general.alignment');
    const alignment = al === undefined ? 32 : al.type === 'u32' ? al.value : NaN;
    if (!Number.isInteger(alignment) || alignment < 1) throw new GgufError(`${path}: general.alignment must be a u32, got ${JSON.stringify(al)}`);
    const raw: { name: string; dims: number[]; type: GgmlType; rel: number }[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = c.str();
      const nd = c.u32();
      if (nd < 1 || nd > 4) throw new GgufError(`${path}: tensor "${name}" has ${nd} dimensions`);
      const dims: number[] = [];
      for (let j = 0; j < nd; j++) dims.push(c.u64());
      const tid = c.u32();
      const type = TYPE_BY_ID.get(tid);
      if (type === undefined) throw new GgufError(`${path}: tensor "${name}" has ggml type ${tid}, which this reader does not handle (F32, F16, Q4_0, Q8_0)`);
      const rel = c.u64();
      if (rel % alignment !== 0) throw new GgufError(`${path}: tensor "${name}" offset ${rel} is not a multiple of the alignment ${alignment}`);
      raw.push({ name, dims, type, rel });
    }
    const dataOffset = alignUp(c.pos, alignment);
    const tensors = raw.map((r) => {
      const numel = r.dims.reduce((a, b) => a * b, 1);
      let byteLength: number;
      try {
        byteLength = ggmlBytes(r.type, r.dims[0], numel);
      } catch (e) {
        throw new GgufError(`${path}: tensor "${r.name}": ${(e as Error).message}`);
      }
      const offset = dataOffset + r.rel;
      if (offset + byteLength > size) throw new GgufError(`${path}: tensor "${r.name}" data [${offset}, ${offset + byteLength}) runs past the end of the file (${size} bytes)`);
      return { name: r.name, dims: r.dims, type: r.type, offset, byteLength };
    });
    return { path, version, alignment, metadata, tensors, dataOffset };
  } finally {
    fs.closeSync(fd);
  }
}

/** The raw bytes of one tensor. */
export function readGgufTensorBytes(file: GgufFile, name: string): Uint8Array {
  const t = file.tensors.find((x) => x.name === name);
  if (t === undefined) throw new GgufError(`${file.path}: no tensor "${name}"`);
  const buf = Buffer.alloc(t.byteLength);
  const fd = fs.openSync(file.path, 'r');
  try {
    fs.readSync(fd, buf, 0, t.byteLength, t.offset);
  } finally {
    fs.closeSync(fd);
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** One tensor dequantized to float32 (row-major with ne0 contiguous, i.e. HF [out, in] for 2-D weights). */
export function readGgufTensor(file: GgufFile, name: string): Float32Array {
  const t = file.tensors.find((x) => x.name === name);
  if (t === undefined) throw new GgufError(`${file.path}: no tensor "${name}"`);
  return dequantizeGgml(t.type, readGgufTensorBytes(file, name), t.dims.reduce((a, b) => a * b, 1));
}
