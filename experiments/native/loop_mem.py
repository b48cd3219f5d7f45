#!/usr/bin/env python3
"""Memory operands per innermost loop of an x86-64 object (the audit of the GEMV pass "context
reloads", docs/results/engine.md): for every innermost loop (a backward jump whose range holds no
other backward jump) of every function whose demangled name contains FILTER, one line with the
loop's instruction count, its memory operands (loads and stores, prefetches and lea left out), the
stores among them, those on the stack (%rsp / %rbp: spills), the loads into general registers from
other memory (pointers, strides or flags of a context struct or closure: the AdamW pattern of the
HAT eighth pass), the RIP-relative loads (constants left in memory) and the prefetches.
-v lists the stack, general-register and RIP-relative operands.

Run: python3 experiments/native/loop_mem.py native/build/Release/obj.target/tfree_avx2/packed_avx2.o \\
        'rows_kernel<tfree::(anonymous namespace)::Dec4, 1, 2>' [--min 20] [-v]
(objdump from binutils; a loop printed twice is one loop entered at two points.)
"""
import re
import subprocess
import sys

argv = sys.argv[1:]
verbose = '-v' in argv
min_len = 12
if '--min' in argv:
    i = argv.index('--min')
    min_len = int(argv[i + 1])
    del argv[i:i + 2]
args = [a for a in argv if a != '-v']
if not args:
    sys.exit(__doc__)
obj, flt = args[0], (args[1] if len(args) > 1 else '')

dis = subprocess.run(['objdump', '-d', '--no-show-raw-insn', '-C', obj], capture_output=True, text=True, check=True).stdout
funcs: dict = {}
cur = None
for line in dis.split('\n'):
    m = re.match(r'^([0-9a-f]+) <(.*)>:$', line)
    if m:
        cur = m.group(2)
        funcs[cur] = []
        continue
    m = re.match(r'^\s+([0-9a-f]+):\s+(.*)$', line)
    if m and cur is not None:
        funcs[cur].append((int(m.group(1), 16), m.group(2).split('<')[0].strip()))

JUMP = re.compile(r'^j\w+\s+([0-9a-f]+)$')
STORE = re.compile(r',\s*-?(0x[0-9a-f]+)?\([^)]*\)$')
GPR_LOAD = re.compile(r'^mov\w*\s+-?(0x[0-9a-f]+)?\(%[re]\w+(,%[re]\w+,\d)?\),%[re]')
for name, ins in funcs.items():
    if flt not in name:
        continue
    back = []
    for a, t in ins:
        m = JUMP.match(t)
        if m and int(m.group(1), 16) < a:
            back.append((int(m.group(1), 16), a))
    shown = False
    for lo, hi in back:
        if any(lo <= l2 and h2 <= hi and (l2, h2) != (lo, hi) for l2, h2 in back):
            continue  # holds another loop
        body = [x for x in ins if lo <= x[0] <= hi]
        if len(body) < min_len:
            continue
        mem = [x for x in body if '(' in x[1] and not x[1].startswith(('lea', 'prefetch', 'nop', 'cs nop'))]
        stores = [x for x in mem if STORE.search(x[1]) and not x[1].startswith(('cmp', 'test'))]
        stack = [x for x in mem if '%rsp' in x[1] or '%rbp' in x[1]]
        gpr = [x for x in mem if GPR_LOAD.match(x[1]) and '%rsp' not in x[1] and '%rbp' not in x[1] and '%rip' not in x[1]]
        rip = [x for x in mem if '%rip' in x[1]]
        pf = [x for x in body if x[1].startswith('prefetch')]
        if not shown:
            print('==', name[:200])
            shown = True
        print(f'  loop {lo:x}-{hi:x}: {len(body)} insns, {len(mem)} memory operands: {len(stores)} stores, {len(stack)} on the stack, '
              f'{len(gpr)} general-register loads from other memory, {len(rip)} RIP-relative; {len(pf)} prefetches')
        if verbose:
            for x in stack + gpr + rip:
                print(f'      {x[0]:x} {x[1]}')
