#!/usr/bin/env python3
"""Checks a dataset built by build_dataset.py and prints what it found; exit status 1 on a problem.

    python3 scripts/data/check_dataset.py data

Checks: every row has image/source/concept/qtype and either caption or question+answer; every
image exists, is 224x224 RGB (a sample of them is opened) and sits in one split only; every
rendering of an item (images/<source>/<item>_<k>.png) is in one split; val/test rows carry
seen_concept and it equals "the concept occurs in train"; captions name their concept
(concepts.mentions; shape scenes excepted, their concept is the list of kinds); the -conv files
hold exactly one caption conversation (with the fixed instruction) and at most one question
conversation per image, whose turns are the image's questions and answers; every question type
seen in train also occurs in test (or is listed as missing).
"""
import collections
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import concepts  # noqa: E402

SPLITS = ("train", "val", "test")
INSTRUCTION = "<image>\nWrite a short caption for this image."


def main(argv):
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    root = argv[1]
    problems = []

    def bad(msg):
        if len(problems) < 50:
            print("PROBLEM:", msg)
        problems.append(msg)

    rows = {}
    for split in SPLITS:
        path = os.path.join(root, f"{split}.jsonl")
        if not os.path.isfile(path):
            bad(f"{path} missing")
            rows[split] = []
            continue
        rows[split] = [json.loads(line) for line in open(path, encoding="utf-8")]
    split_of_image, split_of_item = {}, {}
    for split in SPLITS:
        for i, r in enumerate(rows[split]):
            where = f"{split}.jsonl line {i + 1}"
            for k in ("image", "source", "concept", "qtype"):
                if not r.get(k):
                    bad(f"{where}: no {k}")
            if ("caption" in r) == ("question" in r) or ("question" in r and "answer" not in r):
                bad(f"{where}: needs caption, or question and answer")
            if split_of_image.setdefault(r["image"], split) != split:
                bad(f"{where}: {r['image']} also in {split_of_image[r['image']]}")
            item = r["image"].rsplit("_", 1)[0]
            if split_of_item.setdefault(item, split) != split:
                bad(f"{where}: item {item} also in {split_of_item[item]}")
            if split != "train" and "seen_concept" not in r:
                bad(f"{where}: no seen_concept")
            if "caption" in r and r["source"] != "shapes" and not concepts.mentions(r["caption"], r["concept"]):
                bad(f"{where}: caption {r['caption']!r} does not name concept {r['concept']!r}")
    train_concepts = {r["concept"] for r in rows["train"]}
    for split in ("val", "test"):
        for r in rows[split]:
            if r.get("seen_concept") != (r["concept"] in train_concepts):
                bad(f"{split}: {r['image']}: seen_concept {r.get('seen_concept')} but concept in train is "
                    f"{r['concept'] in train_concepts}")
    images = sorted(split_of_image)
    missing = [p for p in images if not os.path.isfile(os.path.join(root, p))]
    for p in missing[:5]:
        bad(f"missing image {p}")
    try:
        from PIL import Image
        for p in random.Random(0).sample(images, min(300, len(images))):
            with Image.open(os.path.join(root, p)) as im:
                if im.size != (224, 224) or im.mode != "RGB":
                    bad(f"{p}: {im.mode} {im.size}")
    except ImportError:
        print("(Pillow missing: image sizes not checked)")

    # conversations against the sample rows
    for split in SPLITS:
        path = os.path.join(root, f"{split}-conv.jsonl")
        if not os.path.isfile(path):
            bad(f"{path} missing")
            continue
        want_caps = collections.Counter()
        want_qas = collections.defaultdict(collections.Counter)
        for r in rows[split]:
            if "caption" in r:
                want_caps[(r["image"], r["caption"])] += 1
            else:
                want_qas[r["image"]][(r["question"], r["answer"])] += 1
        got_caps = collections.Counter()
        qa_lines = collections.Counter()
        for i, line in enumerate(open(path, encoding="utf-8")):
            rec = json.loads(line)
            conv = rec.get("conversations") or []
            where = f"{split}-conv.jsonl line {i + 1}"
            if len(conv) < 2 or len(conv) % 2:
                bad(f"{where}: {len(conv)} turns")
                continue
            if any(t.get("from") != ("human" if k % 2 == 0 else "gpt") for k, t in enumerate(conv)):
                bad(f"{where}: turns do not alternate human/gpt")
            if not conv[0]["value"].startswith("<image>\n") or any("<image>" in t["value"] for t in conv[1:]):
                bad(f"{where}: <image> must open the first turn only")
            if conv[0]["value"] == INSTRUCTION:
                got_caps[(rec["image"], conv[1]["value"])] += 1
            else:
                qa_lines[rec["image"]] += 1
                pairs = collections.Counter((conv[k]["value"].replace("<image>\n", "", 1), conv[k + 1]["value"])
                                            for k in range(0, len(conv), 2))
                if pairs != want_qas.get(rec["image"]):
                    bad(f"{where}: question turns differ from {split}.jsonl's for {rec['image']}")
        if got_caps != want_caps:
            bad(f"{split}-conv.jsonl: caption lines differ from {split}.jsonl's captions")
        if set(qa_lines) != set(want_qas) or any(v != 1 for v in qa_lines.values()):
            bad(f"{split}-conv.jsonl: not exactly one question line per image with questions")
        print(f"{split}: {len(rows[split])} rows, {len({r['image'] for r in rows[split]})} images, "
              f"{sum(got_caps.values())} caption + {sum(qa_lines.values())} question conversations")

    qt = {s: collections.Counter(r["qtype"] for r in rows[s]) for s in SPLITS}
    print("qtypes in train:", dict(sorted(qt["train"].items())))
    for s in ("val", "test"):
        absent = sorted(set(qt["train"]) - set(qt[s]))
        if absent:
            print(f"qtypes with no {s} row: {', '.join(absent)}")
    print(f"{len(images)} images in {len(split_of_item)} items, none in two splits" if not problems else "")
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
