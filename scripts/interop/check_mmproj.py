"""Checks `vlm export --format gguf-mmproj` against llama.cpp's libmtmd: for each tiny fixture triple
(scripts/interop/pairs.py: dinov2, clip, siglip) exports the mmproj, has llama.cpp compute the image
rows of the same images (scripts/interop/mmproj_embd.cpp, built against llama.cpp by
scripts/interop/build_mmproj_embd.sh), computes swift-vlm's rows (`vlm features` at the projector's
layer, CLS dropped, the projector applied in float64 numpy: W2·gelu(W1·x + b1) + b2, which is what
`vlm caption` feeds the decoder), and prints the max abs difference per image. Target: <= 1e-3.

    python3 scripts/interop/check_mmproj.py [--pairs dinov2,clip,siglip] [--embd /work/peers/interop-mtmd/mmproj_embd]

Needs numpy, safetensors, Pillow (any python). Exit status 1 when any difference exceeds 1e-3.
"""
import argparse, json, math, os, subprocess, sys, tempfile
import numpy as np
from safetensors.numpy import load_file
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pairs

ap = argparse.ArgumentParser()
ap.add_argument("--vlm", default=os.path.join(pairs.ROOT, ".build", "release", "vlm"))
ap.add_argument("--embd", default="/work/peers/interop-mtmd/mmproj_embd")
ap.add_argument("--pairs", default="dinov2,clip,siglip")
ap.add_argument("--tol", type=float, default=1e-3)
a = ap.parse_args()
tmp = tempfile.mkdtemp(prefix="check_mmproj_")
erf = np.vectorize(math.erf)
worst_all = 0.0
for name in a.pairs.split(","):
    vision, decoder, proj, images, size = pairs.make(name, os.path.join(tmp, name), images=3)
    out = os.path.join(tmp, name + "-mmproj.gguf")
    r = subprocess.run([a.vlm, "export", "--format", "gguf-mmproj", "--out", out, "--vision", vision, "--llm", decoder,
                        "--projector", proj], capture_output=True, text=True)
    print(name, "export:", (r.stdout + r.stderr).strip().replace("\n", " | "))
    if r.returncode: sys.exit(2)
    t = load_file(proj)
    w1, b1 = t["multi_modal_projector.linear_1.weight"].astype(np.float64), t["multi_modal_projector.linear_1.bias"].astype(np.float64)
    w2, b2 = t["multi_modal_projector.linear_2.weight"].astype(np.float64), t["multi_modal_projector.linear_2.bias"].astype(np.float64)
    meta = json.loads(open(proj, "rb").read(8 + int.from_bytes(open(proj, "rb").read(8), "little"))[8:])["__metadata__"]
    cfg = json.loads(meta["swift_vlm.projector_config"])
    feats = os.path.join(tmp, name + "-features.safetensors")
    r = subprocess.run([a.vlm, "features", "--vision", vision, "--layer", cfg["vision_layer"], "--out", feats] + images,
                       capture_output=True, text=True)
    if r.returncode: print(r.stderr); sys.exit(2)
    f = load_file(feats)["features"].astype(np.float64)
    for i, img in enumerate(images):
        x = f[i, cfg["prefix_tokens"]:]
        h = x @ w1.T + b1
        rows_erf = (0.5 * h * (1 + erf(h / math.sqrt(2)))) @ w2.T + b2
        rows_tanh = (0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))) @ w2.T + b2
        e = os.path.join(tmp, f"{name}-{i}.f32")
        r = subprocess.run([a.embd, pairs.DECODER_GGUF, out, img, e], capture_output=True, text=True)
        if r.returncode:
            print(name, "llama.cpp failed:", r.stderr[-2000:]); worst_all = math.inf; continue
        n, c = map(int, r.stdout.split()[-2:])
        got = np.fromfile(e, dtype=np.float32).reshape(n, c).astype(np.float64)
        if got.shape != rows_erf.shape:
            print(f"{name} {os.path.basename(img)}: llama.cpp gives {got.shape} rows, swift-vlm {rows_erf.shape}"); worst_all = math.inf; continue
        d_erf, d_tanh = np.abs(got - rows_erf).max(), np.abs(got - rows_tanh).max()
        worst_all = max(worst_all, d_erf)
        per_row = np.abs(got - rows_erf).max(axis=1)
        print(f"{name} {os.path.basename(img)}: {n}x{c} rows, max |llama.cpp - vlm| = {d_erf:.3e} (vs a tanh-GELU projector: {d_tanh:.3e}); "
              f"worst row {int(per_row.argmax())}, row maxima {np.array2string(per_row, precision=1, max_line_width=200)}")
print(f"worst max abs difference {worst_all:.3e}, tolerance {a.tol}")
sys.exit(0 if worst_all <= a.tol else 1)
