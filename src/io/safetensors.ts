/**
 * safetensors reading and writing (single files and Hugging Face style sharded checkpoints).
 *
 * File layout: 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON header
 * `{"name": {"dtype", "shape", "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}`,
 * then the data buffer. Offsets are relative to the start of the data buffer; tensors must
 * cover it contiguously without overlaps. See docs/formats.md for the rules enforced here.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import {
  DTYPES,
  HOST_IS_LITTLE_ENDIAN,
  dtypeArrayName,
  dtypeArrayView,
  dtypeSize,
  isArrayOfDType,
  isDType,
  littleEndianBytes,
  swapBytesInPlace,
  toFloat32,
  toFloat64,
} from './dtype.js';
import type { DType, DTypeArray, DTypeArrayMap } from './dtype.js';
import { runToEnd, type StopFlag } from './interrupt.js';

// ---------------------------------------------------------------------------
// Types

/** A tensor held in memory: raw little-endian-decoded data of `dtype` (F16/BF16 as Uint16Array bit patterns). */
export type TensorData<D extends DType = DType> = D extends DType ? { dtype: D; shape: number[]; data: DTypeArrayMap[D] } : never;

/** A tensor whose data is produced only when the writer reaches it (for streaming large checkpoints). */
export type LazyTensorData<D extends DType = DType> = D extends DType
  ? { dtype: D; shape: readonly number[]; load: () => DTypeArrayMap[D] }
  : never;

/** Anything the writers accept as a tensor. */
export type WritableTensor = TensorData | LazyTensorData;

/**
 * Tensors to write, in order: an array of [name, tensor] pairs, a Map (insertion order), or an
 * object (JS property order, in which integer-like keys such as "0" come first).
 */
export type TensorEntries =
  | Record<string, WritableTensor>
  | ReadonlyArray<readonly [string, WritableTensor]>
  | ReadonlyMap<string, WritableTensor>;

/** What the header says about one tensor. */
export interface TensorInfo {
  dtype: DType;
  shape: number[];
  /** Bytes of raw data (product(shape) * element size). */
  byteLength: number;
  /** [begin, end) relative to the start of the data buffer. */
  dataOffsets: [number, number];
}

export interface ParsedHeader {
  /** N, the JSON header length in bytes (including padding). */
  headerLength: number;
  /** Absolute file offset of the data buffer (8 + N). */
  dataStart: number;
  /** Bytes in the data buffer (file size - 8 - N). */
  dataLength: number;
  /** Tensors in data-buffer order (ties, i.e. empty tensors, in header order). */
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

export interface ReadOptions {
  /**
   * Read into this caller-owned byte buffer instead of allocating (e.g. one reusable buffer
   * when streaming many tensors). It must hold at least `byteLength` bytes and start at a
   * multiple of the element size; the returned data is a view of it.
   */
  into?: Uint8Array;
}

export type ReadTarget = 'f32' | 'f64';

export type SafetensorsErrorCode =
  | 'IO'
  | 'TRUNCATED'
  | 'HEADER_TOO_LARGE'
  | 'INVALID_HEADER'
  | 'DUPLICATE'
  | 'INVALID_ENTRY'
  | 'UNKNOWN_DTYPE'
  | 'INVALID_SHAPE'
  | 'INVALID_OFFSETS'
  | 'SIZE_MISMATCH'
  | 'OUT_OF_BOUNDS'
  | 'OVERLAP'
  | 'GAP'
  | 'INVALID_METADATA'
  | 'NOT_FOUND'
  | 'INVALID_ARGUMENT'
  | 'CONVERSION'
  | 'ALLOCATION'
  | 'CLOSED'
  | 'INVALID_INDEX';

/** Every failure of this module: says what is wrong, in which file and (if any) which tensor. */
export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
  readonly code: SafetensorsErrorCode;
  readonly file: string;
  readonly tensor: string | undefined;

  constructor(code: SafetensorsErrorCode, file: string, tensor: string | undefined, detail: string, options?: { cause?: unknown }) {
    super(`${file}${tensor === undefined ? '' : `: tensor ${quote(tensor)}`}: ${detail}`, options);
    this.code = code;
    this.file = file;
    this.tensor = tensor;
  }
}

/** Largest accepted JSON header, as in the reference implementation. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

// ---------------------------------------------------------------------------
// Small helpers

function quote(s: string): string {
  const q = JSON.stringify(s);
  return q.length > 120 ? `${q.slice(0, 100)}..."(${s.length} chars)` : q;
}

/** Short, non-recursive description of an untrusted JSON value for error messages. */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  switch (typeof v) {
    case 'string':
      return `string ${quote(v)}`;
    case 'number':
      return `number ${String(v)}`;
    case 'boolean':
      return `boolean ${String(v)}`;
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function hasOwn(o: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function shapeText(shape: readonly unknown[]): string {
  const shown = shape.slice(0, 16).map((d) => (typeof d === 'number' ? String(d) : describe(d)));
  return `[${shown.join(', ')}${shape.length > 16 ? `, ... (${shape.length} dims)` : ''}]`;
}

/** Product of validated non-negative integer dims, or Infinity when it exceeds 2^53. */
function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (d === 0) return 0;
  }
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return Infinity;
  }
  return n;
}

