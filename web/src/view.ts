/** DOM drawing of the page's results: word chips, the byte heat strip, the divergence view. */
import type { CompareResult, ScoreResult, WordSpan } from './api.js';

const utf8 = new TextEncoder();

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls !== undefined) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A visible form of a word: spaces and line breaks shown as symbols. */
export function visible(s: string): string {
  return s.replace(/ /g, '␣').replace(/\n/g, '⏎').replace(/\t/g, '⇥');
}

/** Word chips; words starting at byte `generatedFrom` or later are styled as generated. */
export function drawChips(list: HTMLElement, words: readonly WordSpan[], generatedFrom = Infinity): void {
  list.replaceChildren(
    ...words.map((w) => {
      const li = el('li', w.start >= generatedFrom ? 'chip generated' : 'chip', visible(w.text));
      li.title = `bytes ${w.start}..${w.end}`;
      return li;
    }),
  );
}

/** Colour of probability p: red (0) through yellow to green (1), on a square-root scale. */
export function heatColour(p: number): string {
  const hue = Math.round(120 * Math.sqrt(Math.min(1, Math.max(0, p))));
  return `hsl(${hue} 70% 58%)`;
}

/** The characters of a word with the byte range each one covers (a special-token word is one unit). */
function charsOf(w: WordSpan): { text: string; start: number; end: number }[] {
  const chars = Array.from(w.text);
  const lens = chars.map((c) => utf8.encode(c).length);
  if (lens.reduce((a, b) => a + b, 0) !== w.end - w.start) return [{ text: w.text, start: w.start, end: w.end }];
  const out: { text: string; start: number; end: number }[] = [];
  let s = w.start;
  chars.forEach((c, i) => {
    out.push({ text: c, start: s, end: s + lens[i] });
    s += lens[i];
  });
  return out;
}

/** The heat strip: a cell per character (the product of its bytes' probabilities), grouped by word. */
export function drawHeat(strip: HTMLElement, r: ScoreResult): void {
  const groups = r.words.map((w) => {
    const g = el('span', 'heat-word');
    for (const c of charsOf(w)) {
      let p: number | null = 1;
      for (let b = c.start; b < c.end; b++) {
        const q = r.byte_probs[b];
        p = q === null || p === null ? null : p * q;
      }
      const cell = el('span', p === null ? 'heat-byte no-context' : 'heat-byte', visible(c.text));
      if (p !== null) cell.style.background = heatColour(p);
      cell.title = p === null ? `${JSON.stringify(c.text)}: first byte, no context` : `${JSON.stringify(c.text)}: p = ${p.toFixed(3)}`;
      cell.dataset.p = p === null ? '' : String(p);
      g.append(cell);
    }
    return g;
  });
  strip.replaceChildren(...groups);
  strip.setAttribute('aria-label', r.bpb === null ? 'too short to score' : `per-byte probabilities, ${r.bpb.toFixed(3)} bits per byte`);
}

/**
 * The base continuation with its divergent bytes highlighted (class `byte divergent`), the words
 * holding them underlined (`word divergent`) and the first divergent byte marked (`byte fdt`,
 * preceded by an `fdt-marker` element), after the prompt (muted).
 */
export function drawDivergence(box: HTMLElement, r: CompareResult, prompt: string): void {
  const divergent = new Set(r.divergent_bytes);
  const divWords = new Set(r.divergent_words);
  const parts = r.base_words.map((w, j) => {
    const ws = el('span', divWords.has(j) ? 'word divergent' : 'word');
    if (divWords.has(j)) ws.title = `word ${j}: divergent`;
    for (const c of charsOf(w)) {
      let hit = false;
      let first = false;
      for (let b = c.start; b < c.end; b++) {
        if (divergent.has(b)) hit = true;
        if (b === r.fdt_bytes) first = true;
      }
      if (first) {
        const m = el('span', 'fdt-marker', 'FDT');
        m.setAttribute('role', 'note');
        m.setAttribute('aria-label', `first divergent byte at position ${r.fdt_bytes}`);
        ws.append(m);
      }
      const cs = el('span', first ? 'byte divergent fdt' : hit ? 'byte divergent' : 'byte', c.text);
      if (hit) cs.title = `byte ${c.start}: the quantized model predicts another byte here`;
      ws.append(cs);
    }
    return ws;
  });
  box.replaceChildren(el('span', 'prompt-echo', prompt), ...parts);
}

/** The quantized model's own text after the prompt (muted): the prefix it shares with the base text plain, the rest marked. */
export function drawOwnText(box: HTMLElement, own: string, base: string, prompt: string): void {
  const a = Array.from(own);
  const b = Array.from(base);
  let k = 0;
  while (k < a.length && k < b.length && a[k] === b[k]) k++;
  const same = el('span', 'same', a.slice(0, k).join(''));
  const rest = el('span', 'differs', a.slice(k).join(''));
  if (k < a.length) rest.title = `differs from the base text from character ${k} on`;
  box.replaceChildren(el('span', 'prompt-echo', prompt), same, rest);
}
