#!/usr/bin/env python3
"""Joins usp4j's and PyTorch's GPU benchmark lines (JSON per line) into the summary table.

Kernel rows: usp4j cuDNN SDPA ("impl": "usp4j-cudnn") against PyTorch's cuDNN SDPA ("torch-cudnn")
on the same (pass, seq, heads, head_dim, causal): the ratio of TFLOP/s (target >= 0.97).
USP rows ("impl": "usp4j-usp", with "mesh" U x R): throughput against one usp4j SDPA call over the whole
sequence on the same shape (target >= 0.95 at 64K tokens, P = 4 and 8, every mesh).
The first table holds every ratio the targets name, one row each, with the goal and whether it is met.
"""
import json
import sys


def load(path):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    rows.append(json.loads(line))
    except FileNotFoundError:
        pass
    return rows


def key(r):
    return (r.get("pass"), r.get("seq"), r.get("heads"), r.get("head_dim"), r.get("causal"))


def shape(r):
    return f"{r.get('seq')} tokens d={r.get('head_dim')} {'causal' if r.get('causal') else 'full'}"


def targets(ours, torch, usp):
    """One row per target ratio: usp4j / torch per kernel shape, USP mesh / one SDPA call per mesh."""
    print()
    print("| target | pass | shape | usp4j or mesh | ratio | goal | met |")
    print("|---|---|---|---|---|---|---|")
    for k in sorted(set(ours) | set(torch), key=lambda k: tuple(str(x) for x in k)):
        o, t = ours.get(k), torch.get(k)
        goal = 1.0 if (k[1] or 0) >= 16384 else 0.97
        ratio = o["tflops"] / t["tflops"] if o and t and t.get("tflops") else None
        met = "-" if ratio is None else ("yes" if ratio >= goal else "NO")
        print(f"| usp4j / torch cuDNN SDPA | {k[0]} | {shape(dict(zip(('pass', 'seq', 'heads', 'head_dim', 'causal'), k)))} "
              f"| usp4j-cudnn | {'-' if ratio is None else f'{ratio:.3f}'} | >= {goal} | {met} |")
    for r in usp:
        single = ours.get(key(r))
        ratio = single["ms"] / r["ms"] if single and r.get("ms") else None
        met = "-" if ratio is None else ("yes" if ratio >= 0.95 else "NO")
        note = f" ({r['error']})" if "error" in r else ""
        print(f"| USP / one SDPA call | {r.get('pass', '-')} | {shape(r)} | {r.get('mesh', '-')}{note} "
              f"| {'-' if ratio is None else f'{ratio:.3f}'} | >= 0.95 | {met} |")


def main():
    rows = [r for p in sys.argv[1:] for r in load(p)]
    meta = [r for r in rows if "ms" not in r]
    for m in meta:
        print("- " + ", ".join(f"{k}: {v}" for k, v in m.items()))
    ours = {key(r): r for r in rows if r.get("impl") == "usp4j-cudnn"}
    torch = {key(r): r for r in rows if r.get("impl") == "torch-cudnn"}
    targets(ours, torch, [r for r in rows if r.get("impl") == "usp4j-usp"])
    print()
    print("| pass | seq | heads | d | causal | usp4j ms | usp4j TFLOP/s | torch ms | torch TFLOP/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for k in sorted(set(ours) | set(torch), key=lambda k: tuple(str(x) for x in k)):
        o, t = ours.get(k), torch.get(k)
        ratio = f"{o['tflops'] / t['tflops']:.3f}" if o and t and t["tflops"] else "-"
        cells = [str(x) for x in k]
        cells += [f"{o['ms']:.3f}", f"{o['tflops']:.1f}"] if o else ["-", "-"]
        cells += [f"{t['ms']:.3f}", f"{t['tflops']:.1f}"] if t else ["-", "-"]
        print("| " + " | ".join(cells + [ratio]) + " |")
    usp = [r for r in rows if r.get("impl") == "usp4j-usp" and "ms" in r]
    if usp:
        print()
        print("| pass | mesh | seq | heads | d | causal | ms | TFLOP/s | single SDPA ms | throughput vs single |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in usp:
            single = ours.get(key(r))
            ratio = f"{single['ms'] / r['ms']:.3f}" if single else "-"
            print(f"| {r['pass']} | {r['mesh']} | {r['seq']} | {r['heads']} | {r['head_dim']} | {r['causal']} | "
                  f"{r['ms']:.3f} | {r['tflops']:.1f} | {single['ms'] if single else '-'} | {ratio} |")
    other = [r for r in rows if r.get("impl") not in ("usp4j-cudnn", "torch-cudnn", "usp4j-usp") and "ms" in r]
    for r in other:
        print("- " + json.dumps(r))


if __name__ == "__main__":
    main()
