/**
 * The OpenAI-compatible request and response shapes of `/v1/completions` and
 * `/v1/chat/completions`.
 *
 * Units: a HAT model generates bytes, so `max_tokens` counts BYTES of generated UTF-8 and the
 * `usage` numbers are bytes (`prompt_tokens` = prompt bytes, `completion_tokens` = generated
 * bytes). Sampling: `temperature` (0 = greedy, default 0.8), `top_p` (default 0.95; both the defaults of
 * every tfree generator, SAMPLING_DEFAULTS), `seed` (default
 * 0: the same request gives the same text), `stop` (a string or up to 4), and the extension
 * `top_k`. `n` must be 1. `finish_reason` is "length" when `max_tokens` bytes were generated,
 * else "stop" (a stop string or the end-of-text byte).
 *
 * Chat template: the released models' Llama 3 template (src/models/hat/chat.ts; `developer`
 * counts as `system`; without a system message the reference's default one is put first); the
 * reply stops at the end-of-turn byte (<|eot_id|> = 192, the eos) or at `<|eot_id|>` /
 * `<|start_header_id|>` written as text.
 */
import { Fields, HttpError } from './http.js';
import type { GenerationParams } from './ops.js';
import { SAMPLING_DEFAULTS } from '../nn/index.js';
import { CHAT_STOP_STRINGS, llama3ChatPrompt, type ChatRole } from '../models/hat/chat.js';

export interface Limits {
  /** most bytes of a prompt (completions: the prompt; chat: the templated conversation) */
  maxPromptBytes: number;
  /** largest max_tokens (bytes) a request may ask for */
  maxTokensLimit: number;
  /** most admitted requests (running and waiting) */
  maxQueue: number;
  /** largest request body */
  maxBodyBytes: number;
}

export const DEFAULT_LIMITS: Limits = { maxPromptBytes: 8192, maxTokensLimit: 2048, maxQueue: 64, maxBodyBytes: 65536 };

/** max_tokens when a request gives none. */
export const DEFAULT_MAX_TOKENS = 256;

export interface GenRequest {
  model: string;
  prompt: string;
  params: GenerationParams;
  stream: boolean;
  includeUsage: boolean;
}

const ROLES: Record<string, ChatRole> = { system: 'system', user: 'user', assistant: 'assistant', developer: 'system' };

/** The chat template (see the file comment). */
export function chatPrompt(messages: readonly { role: string; content: string }[]): string {
  return llama3ChatPrompt(messages.map((m) => ({ role: ROLES[m.role], content: m.content })));
}

function messageContent(v: unknown, i: number): string {
  if (typeof v === 'string') return v;
  // content parts: [{type: "text", text}]
  if (Array.isArray(v) && v.every((p) => typeof p === 'object' && p !== null && (p as Record<string, unknown>).type === 'text' && typeof (p as Record<string, unknown>).text === 'string')) {
    return v.map((p) => (p as { text: string }).text).join('');
  }
  throw new HttpError(400, `messages[${i}].content must be a string (or text parts)`, `messages[${i}].content`, 'invalid_type');
}

function parseMessages(v: unknown): { role: string; content: string }[] {
  if (!Array.isArray(v) || v.length === 0) throw new HttpError(400, '"messages" must be a non-empty array of {role, content}', 'messages', 'invalid_type');
  return v.map((m, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new HttpError(400, `messages[${i}] must be an object {role, content}`, `messages[${i}]`, 'invalid_type');
    const o = m as Record<string, unknown>;
    if (typeof o.role !== 'string' || !(o.role in ROLES)) throw new HttpError(400, `messages[${i}].role must be one of ${Object.keys(ROLES).join(', ')}`, `messages[${i}].role`, 'invalid_value');
    return { role: o.role, content: messageContent(o.content, i) };
  });
}

/** top_p in (0, 1] (default SAMPLING_DEFAULTS.topP). */
function topP(f: Fields): number {
  const p = f.number('top_p', 0, 1) ?? SAMPLING_DEFAULTS.topP;
  if (p === 0) throw new HttpError(400, '"top_p" must be in (0, 1], got 0', 'top_p', 'out_of_range');
  return p;
}

