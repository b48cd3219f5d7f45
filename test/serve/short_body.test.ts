/**
 * A client that sends a shorter body than it announced and closes the connection is the
 * client's business: the server logs no stack for it (issue 16 item 11) and keeps serving.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { HatSplitter } from '../../src/models/hat/splitter.js';
import { TfreeServer } from '../../src/serve/server.js';
import { randomModel, testConfig } from '../hat/util.js';

test('a short body then a closed connection: no stack in the log, the server still answers', async () => {
  const model = randomModel(testConfig({ window: 16 }), 2, 0.3);
  const logs: string[] = [];
  const server = new TfreeServer({ models: { splitter: new HatSplitter({ maxWordSize: model.config.max_word_size }), base: model }, log: (l) => logs.push(l) });
  const url = new URL(await server.listen(0, '127.0.0.1'));
  try {
    for (const path of ['/v1/completions', '/v1/chat/completions', '/tfree/split']) {
      await new Promise<void>((resolve) => {
        const s = connect(Number(url.port), '127.0.0.1', () => {
          s.write(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"prompt": "ab`);
          setTimeout(() => {
            s.destroy();
            resolve();
          }, 50);
        });
        s.on('error', () => {});
      });
    }
    await new Promise((r) => setTimeout(r, 200));
    const lines = logs.join('\n').split('\n').filter((l) => l !== '');
    assert.ok(lines.length <= 3, logs.join('\n'));
    assert.ok(!lines.some((l) => /^\s+at /.test(l)), `no stack: ${logs.join('\n')}`);
    const ok = await fetch(`${url.origin}/health`);
    assert.equal(ok.status, 200);
  } finally {
    await server.close(100);
  }
});
