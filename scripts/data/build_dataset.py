#!/usr/bin/env python3
"""Builds swift-vlm's caption/QA dataset from Debian packages (no internet needed).

Needs: python3 >= 3.9 with numpy and Pillow (with WebP support: `pip install pillow numpy`),
and the Debian packages that scripts/data/install_sources.sh installs (tuxpaint-stamps-default,
gcompris-qt-data, fonts-noto-color-emoji, unicode-data, openclipart-png, openclipart-svg,
pysiogame, wamerican, librsvg2-bin). A missing package only skips its source, with a message.

    python3 scripts/data/build_dataset.py --out data --seed 0

Writes under --out:
    images/<source>/<id>_<k>.png   224x224 RGB PNGs (cut-outs composited onto backgrounds)
    train.jsonl val.jsonl test.jsonl   one sample a line:
        {"image": "images/...png", "caption": "...", "source": "...", "concept": "...", "qtype": "caption"}  or
        {"image": "images/...png", "question": "...", "answer": "...", "source": "...", "concept": "...",
         "qtype": "shape_colour"}   (+ "seen_concept": true/false on val/test rows)
    train-conv.jsonl val-conv.jsonl test-conv.jsonl   per image one caption conversation and one
        multi-turn conversation of all its questions (LLaVA "conversations" records)
        (image paths are relative to the JSONL file)
    stats.json                 counts per source / split / kind / qtype, concepts, notes on what was skipped

Split: sha1("<source>/<item-id>") -> 80/10/10 train/val/test, so all renderings of one stamp,
emoji, drawing or photo stay on one side, and the split does not move when --seed changes.
Train items get --renderings / --emoji-renderings / --drawing-renderings renderings (3 each),
val/test items --eval-renderings (1).
Deterministic: the same --seed and options give byte-identical JSONL and images.
Re-running re-renders everything (about 13 minutes on 2 busy cores with --scenes 8000); images/<source>/ of each source
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
import concepts  # noqa: E402
import src_emoji  # noqa: E402
import src_emojione  # noqa: E402
import src_gcompris  # noqa: E402
import src_openclipart  # noqa: E402
import src_pysiogame  # noqa: E402
import src_shapes  # noqa: E402
import src_tuxpaint  # noqa: E402

SOURCES = {m.NAME: m for m in (src_tuxpaint, src_gcompris, src_emoji, src_emojione, src_openclipart,
                                src_pysiogame, src_shapes)}
# Default item caps per source (after filtering), chosen so no source swamps the rest.
DEFAULT_CAPS = {"emoji": 1200, "emojione": 600, "openclipart": 600}
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
                   help="cap on items per source (overrides the defaults: emoji 1200, emojione 600, openclipart 600)")
    p.add_argument("--renderings", type=int, default=3,
                   help="renderings per train item of tuxpaint and gcompris (photos, stamps, word cut-outs)")
    p.add_argument("--emoji-renderings", type=int, default=3, help="renderings per train emoji")
    p.add_argument("--drawing-renderings", type=int, default=3, help="renderings per train openclipart/pysiogame drawing")
    p.add_argument("--eval-renderings", type=int, default=1, help="renderings per val/test item (every source)")
    p.add_argument("--captions", choices=("canonical", "varied"), default="canonical",
                   help="canonical: one caption template per source and kind (predictable from the image); "
                        "varied: a random template of several")
    p.add_argument("--scenes", type=int, default=25000, help="number of synthetic shape scenes")
    p.add_argument("--scene-questions", default="all",
                   help="'all' (every applicable question of every scene) or N sampled questions per scene")
    p.add_argument("--jobs", type=int, default=max(1, min(os.cpu_count() or 1, 8)), help="worker processes")
    a = p.parse_args(argv)
    names = [s.strip() for s in a.sources.split(",") if s.strip()]
    unknown = [s for s in names if s not in SOURCES]
    if unknown:
        p.error(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    a.sources = names
    if a.scene_questions != "all":
        try:
            a.scene_questions = int(a.scene_questions)
        except ValueError:
            p.error(f"--scene-questions must be 'all' or a number, not {a.scene_questions!r}")
        if a.scene_questions < 1:
            p.error("--scene-questions must be at least 1")
    for k in ("renderings", "emoji_renderings", "drawing_renderings", "eval_renderings", "jobs"):
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


CAPTION_INSTRUCTION = "Write a short caption for this image."


def write_conversations(opts, split, images):
    """<split>-conv.jsonl: per image one line with its caption as a single-turn conversation and
    one line with all its questions as a multi-turn conversation (turn order shuffled with a
    seeded rng), in the LLaVA record shape. Returns counts for stats.json."""
    path = os.path.join(opts.out, f"{split}-conv.jsonl")
    n_lines = n_caption = n_qa = turns = words = 0
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for rel, source, image_rows in images:
            caps = [r for r in image_rows if "caption" in r]
            qas = [r for r in image_rows if "question" in r]
            concept = image_rows[0]["concept"]
            extra = {"source": source, "concept": concept}
            if "seen_concept" in image_rows[0]:
                extra["seen_concept"] = image_rows[0]["seen_concept"]
            for c in caps:
                rec = {"image": rel, "conversations": [
                    {"from": "human", "value": "<image>\n" + CAPTION_INSTRUCTION},
                    {"from": "gpt", "value": c["caption"]}], **extra}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n_lines += 1
                n_caption += 1
                turns += 1
                words += len(c["caption"].split())
            if qas:
                order = list(qas)
                common.rng_for(opts.seed, "conv", rel).shuffle(order)
                conv = []
                for k, q in enumerate(order):
                    conv.append({"from": "human", "value": ("<image>\n" if k == 0 else "") + q["question"]})
                    conv.append({"from": "gpt", "value": q["answer"]})
                    words += len(q["answer"].split())
                rec = {"image": rel, "conversations": conv, **extra, "qtypes": [q["qtype"] for q in order]}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n_lines += 1
                n_qa += 1
                turns += len(order)
    os.replace(path + ".tmp", path)
    return {"lines": n_lines, "caption_lines": n_caption, "qa_lines": n_qa, "answer_turns": turns,
            "answer_words": words}


def concept_report(rows):
    """Concepts of the train split across sources: renderings (train images) per source."""
    per = collections.defaultdict(lambda: collections.defaultdict(set))
    for r in rows:
        if r["source"] != "shapes":
            per[r["concept"]][r["source"]].add(r["image"])
    counts = {c: {s: len(v) for s, v in d.items()} for c, d in per.items()}
    multi = {c: d for c, d in counts.items() if len(d) >= 2}
    ge3_total = {c: d for c, d in multi.items() if sum(d.values()) >= 3}
    ge3_each = {c: d for c, d in multi.items() if sum(1 for v in d.values() if v >= 3) >= 2}
    top = sorted(ge3_total.items(), key=lambda kv: (-len(kv[1]), -sum(kv[1].values()), kv[0]))
    return {"train_concepts": len(counts),
            "concepts_in_2plus_sources": len(multi),
            "concepts_3plus_renderings_2plus_sources": len(ge3_total),
            "concepts_3plus_renderings_2plus_sources_not_flags": sum(1 for c in ge3_total if not c.startswith("flag of ")),
            "concepts_in_3plus_sources": sum(1 for d in counts.values() if len(d) >= 3),
            "concepts_3plus_renderings_in_each_of_2plus_sources": len(ge3_each),
            "top_shared": [{"concept": c, "renderings": d} for c, d in top[:60]]}


def summary_table(stats, sources):
    """The printed summary (also what READY files hold): images / samples / conversation lines."""
    lines = [f"{'source':12s} " + " ".join(f"{s + ' img/smp/conv':>26s}" for s in SPLITS)]
    conv_src = stats.get("conv_by_source", {})
    for source in sources + ["total"]:
        cells = []
        for split in SPLITS:
            if source == "total":
                t = stats["totals"][split]
                img, smp = t["images"], t["samples"]
            else:
                d = stats["sources"][source][split]
                img, smp = d["images"], d["captions"] + d["qa"]
            cv = conv_src.get(source, {}).get(split, 0) if source != "total" else stats["conversations"][split]["lines"]
            cells.append(f"{img:>8d} /{smp:>8d} /{cv:>7d}")
        lines.append(f"{source:12s} " + " ".join(cells))
    c = stats["concepts"]
    lines.append(f"train concepts (not shapes) {c['train_concepts']}; in >= 2 sources {c['concepts_in_2plus_sources']}; "
                 f">= 3 renderings in >= 2 sources {c['concepts_3plus_renderings_2plus_sources']} "
                 f"({c['concepts_3plus_renderings_2plus_sources_not_flags']} of them not flags; "
                 f">= 3 in each of >= 2 sources: {c['concepts_3plus_renderings_in_each_of_2plus_sources']}; "
                 f"in >= 3 sources: {c['concepts_in_3plus_sources']})")
    lines.append("top shared: " + ", ".join(t["concept"] for t in c["top_shared"][:30]))
    lines.append("train qtypes: " + ", ".join(f"{k} {v}" for k, v in stats["train_qtypes"].items()))
    lines.append("conversations: " + "; ".join(
        f"{s} {v['lines']} lines, {v['answer_turns']} answers, {v['answer_words']} answer words"
        for s, v in stats["conversations"].items()))
    lines.append("seen_concept rows: " + "; ".join(f"{s} {v['seen']} seen / {v['unseen']} unseen"
                                                   for s, v in stats["seen_concept"].items()))
    for split, per in stats["seen_concept_images"].items():
        lines.append(f"seen_concept images {split}: " + ", ".join(
            f"{src} {v['seen']}/{v['seen'] + v['unseen']}" for src, v in per.items()))
    return "\n".join(lines)


def main(argv=None):
    opts = parse_args(argv)
    t0 = time.time()
    os.makedirs(opts.out, exist_ok=True)
    stats = {"seed": opts.seed, "options": {k: v for k, v in vars(opts).items() if k not in ("out",)},
             "sources": {}, "notes": {}, "errors": {}}

    # 1. collect items per source, name each by the shared concept vocabulary
    collected = {}
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
        if hasattr(mod, "concept_name"):
            for it in items:
                it["concept"], it["display"] = concepts.normalise(mod.concept_name(it))
        collected[name] = (items, notes)
    # capped sources keep first the items whose concept the most other sources also show
    concept_sources = collections.defaultdict(set)
    for name, (items, _) in collected.items():
        for it in items:
            if "concept" in it:
                concept_sources[it["concept"]].add(name)
    tasks = []
    gcompris_items = []
    for name in opts.sources:
        items, notes = collected[name]
        cap = opts.max_per_source if opts.max_per_source is not None else DEFAULT_CAPS.get(name)
        n_all = len(items)
        if cap is not None and len(items) > cap:
            n_src = {it["id"]: len(concept_sources.get(it.get("concept"), ())) for it in items}
            shared = [i for i, n in n_src.items() if n > 1]
            order = []
            for n in sorted(set(n_src.values()), reverse=True):
                order += common.stable_order(opts.seed, [i for i, m in n_src.items() if m == n])
            keep = set(order[:cap])
            items = [it for it in items if it["id"] in keep]
            notes.append(f"capped at {cap} of {n_all} items ({min(cap, len(shared))} of them with a concept "
                         f"another source shows)")
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
            it["split"] = common.split_of(name, it["id"])
            tasks.append((name, it, it["split"]))

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
    by_image = {s: [] for s in SPLITS}
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
            image_rows = []
            for s in samples:
                row = {"image": rel}
                row.update({k: v for k, v in s.items() if k not in ("qtype", "concept")})
                row["source"] = source
                row["concept"] = s.get("concept", item.get("concept"))
                row["qtype"] = s["qtype"]
                image_rows.append(row)
                counts[source][split]["qa" if "question" in s else "caption"] += 1
            rows[split].extend(image_rows)
            by_image[split].append((rel, source, image_rows))
    # every row must point at a rendered image, and no item may sit in two splits
    seen = {}
    for split in SPLITS:
        for row in rows[split]:
            if seen.setdefault(row["image"], split) != split:
                raise SystemExit(f"bug: {row['image']} appears in {seen[row['image']]} and {split}")
    missing = [rel for rel in seen if not os.path.isfile(os.path.join(opts.out, rel))]
    if missing:
        raise SystemExit(f"bug: {len(missing)} rows point at missing images, e.g. {missing[0]}")
    train_concepts = {r["concept"] for r in rows["train"]}
    for split in ("val", "test"):
        for row in rows[split]:
            row["seen_concept"] = row["concept"] in train_concepts
    conv_stats = {}
    for split in SPLITS:
        path = os.path.join(opts.out, f"{split}.jsonl")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            for row in rows[split]:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(path + ".tmp", path)
        conv_stats[split] = write_conversations(opts, split, by_image[split])

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
    stats["conversations"] = conv_stats
    stats["conv_by_source"] = {src: {split: sum((1 if any("caption" in r for r in rr) else 0) +
                                                (1 if any("question" in r for r in rr) else 0)
                                                for _, s2, rr in by_image[split] if s2 == src)
                                     for split in SPLITS} for src in opts.sources}
    stats["concepts"] = concept_report(rows["train"])
    stats["train_qtypes"] = dict(sorted(collections.Counter(r["qtype"] for r in rows["train"]).items()))
    stats["qtypes_by_source"] = {src: dict(sorted(collections.Counter(
        r["qtype"] for r in rows["train"] if r["source"] == src).items())) for src in opts.sources}
    stats["seen_concept"] = {split: {"seen": sum(r["seen_concept"] for r in rows[split]),
                                     "unseen": sum(not r["seen_concept"] for r in rows[split])}
                             for split in ("val", "test")}
    stats["seen_concept_images"] = {split: {src: {
        "seen": len({r["image"] for r in rows[split] if r["source"] == src and r["seen_concept"]}),
        "unseen": len({r["image"] for r in rows[split] if r["source"] == src and not r["seen_concept"]})}
        for src in opts.sources} for split in ("val", "test")}
    answers = collections.Counter(r["answer"] for r in rows["train"] if "answer" in r)
    stats["train_top_answers"] = answers.most_common(25)
    stats["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(opts.out, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1, ensure_ascii=False)

    print(summary_table(stats, opts.sources))
    if "emoji_test_names_not_in_train" in stats:
        print(f"emoji in test whose names never appear in train: {stats['emoji_test_names_not_in_train']}")
    n_err = sum(len(v) for v in stats["errors"].values())
    if n_err:
        print(f"{n_err} items failed to render (listed in stats.json 'errors')", file=sys.stderr)
    print(f"done in {stats['seconds']} s -> {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
