/** Messages between the page and the static build's Web Worker (./worker.ts). */
import type { GenerateParams } from './api.js';

export type Request =
  | { id: number; op: 'init'; baseUrl: string }
  | { id: number; op: 'generate'; params: GenerateParams }
  | { id: number; op: 'cancel'; target: number }
  | { id: number; op: 'split'; text: string }
  | { id: number; op: 'score'; text: string; model: string }
  | { id: number; op: 'compare'; prompt: string; maxTokens: number };

export type Reply =
  /** loading progress, shown in the status line */
  | { type: 'status'; text: string }
  /** a piece of generated text of request `id` */
  | { type: 'text'; id: number; text: string }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; message: string };

/** What `init` answers. */
export interface WorkerInfo {
  backend: string;
  models: string[];
  quantizedLabel: string;
  /** seconds spent loading and quantizing */
  loadSeconds: number;
}
