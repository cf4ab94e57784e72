"""Draws a training run's loss curve (metrics.jsonl -> SVG), with no dependencies.
Usage: python3 scripts/plot_metrics.py runs/default/metrics.jsonl Weights/projector/loss.svg"""
import json, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = [r["step"] for r in rows]
loss = [r["loss"] for r in rows]
val = [(r["step"], r["val_loss"]) for r in rows if "val_loss" in r]
# moving average of the training loss over 50 steps
avg = []
for i in range(len(loss)):
    w = loss[max(0, i - 49):i + 1]
    avg.append(sum(w) / len(w))
W, H, L, R, T, B = 720, 400, 60, 20, 30, 50
xmax = max(steps) or 1
ymax = max(max(loss[len(loss) // 20:] or loss), max((v for _, v in val), default=0)) * 1.05
ymin = 0
X = lambda s: L + (W - L - R) * s / xmax
Y = lambda v: T + (H - T - B) * (1 - (min(v, ymax) - ymin) / (ymax - ymin))
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{W/2}" y="18" text-anchor="middle">projector training: cross-entropy on answer tokens</text>']
for k in range(6):
    v = ymin + (ymax - ymin) * k / 5
    out.append(f'<line x1="{L}" x2="{W-R}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#ddd"/>')
    out.append(f'<text x="{L-6}" y="{Y(v)+4:.1f}" text-anchor="end">{v:.1f}</text>')
for k in range(6):
    s = xmax * k / 5
    out.append(f'<text x="{X(s):.1f}" y="{H-B+18}" text-anchor="middle">{int(s)}</text>')
out.append(f'<text x="{W/2}" y="{H-10}" text-anchor="middle">optimizer step</text>')
out.append('<polyline fill="none" stroke="#9bc" stroke-width="1" points="' + " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in zip(steps, loss)) + '"/>')
out.append('<polyline fill="none" stroke="#036" stroke-width="2" points="' + " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in zip(steps, avg)) + '"/>')
if val:
    out.append('<polyline fill="none" stroke="#c30" stroke-width="2" points="' + " ".join(f"{X(s):.1f},{Y(v):.1f}" for s, v in val) + '"/>')
    for s, v in val:
        out.append(f'<circle cx="{X(s):.1f}" cy="{Y(v):.1f}" r="3" fill="#c30"/>')
out.append(f'<text x="{W-R-200}" y="{T+16}" fill="#036">train (50-step mean)</text>')
out.append(f'<text x="{W-R-200}" y="{T+32}" fill="#c30">validation (240 samples)</text>')
out.append('</svg>')
open(sys.argv[2], "w").write("\n".join(out))
