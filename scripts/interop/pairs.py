"""Tiny vision/decoder/projector triples for the interop checks, made from the test fixtures:
  dinov2  Tests/InferenceTests/Fixtures/llava (2-layer DINOv2 with layer scale, CLS) + its projector
  clip    Tests/BackbonesTests/Fixtures/vit/clip_vision (3 layers, quick_gelu, CLS, pre-norm) + a seeded projector
  siglip  Tests/BackbonesTests/Fixtures/vit/siglip (2 layers, gelu tanh, no CLS, patch bias) + a seeded projector
  dinov2-internvl, clip-internvl  the same towers with a seeded InternVL-layout projector (pixel
          shuffle 2, the input LayerNorm, mlp2x_gelu: `vlm train --reduce shuffle:2 --input-layer-norm`)
all with the tiny Llama decoder (Tests/InferenceTests/Fixtures/llama/bpe-gqa-tied-f32, or its GGUF).
The seeded projectors are mlp2x_gelu, hidden state -2, CLS dropped, with the content hashes
swift-vlm computes (Sources/WeightFormats/ContentHash.swift), so `vlm` accepts them."""
import json, os, shutil
import numpy as np
from PIL import Image
from safetensors.numpy import save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IFIX = os.path.join(ROOT, "Tests", "InferenceTests", "Fixtures")
BFIX = os.path.join(ROOT, "Tests", "BackbonesTests", "Fixtures")
DECODER = os.path.join(IFIX, "llama", "bpe-gqa-tied-f32")
DECODER_GGUF = os.path.join(IFIX, "llama", "bpe-gqa-tied-gguf", "model.gguf")

def fnv(data: bytes) -> str:
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h

def identity(path):
    if os.path.isfile(path):
        return os.path.basename(path), fnv(open(path, "rb").read())
    names = sorted(n for n in os.listdir(path) if n == "config.json" or n.endswith(".safetensors"))
    combined = "".join(n + ":" + fnv(open(os.path.join(path, n), "rb").read()) + ";" for n in names)
    return os.path.basename(os.path.normpath(path)), fnv(combined.encode())

def projector(path, vision, decoder, prefix, dv, c, seed, shuffle=1):
    rng = np.random.default_rng(seed)
    i = dv * shuffle * shuffle
    t = {"multi_modal_projector.linear_1.weight": (0.3 * rng.standard_normal((c, i))).astype(np.float32),
         "multi_modal_projector.linear_1.bias": (0.1 * rng.standard_normal(c)).astype(np.float32),
         "multi_modal_projector.linear_2.weight": (0.3 * rng.standard_normal((c, c))).astype(np.float32),
         "multi_modal_projector.linear_2.bias": (0.1 * rng.standard_normal(c)).astype(np.float32)}
    vid, did = identity(vision), identity(decoder)
    config = {"projector_type": "mlp2x_gelu", "reduction": "none" if shuffle == 1 else f"shuffle:{shuffle}", "vision_layer": "-2", "prefix_tokens": prefix,
              "keep_prefix_tokens": False, "vision_width": dv, "text_width": c, "vision_model": vid[0], "vision_hash": vid[1],
              "decoder_model": did[0], "decoder_hash": did[1], "step": 0}
    if shuffle > 1: config["input_layer_norm"] = True
    save_file(t, path, metadata={"swift_vlm.projector_config": json.dumps(config, sort_keys=True), "format": "pt"})

def make(name, tmp, decoder=DECODER, images=3):
    """Returns (vision_dir, decoder, projector_path, [image paths], image size)."""
    os.makedirs(tmp, exist_ok=True)
    if name.endswith("-internvl"):
        base = name[: -len("-internvl")]
        vision, decoder, _, paths, size = make(base, tmp, decoder, images)
        proj = os.path.join(tmp, name + "-projector.safetensors")
        dv = json.load(open(os.path.join(vision, "config.json")))["hidden_size"]
        projector(proj, vision, decoder, 1, dv, 32, 7 if base == "dinov2" else 8, shuffle=2)
        return vision, decoder, proj, paths, size
    if name == "dinov2":
        vision, proj, size = os.path.join(IFIX, "llava", "vision"), os.path.join(IFIX, "llava", "projector.safetensors"), 28
        if decoder != DECODER:
            proj = os.path.join(tmp, "dinov2-projector.safetensors")
            projector(proj, vision, decoder, 1, 32, 32, 5)
        paths = [os.path.join(IFIX, "llava", "image.png")]
    else:
        src = os.path.join(BFIX, "vit", "clip_vision" if name == "clip" else "siglip")
        vision = os.path.join(tmp, name)
        if os.path.isdir(vision): shutil.rmtree(vision)
        shutil.copytree(src, vision, ignore=shutil.ignore_patterns("expected.safetensors"))
        cfg = json.load(open(os.path.join(vision, "config.json")))
        size = cfg["image_size"]
        if name == "clip":
            pre = {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": size},
                   "do_center_crop": True, "crop_size": {"height": size, "width": size}, "resample": 3,
                   "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
                   "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}
        else:
            pre = {"image_processor_type": "SiglipImageProcessor", "do_resize": True, "size": {"height": size, "width": size},
                   "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
                   "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}
        json.dump(pre, open(os.path.join(vision, "preprocessor_config.json"), "w"), indent=1)
        proj = os.path.join(tmp, name + "-projector.safetensors")
        projector(proj, vision, decoder, 1 if name == "clip" else 0, cfg["hidden_size"], 32, 3 if name == "clip" else 4)
        paths = []
    rng = np.random.default_rng(11)
    while len(paths) < images:
        p = os.path.join(tmp, f"{name}-random{len(paths)}.png")
        img = (rng.random((size, size, 3)) * 255).astype(np.uint8)
        img[: size // 2, : size // 2] = [220, 30, 30]
        Image.fromarray(img).save(p)
        paths.append(p)
    return vision, decoder, proj, paths, size
