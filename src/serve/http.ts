/**
 * HTTP plumbing of `tfree serve`: JSON bodies with a size limit, OpenAI-style JSON errors,
 * server-sent events, and typed readers of request fields that fail with a 400 naming the field.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A request the server refuses: status, message, and the OpenAI error fields. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** `{"error":{"message","type","param","code"}}` */
export function errorBody(status: number, message: string, param: string | null, code: string | null): string {
  const type = status >= 500 ? 'server_error' : status === 429 ? 'rate_limit_error' : status === 404 ? 'not_found_error' : 'invalid_request_error';
  return JSON.stringify({ error: { message, type, param, code } });
}

/** Writes a JSON response unless the client is gone or headers were sent. */
export function sendJson(res: ServerResponse, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...extraHeaders });
  res.end(text);
}

export function sendError(res: ServerResponse, e: HttpError): void {
  sendJson(res, e.status, errorBody(e.status, e.message, e.param, e.code), e.status === 405 ? { allow: 'GET, POST' } : {});
}

/** Reads the whole body (at most `limit` bytes: 413 beyond) and parses it as a JSON object. */
export async function readJsonObject(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new HttpError(413, `the request body is ${declared} bytes, over the limit of ${limit} (--max-body-bytes)`, null, 'body_too_large');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > limit) {
        req.resume();
        throw new HttpError(413, `the request body is over the limit of ${limit} bytes (--max-body-bytes)`, null, 'body_too_large');
      }
      chunks.push(b);
    }
  } catch (e) {
    if (e instanceof HttpError) throw e;
    // the client closed the connection before its body ended: not a server error (nothing to log)
    throw new HttpError(400, `the request body ended early (${(e as Error).message})`, null, 'incomplete_body');
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'the request body is empty; send a JSON object', null, 'invalid_json');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `the request body is not valid JSON: ${(e as Error).message}`, null, 'invalid_json');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'the request body must be a JSON object', null, 'invalid_json');
  return v as Record<string, unknown>;
}

// ---- typed fields ---------------------------------------------------------------------------

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function bad(param: string, want: string, v: unknown): HttpError {
  return new HttpError(400, `"${param}" must be ${want}, got ${typeName(v)}${typeof v === 'number' || typeof v === 'boolean' ? ` ${String(v)}` : ''}`, param, 'invalid_type');
}

/** Field readers over one JSON body: absent (or null) fields give undefined. */
export class Fields {
  constructor(private readonly body: Record<string, unknown>) {}

  has(name: string): boolean {
    return this.body[name] !== undefined && this.body[name] !== null;
  }

  raw(name: string): unknown {
    return this.body[name];
  }

  string(name: string): string | undefined {
    const v = this.body[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw bad(name, 'a string', v);
    return v;
  }

  requiredString(name: string): string {
    const v = this.string(name);
    if (v === undefined) throw new HttpError(400, `missing required field "${name}"`, name, 'missing_field');
    return v;
  }

  number(name: string, lo: number, hi: number): number | undefined {
    const v = this.body[name];
    if (v === undefined || v === null) return undefined;
    // a JSON number too large for a double (1e999) parses as Infinity: "a finite number", not "a number, got number Infinity"
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(name, typeof v === 'number' ? 'a finite number' : 'a number', v);
    if (v < lo || v > hi) throw new HttpError(400, `"${name}" must be in [${lo}, ${hi}], got ${v}`, name, 'out_of_range');
    return v;
  }

  int(name: string, lo: number, hi: number): number | undefined {
    const v = this.number(name, lo, hi);
    if (v !== undefined && !Number.isInteger(v)) throw bad(name, 'an integer', v);
    return v;
  }

  boolean(name: string): boolean | undefined {
    const v = this.body[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw bad(name, 'true or false', v);
    return v;
  }

  /** A string or an array of strings (OpenAI's `stop`), at most `max` entries. */
  strings(name: string, max: number): string[] | undefined {
    const v = this.body[name];
    if (v === undefined || v === null) return undefined;
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) throw bad(name, 'a string or an array of strings', v);
    if (list.length > max) throw new HttpError(400, `"${name}" holds ${list.length} entries, at most ${max} are allowed`, name, 'out_of_range');
    return list as string[];
  }
}

// ---- server-sent events ---------------------------------------------------------------------

/** Starts an event stream (200, text/event-stream). */
export function startEvents(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  res.flushHeaders();
}

/** One `data: ...` event (a JSON value or the final `[DONE]`); false when the client is gone. */
export function sendEvent(res: ServerResponse, data: unknown): boolean {
  if (res.destroyed || res.writableEnded) return false;
  res.write(`data: ${data === '[DONE]' ? '[DONE]' : JSON.stringify(data)}\n\n`);
  return true;
}