function setOwn(o: Record<string, string>, key: string, value: string): void {
  // defineProperty so that a key like "__proto__" becomes a plain own property
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

// ---------------------------------------------------------------------------
// Header parsing (shared by files, in-memory buffers and the fuzz tests)

/**
 * Reads and validates the u64 header length from the first 8 bytes of a file of `fileSize` bytes.
 */
export function readSafetensorsHeaderLength(prefix: Uint8Array, fileSize: number, fileName: string): number {
  if (fileSize < 8 || prefix.length < 8) {
    throw new SafetensorsError('TRUNCATED', fileName, undefined, `file is ${Math.min(fileSize, prefix.length)} bytes, shorter than the 8-byte header length prefix`);
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo; // may be inexact above 2^53, but then it is absurd anyway
  if (hi !== 0 || n > MAX_HEADER_BYTES) {
    const shown = hi < 2 ** 21 ? String(n) : `${(BigInt(hi) << 32n) | BigInt(lo)}`;
    throw new SafetensorsError('HEADER_TOO_LARGE', fileName, undefined, `header length ${shown} (bytes 0..8) exceeds the limit of ${MAX_HEADER_BYTES} bytes; not a safetensors file?`);
  }
  if (8 + n > fileSize) {
    throw new SafetensorsError('TRUNCATED', fileName, undefined, `header length ${n} (bytes 0..8) needs ${8 + n} bytes but the file is only ${fileSize} bytes (truncated?)`);
  }
  return n;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Byte offset (from the header start) of character index `ci` in `text`. */
function byteOffsetOf(text: string, ci: number): number {
  return Buffer.byteLength(text.slice(0, ci), 'utf8');
}

interface KeyScan {
  /** Top-level keys in text order. */
  topKeys: string[];
  duplicate?: { key: string; parent: string | undefined; depth: number; charIndex: number };
}

/**
 * Scans already-validated JSON text for object keys: returns the top-level keys in text order
 * and the first duplicated key at any depth (JSON.parse silently keeps the last one).
 */
function scanKeys(text: string): KeyScan {
  const topKeys: string[] = [];
  const stack: Array<{ keys: Set<string>; last: string | undefined } | null> = [];
  const len = text.length;
  let i = 0;
  while (i < len) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      while (j < len) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) {
          escaped = true;
          j += 2;
          continue;
        }
        if (d === 0x22) break;
        j++;
      }
      const top = stack.length > 0 ? stack[stack.length - 1] : null;
      if (top !== null && top !== undefined) {
        let k = j + 1;
        while (k < len) {
          const d = text.charCodeAt(k);
          if (d !== 0x20 && d !== 0x09 && d !== 0x0a && d !== 0x0d) break;
          k++;
        }
        if (text.charCodeAt(k) === 0x3a /* : */) {
          const raw = text.slice(i, j + 1);
          const key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
          if (top.keys.has(key)) {
            const parent = stack.length >= 2 ? (stack[0]?.last ?? undefined) : undefined;
            return { topKeys, duplicate: { key, parent, depth: stack.length, charIndex: i } };
          }
          top.keys.add(key);
          top.last = key;
          if (stack.length === 1) topKeys.push(key);
        }
      }
      i = j + 1;
      continue;
    }
    if (c === 0x7b /* { */) stack.push({ keys: new Set(), last: undefined });
    else if (c === 0x5b /* [ */) stack.push(null);
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    i++;
  }
  return { topKeys };
}

/** Index of the first byte that does not belong to a valid UTF-8 sequence, or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0;
      else if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90;
      else if (c === 0xf4) hi = 0x8f;
    } else return i;
    if (i + need > n - 1) return i;
    const c1 = b[i + 1];
    if (c1 < lo || c1 > hi) return i;
    for (let k = 2; k <= need; k++) {
      const ck = b[i + k];
      if (ck < 0x80 || ck > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Decodes and parses JSON text of an index or header; throws SafetensorsError with `code`. */
