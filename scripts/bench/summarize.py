"""Summarises scripts/bench/all.sh's raw JSON lines: one table (median and min-max over the rounds,
speed ratios with >1 meaning swift-vlm is faster), summary.json and chart.svg.
Usage: summarize.py RAW.jsonl OUTDIR "machine description"."""
import json, statistics, sys
from collections import defaultdict

raw, out, machine = sys.argv[1], sys.argv[2], sys.argv[3]
DECODE_EMPTY, DECODE_AFTER = "decode 64 tokens from an empty context, tok/s", "decode 64 tokens after 256, tok/s"
values = defaultdict(list)   # (workload, column) -> [value per round]
for line in open(raw):
    rec = json.loads(line)
    who, d = rec["who"], rec["data"]
    if who == "swift-vlm":
        b = d.get("bench")
        col = "swift-vlm auto" if d.get("precision") == "bf16" else "swift-vlm fp32"
        if b == "decoder":
            # as `vlm` runs by default (auto); a float32 prefill lands in the fp32 column
            col = "swift-vlm auto"
            values[("prefill 256 tokens, tok/s", col)].append(d["prefill_tokens_per_s"])
            values[(DECODE_AFTER, col)].append(d["decode_tokens_per_s"])
            if "decode_empty_tokens_per_s" in d:
                values[(DECODE_EMPTY, col)].append(d["decode_empty_tokens_per_s"])
        elif b == "vision":
            for k, name in (("dinov2_s14_b8_ms", "DINOv2-S/14 224 batch 8, ms/image"), ("vit_b16_b8_ms", "ViT-B/16 224 batch 8, ms/image"),
                            ("dinov2_s14_b1_ms", "DINOv2-S/14 224 batch 1, ms/image")):
                values[(name, col)].append(d[k])
        elif b == "train":
            values[("training step, samples/s", col)].append(d["samples_per_s"])
            values[("training peak RSS, MiB", col)].append(d["peak_rss_mib"])
    elif who == "llama.cpp":
        if d.get("n_prompt", 0) > 0 and d.get("n_gen", 0) == 0:
            values[("prefill 256 tokens, tok/s", "llama.cpp")].append(d["avg_ts"])
        elif d.get("n_gen", 0) > 0 and d.get("n_prompt", 0) == 0:
            # tg64 (empty context) and tg64 @ d256 (after 256 tokens)
            values[(DECODE_AFTER if d.get("n_depth", 0) > 0 else DECODE_EMPTY, "llama.cpp")].append(d["avg_ts"])
    elif who.startswith("pytorch"):
        col = who.replace("pytorch-", "pytorch ")
        if "prefill_tokens_per_s" in d:
            values[("prefill 256 tokens, tok/s", col)].append(d["prefill_tokens_per_s"])
            values[(DECODE_AFTER, col)].append(d["decode_tokens_per_s"])
        elif "dinov2_s14_b8_ms" in d:
            for k, name in (("dinov2_s14_b8_ms", "DINOv2-S/14 224 batch 8, ms/image"), ("vit_b16_b8_ms", "ViT-B/16 224 batch 8, ms/image"),
                            ("dinov2_s14_b1_ms", "DINOv2-S/14 224 batch 1, ms/image")):
                values[(name, col)].append(d[k])
        elif "samples_per_s" in d:
            values[("training step, samples/s", col)].append(d["samples_per_s"])
            values[("training peak RSS, MiB", col)].append(d["peak_rss_mib"])

workloads = [DECODE_EMPTY, DECODE_AFTER, "prefill 256 tokens, tok/s", "DINOv2-S/14 224 batch 1, ms/image",
             "DINOv2-S/14 224 batch 8, ms/image", "ViT-B/16 224 batch 8, ms/image", "training step, samples/s", "training peak RSS, MiB"]
columns = ["swift-vlm fp32", "swift-vlm auto", "pytorch fp32", "pytorch bf16", "llama.cpp"]
lower_better = lambda w: "ms/" in w or "MiB" in w
med = lambda w, c: statistics.median(values[(w, c)]) if values.get((w, c)) else None

def ratio(w, ours, theirs):
    a, b = med(w, ours), med(w, theirs)
    if a is None or b is None: return None
    return b / a if lower_better(w) else a / b

pairs = [("swift-vlm fp32", "pytorch fp32"), ("swift-vlm auto", "pytorch bf16"), ("swift-vlm auto", "llama.cpp")]
summary = {"machine": machine, "workloads": {}}
cell = lambda xs: f"{statistics.median(xs):.1f} ({min(xs):.1f}–{max(xs):.1f})" if xs else "—"
header = f"| workload | " + " | ".join(columns) + " | fp32 vs pytorch fp32 | auto vs pytorch bf16 | auto vs llama.cpp |"
lines = [f"Machine: {machine}. swift-vlm auto: bf16 products where the CPU has them, decode on the GGUF's blocks "
         "(what `vlm` runs by default). Ratios: >1 means swift-vlm is faster (or, for RSS, smaller).", "",
         header, "|" + "---|" * (len(columns) + 4)]
for w in workloads:
    if not any(values.get((w, c)) for c in columns): continue
    rs = [ratio(w, a, b) for a, b in pairs]
    lines.append(f"| {w} | " + " | ".join(cell(values.get((w, c), [])) for c in columns) + " | "
                 + " | ".join(f"{r:.2f}×" if r else "—" for r in rs) + " |")
    summary["workloads"][w] = {"lower_is_better": lower_better(w),
                               "median": {c: med(w, c) for c in columns if med(w, c) is not None},
                               "runs": {c: values[(w, c)] for c in columns if values.get((w, c))},
                               "ratios": {f"{a} vs {b}": r for (a, b), r in zip(pairs, rs) if r}}
table = "\n".join(lines)
print(table)
open(f"{out}/table.md", "w").write(table + "\n")
json.dump(summary, open(f"{out}/summary.json", "w"), indent=1)

# bar chart: each workload's speed relative to the fastest system (1 = fastest), one bar per system
colours = {"swift-vlm fp32": "#6baed6", "swift-vlm auto": "#08519c", "pytorch fp32": "#fdae6b", "pytorch bf16": "#e6550d", "llama.cpp": "#31a354"}
rows = [w for w in workloads if w in summary["workloads"]]
bar_h, gap, left, width = 12, 16, 260, 420
y = 40
svg = [f'<text x="10" y="20" font-size="13" font-family="sans-serif">swift-vlm and peers: speed relative to the fastest (longer is faster; RSS: smaller is longer) — {machine}</text>']
for w in rows:
    m = summary["workloads"][w]["median"]
    score = {c: (1 / v if lower_better(w) else v) for c, v in m.items() if v}
    best = max(score.values())
    svg.append(f'<text x="10" y="{y + 10}" font-size="11" font-family="sans-serif">{w}</text>')
    for c in columns:
        if c not in score: continue
        L = width * score[c] / best
        svg.append(f'<rect x="{left}" y="{y}" width="{L:.1f}" height="{bar_h - 2}" fill="{colours[c]}"/>')
        svg.append(f'<text x="{left + L + 4:.1f}" y="{y + 9}" font-size="9" font-family="sans-serif">{c}: {m[c]:.1f}</text>')
        y += bar_h
    y += gap
legend_y = y
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 200}" height="{legend_y + 10}">',
       '<rect width="100%" height="100%" fill="white"/>'] + svg + ['</svg>']
open(f"{out}/chart.svg", "w").write("\n".join(svg) + "\n")
print(f"\nwrote {out}/table.md, {out}/summary.json, {out}/chart.svg, raw runs in {raw}")
