import * as readline from 'node:readline';
import type { CommandSpec } from '../args.js';
import { UserError } from '../errors.js';
import { checkStdinNotFolder } from '../resources.js';
import { INVALID_UTF8_OPTION, QUANTIZE_BLOCK_OPTION, QUANTIZE_OPTION, invalidUtf8Option, loadHATForCli, quantizeOption } from '../hat_model.js';
import { generateStream } from '../../models/hat/generate.js';
import { SAMPLING_DEFAULTS } from '../../nn/index.js';
import { CHAT_STOP_STRINGS, DEFAULT_SYSTEM, endOfTurnByte, llama3ChatPrompt, type ChatMessage } from '../../models/hat/chat.js';

export const chatCommand: CommandSpec = {
  name: 'chat',
  summary: 'multi-turn chat with a HAT model (Llama 3 template, streamed replies)',
  usage: 'tfree chat [--model DIR] [--quantize FORMAT] [--system TEXT] [--max-bytes N] [--greedy] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--show-prompt]',
  details: [
    'Each input line is a user turn; the reply streams as it is generated and ends at the',
    'end-of-turn byte (<|eot_id|>, 192), at <|eot_id|> or <|start_header_id|> written as text, or',
    'after --max-bytes bytes. The conversation is formatted with the released models\' Llama 3',
    'template (docs/hat.md, "Chat"). Works interactively (a "you> " prompt on a terminal) and',
    'with stdin from a pipe or file (one turn per line; replies on stdout). Lines /reset (forget',
    'the conversation) and /exit are commands. Turn t samples with seed S + t.',
  ].join('\n'),
  options: {
    model: { type: 'string', help: 'checkpoint folder; default: the bundled model', meta: 'DIR' },
    quantize: QUANTIZE_OPTION,
    'quantize-block': QUANTIZE_BLOCK_OPTION,
    'invalid-utf8': INVALID_UTF8_OPTION,
    system: { type: 'string', help: `system message ('' for none)`, default: DEFAULT_SYSTEM, meta: 'TEXT' },
    'max-bytes': { type: 'int', help: 'most bytes per reply', default: 400, min: 0, max: 1 << 24 },
    seed: { type: 'int', help: 'seed of the sampler (turn t uses seed + t)', default: 0, min: 0, max: 2 ** 31 - 1 },
    greedy: { type: 'boolean', help: 'always take the most likely byte' },
    temperature: { type: 'number', help: 'sampling temperature', default: SAMPLING_DEFAULTS.temperature, min: 0, max: 100 },
    'top-k': { type: 'int', help: 'sample among the K most likely bytes (0: all)', default: 0, min: 0, max: 256 },
    'top-p': { type: 'number', help: 'sample among the most likely bytes holding probability P', default: SAMPLING_DEFAULTS.topP, above: 0, max: 1 },
    'show-prompt': { type: 'boolean', help: 'print the templated prompt of each turn to stderr' },
  },
  async run(args) {
    const o = args.options;
    const maxBytes = Number(o['max-bytes']);
    if (maxBytes < 1) throw new UserError(`--max-bytes must be >= 1, got ${maxBytes}`);
    const temperature = Number(o.temperature);
    if (!(temperature >= 0 && temperature <= 100)) throw new UserError(`--temperature must be in [0, 100], got ${temperature}`);
    const topK = Number(o['top-k']);
    if (topK < 0 || topK > 256) throw new UserError(`--top-k must be in 0..256, got ${topK}`);
    const topP = Number(o['top-p']);
    if (!(topP > 0 && topP <= 1)) throw new UserError(`--top-p must be in (0, 1], got ${topP}`);
    const system = typeof o.system === 'string' ? o.system : DEFAULT_SYSTEM;
    checkStdinNotFolder();
    const { model, splitter } = loadHATForCli(o.model, { quantize: quantizeOption(args), invalidUtf8: invalidUtf8Option(o['invalid-utf8']) });
    const eot = endOfTurnByte(model.config);
    const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
    const rl = readline.createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty });
    let interrupted = false;
    rl.on('SIGINT', () => {
      interrupted = true;
      rl.close();
    });
    const onSigint = (): void => {
      interrupted = true;
      rl.close();
    };
    process.on('SIGINT', onSigint);
    let closedPipe = false;
    const onStdoutError = (e: NodeJS.ErrnoException): void => {
      if (e.code === 'EPIPE') {
        closedPipe = true;
        rl.close();
      }
    };
    process.stdout.on('error', onStdoutError);
    const history: ChatMessage[] = [];
    let turn = 0;
    try {
      if (tty) process.stdout.write('chat with a HAT model; /reset forgets, /exit or Ctrl-D ends\n');
      if (tty) rl.setPrompt('you> ');
      if (tty) rl.prompt();
      for await (const raw of rl) {
        const line = raw.replace(/\r$/, '');
        if (line.trim() === '/exit') break;
        if (line.trim() === '/reset') {
          history.length = 0;
          if (tty) rl.prompt();
          continue;
        }
        if (line.trim() === '') {
          if (tty) rl.prompt();
          continue;
        }
        history.push({ role: 'user', content: line });
        const prompt = llama3ChatPrompt(history, { system });
        if (o['show-prompt'] === true) process.stderr.write(`${JSON.stringify(prompt)}\n`);
        if (tty) process.stdout.write('hat> ');
        const it = generateStream(model, splitter, prompt, {
          maxBytes,
          eos: eot,
          stop: CHAT_STOP_STRINGS,
          greedy: o.greedy === true,
          temperature,
          topK,
          topP,
          seed: Number(o.seed) + turn,
        });
        let reply = '';
        for (;;) {
          const r = await it.next();
          if (r.done === true) {
            reply = r.value.text;
            break;
          }
          if (!closedPipe) process.stdout.write(r.value);
          if (interrupted || closedPipe) break;
        }
        if (interrupted || closedPipe) break;
        process.stdout.write('\n');
        history.push({ role: 'assistant', content: reply });
        turn++;
        if (tty) rl.prompt();
      }
    } finally {
      process.off('SIGINT', onSigint);
      process.stdout.off('error', onStdoutError);
      rl.close();
    }
    return interrupted ? 130 : 0;
  },
};
