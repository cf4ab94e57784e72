#!/usr/bin/env python3
"""Comparisons for scripts/mpi/check.sh (standard library only).

  compare.py caches DIR_A DIR_B            every image of A is in B and back, features byte-identical
  compare.py metrics A.jsonl B.jsonl TOL   same steps; max |loss difference| (and val_loss) <= TOL
  compare.py projector A.st B.st TOL       same tensors; max |difference| <= TOL
Prints the measured figures; exits 1 when a check fails.
"""
import json, os, struct, sys


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return header, data


def tensors(path):
    header, data = read_safetensors(path)
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        out[name] = (t["dtype"], t["shape"], data[a:b])
    return out


def floats(dtype, raw):
    if dtype == "F32":
        return struct.unpack("<%df" % (len(raw) // 4), raw)
    if dtype == "F16":
        return struct.unpack("<%de" % (len(raw) // 2), raw)
    raise SystemExit("unsupported dtype " + dtype)


def cache(directory):
    out = {}
    for name in sorted(os.listdir(directory)):
        if name.startswith("features-") and name.endswith(".safetensors"):
            for key, t in tensors(os.path.join(directory, name)).items():
                out[key] = (name, t)
    return out


def main():
    kind = sys.argv[1]
    if kind == "caches":
        a, b = cache(sys.argv[2]), cache(sys.argv[3])
        shards_a = len({v[0] for v in a.values()}); shards_b = len({v[0] for v in b.values()})
        missing = sorted(set(a) ^ set(b))
        differ = [k for k in set(a) & set(b) if a[k][1] != b[k][1]]
        worst = 0.0
        for k in differ:
            (da, _, ra), (db, _, rb) = a[k][1], b[k][1]
            worst = max(worst, max(abs(x - y) for x, y in zip(floats(da, ra), floats(db, rb))))
        print(f"caches: {len(a)} images in {shards_a} shards vs {len(b)} images in {shards_b} shards; "
              f"{len(missing)} images in only one; {len(differ)} images differ (max |difference| {worst:g})")
        sys.exit(1 if missing or differ else 0)
    tol = float(sys.argv[4])
    if kind == "metrics":
        load = lambda p: [json.loads(l) for l in open(p) if l.strip()]
        a, b = load(sys.argv[2]), load(sys.argv[3])
        if [r["step"] for r in a] != [r["step"] for r in b]:
            print("metrics: the steps differ:", [r["step"] for r in a], [r["step"] for r in b]); sys.exit(1)
        worst = {}
        for ra, rb in zip(a, b):
            for key in ("loss", "val_loss", "grad_norm"):
                if key in ra or key in rb:
                    if key not in ra or key not in rb:
                        print(f"metrics: {key} only in one file at step {ra['step']}"); sys.exit(1)
                    worst[key] = max(worst.get(key, 0.0), abs(ra[key] - rb[key]))
        print("metrics: %d steps, first loss %.6f, last loss %.6f; max |difference|: %s (tolerance %g)" % (
            len(a), a[0]["loss"], a[-1]["loss"], ", ".join(f"{k} {v:.3g}" for k, v in sorted(worst.items())), tol))
        sys.exit(0 if worst.get("loss", 0) <= tol and worst.get("val_loss", 0) <= tol else 1)
    if kind == "projector":
        a, b = tensors(sys.argv[2]), tensors(sys.argv[3])
        if set(a) != set(b):
            print("projector: the tensor names differ"); sys.exit(1)
        worst, scale, count = 0.0, 0.0, 0
        for k in a:
            xa, xb = floats(a[k][0], a[k][2]), floats(b[k][0], b[k][2])
            count += len(xa)
            worst = max(worst, max(abs(x - y) for x, y in zip(xa, xb)))
            scale = max(scale, max(abs(x) for x in xa))
        print(f"projector: {count} parameters, max |difference| {worst:.3g} (max |value| {scale:.3g}, tolerance {tol:g})")
        sys.exit(0 if worst <= tol else 1)
    raise SystemExit(__doc__)


main()
