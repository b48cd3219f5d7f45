#!/usr/bin/env python3
"""Benchmark peer (not part of tfree): the HAT model of src/models/hat written in PyTorch, CPU.

Same modules, shapes and masks as tfree's HATModel: byte encoder (Llama layers, causal sliding
window, RoPE over byte positions, document resets), latent-query connector (one query per word
attending to that word's bytes; q rotated by word position, k by byte position), backbone (Llama
layers over words), decoder (guide vector o_proj(v_proj(kv_norm(pred))) added to every byte of
the word, then Llama layers), RMSNorm + lm_head. Masks are boolean tensors applied to the
scores (Debian's torch 1.13 has no fused scaled_dot_product_attention), as a straightforward
CPU port would do.

Reads one JSON job on stdin, prints one JSON result on stdout:
  {"mode": "train", "config": <HAT config.json>, "threads": N, "B": B, "T": T, "bytes": [...],
   "cu": [[0, ...], ...], "steps": S, "lr": 1e-3}
    -> {"step_s": [...], "step_cpu_s": [...]}: seconds per full AdamW step (zero_grad, forward,
       backward, clip, step), wall clock and process CPU time
  {"mode": "generate", "config": ..., "threads": N, "prompt_words": [[b, ...], ...],
   "words": [[b, ...], ...], "reps": R}
    -> {"gen_s": [...], "bytes": n, "words": w}: cached generation replaying tfree's byte and
       word schedule: after the complete prompt words, every byte of `words` (the prompt's open
       word, then the generated words) is one encoder and one decoder step with KV caches and an
       argmax over the logits; every finished word is the connector over its cached encoder
       states and one backbone step
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(head_dim, theta, max_pos):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    f = torch.outer(torch.arange(max_pos, dtype=torch.float64), inv)
    return torch.cos(f).float(), torch.sin(f).float()


def apply_rope(x, pos, tables):
    # x [B, H, T, D], pos [B, T] (neox rotate-half)
    cos, sin = tables
    c = cos[pos].unsqueeze(1)
    s = sin[pos].unsqueeze(1)
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


def sdpa(q, k, v, mask):
    """softmax(q k^T / sqrt(d) masked) v (torch 1.13, Debian's, has no fused SDPA)."""
    s = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)


class Linear(torch.nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(o, i) * 0.02)

    def forward(self, x):
        return F.linear(x, self.weight)


class Norm(torch.nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class Attn(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h = c["num_attention_heads"]
        self.kv = c["num_key_value_heads"]
        self.d = c["hidden_size"] // self.h
        H = c["hidden_size"]
        self.q_proj = Linear(H, self.h * self.d)
        self.k_proj = Linear(H, self.kv * self.d)
        self.v_proj = Linear(H, self.kv * self.d)
        self.o_proj = Linear(self.h * self.d, H)

    def qkv(self, x, pos, tables):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.h, self.d).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.kv, self.d).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kv, self.d).transpose(1, 2)
        return apply_rope(q, pos, tables), apply_rope(k, pos, tables), v

    def attend(self, q, k, v, mask):
        rep = self.h // self.kv
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        o = sdpa(q, k, v, mask)
        B, _, T, _ = o.shape
        return self.o_proj(o.transpose(1, 2).reshape(B, T, self.h * self.d))

    def forward(self, x, pos, mask, tables):
        q, k, v = self.qkv(x, pos, tables)
        return self.attend(q, k, v, mask)