/** Parses and checks a completion (`chat` false) or chat completion request body. */
export function parseGenRequest(body: Record<string, unknown>, chat: boolean, limits: Limits): GenRequest {
  const f = new Fields(body);
  const model = f.string('model') ?? 'base';
  let prompt: string;
  if (chat) prompt = chatPrompt(parseMessages(body.messages));
  else {
    const p = body.prompt;
    if (typeof p === 'string') prompt = p;
    else if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') prompt = p[0];
    else if (p === undefined || p === null) throw new HttpError(400, 'missing required field "prompt"', 'prompt', 'missing_field');
    else throw new HttpError(400, '"prompt" must be a string (or an array of one string)', 'prompt', 'invalid_type');
  }
  const promptBytes = Buffer.byteLength(prompt);
  if (promptBytes === 0) throw new HttpError(400, 'the prompt is empty; a HAT model predicts each byte from the bytes before it, so give at least one byte', chat ? 'messages' : 'prompt', 'invalid_value');
  if (promptBytes > limits.maxPromptBytes) {
    throw new HttpError(400, `the prompt is ${promptBytes} bytes, over the limit of ${limits.maxPromptBytes} (--max-prompt-bytes)`, chat ? 'messages' : 'prompt', 'context_length_exceeded');
  }
  const maxName = chat && f.has('max_completion_tokens') ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = f.int(maxName, 0, Number.MAX_SAFE_INTEGER) ?? Math.min(DEFAULT_MAX_TOKENS, limits.maxTokensLimit);
  if (maxTokens > limits.maxTokensLimit) {
    throw new HttpError(400, `"${maxName}" is ${maxTokens} bytes, over the limit of ${limits.maxTokensLimit} (--max-tokens-limit; tokens are bytes here)`, maxName, 'out_of_range');
  }
  const n = f.int('n', 1, 1_000_000);
  if (n !== undefined && n !== 1) throw new HttpError(400, '"n" must be 1 (one choice per request)', 'n', 'out_of_range');
  const stop = f.strings('stop', 4)?.filter((s) => s !== '') ?? [];
  if (chat) stop.push(...CHAT_STOP_STRINGS);
  const opts = body.stream_options;
  if (opts !== undefined && opts !== null && (typeof opts !== 'object' || Array.isArray(opts))) throw new HttpError(400, '"stream_options" must be an object', 'stream_options', 'invalid_type');
  const usage = opts === undefined || opts === null ? undefined : (opts as Record<string, unknown>).include_usage;
  // a string such as "yes" was read as false without a word; OpenAI's API refuses it
  if (usage !== undefined && usage !== null && typeof usage !== 'boolean') {
    throw new HttpError(400, `"stream_options.include_usage" must be true or false, got ${usage === null ? 'null' : Array.isArray(usage) ? 'array' : typeof usage}`, 'stream_options.include_usage', 'invalid_type');
  }
  const includeUsage = usage === true;
  return {
    model,
    prompt,
    stream: f.boolean('stream') ?? false,
    includeUsage,
    params: {
      maxBytes: maxTokens,
      temperature: f.number('temperature', 0, 2) ?? SAMPLING_DEFAULTS.temperature,
      topP: topP(f),
      topK: f.int('top_k', 0, 256) ?? 0,
      seed: f.int('seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) ?? 0,
      stop,
    },
  };
}

export type FinishReason = 'stop' | 'length';

export function usage(promptBytes: number, completionBytes: number): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: promptBytes, completion_tokens: completionBytes, total_tokens: promptBytes + completionBytes };
}

let counter = 0;

/** An id for a response (`cmpl-...` / `chatcmpl-...`). */
export function responseId(chat: boolean): string {
  counter++;
  return `${chat ? 'chatcmpl' : 'cmpl'}-${Date.now().toString(36)}${counter.toString(36)}`;
}

/** The streaming chunk of a piece of text (or the last chunk, with the finish reason). */
export function streamChunk(chat: boolean, id: string, created: number, model: string, text: string | null, finish: FinishReason | null, first: boolean): unknown {
  if (chat) {
    const delta: Record<string, string> = {};
    if (first) delta.role = 'assistant';
    if (text !== null) delta.content = text;
    return { id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
  }
  return { id, object: 'text_completion', created, model, choices: [{ text: text ?? '', index: 0, logprobs: null, finish_reason: finish }] };
}

/** The whole (non-streaming) response. */
export function fullResponse(chat: boolean, id: string, created: number, model: string, text: string, finish: FinishReason, promptBytes: number, completionBytes: number): unknown {
  const u = usage(promptBytes, completionBytes);
  if (chat) {
    return { id, object: 'chat.completion', created, model, choices: [{ index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: finish }], usage: u };
  }
  return { id, object: 'text_completion', created, model, choices: [{ text, index: 0, logprobs: null, finish_reason: finish }], usage: u };
}
