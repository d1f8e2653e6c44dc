#!/usr/bin/env python3
"""PyTorch's cuDNN SDPA on the shapes usp4j's GPU benchmarks use: the anchor for the 0.97x target.

Prints one JSON object per line: {"impl": "torch-cudnn", "pass": "fwd"|"bwd", "seq", "heads",
"head_dim", "causal", "ms", "tflops"}. FLOPs count unmasked score pairs only: forward 4*b*h*pairs*d
(pairs = s*s, or s*(s+1)/2 when causal), backward 2.5x the forward. Times are medians of CUDA-event-timed runs after
warm-up, rotating over several input sets so that no run reads a warm cache.
"""
import argparse
import json
import statistics

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F


def flops(b, h, s, d, causal, pass_):
    pairs = s * (s + 1) / 2 if causal else s * s  # unmasked pairs, as usp4j's AttentionFlops counts them
    f = 4.0 * b * h * pairs * d
    return f * (2.5 if pass_ == "bwd" else 1.0)


def time_ms(fn, reps, warmup=3):
    for _ in range(warmup):
        fn(0)
    torch.cuda.synchronize()
    times = []
    for i in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn(i)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seqs", default="4096,8192,16384,32768,65536")
    p.add_argument("--head-dims", default="64,128")
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--sets", type=int, default=3)
    args = p.parse_args()
    torch.manual_seed(0)
    dev = torch.device("cuda")
    print(json.dumps({"impl": "torch", "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
                      "device": torch.cuda.get_device_name()}), flush=True)
    for d in [int(x) for x in args.head_dims.split(",")]:
        for s in [int(x) for x in args.seqs.split(",")]:
            for causal in (False, True):
                b, h = args.batch, args.heads
                # torch wants [b, h, s, d]; build bshd tensors and transpose, as usp4j stores them.
                sets = []
                for _ in range(args.sets):
                    q, k, v = (torch.randn(b, s, h, d, device=dev, dtype=torch.bfloat16).transpose(1, 2).requires_grad_()
                               for _ in range(3))
                    sets.append((q, k, v))
                with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                    def fwd(i):
                        q, k, v = sets[i % len(sets)]
                        with torch.no_grad():
                            F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                    ms = time_ms(fwd, args.reps)
                    print(json.dumps({"impl": "torch-cudnn", "pass": "fwd", "seq": s, "heads": h, "head_dim": d,
                                      "causal": causal, "ms": ms,
                                      "tflops": flops(b, h, s, d, causal, "fwd") / ms / 1e9}), flush=True)
                    outs = []
                    for q, k, v in sets:
                        o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                        outs.append((o, torch.randn_like(o)))

                    def bwd(i):
                        o, g = outs[i % len(outs)]
                        torch.autograd.grad(o, sets[i % len(sets)], g, retain_graph=True)
                    ms = time_ms(bwd, args.reps)
                    print(json.dumps({"impl": "torch-cudnn", "pass": "bwd", "seq": s, "heads": h, "head_dim": d,
                                      "causal": causal, "ms": ms,
                                      "tflops": flops(b, h, s, d, causal, "bwd") / ms / 1e9}), flush=True)
                del sets, outs
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
