#!/usr/bin/env python3
"""Builds swift-vlm's caption/QA dataset from Debian packages (no internet needed).

Needs: python3 >= 3.9 with numpy and Pillow (with WebP support: `pip install pillow numpy`),
and the Debian packages that scripts/data/install_sources.sh installs (tuxpaint-stamps-default,
gcompris-qt-data, fonts-noto-color-emoji, unicode-data, openclipart-png, openclipart-svg,
pysiogame, wamerican, librsvg2-bin). A missing package only skips its source, with a message.

    python3 scripts/data/build_dataset.py --out data --seed 0

Writes under --out:
    images/<source>/<id>.png   224x224 RGB PNGs (cut-outs composited onto backgrounds)
    train.jsonl val.jsonl test.jsonl
        {"image": "images/...png", "caption": "...", "source": "..."}  or
        {"image": "images/...png", "question": "...", "answer": "...", "source": "..."}
        (image paths are relative to the JSONL file)
    stats.json                 counts per source / split / kind, notes on what was skipped

Split: sha1("<source>/<item-id>") -> 80/10/10 train/val/test, so all renderings of one stamp,
emoji, drawing or photo stay on one side, and the split does not move when --seed changes.
Deterministic: the same --seed and options give byte-identical JSONL and images.
Re-running re-renders everything (a few minutes on 2 cores); images/<source>/ of each source
being built is emptied first so no stale renderings survive.
"""
import argparse
import collections
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import src_emoji  # noqa: E402
import src_gcompris  # noqa: E402
import src_openclipart  # noqa: E402
import src_pysiogame  # noqa: E402
import src_shapes  # noqa: E402
import src_tuxpaint  # noqa: E402

SOURCES = {m.NAME: m for m in (src_tuxpaint, src_gcompris, src_emoji, src_openclipart, src_pysiogame, src_shapes)}
# Default item caps per source (after filtering), chosen so no source swamps the rest.
DEFAULT_CAPS = {"emoji": 1200, "openclipart": 600}
SPLITS = ("train", "val", "test")

_WORKER_OPTS = None


