"""A scene-heavy training mix (session 8's stage G data, "data-v3"): the train conversations of
every source but the scenes from one build, repeated, plus the train conversations of a larger
scene-only build, shuffled. Validation and test stay the first build's: the split is by item hash
(scripts/data/common.py split_of), so a scene of the first build sits on the same side in the
larger one, and none of the larger build's train scenes is in the first build's val/test.

    python3 scripts/data/build_dataset.py --out data-v2 --scenes 8000            # the v2 data
    python3 scripts/data/build_dataset.py --out scenes-v3 --sources shapes --scenes 25000
    python3 scripts/data/scene_heavy_mix.py --base data-v2 --scenes scenes-v3 --out data-v3 --repeat 2

The output folder gets train-conv.jsonl and images/<source> links into the two builds (the first
8,000 scenes of both builds are the same files, byte for byte: each scene is rendered from its own
seeded generator)."""
import argparse, json, os, random

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--base", required=True, help="a full build (its non-scene train conversations are used)")
ap.add_argument("--scenes", required=True, help="a scene-only build (--sources shapes)")
ap.add_argument("--out", required=True)
ap.add_argument("--repeat", type=int, default=2, help="copies of the non-scene conversations (default 2)")
ap.add_argument("--seed", type=int, default=8, help="shuffle seed")
a = ap.parse_args()
if a.repeat < 1:
    ap.error("--repeat must be at least 1")
os.makedirs(os.path.join(a.out, "images"), exist_ok=True)
for src in sorted(os.listdir(os.path.join(a.base, "images"))):
    link = os.path.join(a.out, "images", src)
    target = os.path.abspath(os.path.join(a.scenes if src == "shapes" else a.base, "images", src))
    if os.path.islink(link):
        os.remove(link)
    os.symlink(target, link)
others = [l for l in open(os.path.join(a.base, "train-conv.jsonl")) if json.loads(l)["source"] != "shapes"]
scenes = [l for l in open(os.path.join(a.scenes, "train-conv.jsonl")) if json.loads(l)["source"] == "shapes"]
lines = others * a.repeat + scenes
random.Random(a.seed).shuffle(lines)
with open(os.path.join(a.out, "train-conv.jsonl"), "w") as f:
    f.writelines(lines)
images = {json.loads(l)["image"] for l in scenes}
print(f"{len(others)} non-scene conversations x{a.repeat}, {len(scenes)} scene conversations of {len(images)} scenes: "
      f"{len(lines)} lines in {os.path.join(a.out, 'train-conv.jsonl')}")