function parseJsonObject(
  bytes: Uint8Array,
  fileName: string,
  code: 'INVALID_HEADER' | 'INVALID_INDEX',
  what: string,
  baseOffset: number,
): { value: Record<string, unknown>; topKeys: string[] } {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    const bad = firstInvalidUtf8(bytes);
    throw new SafetensorsError(code, fileName, undefined, `${what} is not valid UTF-8 (bad byte sequence at file byte ${baseOffset + Math.max(bad, 0)})`);
  }
  if (code === 'INVALID_HEADER' && !text.startsWith('{')) {
    throw new SafetensorsError(code, fileName, undefined, `${what} (file bytes ${baseOffset}..${baseOffset + bytes.length}) must be a JSON object starting with '{', got ${text.length === 0 ? 'nothing' : quote(text.slice(0, 20))}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(code, fileName, undefined, `${what} (file bytes ${baseOffset}..${baseOffset + bytes.length}) is not valid JSON: ${errorText(e).slice(0, 200)}`);
  }
  if (!isPlainObject(value)) {
    throw new SafetensorsError(code, fileName, undefined, `${what} must be a JSON object, got ${describe(value)}`);
  }
  const scan = scanKeys(text);
  if (scan.duplicate !== undefined) {
    const d = scan.duplicate;
    const at = `file byte ${baseOffset + byteOffsetOf(text, d.charIndex)}`;
    if (d.depth === 1) {
      throw new SafetensorsError('DUPLICATE', fileName, d.key, `appears twice in the ${what} (second time at ${at})`);
    }
    throw new SafetensorsError('DUPLICATE', fileName, d.parent, `duplicate JSON key ${quote(d.key)} in the ${what} at ${at}`);
  }
  return { value, topKeys: scan.topKeys };
}

/**
 * Parses and fully validates a safetensors header.
 *
 * @param bytes the first bytes of the file: at least 8 + N of them (N = header length)
 * @param fileSize the real size of the whole file; every offset is checked against it
 * @param fileName used in error messages
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileSize: number, fileName: string): ParsedHeader {
  if (!Number.isSafeInteger(fileSize) || fileSize < 0) {
    throw new SafetensorsError('INVALID_ARGUMENT', fileName, undefined, `fileSize must be a non-negative integer, got ${String(fileSize)}`);
  }
  const n = readSafetensorsHeaderLength(bytes, fileSize, fileName);
  if (bytes.length < 8 + n) {
    throw new SafetensorsError('INVALID_ARGUMENT', fileName, undefined, `parseSafetensorsHeader needs the first ${8 + n} bytes of the file, got ${bytes.length}`);
  }
  const dataStart = 8 + n;
  const dataLength = fileSize - dataStart;
  const { value: header, topKeys } = parseJsonObject(bytes.subarray(8, 8 + n), fileName, 'INVALID_HEADER', 'header', 8);

  const metadata: Record<string, string> = {};
  const entries: Array<[string, TensorInfo]> = [];
  for (const name of topKeys) {
    const entry = header[name];
    if (name === METADATA_KEY) {
      if (entry === null) continue;
      if (!isPlainObject(entry)) {
        throw new SafetensorsError('INVALID_METADATA', fileName, undefined, `__metadata__ must be an object of string values, got ${describe(entry)}`);
      }
      for (const k of Object.keys(entry)) {
        const v = entry[k];
        if (typeof v !== 'string') {
          throw new SafetensorsError('INVALID_METADATA', fileName, undefined, `__metadata__ value of key ${quote(k)} must be a string, got ${describe(v)}`);
        }
        setOwn(metadata, k, v);
      }
      continue;
    }
    entries.push([name, validateEntry(name, entry, fileName, dataStart, dataLength, fileSize)]);
  }

  // Coverage: sorted by offsets, tensors must tile [0, dataLength) exactly.
  const order = entries.map((e, i) => i);
  order.sort((a, b) => {
    const [ba, ea] = entries[a][1].dataOffsets;
    const [bb, eb] = entries[b][1].dataOffsets;
    return ba - bb || ea - eb || a - b;
  });
  let pos = 0;
  let prev: string | undefined;
  const tensors = new Map<string, TensorInfo>();
  for (const idx of order) {
    const [name, info] = entries[idx];
    const [begin, end] = info.dataOffsets;
    if (begin < pos) {
      throw new SafetensorsError('OVERLAP', fileName, name, `data_offsets [${begin}, ${end}] overlap tensor ${quote(prev ?? '')} which ends at offset ${pos} (file byte ${dataStart + pos})`);
    }
    if (begin > pos) {
      const before = prev === undefined ? 'the start of the data buffer' : `tensor ${quote(prev)} (ends at offset ${pos})`;
      throw new SafetensorsError('GAP', fileName, name, `data_offsets [${begin}, ${end}] leave a gap of ${begin - pos} unused bytes after ${before} (file bytes ${dataStart + pos}..${dataStart + begin}); tensors must cover the data buffer contiguously`);
    }
    pos = end;
    if (end > begin || prev === undefined) prev = name;
    tensors.set(name, info);
  }
  if (pos !== dataLength) {
    const after = prev === undefined ? 'the header lists no tensors' : `the last tensor ${quote(prev)} ends at offset ${pos}`;
    throw new SafetensorsError('GAP', fileName, undefined, `data buffer has ${dataLength} bytes (file bytes ${dataStart}..${fileSize}) but ${after}: ${dataLength - pos} trailing bytes are not covered by any tensor`);
  }
  return { headerLength: n, dataStart, dataLength, tensors, metadata };
}

function validateEntry(name: string, entry: unknown, file: string, dataStart: number, dataLength: number, fileSize: number): TensorInfo {
  if (!isPlainObject(entry)) {
    throw new SafetensorsError('INVALID_ENTRY', file, name, `header entry must be an object with dtype, shape and data_offsets, got ${describe(entry)}`);
  }
  for (const field of ['dtype', 'shape', 'data_offsets']) {
    if (!hasOwn(entry, field)) throw new SafetensorsError('INVALID_ENTRY', file, name, `header entry is missing "${field}"`);
  }
  const dtype = entry.dtype;
  if (typeof dtype !== 'string') {
    throw new SafetensorsError('INVALID_ENTRY', file, name, `dtype must be a string, got ${describe(dtype)}`);
  }
  if (!isDType(dtype)) {
    throw new SafetensorsError('UNKNOWN_DTYPE', file, name, `unknown dtype ${quote(dtype)} (supported: ${DTYPES.join(', ')})`);
  }
  const shape = entry.shape;
  if (!Array.isArray(shape)) {
    throw new SafetensorsError('INVALID_SHAPE', file, name, `shape must be an array of non-negative integers, got ${describe(shape)}`);
  }
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new SafetensorsError('INVALID_SHAPE', file, name, `shape[${i}] must be a non-negative integer, got ${describe(d)} (shape ${shapeText(shape)})`);
    }
  }
  const offsets = entry.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    throw new SafetensorsError('INVALID_OFFSETS', file, name, `data_offsets must be an array [begin, end], got ${describe(offsets)}`);
  }
  const [begin, end] = offsets as unknown[];
  if (typeof begin !== 'number' || typeof end !== 'number' || !Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < 0) {
    throw new SafetensorsError('INVALID_OFFSETS', file, name, `data_offsets must be two non-negative integers, got [${describe(begin)}, ${describe(end)}]`);
  }
  if (begin > end) {
    throw new SafetensorsError('INVALID_OFFSETS', file, name, `data_offsets [${begin}, ${end}] have begin > end`);
  }
  const dims = shape as number[];
  const size = dtypeSize(dtype);
  const numel = numelOf(dims);
  const need = numel * size;
  if (need !== end - begin) {
    const needText = Number.isFinite(need) && need <= Number.MAX_SAFE_INTEGER ? `${need} bytes` : 'more than 2^53 bytes';
    throw new SafetensorsError('SIZE_MISMATCH', file, name, `data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape ${shapeText(dims)} of ${dtype} needs ${needText} (${Number.isFinite(numel) ? numel : '> 2^53'} elements x ${size} bytes)`);
  }
  if (end > dataLength) {
    throw new SafetensorsError('OUT_OF_BOUNDS', file, name, `data_offsets [${begin}, ${end}] (file bytes ${dataStart + begin}..${dataStart + end}) go beyond the data buffer of ${dataLength} bytes (file is ${fileSize} bytes)`);
  }
  return { dtype, shape: dims.slice(), byteLength: end - begin, dataOffsets: [begin, end] };
}

// ---------------------------------------------------------------------------
// Reading

interface ByteSource {
  readonly size: number;
  /** Reads up to dest.length bytes at `position`; returns the count (0 at end of file). */
  readInto(dest: Uint8Array, position: number): number;
  close(): void;
}

function fileSource(fd: number, size: number): ByteSource {
  let open = true;
  return {
    size,
    readInto(dest, position) {
      return fs.readSync(fd, dest, 0, Math.min(dest.length, 0x40000000), position);
    },
    close() {
      if (open) {
        open = false;
        fs.closeSync(fd);
      }
    },
  };
}

function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    readInto(dest, position) {
      const n = Math.max(0, Math.min(dest.length, bytes.length - position));
      dest.set(bytes.subarray(position, position + n));
      return n;
    },
    close() {},
  };
}

function readFully(src: ByteSource, dest: Uint8Array, position: number, file: string, tensor: string | undefined, what: string): void {
  let done = 0;
  while (done < dest.length) {
    let got: number;
    try {
      got = src.readInto(dest.subarray(done), position + done);
    } catch (e) {
      throw new SafetensorsError('IO', file, tensor, `reading ${what} (file bytes ${position}..${position + dest.length}) failed: ${errorText(e)}`, { cause: e });
    }
    if (got <= 0) {
      throw new SafetensorsError('TRUNCATED', file, tensor, `file ended after ${done} of ${dest.length} bytes of ${what} (file bytes ${position}..${position + dest.length}); was it changed after opening?`);
    }
    done += got;
  }
}

/** Read access to tensors: implemented by single files and (sharded) checkpoints. */
export interface TensorReader {
  readonly metadata: Record<string, string>;
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  read(name: string, opts?: ReadOptions): TensorData;
  readAs(name: string, target: 'f32'): TensorData<'F32'>;
  readAs(name: string, target: 'f64'): TensorData<'F64'>;
  close(): void;
}

/** An open safetensors file: the header is parsed and validated, tensors are read on demand. */
export class SafetensorsFile implements TensorReader {
  readonly path: string;
  readonly metadata: Record<string, string>;
  readonly header: ParsedHeader;
  private source: ByteSource | undefined;

  /** Use `openSafetensors` or `openSafetensorsBuffer`. */
  constructor(path: string, source: ByteSource, header: ParsedHeader) {
    this.path = path;
    this.source = source;
    this.header = header;
    this.metadata = header.metadata;
  }

  /** Tensor names in data-buffer order (for files written here: the order they were written in). */
  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  has(name: string): boolean {
    return this.header.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const i = this.lookup(name);
    return { dtype: i.dtype, shape: i.shape.slice(), byteLength: i.byteLength, dataOffsets: [i.dataOffsets[0], i.dataOffsets[1]] };
  }

  /** Reads one tensor (one positioned read of exactly its bytes; nothing else is touched). */
  read(name: string, opts?: ReadOptions): TensorData {
    const info = this.lookup(name);
    const src = this.source;
    if (src === undefined) throw new SafetensorsError('CLOSED', this.path, name, 'file is closed');
    const size = dtypeSize(info.dtype);
    const numel = info.byteLength / size;
    let buffer: ArrayBuffer;
    let byteOffset = 0;
    const into = opts?.into;
    if (into !== undefined) {
      if (!(into instanceof Uint8Array) || !(into.buffer instanceof ArrayBuffer)) {
        throw new SafetensorsError('INVALID_ARGUMENT', this.path, name, 'opts.into must be a Uint8Array over an ArrayBuffer');
      }
      if (into.length < info.byteLength) {
        throw new SafetensorsError('INVALID_ARGUMENT', this.path, name, `opts.into holds ${into.length} bytes but the tensor needs ${info.byteLength}`);
      }
      if (into.byteOffset % size !== 0) {
        throw new SafetensorsError('INVALID_ARGUMENT', this.path, name, `opts.into starts at byte offset ${into.byteOffset}, not a multiple of the ${info.dtype} element size ${size}`);
      }
      buffer = into.buffer;
      byteOffset = into.byteOffset;
    } else {
      try {
        buffer = new ArrayBuffer(info.byteLength);
      } catch (e) {
        throw new SafetensorsError('ALLOCATION', this.path, name, `cannot allocate ${info.byteLength} bytes: ${errorText(e)}`, { cause: e });
      }
    }
    const bytes = new Uint8Array(buffer, byteOffset, info.byteLength);
    readFully(src, bytes, this.header.dataStart + info.dataOffsets[0], this.path, name, 'tensor data');
    if (!HOST_IS_LITTLE_ENDIAN) swapBytesInPlace(bytes, size);
    let data: DTypeArray;
    try {
      data = dtypeArrayView(info.dtype, buffer, byteOffset, numel);
    } catch (e) {
      throw new SafetensorsError('ALLOCATION', this.path, name, `cannot make a ${numel}-element ${info.dtype} array: ${errorText(e)}`, { cause: e });
    }
    return { dtype: info.dtype, shape: info.shape.slice(), data } as TensorData;
  }

  readAs(name: string, target: 'f32'): TensorData<'F32'>;
  readAs(name: string, target: 'f64'): TensorData<'F64'>;
  /** Reads one tensor converted to float32 or float64 (F16/BF16 decoded exactly; I64 must be within 2^53). */
  readAs(name: string, target: ReadTarget): TensorData<'F32'> | TensorData<'F64'> {
    return convertTensor(this.read(name), target, this.path, name);
  }

  /** Closes the file; later reads throw. Safe to call twice. */
  close(): void {
    const src = this.source;
    this.source = undefined;
    src?.close();
  }

  private lookup(name: string): TensorInfo {
    const info = this.header.tensors.get(name);
    if (info === undefined) {
      throw new SafetensorsError('NOT_FOUND', this.path, name, `no such tensor (the file has ${this.header.tensors.size} tensors)`);
    }
    return info;
  }
}

function convertTensor(t: TensorData, target: ReadTarget, file: string, name: string): TensorData<'F32'> | TensorData<'F64'> {
  if (target !== 'f32' && target !== 'f64') {
    throw new SafetensorsError('INVALID_ARGUMENT', file, name, `readAs target must be 'f32' or 'f64', got ${describe(target)}`);
  }
  try {
    if (target === 'f32') return { dtype: 'F32', shape: t.shape, data: t.dtype === 'F32' ? t.data : toFloat32(t.dtype, t.data) };
    return { dtype: 'F64', shape: t.shape, data: t.dtype === 'F64' ? t.data : toFloat64(t.dtype, t.data) };
  } catch (e) {
    throw new SafetensorsError('CONVERSION', file, name, `cannot convert ${t.dtype} to ${target}: ${errorText(e)}`, { cause: e });
  }
}

/**
 * Opens a safetensors file: reads and validates only the header (8 + N bytes); tensor data
 * is read later, one tensor at a time, by `read`/`readAs`. Close it when done.
 */
export function openSafetensors(path: string): SafetensorsFile {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    throw new SafetensorsError('IO', path, undefined, `cannot open: ${errorText(e)}`, { cause: e });
  }
  try {
    let size: number;
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new SafetensorsError('IO', path, undefined, 'not a regular file');
      size = st.size;
    } catch (e) {
      if (e instanceof SafetensorsError) throw e;
      throw new SafetensorsError('IO', path, undefined, `cannot stat: ${errorText(e)}`, { cause: e });
    }
    const src = fileSource(fd, size);
    const prefix = new Uint8Array(Math.min(8, size));
    readFully(src, prefix, 0, path, undefined, 'header length');
    const n = readSafetensorsHeaderLength(prefix, size, path); // validated against the real size before allocating
    const head = new Uint8Array(8 + n);
    head.set(prefix);
    readFully(src, head.subarray(8), 8, path, undefined, 'header');
    const header = parseSafetensorsHeader(head, size, path);
    return new SafetensorsFile(path, src, header);
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      // already failing; keep the original error
    }
    throw e;
  }
}

/** Parses a complete safetensors file held in memory (validated like a file). */
export function openSafetensorsBuffer(bytes: Uint8Array, name = '<buffer>'): SafetensorsFile {
  const header = parseSafetensorsHeader(bytes, bytes.length, name);
  return new SafetensorsFile(name, memorySource(bytes), header);
}

// ---------------------------------------------------------------------------
// Writing

interface PlannedTensor {
  name: string;
  dtype: DType;
  shape: number[];
  numel: number;
  byteLength: number;
  source: WritableTensor;
}

function isLazy(t: WritableTensor): t is LazyTensorData {
  return typeof (t as { load?: unknown }).load === 'function';
}

function checkData(file: string, name: string, dtype: DType, numel: number, shape: readonly number[], data: unknown): DTypeArray {
  if (!isArrayOfDType(dtype, data)) {
    const got = typeof data === 'object' && data !== null ? (data.constructor?.name ?? 'object') : typeof data;
    throw new SafetensorsError('INVALID_ARGUMENT', file, name, `data for dtype ${dtype} must be a ${dtypeArrayName(dtype)}, got ${got}`);
  }
  if (data.length !== numel) {
    throw new SafetensorsError('SIZE_MISMATCH', file, name, `data has ${data.length} elements but shape ${shapeText(shape)} needs ${numel}`);
  }
  return data;
}

function planTensors(tensors: TensorEntries, file: string): PlannedTensor[] {
  let list: ReadonlyArray<readonly [string, WritableTensor]>;
  if (Array.isArray(tensors)) list = tensors;
  else if (tensors instanceof Map) list = [...(tensors as ReadonlyMap<string, WritableTensor>)];
  else if (isPlainObject(tensors)) list = Object.entries(tensors as Record<string, WritableTensor>);
  else throw new SafetensorsError('INVALID_ARGUMENT', file, undefined, `tensors must be an object or an array of [name, tensor] pairs, got ${describe(tensors)}`);
  const seen = new Set<string>();
  const out: PlannedTensor[] = [];
  for (let i = 0; i < list.length; i++) {
    const pair: unknown = list[i];
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string') {
      throw new SafetensorsError('INVALID_ARGUMENT', file, undefined, `tensors[${i}] must be a [name, tensor] pair with a string name`);
    }
    const [name, t] = pair as [string, unknown];
    if (name === METADATA_KEY) throw new SafetensorsError('INVALID_ARGUMENT', file, name, `"${METADATA_KEY}" is reserved and cannot be a tensor name`);
    if (seen.has(name)) throw new SafetensorsError('DUPLICATE', file, name, 'tensor name given twice');
    seen.add(name);
    if (!isPlainObject(t)) throw new SafetensorsError('INVALID_ARGUMENT', file, name, `tensor must be an object {dtype, shape, data}, got ${describe(t)}`);
    const dtype = t.dtype;
    if (!isDType(dtype)) throw new SafetensorsError('UNKNOWN_DTYPE', file, name, `unknown dtype ${describe(dtype)} (supported: ${DTYPES.join(', ')})`);
    const shape = t.shape;
    if (!Array.isArray(shape)) throw new SafetensorsError('INVALID_SHAPE', file, name, `shape must be an array of non-negative integers, got ${describe(shape)}`);
    for (let k = 0; k < shape.length; k++) {
      const d: unknown = shape[k];
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
        throw new SafetensorsError('INVALID_SHAPE', file, name, `shape[${k}] must be a non-negative integer, got ${describe(d)}`);
      }
    }
    const dims = (shape as number[]).slice();
    const numel = numelOf(dims);
    const byteLength = numel * dtypeSize(dtype);
    if (!Number.isSafeInteger(byteLength)) throw new SafetensorsError('INVALID_SHAPE', file, name, `shape ${shapeText(dims)} is too large`);
    const src = t as WritableTensor;
    if (!isLazy(src)) checkData(file, name, dtype, numel, dims, (src as { data?: unknown }).data);
    out.push({ name, dtype, shape: dims, numel, byteLength, source: src });
  }
  return out;
}

function checkMetadata(metadata: Record<string, string> | undefined, file: string): Array<[string, string]> {
  if (metadata === undefined || metadata === null) return [];
  if (!isPlainObject(metadata)) throw new SafetensorsError('INVALID_METADATA', file, undefined, `metadata must be an object of string values, got ${describe(metadata)}`);
  const out: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new SafetensorsError('INVALID_METADATA', file, undefined, `metadata value of key ${quote(k)} must be a string, got ${describe(v)}`);
    out.push([k, v]);
  }
  return out;
}

/** The 8-byte length prefix plus the space-padded JSON header (total a multiple of 8 bytes). */
function buildHeader(planned: readonly PlannedTensor[], metadata: ReadonlyArray<[string, string]>, file: string): Uint8Array {
  const parts: string[] = [];
  if (metadata.length > 0) {
    parts.push(`"${METADATA_KEY}":{${metadata.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  let offset = 0;
  for (const t of planned) {
    const end = offset + t.byteLength;
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const n = Math.ceil(json.length / 8) * 8;
  if (n > MAX_HEADER_BYTES) {
    throw new SafetensorsError('HEADER_TOO_LARGE', file, undefined, `header would be ${n} bytes, above the limit of ${MAX_HEADER_BYTES}`);
  }
  const out = new Uint8Array(8 + n);
  const view = new DataView(out.buffer);
  view.setUint32(0, n, true);
  view.setUint32(4, 0, true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length);
  return out;
}

/** The data of one planned tensor (loading lazy ones), checked against its shape. */
function tensorBytes(t: PlannedTensor, file: string): Uint8Array {
  let data: unknown;
  if (isLazy(t.source)) {
    try {
      data = t.source.load();
    } catch (e) {
      if (e instanceof SafetensorsError) throw e;
      throw new SafetensorsError('INVALID_ARGUMENT', file, t.name, `load() failed: ${errorText(e)}`, { cause: e });
    }
  } else {
    data = t.source.data;
  }
  return littleEndianBytes(checkData(file, t.name, t.dtype, t.numel, t.shape, data));
}

/** Writes all bytes to an open file (in chunks of at most 1 GiB). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    done += fs.writeSync(fd, bytes, done, Math.min(bytes.length - done, 0x40000000));
  }
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // not supported everywhere (e.g. Windows); the rename itself is already done
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Writes a file atomically: `body` writes to `path.tmp-<pid>-<random>` in the same folder
 * (created with its parents when missing), which is fsynced and renamed over `path`. On any
 * error the temp file is removed and `path` is left as it was.
 */
function atomicWrite(path: string, body: (fd: number) => void): void {
  runToEnd(
    atomicWriteJob(path, (fd) => {
      body(fd);
      return [].values(); // no safe point inside
    }),
  );
}

/**
 * Thrown by a yielding write (`shardedWriteJob`) whose StopFlag was set: the temp
 * file is removed, and so are the files this call had completed; what was there before stays.
 */
export class WriteInterrupted extends Error {
  override readonly name = 'WriteInterrupted';
}

/** Whether process `pid` is running (a process of another user counts as running). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp files `<path>.tmp-<pid>-*` that an earlier write of `path` left behind when its
 * process was killed mid-write (Ctrl-C in a synchronous write, SIGKILL, a crash): those whose
 * process is no longer running. Called before each atomic write of `path`.
 */
export function removeStaleTemps(path: string): void {
  const dir = nodePath.dirname(path);
  const prefix = `${nodePath.basename(path)}.tmp-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)-/.exec(name.slice(prefix.length))?.[1]);
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
    fs.rmSync(nodePath.join(dir, name), { force: true });
  }
}

/** `atomicWrite` as a job: `body` yields at its safe points (after a tensor); there `stop` ends it. */
function* atomicWriteJob(path: string, body: (fd: number) => Iterator<unknown>, stop?: StopFlag): Generator<void, void, void> {
  const dir = nodePath.dirname(path);
  let tmp = '';
  let fd: number | undefined;
  try {
    fs.mkdirSync(dir, { recursive: true });
    removeStaleTemps(path);
    let opened: number | undefined;
    for (let attempt = 0; opened === undefined; attempt++) {
      const candidate = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
      try {
        opened = fs.openSync(candidate, 'wx');
        tmp = candidate;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 5) throw e;
      }
    }
    fd = opened;
    for (const step = body(opened); step.next().done !== true; ) {
      yield;
      if (stop?.requested === true) throw new WriteInterrupted(`${path}: stopped (${stop.reason ?? 'stop requested'}); not written`);
    }
    fs.fsyncSync(opened);
    fs.closeSync(opened);
    fd = undefined;
    fs.renameSync(tmp, path);
    tmp = '';
    fsyncDir(dir);
  } catch (e) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // keep the original error
      }
    }
    if (tmp !== '') {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // keep the original error
      }
    }
    if (e instanceof SafetensorsError || e instanceof WriteInterrupted) throw e;
    throw new SafetensorsError('IO', path, undefined, `write failed: ${errorText(e)}`, { cause: e });
  }
}

/** Writes a small file (text or bytes) atomically, as the safetensors writers do (temp file, fsync, rename). */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  atomicWrite(path, (fd) => writeAll(fd, bytes));
}

/** fsyncs a folder (after renames inside it); a no-op where folders cannot be opened. */
export function syncFolder(dir: string): void {
  fsyncDir(dir);
}

/** Writes planned tensors atomically as one safetensors file; a job that yields after each tensor (`stop`: see atomicWriteJob). */
function* writePlannedJob(path: string, planned: readonly PlannedTensor[], metadata: ReadonlyArray<[string, string]>, stop?: StopFlag): Generator<void, number, void> {
  const head = buildHeader(planned, metadata, path);
  yield* atomicWriteJob(
    path,
    function* (fd) {
      writeAll(fd, head);
      for (const t of planned) {
        writeAll(fd, tensorBytes(t, path)); // lazy tensors are loaded one at a time here
        yield;
      }
    },
    stop,
  );
  return head.length + planned.reduce((s, t) => s + t.byteLength, 0);
}

export interface WriteResult {
  /** Size of the written file in bytes. */
  fileSize: number;
  /** Bytes of tensor data (the data buffer). */
  dataBytes: number;
}

/**
 * Writes tensors to a safetensors file, atomically (temp file in the same folder, fsync,
 * rename; on failure the temp file is removed and an existing `path` is untouched).
 *
 * Tensors are stored in the order given (array order, or the object's own property order,
 * in which integer-like keys come first). The header is padded with spaces so the data
 * buffer starts at a multiple of 8 bytes. Data is written tensor by tensor (no buffer of the
 * whole file is built); `LazyTensorData.load()` is called only when its turn comes.
 */
export function writeSafetensors(path: string, tensors: TensorEntries, metadata?: Record<string, string>): WriteResult {
  return runToEnd(writeSafetensorsJob(path, tensors, metadata));
}

/**
 * `writeSafetensors` as a job that yields after each tensor: run with `runYielding`, a set `stop`
 * ends it with WriteInterrupted (the temp file removed, `path` as it was).
 */
export function* writeSafetensorsJob(path: string, tensors: TensorEntries, metadata?: Record<string, string>, stop?: StopFlag): Generator<void, WriteResult, void> {
  const planned = planTensors(tensors, path);
  const meta = checkMetadata(metadata, path);
  const fileSize = yield* writePlannedJob(path, planned, meta, stop);
  return { fileSize, dataBytes: planned.reduce((s, t) => s + t.byteLength, 0) };
}

/** Serializes tensors into one in-memory safetensors image (same layout as `writeSafetensors`). */
export function serializeSafetensors(tensors: TensorEntries, metadata?: Record<string, string>): Uint8Array {
  const name = '<buffer>';
  const planned = planTensors(tensors, name);
  const head = buildHeader(planned, checkMetadata(metadata, name), name);
  const total = head.length + planned.reduce((s, t) => s + t.byteLength, 0);
  const out = new Uint8Array(total);
  out.set(head);
  let pos = head.length;
  for (const t of planned) {
    out.set(tensorBytes(t, name), pos);
    pos += t.byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Sharded checkpoints

export interface ShardedWriteOptions {
  /** Largest data size of one shard in bytes; a single tensor larger than this gets a shard of its own. */
  maxShardBytes: number;
  /** Stored as `__metadata__` in every shard (and in `model.safetensors` when not sharded). */
  metadata?: Record<string, string>;
  /** File name stem, default "model". */
  baseName?: string;
}

export interface ShardedWriteResult {
  /** Paths of the written safetensors files, in order. */
  files: string[];
  /** Path of the index JSON, when more than one shard was written. */
  indexFile: string | undefined;
  /** Sum of all tensors' data bytes (the index's metadata.total_size). */
  totalSize: number;
}

function checkBaseName(baseName: string, file: string): void {
  if (typeof baseName !== 'string' || baseName === '' || /[/\\]/.test(baseName) || baseName === '.' || baseName === '..') {
    throw new SafetensorsError('INVALID_ARGUMENT', file, undefined, `baseName must be a plain file name stem, got ${describe(baseName)}`);
  }
}

function shardFileName(baseName: string, i: number, n: number): string {
  return `${baseName}-${String(i).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

function removeIfExists(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SafetensorsError('IO', path, undefined, `cannot remove the outdated file: ${errorText(e)}`, { cause: e });
    }
  }
}

/**
 * Writes a checkpoint in the Hugging Face layout: when all tensors fit in `maxShardBytes`,
 * one `<baseName>.safetensors`; otherwise `<baseName>-00001-of-0000N.safetensors` ... plus
 * `<baseName>.safetensors.index.json` = `{"metadata": {"total_size": N}, "weight_map": {name: file}}`.
 * Tensors are assigned greedily in order. Each file is written atomically and the index last;
 * afterwards the other layout's entry file of the same baseName (a stale index or single
 * file) is removed so that `openCheckpoint(dir)` is unambiguous. Shards of an older, different
 * sharding are not removed.
 */
export function writeShardedSafetensors(dir: string, tensors: TensorEntries, options: ShardedWriteOptions): ShardedWriteResult {
  return runToEnd(shardedWriteJob(dir, tensors, options));
}

/**
 * `writeShardedSafetensors` as a job that yields after each tensor. Run with `runYielding`, a
 * SIGINT handler can set `stop`: then the write ends with WriteInterrupted, removing its temp file
 * and the shards it had completed (files of an earlier checkpoint in `dir` that it had not
 * replaced stay).
 */
export function* shardedWriteJob(dir: string, tensors: TensorEntries, options: ShardedWriteOptions, stop?: StopFlag): Generator<void, ShardedWriteResult, void> {
  const baseName = options?.baseName ?? 'model';
  checkBaseName(baseName, dir);
  const max = options?.maxShardBytes;
  if (typeof max !== 'number' || !Number.isSafeInteger(max) || max <= 0) {
    throw new SafetensorsError('INVALID_ARGUMENT', dir, undefined, `maxShardBytes must be a positive integer, got ${describe(max)}`);
  }
  const planned = planTensors(tensors, dir);
  const meta = checkMetadata(options.metadata, dir);
  const shards: PlannedTensor[][] = [];
  let current: PlannedTensor[] = [];
  let currentBytes = 0;
  for (const t of planned) {
    if (current.length > 0 && currentBytes + t.byteLength > max) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += t.byteLength;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  const totalSize = planned.reduce((s, t) => s + t.byteLength, 0);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new SafetensorsError('IO', dir, undefined, `cannot create the folder: ${errorText(e)}`, { cause: e });
  }
  const singlePath = nodePath.join(dir, `${baseName}.safetensors`);
  const indexPath = nodePath.join(dir, `${baseName}.safetensors.index.json`);
  if (shards.length === 1) {
    yield* writePlannedJob(singlePath, shards[0], meta, stop);
    removeIfExists(indexPath);
    return { files: [singlePath], indexFile: undefined, totalSize };
  }
  const files: string[] = [];
  const weightMap: string[] = [];
  try {
    for (const [i, shard] of shards.entries()) {
      const name = shardFileName(baseName, i + 1, shards.length);
      const p = nodePath.join(dir, name);
      yield* writePlannedJob(p, shard, meta, stop);
      files.push(p);
      for (const t of shard) weightMap.push(`    ${JSON.stringify(t.name)}: ${JSON.stringify(name)}`);
    }
  } catch (e) {
    if (e instanceof WriteInterrupted) for (const f of files) fs.rmSync(f, { force: true });
    throw e;
  }
  const index = `{\n  "metadata": {\n    "total_size": ${totalSize}\n  },\n  "weight_map": {\n${weightMap.join(',\n')}\n  }\n}\n`;
  atomicWrite(indexPath, (fd) => writeAll(fd, Buffer.from(index, 'utf8')));
  removeIfExists(singlePath);
  return { files, indexFile: indexPath, totalSize };
}

/**
 * A lazy tensor that reads `name` from `reader` only when a writer needs its data, e.g. to
 * re-shard or convert a checkpoint while holding one tensor in memory at a time:
 * `writeShardedSafetensors(dir, ck.names().map((n) => [n, lazyTensorFrom(ck, n)]), opts)`.
 */
export function lazyTensorFrom(reader: TensorReader, name: string): LazyTensorData {
  const info = reader.info(name);
  return { dtype: info.dtype, shape: info.shape, load: () => reader.read(name).data } as LazyTensorData;
}

/** Where one tensor of a checkpoint lives. */
export interface CheckpointTensorInfo extends TensorInfo {
  /** Path of the safetensors file holding it. */
  file: string;
}

/**
 * A single safetensors file or a sharded checkpoint behind one API. Every shard's header is
 * parsed and validated when opening; tensor data is read lazily, one tensor per `read`.
 */
export class Checkpoint implements TensorReader {
  /** The path given to `openCheckpoint`. */
  readonly path: string;
  /** The index JSON path for sharded checkpoints. */
  readonly indexFile: string | undefined;
  /** Metadata of all files (for shards: merged in shard order, the first value of a key wins). */
  readonly metadata: Record<string, string>;
  /** index.json `metadata.total_size` when present (not checked against the data, as tools disagree on it). */
  readonly totalSize: number | undefined;
  private readonly shards: SafetensorsFile[];
  private readonly where: Map<string, SafetensorsFile>;

  /** Use `openCheckpoint`. */
  constructor(path: string, indexFile: string | undefined, shards: SafetensorsFile[], where: Map<string, SafetensorsFile>, totalSize: number | undefined) {
    this.path = path;
    this.indexFile = indexFile;
    this.shards = shards;
    this.where = where;
    this.totalSize = totalSize;
    const metadata: Record<string, string> = {};
    for (const s of shards) {
      for (const [k, v] of Object.entries(s.metadata)) if (!hasOwn(metadata, k)) setOwn(metadata, k, v);
    }
    this.metadata = metadata;
  }

  get sharded(): boolean {
    return this.indexFile !== undefined;
  }

  /** Paths of the safetensors files, in shard order. */
  get files(): string[] {
    return this.shards.map((s) => s.path);
  }

  /** Tensor names: shard order, then data order inside each shard. */
  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  info(name: string): CheckpointTensorInfo {
    const f = this.shardOf(name);
    return { ...f.info(name), file: f.path };
  }

  read(name: string, opts?: ReadOptions): TensorData {
    return this.shardOf(name).read(name, opts);
  }

  readAs(name: string, target: 'f32'): TensorData<'F32'>;
  readAs(name: string, target: 'f64'): TensorData<'F64'>;
  readAs(name: string, target: ReadTarget): TensorData<'F32'> | TensorData<'F64'> {
    const f = this.shardOf(name);
    return convertTensor(f.read(name), target, f.path, name);
  }

  close(): void {
    for (const s of this.shards) s.close();
  }

  private shardOf(name: string): SafetensorsFile {
    const f = this.where.get(name);
    if (f === undefined) {
      throw new SafetensorsError('NOT_FOUND', this.indexFile ?? this.path, name, `no such tensor (the checkpoint has ${this.where.size} tensors)`);
    }
    return f;
  }
}

function statOrUndefined(p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new SafetensorsError('IO', p, undefined, `cannot stat: ${errorText(e)}`, { cause: e });
  }
}

function singleCheckpoint(path: string): Checkpoint {
  const f = openSafetensors(path);
  const where = new Map<string, SafetensorsFile>();
  for (const n of f.names()) where.set(n, f);
  return new Checkpoint(path, undefined, [f], where, undefined);
}

function shardedCheckpoint(path: string, indexPath: string): Checkpoint {
  let raw: Buffer;
  try {
    const st = fs.statSync(indexPath);
    if (st.size > MAX_HEADER_BYTES) {
      throw new SafetensorsError('INVALID_INDEX', indexPath, undefined, `index is ${st.size} bytes, above the limit of ${MAX_HEADER_BYTES}`);
    }
    raw = fs.readFileSync(indexPath);
  } catch (e) {
    if (e instanceof SafetensorsError) throw e;
    throw new SafetensorsError('IO', indexPath, undefined, `cannot read: ${errorText(e)}`, { cause: e });
  }
  const { value: index } = parseJsonObject(raw, indexPath, 'INVALID_INDEX', 'index', 0);
  let totalSize: number | undefined;
  const meta = index.metadata;
  if (meta !== undefined && meta !== null) {
    if (!isPlainObject(meta)) throw new SafetensorsError('INVALID_INDEX', indexPath, undefined, `"metadata" must be an object, got ${describe(meta)}`);
    const ts = meta.total_size;
    if (ts !== undefined) {
      if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) {
        throw new SafetensorsError('INVALID_INDEX', indexPath, undefined, `"metadata.total_size" must be a non-negative integer, got ${describe(ts)}`);
      }
      totalSize = ts;
    }
  }
  const weightMap = index.weight_map;
  if (!isPlainObject(weightMap)) {
    throw new SafetensorsError('INVALID_INDEX', indexPath, undefined, `"weight_map" must be an object {tensor: file}, got ${describe(weightMap)}`);
  }
  const dir = nodePath.dirname(indexPath);
  const shardNames: string[] = [];
  const seenShards = new Set<string>();
  const mapped = new Map<string, string>();
  for (const tensor of Object.keys(weightMap)) {
    const file = weightMap[tensor];
    if (typeof file !== 'string') throw new SafetensorsError('INVALID_INDEX', indexPath, tensor, `weight_map value must be a file name, got ${describe(file)}`);
    const norm = nodePath.normalize(file);
    if (file === '' || nodePath.isAbsolute(file) || norm === '.' || norm.split(/[/\\]/).includes('..')) {
      throw new SafetensorsError('INVALID_INDEX', indexPath, tensor, `weight_map file ${quote(file)} must be a relative path inside the checkpoint folder`);
    }
    if (!seenShards.has(norm)) {
      seenShards.add(norm);
      shardNames.push(norm);
    }
    mapped.set(tensor, norm);
  }
  // Shards in name order (the -0000i-of- numbering), so names() follows the checkpoint order.
  shardNames.sort();
  const opened: SafetensorsFile[] = [];
  try {
    const byFile = new Map<string, SafetensorsFile>();
    for (const file of shardNames) {
      const p = nodePath.join(dir, file);
      if (statOrUndefined(p) === undefined) {
        const example = [...mapped].find(([, f]) => f === file)?.[0] ?? '';
        throw new SafetensorsError('INVALID_INDEX', indexPath, example, `is mapped to shard ${quote(file)}, which does not exist (${p})`);
      }
      const f = openSafetensors(p);
      opened.push(f);
      byFile.set(file, f);
    }
    const where = new Map<string, SafetensorsFile>();
    for (const file of shardNames) {
      const f = byFile.get(file) as SafetensorsFile;
      for (const tensor of f.names()) {
        const target = mapped.get(tensor);
        if (target === undefined) {
          throw new SafetensorsError('INVALID_INDEX', indexPath, tensor, `is stored in shard ${quote(file)} but missing from the weight_map`);
        }
        if (target !== file) {
          const twice = byFile.get(target)?.has(tensor) === true;
          throw new SafetensorsError(twice ? 'DUPLICATE' : 'INVALID_INDEX', indexPath, tensor, `is stored in shard ${quote(file)} but the weight_map maps it to ${quote(target)}${twice ? ', which holds it too (appears twice)' : ''}`);
        }
        where.set(tensor, f);
      }
    }
    for (const [tensor, file] of mapped) {
      if (!where.has(tensor)) {
        throw new SafetensorsError('INVALID_INDEX', indexPath, tensor, `is mapped to shard ${quote(file)}, which does not contain it`);
      }
    }
    return new Checkpoint(path, indexPath, opened, where, totalSize);
  } catch (e) {
    for (const f of opened) f.close();
    throw e;
  }
}

export interface OpenCheckpointOptions {
  /** File name stem looked for in a folder, default "model". */
  baseName?: string;
}

/**
 * Opens a checkpoint: a safetensors file, a `*.safetensors.index.json` file, or a folder with
 * `<baseName>.safetensors` or `<baseName>.safetensors.index.json` (not both). For sharded
 * checkpoints every mapped shard must exist and contain its tensors, and every tensor must be
 * stored exactly once and listed in the index.
 */
export function openCheckpoint(path: string, options?: OpenCheckpointOptions): Checkpoint {
  const baseName = options?.baseName ?? 'model';
  checkBaseName(baseName, path);
  const st = statOrUndefined(path);
  if (st === undefined) throw new SafetensorsError('IO', path, undefined, 'no such file or folder');
  if (st.isFile()) {
    if (path.endsWith('.index.json')) return shardedCheckpoint(path, path);
    return singleCheckpoint(path);
  }
  if (!st.isDirectory()) throw new SafetensorsError('IO', path, undefined, 'not a file or folder');
  const single = nodePath.join(path, `${baseName}.safetensors`);
  const index = nodePath.join(path, `${baseName}.safetensors.index.json`);
  const hasSingle = statOrUndefined(single) !== undefined;
  const hasIndex = statOrUndefined(index) !== undefined;
  if (hasSingle && hasIndex) {
    throw new SafetensorsError('INVALID_INDEX', path, undefined, `holds both ${baseName}.safetensors and ${baseName}.safetensors.index.json; remove the stale one`);
  }
  if (hasIndex) return shardedCheckpoint(path, index);
  if (hasSingle) return singleCheckpoint(single);
  throw new SafetensorsError('NOT_FOUND', path, undefined, `folder has neither ${baseName}.safetensors nor ${baseName}.safetensors.index.json`);
}
