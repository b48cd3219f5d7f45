#!/usr/bin/python3
"""PyTorch peer of tfree's BoxTE for `npm run bench -- --only kg` (CPU, same configuration, same threads).

The same model and training step as src/models/boxte (spec ../shared/specs/boxte.md): tanh points and
corners, geometric-mean shape normalisation, elu(s) + 1 sizes, corners c -/+ delta, the width-dependent
distance, L2 norms, cross-entropy over the fact and its negatives (head or tail corrupted, resampled while
the corrupted quadruple is a training fact), temporal smoothness regulariser / k, dense Adam. Written
vectorised (boxes computed once per batch; negative filtering with a sorted key array), i.e. the way one
would write it in PyTorch today, not a copy of the reference code.

Prints one JSON object: train facts/s over `--steps` steps and eval queries/s over `--eval-facts` facts.
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_split(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                rows.append(line.split("\t"))
    return rows


def load(data):
    splits = {s: read_split(f"{data}/{s}.txt") for s in ("train", "valid", "test")}
    ents, rels = {}, {}
    dated = "-" in splits["train"][0][3]
    def day(s):
        return int(np.datetime64(s, "D").astype(np.int64)) if dated else int(s)
    origin = min(day(r[3]) for rows in splits.values() for r in rows)
    out = {}
    for name, rows in splits.items():
        q = np.zeros((len(rows), 4), dtype=np.int64)
        for i, (h, r, t, d) in enumerate(rows):
            q[i] = (ents.setdefault(h, len(ents)), rels.setdefault(r, len(rels)), ents.setdefault(t, len(ents)), day(d) - origin)
        out[name] = q
    T = int(max(q[:, 3].max() for q in out.values())) + 1
    return out, len(ents), len(rels), T


class BoxTE(torch.nn.Module):
    def __init__(self, E, R, T, d, k):
        super().__init__()
        a = 0.5 / d ** 0.5
        u = lambda *s: torch.nn.Parameter(torch.empty(*s).uniform_(-a, a))
        self.base, self.bump = u(E, d), u(E, d)
        self.hb, self.hs, self.tb_, self.ts = u(R, d), u(R, d), u(R, d), u(R, d)
        self.hz = torch.nn.Parameter(torch.empty(R, 1).uniform_(-1, 1))
        self.tz = torch.nn.Parameter(torch.empty(R, 1).uniform_(-1, 1))
        self.K = u(T, k, d)
        self.alpha = torch.nn.Parameter(torch.empty(R, k).normal_(1, 0.1))
        self.k, self.T = k, T

    @staticmethod
    def box(base, shape, size):
        geo = torch.exp(torch.log(shape.abs() + 1e-8).mean(-1, keepdim=True))
        delta = shape / geo * (F.elu(size) + 1)
        c1, c2 = base - delta, base + delta
        return torch.tanh(torch.minimum(c1, c2)), torch.tanh(torch.maximum(c1, c2))

    def timebump(self, r, tau):
        tb = (self.K[tau] * self.alpha[r].unsqueeze(-1)).sum(1)
        return tb * (tau != 0).unsqueeze(-1).to(tb.dtype)

    @staticmethod
    def dist(p, l, u):
        c = (l + u) / 2
        w = u - l + 1
        a = (p - c).abs()
        kappa = 0.5 * (w - 1) * (w - 1 / w)
        inside = (p >= l) & (p <= u)
        return torch.where(inside, a / w, a * w - kappa)

    def score(self, H, T_, r, tau):
        """H, T_: [B, G] entity ids; r, tau: [B]."""
        lh, uh = self.box(self.hb, self.hs, self.hz)
        lt, ut = self.box(self.tb_, self.ts, self.tz)
        tb = self.timebump(r, tau).unsqueeze(1)
        ph = torch.tanh(self.base[H] + self.bump[T_] + tb)
        pt = torch.tanh(self.base[T_] + self.bump[H] + tb)
        dh = self.dist(ph, lh[r].unsqueeze(1), uh[r].unsqueeze(1))
        dt = self.dist(pt, lt[r].unsqueeze(1), ut[r].unsqueeze(1))
        return dh.norm(dim=-1) + dt.norm(dim=-1)

    def time_reg(self):
        diff = self.K[1:] - self.K[:-1]
        return (diff ** 4).sum() / (self.k * (self.T - 1))


def keys(E, R, T, h, r, t, tau):
    return ((h * R + r) * E + t) * T + tau


def negatives(rng, q, n, E, R, T, train_keys):
    B = len(q)
    h, r, t, tau = (np.repeat(q[:, i], n) for i in range(4))
    side = rng.random(B * n) < 0.5
    ent = rng.integers(0, E, B * n)
    for _ in range(100):
        kh = np.where(side, h, ent)
        kt = np.where(side, ent, t)
        k = keys(E, R, T, kh, r, kt, tau)
        pos = np.searchsorted(train_keys, k)
        bad = (pos < len(train_keys)) & (train_keys[np.minimum(pos, len(train_keys) - 1)] == k)
        if not bad.any():
            break
        ent[bad] = rng.integers(0, E, int(bad.sum()))
    H = np.where(side, h, ent).reshape(B, n)
    Tt = np.where(side, ent, t).reshape(B, n)
    return H, Tt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--dim", type=int, default=154)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--negatives", type=int, default=75)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--eval-facts", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    splits, E, R, T = load(args.data)
    tr = splits["train"]
    train_keys = np.sort(keys(E, R, T, tr[:, 0], tr[:, 1], tr[:, 2], tr[:, 3]))
    model = BoxTE(E, R, T, args.dim, args.k)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perm = rng.permutation(len(tr))
    n = args.negatives

    def step(idx):
        q = tr[idx]
        H, Tt = negatives(rng, q, n, E, R, T, train_keys)
        H = torch.from_numpy(np.concatenate([q[:, :1], H], 1))
        Tt = torch.from_numpy(np.concatenate([q[:, 2:3], Tt], 1))
        r = torch.from_numpy(q[:, 1])
        tau = torch.from_numpy(q[:, 3])
        s = model.score(H, Tt, r, tau)
        loss = F.cross_entropy(-s, torch.zeros(len(q), dtype=torch.long)) + 0.1 * model.time_reg()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss)

    step(perm[: args.batch])  # warm-up
    t0 = time.perf_counter()
    for s in range(1, args.steps + 1):
        step(perm[s * args.batch : (s + 1) * args.batch])
    train_s = time.perf_counter() - t0
    facts = args.steps * args.batch

    # filtered evaluation throughput on the first eval-facts test facts (head and tail queries)
    known_h, known_t = {}, {}
    for q in splits.values():
        for h, r, t, tau in q.tolist():
            known_h.setdefault((r, t, tau), []).append(h)
            known_t.setdefault((h, r, tau), []).append(t)
    test = splits["test"][: args.eval_facts]
    ranks = []
    Q = 8
    allE = torch.arange(E)
    t0 = time.perf_counter()
    with torch.no_grad():
        for st in range(0, len(test), Q):
            q = test[st : st + Q]
            m = len(q)
            r = torch.from_numpy(q[:, 1])
            tau = torch.from_numpy(q[:, 3])
            for head in (True, False):
                fixed = torch.from_numpy(q[:, 2] if head else q[:, 0]).unsqueeze(1).expand(m, E)
                cand = allE.unsqueeze(0).expand(m, E)
                s = model.score(cand, fixed, r, tau) if head else model.score(fixed, cand, r, tau)
                for j, (h, rr, t, ta) in enumerate(q.tolist()):
                    gold = h if head else t
                    row = s[j]
                    better = row < row[gold]
                    filt = known_h[(rr, t, ta)] if head else known_t[(h, rr, ta)]
                    better[torch.tensor(filt)] = False
                    ranks.append(1 + int(better.sum()))
    eval_s = time.perf_counter() - t0
    print(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "steps": args.steps,
        "train_facts_per_s": facts / train_s, "epoch_s": len(tr) / (facts / train_s),
        "eval_queries_per_s": len(ranks) / eval_s, "eval_facts": len(test),
        "full_test_eval_s": 2 * len(splits["test"]) / (len(ranks) / eval_s),
        "mrr_untrained": float(np.mean(1 / np.array(ranks))),
    }))


if __name__ == "__main__":
    main()
