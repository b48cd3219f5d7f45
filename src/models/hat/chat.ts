/**
 * The chat format of the released TFree-HAT SFT/DPO models: the Llama 3 template of the
 * reference code (`LLAMA_TEMPLATE` in the HF `model.py`, ../shared/specs/hat.md §1.2):
 *
 *   <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>
 *   <|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|>
 *   <|start_header_id|>assistant<|end_header_id|>\n\n
 *
 * (one line here per message; the real text has no line breaks between them). The special
 * strings go through the splitter: those in the config's `special_token_dict` become their
 * one-byte words (`<|eot_id|>` -> 192 is the only confirmed one), the others stay plain text,
 * as in the reference. A reply ends at the end-of-turn byte (`<|eot_id|>`'s id, else the
 * eos_token_id), or when the model writes `<|eot_id|>` or `<|start_header_id|>` as text.
 *
 * The reference's default system message begins "You are a helpful assistant."; the rest of its
 * text is not known (the spec elides it), so DEFAULT_SYSTEM is that first sentence.
 */
import type { HATConfig } from './config.js';

export const LLAMA3_TOKENS = {
  beginOfText: '<|begin_of_text|>',
  startHeader: '<|start_header_id|>',
  endHeader: '<|end_header_id|>',
  endOfTurn: '<|eot_id|>',
} as const;

export const DEFAULT_SYSTEM = 'You are a helpful assistant.';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

function block(role: string, content: string): string {
  const t = LLAMA3_TOKENS;
  return `${t.startHeader}${role}${t.endHeader}\n\n${content}${t.endOfTurn}`;
}

/**
 * The Llama 3 prompt of a conversation, ending with the assistant header (the reply follows).
 * Without a system message first, `system` (default DEFAULT_SYSTEM; '' for none) is put first.
 */
export function llama3ChatPrompt(messages: readonly ChatMessage[], opts: { system?: string } = {}): string {
  let out = LLAMA3_TOKENS.beginOfText;
  const sys = opts.system ?? DEFAULT_SYSTEM;
  if ((messages.length === 0 || messages[0].role !== 'system') && sys !== '') out += block('system', sys);
  for (const m of messages) out += block(m.role, m.content);
  return `${out}${LLAMA3_TOKENS.startHeader}assistant${LLAMA3_TOKENS.endHeader}\n\n`;
}

/** Stop strings of a chat reply written as text (when the model spells the tokens out). */
export const CHAT_STOP_STRINGS: readonly string[] = Object.freeze([LLAMA3_TOKENS.endOfTurn, LLAMA3_TOKENS.startHeader]);

/** The end-of-turn byte of a model: `<|eot_id|>`'s id in special_token_dict, else eos_token_id. */
export function endOfTurnByte(cfg: HATConfig): number {
  const id = cfg.special_token_dict[LLAMA3_TOKENS.endOfTurn];
  return id ?? cfg.eos_token_id;
}
