"""Checks `vlm export --format gguf-mmproj` against llama.cpp's libmtmd: for each tiny fixture triple
(scripts/interop/pairs.py: dinov2, clip, siglip with LLaVA's mlp projector; dinov2-internvl and
clip-internvl with the InternVL layout, llama.cpp's internvl type) exports the mmproj, has llama.cpp compute the image
rows of the same images (scripts/interop/mmproj_embd.cpp, built against llama.cpp by
scripts/interop/build_mmproj_embd.sh), computes swift-vlm's rows (`vlm features` at the projector's
layer, CLS dropped, the projector applied in float64 numpy: W2·gelu(W1·x + b1) + b2, which is what
`vlm caption` feeds the decoder; for internvl pixel shuffle and LayerNorm first), and prints the max abs difference per image. Target: <= 1e-3.

    python3 scripts/interop/check_mmproj.py [--pairs dinov2,clip,siglip] [--embd /work/peers/interop-mtmd/mmproj_embd]

Needs numpy, safetensors, Pillow (any python). Exit status 1 when any difference exceeds 1e-3.
"""
import argparse, json, math, os, shutil, subprocess, sys, tempfile
import numpy as np
from safetensors.numpy import load_file
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pairs

ap = argparse.ArgumentParser()
ap.add_argument("--vlm", default=os.path.join(pairs.ROOT, ".build", "release", "vlm"))
ap.add_argument("--embd", default="/work/peers/interop-mtmd/mmproj_embd")
ap.add_argument("--pairs", default="dinov2,clip,siglip,dinov2-internvl,clip-internvl")
ap.add_argument("--tol", type=float, default=1e-3)
ap.add_argument("--ggml-f32", metavar="DIR", help="run llama.cpp with the libggml* of DIR first on the library path: the "
                "diagnostic build of scripts/interop/build_ggml_f32.sh (GELU and the patch embedding's im2col in float32)")
ap.add_argument("--images", default="random", choices=["random", "blocks", "uniform", "binary"],
                help="random: the pairs' noise images; blocks: one colour per patch (no detail finer than a patch, so a "
                     "resampling filter that llama.cpp applies even at the model's own size changes nothing but block edges); uniform: one colour "
                     "per image (no filter changes it); binary: pixels 0 or 255 and the preprocessor's mean and std set to 0.5, so every "
                     "normalised input is -1 or 1, which llama.cpp's patch embedding (its im2col stores the input as F16 for an F32 "
                     "kernel) holds exactly: what remains is the graph itself")
a = ap.parse_args()
tmp = tempfile.mkdtemp(prefix="check_mmproj_")
erf = np.vectorize(math.erf)
worst_all = 0.0
for name in a.pairs.split(","):
    vision, decoder, proj, images, size = pairs.make(name, os.path.join(tmp, name), images=3)
    if a.images == "binary":
        from PIL import Image
        copy = os.path.join(tmp, name + "-binary", os.path.basename(os.path.normpath(vision)))
        shutil.copytree(vision, copy)
        pre = json.load(open(os.path.join(copy, "preprocessor_config.json")))
        pre["image_mean"], pre["image_std"] = [0.5] * 3, [0.5] * 3
        json.dump(pre, open(os.path.join(copy, "preprocessor_config.json"), "w"))
        # the patch kernel rounded to F16 values too: llama.cpp multiplies im2col (F16) by the kernel converted to F16
        from safetensors.numpy import save_file
        for fn in os.listdir(copy):
            if not fn.endswith(".safetensors"): continue
            tensors = load_file(os.path.join(copy, fn))
            for k, v in tensors.items():
                if v.ndim == 4: tensors[k] = v.astype(np.float16).astype(v.dtype)
            save_file(tensors, os.path.join(copy, fn), metadata={"format": "pt"})
        pt = load_file(proj)
        head = open(proj, "rb").read(8 + int.from_bytes(open(proj, "rb").read(8), "little"))
        pcfg = json.loads(json.loads(head[8:])["__metadata__"]["swift_vlm.projector_config"])
        pcfg["vision_model"], pcfg["vision_hash"] = pairs.identity(copy)
        proj = os.path.join(tmp, name + "-binary-projector.safetensors")
        save_file(pt, proj, metadata={"swift_vlm.projector_config": json.dumps(pcfg, sort_keys=True), "format": "pt"})
        vision = copy
        rng = np.random.default_rng(6)
        images = []
        for i in range(3):
            images.append(os.path.join(tmp, f"{name}-binary{i}.png"))
            Image.fromarray((rng.integers(0, 2, (size, size, 3)) * 255).astype(np.uint8)).save(images[-1])
    if a.images in ("blocks", "uniform"):
        from PIL import Image
        patch = json.load(open(os.path.join(vision, "config.json")))["patch_size"]
        rng = np.random.default_rng(5)
        images = []
        for i in range(3):
            g = size // patch
            cells = rng.integers(0, 256, (g, g, 3)) if a.images == "blocks" else np.tile(rng.integers(0, 256, (1, 1, 3)), (g, g, 1))
            img = np.kron(cells, np.ones((patch, patch, 1))).astype(np.uint8)
            images.append(os.path.join(tmp, f"{name}-blocks{i}.png")); Image.fromarray(img).save(images[-1])
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
    # --precision fp32: the reference arithmetic (auto may run the ViT's products in bf16)
    r = subprocess.run([a.vlm, "features", "--precision", "fp32", "--vision", vision, "--layer", cfg["vision_layer"], "--out", feats] + images,
                       capture_output=True, text=True)
    if r.returncode: print(r.stderr); sys.exit(2)
    f = load_file(feats)["features"].astype(np.float64)
    for i, img in enumerate(images):
        x = f[i, cfg["prefix_tokens"]:]
        if cfg["reduction"].startswith("shuffle:"):
            r = int(cfg["reduction"].split(":")[1]); g = int(round(math.sqrt(x.shape[0]))); d = x.shape[1]
            # token (i, j) = patches (i*r+di, j*r+dj) concatenated over (di, dj) row-major
            x = x.reshape(g // r, r, g // r, r, d).transpose(0, 2, 1, 3, 4).reshape((g // r) ** 2, r * r * d)
        if cfg.get("input_layer_norm"):
            x = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
        h = x @ w1.T + b1
        rows_erf = (0.5 * h * (1 + erf(h / math.sqrt(2)))) @ w2.T + b2
        rows_tanh = (0.5 * h * (1 + np.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))) @ w2.T + b2
        e = os.path.join(tmp, f"{name}-{i}.f32")
        env = dict(os.environ)
        if a.ggml_f32: env["LD_LIBRARY_PATH"] = a.ggml_f32 + ":" + env.get("LD_LIBRARY_PATH", "")
        r = subprocess.run([a.embd, pairs.DECODER_GGUF, out, img, e], capture_output=True, text=True, env=env)
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
              f"worst row {int(per_row.argmax())}, row maxima {np.array2string(per_row, precision=5, max_line_width=300)}; max |vlm row| {np.abs(rows_erf).max():.2f}")
print(f"worst max abs difference {worst_all:.3e}, tolerance {a.tol}")
sys.exit(0 if worst_all <= a.tol else 1)
