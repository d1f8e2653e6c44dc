#!/usr/bin/env python3
"""Compares the tensors of two safetensors files by relative Frobenius error, |b - a| / |a| in float64.

  compare_safetensors.py EXPECTED ACTUAL [NAME=TOL ...] [--default-tol X]

Every tensor of EXPECTED must be in ACTUAL with the same shape; the tolerance of a name is given as
NAME=TOL, else --default-tol (1e-2). Prints one line per tensor and exits 1 when any is missing, has
another shape or exceeds its tolerance. Needs only numpy (reads the format itself: an 8-byte
little-endian header length, a JSON header, then the raw little-endian data).
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64}


def load(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    tensors = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] not in DTYPES:
            raise SystemExit(f"{path}: {name} has unsupported dtype {e['dtype']}")
        start, end = e["data_offsets"]
        raw = np.frombuffer(data[start:end], dtype=np.dtype(DTYPES[e["dtype"]]).newbyteorder("<"))
        if e["dtype"] == "BF16":  # the top half of a float32
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = raw.astype(np.float64).reshape(e["shape"])
    return tensors


def main(argv):
    default_tol = 1e-2
    tols = {}
    files = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--default-tol":
            default_tol = float(argv[i + 1])
            i += 2
            continue
        if "=" in a:
            k, v = a.split("=", 1)
            tols[k] = float(v)
        else:
            files.append(a)
        i += 1
    if len(files) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    expected, actual = load(files[0]), load(files[1])
    ok = True
    for name, a in expected.items():
        tol = tols.get(name, default_tol)
        if name not in actual:
            print(f"{name}: missing from {files[1]}")
            ok = False
            continue
        b = actual[name]
        if a.shape != b.shape:
            print(f"{name}: shape {list(b.shape)} != {list(a.shape)}")
            ok = False
            continue
        norm = np.linalg.norm(a)
        err = float(np.linalg.norm(b - a) / norm) if norm > 0 else float(np.linalg.norm(b))
        good = err <= tol and np.isfinite(b).all()
        ok &= bool(good)
        print(f"{name}: shape {list(a.shape)} relative error {err:.3e} (tolerance {tol:g}) {'ok' if good else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
