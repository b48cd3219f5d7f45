/**
 * The progress bar of the long commands: a job stopped short (Ctrl-C) shows the count it reached,
 * not 100%, and a finished bar is drawn once (finish() after the last update() drew it).
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { Progress } from '../../src/cli/progress.js';

/** A stream that keeps what is written; `tty` as a terminal or a log file. */
function capture(tty: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream: Object.assign(w, { isTTY: tty }) as unknown as NodeJS.WriteStream, text: () => text };
}

for (const tty of [false, true]) {
  test(`Progress (${tty ? 'terminal' : 'log'}): stop() shows where the job stopped; finish() after the last update() draws the full bar once`, () => {
    const a = capture(tty);
    const p = new Progress({ total: 200, label: 'train', stream: a.stream, plainIntervalMs: 0 });
    p.update(29, 'loss 3.2');
    p.stop('loss 3.2');
    const last = (a.text().trimEnd().split(/[\r\n]/).pop() ?? '').replace('\u001b[K', '');
    assert.match(last, /^train \[#{3}\.{21}\] +\d+% 29\/200 .* \| loss 3\.2$/);
    assert.doesNotMatch(a.text(), /100%/);
    p.stop('', 30); // the count done when it is known only at the stop
    assert.match(a.text().trimEnd().split(/[\r\n]/).pop() ?? '', / 30\/200 /);

    const b = capture(tty);
    const q = new Progress({ total: 4, label: 'sweep', stream: b.stream, plainIntervalMs: 0 });
    for (let i = 1; i <= 4; i++) q.update(i);
    q.finish();
    assert.equal(b.text().match(/100% 4\/4/g)?.length, 1, JSON.stringify(b.text()));
    assert.ok(b.text().endsWith('\n'));
  });
}