class Layer(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        H, I, eps = c["hidden_size"], c["intermediate_size"], c["rms_norm_eps"]
        self.self_attn = Attn(c)
        self.gate_proj = Linear(H, I)
        self.up_proj = Linear(H, I)
        self.down_proj = Linear(I, H)
        self.input_layernorm = Norm(H, eps)
        self.post_attention_layernorm = Norm(H, eps)

    def mlp(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    def forward(self, x, pos, mask, tables):
        h = x + self.self_attn(self.input_layernorm(x), pos, mask, tables)
        return h + self.mlp(self.post_attention_layernorm(h))

    def step(self, x, pos, cache, tables, window):
        """One cached token: x [1, 1, H]; cache = [k, v] lists grown in place (sliding window)."""
        a = self.self_attn
        q, k, v = a.qkv(self.input_layernorm(x), pos, tables)
        if cache[0] is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        if window and k.shape[2] > window:
            k, v = k[:, :, -window:], v[:, :, -window:]
        cache[0], cache[1] = k, v
        h = x + a.attend(q, k, v, None)
        return h + self.mlp(self.post_attention_layernorm(h))


class HAT(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        e, b, d = cfg["encoder_config"], cfg["backbone_config"], cfg["decoder_config"]
        self.e, self.b, self.d = e, b, d
        self.emb = torch.nn.Parameter(torch.randn(256, e["hidden_size"]) * 0.02)
        self.enc = torch.nn.ModuleList([Layer(e) for _ in range(e["num_hidden_layers"])])
        x = e["cross_attention_config"]
        self.ch, self.ckv = x["num_attention_heads"], x["attention_num_kv_heads"]
        self.cd = x["hidden_size"] // self.ch
        self.latent = torch.nn.Parameter(torch.randn(1, 1, b["hidden_size"]) * 0.02)
        self.c_q = Linear(b["hidden_size"], x["hidden_size"])
        self.c_k = Linear(e["hidden_size"], self.ckv * self.cd)
        self.c_v = Linear(e["hidden_size"], self.ckv * self.cd)
        self.c_o = Linear(x["hidden_size"], b["hidden_size"])
        self.bb = torch.nn.ModuleList([Layer(b) for _ in range(b["num_hidden_layers"])])
        self.first = torch.nn.Parameter(torch.randn(1, b["hidden_size"]) * 0.02)
        y = d["cross_attention_config"]
        self.gh, self.gkv = y["num_attention_heads"], y["attention_num_kv_heads"]
        self.gd = y["hidden_size"] // self.gh
        self.kv_norm = torch.nn.ModuleList([Norm(b["hidden_size"], d["rms_norm_eps"]) for _ in range(d["num_hidden_layers"])])
        self.g_v = torch.nn.ModuleList([Linear(b["hidden_size"], self.gkv * self.gd) for _ in range(d["num_hidden_layers"])])
        self.g_o = torch.nn.ModuleList([Linear(y["hidden_size"], d["hidden_size"]) for _ in range(d["num_hidden_layers"])])
        self.dec = torch.nn.ModuleList([Layer(d) for _ in range(d["num_hidden_layers"])])
        self.norm = Norm(d["hidden_size"], d["rms_norm_eps"])
        self.lm_head = Linear(d["hidden_size"], 256)
        mp = 1 << 16
        self.t_e = rope_tables(e["hidden_size"] // e["num_attention_heads"], e["rope_theta"], mp)
        self.t_c = rope_tables(self.cd, e["rope_theta"], mp)
        self.t_b = rope_tables(b["hidden_size"] // b["num_attention_heads"], b["rope_theta"], mp)
        self.t_d = rope_tables(d["hidden_size"] // d["num_attention_heads"], d["rope_theta"], mp)
        self.window = e.get("sliding_window") or 0

    def connect(self, h, word_pos, byte_pos, mask):
        # h [B, T, He]; one latent query per word slot; mask [B, 1, W, T]
        B, W = word_pos.shape
        q = self.c_q(self.latent.expand(B, W, -1)).view(B, W, self.ch, self.cd).transpose(1, 2)
        T = h.shape[1]
        k = self.c_k(h).view(B, T, self.ckv, self.cd).transpose(1, 2)
        v = self.c_v(h).view(B, T, self.ckv, self.cd).transpose(1, 2)
        q = apply_rope(q, word_pos, self.t_c)
        k = apply_rope(k, byte_pos, self.t_c)
        rep = self.ch // self.ckv
        if rep > 1:
            k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        o = sdpa(q, k, v, mask)
        return self.c_o(o.transpose(1, 2).reshape(B, W, self.ch * self.cd))

    def guide(self, i, pred):
        v = self.g_v[i](self.kv_norm[i](pred))
        rep = self.gh // self.gkv
        if rep > 1:
            N = v.shape[0]
            v = v.view(N, self.gkv, 1, self.gd).expand(N, self.gkv, rep, self.gd).reshape(N, -1)
        return self.g_o[i](v)

    def forward(self, L):
        B, T, W = L["B"], L["T"], L["W"]
        h = self.emb[L["bytes"]]
        for layer in self.enc:
            h = layer(h, L["byte_pos"], L["byte_mask"], self.t_e)
        words = self.connect(h, L["word_pos"], L["byte_pos"], L["conn_mask"])
        for layer in self.bb:
            words = layer(words, L["word_pos"], L["word_mask"], self.t_b)
        table = torch.cat([self.first, words.reshape(B * W, -1)], 0)
        pred = table[L["pred_index"]]
        y = h
        for i, layer in enumerate(self.dec):
            y = y + self.guide(i, pred)[L["byte_word_flat"]].view(B, T, -1)
            y = layer(y, L["byte_pos"], L["byte_mask"], self.t_d)
        return self.lm_head(self.norm(y))


def layout(B, T, data, cu, window):
    """Index tensors and masks of a packed batch (one document per row; padding after the words)."""
    W = max(1, max(len(c) - 1 for c in cu))
    byte_pos = torch.zeros(B, T, dtype=torch.long)
    byte_word = torch.full((B, T), -1, dtype=torch.long)
    byte_word_flat = torch.zeros(B * T, dtype=torch.long)
    word_pos = torch.zeros(B, W, dtype=torch.long)
    pred_index = torch.zeros(B * W, dtype=torch.long)
    targets = torch.full((B * T,), -100, dtype=torch.long)
    used = []
    for b in range(B):
        c = cu[b]
        n = c[-1]
        used.append(n)
        for w in range(len(c) - 1):
            word_pos[b, w] = w
            pred_index[b * W + w] = 0 if w == 0 else 1 + b * W + w - 1
            for t in range(c[w], c[w + 1]):
                byte_pos[b, t] = t
                byte_word[b, t] = w
                byte_word_flat[b * T + t] = b * W + w
        for t in range(n - 1):
            targets[b * T + t] = data[b * T + t + 1]
        for t in range(n, T):
            byte_pos[b, t] = t - n
            byte_word_flat[b * T + t] = b * W
    i = torch.arange(T)
    causal = (i[None, :] <= i[:, None]) & ((i[:, None] - i[None, :] < window) if window else True)
    pad = torch.tensor([[t < used[b] for t in range(T)] for b in range(B)])
    same = pad[:, :, None] == pad[:, None, :]
    byte_mask = (causal[None] & same).unsqueeze(1)
    conn_mask = (byte_word[:, None, :] == torch.arange(W)[None, :, None]).unsqueeze(1)
    conn_mask = conn_mask | ~conn_mask.any(-1, keepdim=True)  # empty slots see everything (their output is unused)
    j = torch.arange(W)
    word_mask = (j[None, :] <= j[:, None]).expand(B, W, W).unsqueeze(1)
    return dict(B=B, T=T, W=W, bytes=torch.tensor(data, dtype=torch.long).view(B, T), byte_pos=byte_pos, word_pos=word_pos,
                byte_word_flat=byte_word_flat, pred_index=pred_index, targets=targets,
                byte_mask=byte_mask, conn_mask=conn_mask, word_mask=word_mask)


def train(job):
    torch.manual_seed(0)
    m = HAT(job["config"])
    L = layout(job["B"], job["T"], job["bytes"], job["cu"], m.window)
    opt = torch.optim.AdamW(m.parameters(), lr=job.get("lr", 1e-3), betas=(0.9, 0.95), weight_decay=0.1)
    times, cpu = [], []
    for _ in range(job["steps"]):
        t, c = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        logits = m(L)
        loss = F.cross_entropy(logits.view(-1, 256), L["targets"], ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"step_s": times, "step_cpu_s": cpu, "loss": float(loss)}


class Gen:
    """Cached generation state: per-layer KV caches of encoder, backbone, decoder."""

    def __init__(self, m):
        self.m = m
        self.enc = [[None, None] for _ in m.enc]
        self.bb = [[None, None] for _ in m.bb]
        self.dec = [[None, None] for _ in m.dec]
        self.byte_pos = 0
        self.word_pos = 0
        self.word_h = []  # encoder states of the current word's bytes
        self.pred = m.first  # [1, Hbb]

    def byte(self, b):
        m = self.m
        pos = torch.tensor([[self.byte_pos]])
        h = m.emb[torch.tensor([[b]])]
        for layer, c in zip(m.enc, self.enc):
            h = layer.step(h, pos, c, m.t_e, m.window)
        self.word_h.append(h)
        y = h
        for i, (layer, c) in enumerate(zip(m.dec, self.dec)):
            y = y + m.guide(i, self.pred).view(1, 1, -1)
            y = layer.step(y, pos, c, m.t_d, m.window)
        self.byte_pos += 1
        return m.lm_head(m.norm(y))[0, -1]

    def end_word(self):
        m = self.m
        h = torch.cat(self.word_h, 1)
        n = h.shape[1]
        bp = torch.arange(self.byte_pos - n, self.byte_pos).view(1, n)
        wp = torch.tensor([[self.word_pos]])
        x = m.connect(h, wp, bp, None)
        for layer, c in zip(m.bb, self.bb):
            x = layer.step(x, wp, c, m.t_b, 0)
        self.pred = x[0]
        self.word_pos += 1
        self.word_h = []


def generate(job):
    torch.manual_seed(0)
    m = HAT(job["config"])
    gen, fed = [], 0
    with torch.no_grad():
        for _ in range(job.get("reps", 3)):
            g = Gen(m)
            for w in job["prompt_words"]:  # complete prompt words (not timed)
                for b in w:
                    g.byte(b)
                g.end_word()
            words = job["words"]  # the current word, then the generated ones (the last may be open)
            fed = 0
            t = time.perf_counter()
            for k, w in enumerate(words):
                for b in w:
                    logits = g.byte(b)
                    int(torch.argmax(logits))  # the sampled byte (the schedule replays tfree's output)
                    fed += 1
                if k + 1 < len(words):
                    g.end_word()
            gen.append(time.perf_counter() - t)
    return {"gen_s": gen, "bytes": fed, "words": len(job["words"]) - 1}


def blas_threads(n):
    """Debian's torch calls the system BLAS (OpenBLAS, pthread build), whose own thread pool
    ignores torch.set_num_threads and starts one thread per core: without this, a "1 thread" peer
    ran its matrix products on every core. Sets OpenBLAS to n threads; returns its count (None
    when no OpenBLAS is loaded). The bench also sets OPENBLAS_NUM_THREADS / OMP_NUM_THREADS."""
    import ctypes
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_set_num_threads(int(n))
        return int(lib.openblas_get_num_threads())
    except (OSError, AttributeError):
        return None


def main():
    job = json.load(sys.stdin)
    n = int(job.get("threads", 1))
    torch.set_num_threads(n)
    blas = blas_threads(n)
    out = train(job) if job["mode"] == "train" else generate(job)
    out["torch"] = torch.__version__
    out["threads"] = torch.get_num_threads()
    out["blas_threads"] = blas
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
