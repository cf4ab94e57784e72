"""Whole captions in llama.cpp: exports the mmproj of a tiny fixture triple (scripts/interop/pairs.py,
with the decoder as GGUF) or of a given triple, captions the same images greedily with llama.cpp's
libmtmd (the decoder GGUF + the exported mmproj) and with `vlm caption`, and reports whether the
generated token ids are identical. The ids come from mtmd_greedy (scripts/interop/mtmd_greedy.cpp:
llama-mtmd-cli's steps, ids printed); llama-mtmd-cli's own text is printed beside them (it writes
through llama.cpp's asynchronous log, whose tail can be lost at exit, so its text is not compared).

    /work/peers/venv/bin/python scripts/interop/check_mtmd.py [--pairs siglip,...] [--cli PATH] [--ggml-f32 DIR]

The prompt is swift-vlm's ChatML without a system turn (the projector records `system_prompt`
"none"): llama-mtmd-cli gets `--chat-template chatml` and the prompt "<__media__>\\n" + the caption
instruction, so both programs see <|im_start|>user\\n, the image rows, \\n, the instruction,
<|im_end|>\\n<|im_start|>assistant\\n. llama.cpp's internvl path wraps the rows in "<img>"…"</img>"
text: the internvl pairs' projectors record the same markers (`vlm train --image-begin '<img>'
--image-end '</img>'`), so swift-vlm's prompt has them too. Both decode greedily, flash attention off
in llama.cpp (it rounds K and V to F16).

    ... check_mtmd.py --vision DIR --llm FILE.gguf --projector FILE [images]   # a real triple
Needs numpy, safetensors, Pillow; llama.cpp built from the llama-cpp-python sdist (llama-mtmd-cli).
Exit status 1 when a pair expected equal differs.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pairs
from safetensors.numpy import load_file, save_file

CAPTION = "Write a short caption for this image."   # Sources/Projector/Dataset.swift captionInstruction
ap = argparse.ArgumentParser()
ap.add_argument("--vlm", default=os.path.join(pairs.ROOT, ".build", "release", "vlm"))
ap.add_argument("--cli", default="/work/peers/llama.cpp/build/bin/llama-mtmd-cli")
ap.add_argument("--greedy", default="/work/peers/interop-mtmd/mtmd_greedy", help="built by scripts/interop/build_mmproj_embd.sh")
ap.add_argument("--pairs", default="siglip,dinov2-internvl,clip-internvl")
ap.add_argument("--max-tokens", type=int, default=12)
ap.add_argument("--vision"); ap.add_argument("--llm"); ap.add_argument("--projector")
ap.add_argument("images", nargs="*")
ap.add_argument("--ggml-f32", metavar="DIR", help="put the libggml* of DIR (scripts/interop/build_ggml_f32.sh) first on the library path")
a = ap.parse_args()
tmp = tempfile.mkdtemp(prefix="check_mtmd_")
env = dict(os.environ)
libdir = os.path.dirname(os.path.abspath(a.cli))
env["LD_LIBRARY_PATH"] = ":".join(([a.ggml_f32] if a.ggml_f32 else []) + [libdir, env.get("LD_LIBRARY_PATH", "")])
PROMPT = "<|im_start|>user\n<__media__>\n" + CAPTION + "<|im_end|>\n<|im_start|>assistant\n"   # llama-mtmd-cli's chatml rendering

def no_system(path, internvl):
    """The projector with system_prompt "none" recorded (swift-vlm's ChatML without a system turn),
    and for internvl the image markers llama.cpp's internvl path writes."""
    head = open(path, "rb").read(8 + int.from_bytes(open(path, "rb").read(8), "little"))
    meta = json.loads(head[8:])["__metadata__"]
    cfg = json.loads(meta["swift_vlm.projector_config"])
    cfg["prompt_style"], cfg["system_prompt"] = "chat", "none"
    if internvl: cfg["image_begin"], cfg["image_end"] = "<img>", "</img>"
    out = path.replace(".safetensors", "-nosystem.safetensors")
    save_file(load_file(path), out, metadata={"swift_vlm.projector_config": json.dumps(cfg, sort_keys=True), "format": "pt"})
    return out

def triples():
    if a.vision or a.llm or a.projector:
        assert a.vision and a.llm and a.projector and a.images, "give --vision, --llm, --projector and images together"
        head = open(a.projector, "rb").read(8 + int.from_bytes(open(a.projector, "rb").read(8), "little"))
        internvl = json.loads(json.loads(head[8:])["__metadata__"]["swift_vlm.projector_config"]).get("input_layer_norm", False)
        proj = os.path.join(tmp, "projector.safetensors")
        shutil.copy(a.projector, proj)
        yield "given", a.vision, a.llm, no_system(proj, internvl), a.images
        return
    for name in a.pairs.split(","):
        vision, decoder, proj, images, _ = pairs.make(name, os.path.join(tmp, name), decoder=pairs.DECODER_GGUF, images=3)
        yield name, vision, decoder, no_system(proj, name.endswith("-internvl")), images

bad = 0
for name, vision, decoder, proj, images in triples():
    common = ["--vision", vision, "--llm", decoder, "--projector", proj]
    mm = os.path.join(tmp, name + "-mmproj.gguf")
    r = subprocess.run([a.vlm, "export", "--format", "gguf-mmproj", "--out", mm] + common, capture_output=True, text=True)
    print(f"== {name}: {r.stdout.strip() or r.stderr.strip()}")
    if r.returncode != 0:
        bad += 1; continue
    same = 0
    for img in images:
        r = subprocess.run([a.vlm, "caption", img, "--json", "--max-tokens", str(a.max_tokens), "--temperature", "0",
                            "--precision", "fp32"] + common, capture_output=True, text=True)
        if r.returncode != 0:
            print(" vlm failed:", r.stderr); bad += 1; break
        line = json.loads(r.stdout.strip().splitlines()[-1])
        ids_v, text_v = line["token_ids"], line["caption"]
        r = subprocess.run([a.greedy, decoder, mm, img, PROMPT, str(a.max_tokens)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(" mtmd_greedy failed:", r.stderr[-2000:]); bad += 1; break
        g = json.loads(r.stdout.strip().splitlines()[-1])
        ids_l = g["new_ids"]
        r = subprocess.run([a.cli, "-m", decoder, "--mmproj", mm, "--image", img, "-p", "<__media__>\n" + CAPTION,
                            "--chat-template", "chatml", "--temp", "0", "-n", str(a.max_tokens), "--no-warmup", "-fa", "off",
                            "-t", "2", "--seed", "0"], capture_output=True, env=env)
        text_cli = r.stdout.decode("utf-8", "replace").strip() if r.returncode == 0 else f"(failed: {r.returncode})"
        # vlm stops at its stop ids without generating past them; mtmd_greedy at llama.cpp's end-of-generation ids
        ok = ids_l == ids_v
        same += ok
        print(f" {os.path.basename(img)}: {'IDENTICAL' if ok else 'DIFFERENT'} ids\n   llama.cpp ids {ids_l}\n   vlm ids       {ids_v}"
              f"\n   vlm text {text_v!r}; llama-mtmd-cli text {text_cli!r}")
    print(f" {name}: {same}/{len(images)} identical")
    if same != len(images):
        bad += 1
sys.exit(1 if bad else 0)