def parse_args(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(root, "data"), help="output folder (default: <package root>/data)")
    p.add_argument("--seed", type=int, default=0, help="seed for renderings and caption templates (not the split)")
    p.add_argument("--sources", default=",".join(SOURCES),
                   help=f"comma-separated subset of: {', '.join(SOURCES)}")
    p.add_argument("--max-per-source", type=int, default=None,
                   help="cap on items per source (overrides the defaults: emoji 1200, openclipart 600)")
    p.add_argument("--renderings", type=int, default=2,
                   help="renderings per photo item (tuxpaint photos, gcompris); tuxpaint drawings get half")
    p.add_argument("--emoji-renderings", type=int, default=1, help="renderings per emoji")
    p.add_argument("--drawing-renderings", type=int, default=1, help="renderings per openclipart/pysiogame drawing")
    p.add_argument("--scenes", type=int, default=2000, help="number of synthetic shape scenes")
    p.add_argument("--scene-questions", type=int, default=2, help="questions per shape scene (plus one caption)")
    p.add_argument("--jobs", type=int, default=max(1, min(os.cpu_count() or 1, 8)), help="worker processes")
    a = p.parse_args(argv)
    names = [s.strip() for s in a.sources.split(",") if s.strip()]
    unknown = [s for s in names if s not in SOURCES]
    if unknown:
        p.error(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    a.sources = names
    for k in ("renderings", "emoji_renderings", "drawing_renderings", "scene_questions", "jobs"):
        if getattr(a, k) < 1:
            p.error(f"--{k.replace('_', '-')} must be at least 1")
    if a.scenes < 0 or (a.max_per_source is not None and a.max_per_source < 1):
        p.error("--scenes must be >= 0 and --max-per-source >= 1")
    return a


def _installed(package):
    """Whether dpkg knows `package` as installed (True when dpkg-query is unavailable)."""
    if not shutil.which("dpkg-query"):
        return True
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


def _init_worker(opts):
    global _WORKER_OPTS
    _WORKER_OPTS = opts


def _render_task(task):
    """Worker: renders one item; returns (source, item id, split, [(relpath, samples)], error)."""
    source, item, split = task
    opts = _WORKER_OPTS
    mod = SOURCES[source]
    rng = common.rng_for(opts.seed, source, item["id"])
    base = f"images/{source}/{common.safe_id(item['id'])}"
    try:
        results = mod.render(item, rng, opts)
    except Exception as e:  # a bad file skips its item, with the reason in stats.json
        return source, item["id"], split, [], f"{type(e).__name__}: {e}"
    out = []
    for k, (img, samples) in enumerate(results):
        rel = f"{base}_{k}.png"
        path = os.path.join(opts.out, rel)
        if img.size != (common.SIZE, common.SIZE) or img.mode != "RGB":
            return source, item["id"], split, [], f"rendered {img.mode} {img.size}, expected RGB 224x224"
        img.save(path, format="PNG", compress_level=6)
        out.append((rel, samples))
    return source, item["id"], split, out, None


def main(argv=None):
    opts = parse_args(argv)
    t0 = time.time()
    os.makedirs(opts.out, exist_ok=True)
    stats = {"seed": opts.seed, "options": {k: v for k, v in vars(opts).items() if k not in ("out",)},
             "sources": {}, "notes": {}, "errors": {}}

    # 1. collect items per source
    tasks = []
    gcompris_items = []
    for name in opts.sources:
        mod = SOURCES[name]
        missing = [p for p in mod.PACKAGES if not _installed(p)]
        try:
            items, notes = mod.collect(opts)
        except Exception as e:
            traceback.print_exc()
            items, notes = [], [f"collect failed: {type(e).__name__}: {e}"]
        if missing:
            notes.insert(0, f"Debian package(s) not installed: {', '.join(missing)}")
        cap = opts.max_per_source if opts.max_per_source is not None else DEFAULT_CAPS.get(name)
        n_all = len(items)
        if cap is not None and len(items) > cap:
            keep = set(common.stable_order(opts.seed, [it["id"] for it in items])[:cap])
            items = [it for it in items if it["id"] in keep]
            notes.append(f"capped at {cap} of {n_all} items")
        if not items:
            print(f"[{name}] SKIPPED: {'; '.join(notes) or 'no items'}", file=sys.stderr)
        else:
            print(f"[{name}] {len(items)} items" + (f" ({'; '.join(notes)})" if notes else ""))
        stats["notes"][name] = notes
        if name == "gcompris":
            gcompris_items = items
        ids = collections.Counter(it["id"] for it in items)
        dup = [i for i, c in ids.items() if c > 1]
        if dup:
            raise SystemExit(f"[{name}] duplicate item ids (bug): {dup[:5]}")
        for it in items:
            tasks.append((name, it, common.split_of(name, it["id"])))

    # background photos for the cut-out sources (train-split gcompris photos, blurred)
    opts.background_photos = src_gcompris.background_photos(gcompris_items) if gcompris_items else []
    for name in opts.sources:
        d = os.path.join(opts.out, "images", name)
        if os.path.isdir(d):
            shutil.rmtree(d)
        os.makedirs(d)

    # 2. render (in parallel), 3. write JSONL in a fixed order
    rows = {s: [] for s in SPLITS}
    counts = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
    images_per = collections.defaultdict(collections.Counter)
    items_per = collections.defaultdict(collections.Counter)
    names_by_split = collections.defaultdict(set)
    results = []
    chunk = max(1, len(tasks) // (opts.jobs * 16) or 1)
    if opts.jobs > 1:
        with multiprocessing.Pool(opts.jobs, initializer=_init_worker, initargs=(opts,)) as pool:
            for i, r in enumerate(pool.imap(_render_task, tasks, chunksize=chunk)):
                results.append(r)
                if (i + 1) % 1000 == 0:
                    print(f"  rendered {i + 1}/{len(tasks)} items ({time.time() - t0:.0f} s)")
    else:
        _init_worker(opts)
        results = [_render_task(t) for t in tasks]
    for (source, item, split), (_, item_id, _, out, err) in zip(tasks, results):
        if err:
            stats["errors"].setdefault(source, []).append(f"{item_id}: {err}")
            continue
        items_per[source][split] += 1
        if source == "emoji":
            names_by_split[split].add(item["name"])
        for rel, samples in out:
            images_per[source][split] += 1
            for s in samples:
                row = {"image": rel}
                row.update(s)
                row["source"] = source
                rows[split].append(row)
                counts[source][split]["qa" if "question" in s else "caption"] += 1
    # every row must point at a rendered image, and no item may sit in two splits
    seen = {}
    for split in SPLITS:
        for row in rows[split]:
            if seen.setdefault(row["image"], split) != split:
                raise SystemExit(f"bug: {row['image']} appears in {seen[row['image']]} and {split}")
    missing = [rel for rel in seen if not os.path.isfile(os.path.join(opts.out, rel))]
    if missing:
        raise SystemExit(f"bug: {len(missing)} rows point at missing images, e.g. {missing[0]}")
    for split in SPLITS:
        path = os.path.join(opts.out, f"{split}.jsonl")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            for row in rows[split]:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(path + ".tmp", path)

    # 4. stats
    for source in opts.sources:
        stats["sources"][source] = {
            split: {"items": items_per[source][split], "images": images_per[source][split],
                    "captions": counts[source][split]["caption"], "qa": counts[source][split]["qa"]}
            for split in SPLITS}
    stats["totals"] = {split: {"images": sum(images_per[s][split] for s in opts.sources),
                               "samples": len(rows[split]),
                               "captions": sum(counts[s][split]["caption"] for s in opts.sources),
                               "qa": sum(counts[s][split]["qa"] for s in opts.sources)} for split in SPLITS}
    if "emoji" in opts.sources:
        unseen = names_by_split["test"] - names_by_split["train"]
        stats["emoji_test_names_not_in_train"] = len(unseen)
    answers = collections.Counter(r["answer"] for r in rows["train"] if "answer" in r)
    stats["train_top_answers"] = answers.most_common(25)
    stats["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(opts.out, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1, ensure_ascii=False)

    print(f"{'source':12s} " + " ".join(f"{s + ' img/smp':>18s}" for s in SPLITS))
    for source in opts.sources:
        print(f"{source:12s} " + " ".join(
            f"{images_per[source][s]:>8d} /{counts[source][s]['caption'] + counts[source][s]['qa']:>7d}" for s in SPLITS))
    print(f"{'total':12s} " + " ".join(
        f"{stats['totals'][s]['images']:>8d} /{stats['totals'][s]['samples']:>7d}" for s in SPLITS))
    if "emoji_test_names_not_in_train" in stats:
        print(f"emoji in test whose names never appear in train: {stats['emoji_test_names_not_in_train']}")
    n_err = sum(len(v) for v in stats["errors"].values())
    if n_err:
        print(f"{n_err} items failed to render (listed in stats.json 'errors')", file=sys.stderr)
    print(f"done in {stats['seconds']} s -> {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
