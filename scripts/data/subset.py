#!/usr/bin/env python3
"""Writes a seeded subset of a dataset file (JSONL, one sample or conversation a line), chosen
by image: every line of a chosen image is kept, in the original order, so the caption line and
the question conversation of one image stay together.

    python3 scripts/data/subset.py data/train-conv.jsonl data/train-conv-small.jsonl \
        --images shapes=2000 --images emoji=900 --rendering-max 1 --seed 0

--images SOURCE=N   at most N images of that source (others: all, unless --default-images)
--default-images N  at most N images of every source not named by --images
--rendering-max K   keep only renderings 0..K-1 of each item (image files named <item>_<k>.png)
"""
import argparse
import collections
import hashlib
import json
import os
import re
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--images", action="append", default=[], metavar="SOURCE=N")
    p.add_argument("--default-images", type=int, default=None)
    p.add_argument("--rendering-max", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    caps = {}
    for spec in a.images:
        name, _, n = spec.partition("=")
        if not n.isdigit():
            p.error(f"--images {spec}: use SOURCE=N")
        caps[name] = int(n)
    rows = []
    with open(a.src, encoding="utf-8") as f:
        for k, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{a.src}:{k}: {e}")
    images_by_source = collections.defaultdict(set)
    for r in rows:
        img = r["image"]
        if a.rendering_max is not None:
            m = re.search(r"_(\d+)\.png$", img)
            if m and int(m.group(1)) >= a.rendering_max:
                continue
        images_by_source[r.get("source", "-")].add(img)
    keep = set()
    for source, images in images_by_source.items():
        cap = caps.get(source, a.default_images)
        ordered = sorted(images, key=lambda i: hashlib.sha1(f"{a.seed}/{i}".encode()).digest())
        keep.update(ordered if cap is None else ordered[:cap])
    out = [r for r in rows if r["image"] in keep]
    tmp = a.dst + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, a.dst)
    counts = collections.Counter(r.get("source", "-") for r in out)
    imgs = collections.Counter(r.get("source", "-") for r in {r["image"]: r for r in out}.values())
    for s in sorted(counts):
        print(f"{s:12s} {imgs[s]:6d} images {counts[s]:6d} lines")
    print(f"{'total':12s} {len(keep):6d} images {len(out):6d} lines -> {a.dst}")


if __name__ == "__main__":
    sys.exit(main())
