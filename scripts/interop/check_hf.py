"""Checks `vlm export --format hf` against transformers: exports a projector with its backbones
(LlavaForConditionalGeneration, or InternVLForConditionalGeneration for an input-LayerNorm projector),
loads the directory with AutoModelForImageTextToText + AutoProcessor, captions (or asks about) the
same images greedily with transformers and with `vlm caption`/`vlm ask`, and reports whether the
generated tokens are identical.

    /work/peers/venv/bin/python scripts/interop/check_hf.py                 # the tiny Llava fixture pair
    /work/peers/venv/bin/python scripts/interop/check_hf.py --vision DIR --llm PATH --projector FILE img1.png ...

Needs torch (CPU), transformers >= 5 and safetensors (a peer venv, never a test dependency).
Exit status 1 when any image's tokens differ.
"""
import argparse, json, os, subprocess, sys, tempfile
import numpy as np
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "Tests", "InferenceTests", "Fixtures")
CAPTION = "Write a short caption for this image."   # Sources/Projector/Dataset.swift captionInstruction

ap = argparse.ArgumentParser()
ap.add_argument("--vlm", default=os.path.join(ROOT, ".build", "release", "vlm"))
ap.add_argument("--pair", default="dinov2", choices=["dinov2", "clip", "siglip", "dinov2-internvl"],
                help="tiny fixture triple (scripts/interop/pairs.py); dinov2-internvl exports as InternVLForConditionalGeneration")
ap.add_argument("--vision"); ap.add_argument("--llm"); ap.add_argument("--projector")
ap.add_argument("--out", default=None, help="export directory (default: a temporary one)")
ap.add_argument("--max-tokens", type=int, default=16)
ap.add_argument("--question", default=None, help="ask this question (vlm ask) instead of captioning")
ap.add_argument("images", nargs="*")
a = ap.parse_args()

tmp = tempfile.mkdtemp(prefix="check_hf_")
out = a.out or os.path.join(tmp, "export")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pairs
if a.vision or a.llm or a.projector:
    assert a.vision and a.llm and a.projector and a.images, "give --vision, --llm, --projector and images together"
    images = a.images
else:
    a.vision, a.llm, a.projector, images, _ = pairs.make(a.pair, tmp, images=4)

common = ["--vision", a.vision, "--llm", a.llm, "--projector", a.projector]
r = subprocess.run([a.vlm, "export", "--format", "hf", "--out", out] + common, capture_output=True, text=True)
print(r.stdout.strip() or r.stderr.strip())
if r.returncode != 0:
    print(r.stderr); sys.exit(2)

model, info = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32, output_loading_info=True)
model.eval()
problems = {k: v for k, v in info.items() if v and k != "error_msgs" or (k == "error_msgs" and v)}
print("loaded", type(model).__name__, "loading info:", problems or "no missing/unexpected/mismatched keys")
processor = AutoProcessor.from_pretrained(out)

def vlm_text(path):
    if a.question:
        # --precision fp32: the reference arithmetic (auto may run the ViT's products in bf16)
        cmd = [a.vlm, "ask", path, a.question, "--max-tokens", str(a.max_tokens), "--temperature", "0", "--precision", "fp32"] + common
        r = subprocess.run(cmd, capture_output=True, text=True)
        return r.stdout.strip(), r
    cmd = [a.vlm, "caption", path, "--json", "--max-tokens", str(a.max_tokens), "--temperature", "0", "--precision", "fp32"] + common
    r = subprocess.run(cmd, capture_output=True, text=True)
    return (json.loads(r.stdout.strip().splitlines()[-1])["caption"] if r.returncode == 0 else None), r

same = 0
for path in images:
    text_v, r = vlm_text(path)
    if text_v is None:
        print(path, "vlm failed:", r.stderr); sys.exit(2)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": a.question or CAPTION}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(images=Image.open(path).convert("RGB"), text=prompt, return_tensors="pt")
    with torch.no_grad():
        gen = model.generate(**inputs, max_new_tokens=a.max_tokens, do_sample=False)
    new = gen[0, inputs["input_ids"].shape[1]:].tolist()
    text_h = processor.tokenizer.decode(new, skip_special_tokens=True).strip()
    # swift-vlm's ids for its text (re-encoded: equal text from equal ids)
    ok = text_h == text_v
    same += ok
    print(f"{os.path.basename(path)}: {'IDENTICAL' if ok else 'DIFFERENT'}\n  transformers ids {new}\n  transformers: {text_h!r}\n  vlm:          {text_v!r}")
print(f"{same}/{len(images)} images generate identical greedy text")
sys.exit(0 if same == len(images) else 1)
