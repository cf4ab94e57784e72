"""Checks a `vlm features` output file against transformers on the same images.

Usage: python3 scripts/verify_features.py <features.safetensors>

Reads the model directory, layer and image paths from the file's metadata, then runs the
transformers pipeline: Pillow decode, ImageOps.exif_transpose, transformers' convert_to_rgb
(transparency onto white), the PIL-backend image processor named by preprocessor_config.json, and
the model (Dinov2Model, Dinov2WithRegistersModel, CLIPVisionModel / CLIPModel.vision_model,
SiglipVisionModel / SiglipModel.vision_model) in float32. Prints the max abs difference per image
and exits non-zero above 1e-4.
"""
import json
import sys

import numpy as np
import torch
from PIL import Image, ImageOps
from safetensors import safe_open
from transformers import (AutoConfig, BitImageProcessorPil, CLIPImageProcessorPil, CLIPModel, CLIPVisionModel, Dinov2Model,
                          Dinov2WithRegistersModel, SiglipImageProcessorPil, SiglipModel, SiglipVisionModel,
                          ViTImageProcessorPil)
from transformers.image_transforms import convert_to_rgb

path = sys.argv[1]
with safe_open(path, "np") as f:
    meta = f.metadata()
    ours = f.get_tensor("features")
folder, layer, images = meta["model"], meta["layer"], json.loads(meta["images"])

with open(f"{folder}/preprocessor_config.json") as f:
    pre = json.load(f)
kind = (pre.get("image_processor_type") or pre.get("feature_extractor_type")).replace("FeatureExtractor", "ImageProcessor")
kind = kind.removesuffix("Fast").removesuffix("Pil")
processor = {"BitImageProcessor": BitImageProcessorPil, "CLIPImageProcessor": CLIPImageProcessorPil,
             "SiglipImageProcessor": SiglipImageProcessorPil, "ViTImageProcessor": ViTImageProcessorPil}[kind](
    **{k: v for k, v in pre.items() if k not in ("image_processor_type", "feature_extractor_type", "processor_class")})

model_type = AutoConfig.from_pretrained(folder).model_type
model = {"dinov2": Dinov2Model, "dinov2_with_registers": Dinov2WithRegistersModel, "clip_vision_model": CLIPVisionModel,
         "clip": CLIPModel, "siglip_vision_model": SiglipVisionModel, "siglip": SiglipModel}[model_type].from_pretrained(folder)
model = model.float().eval()
vision = model.vision_model if model_type in ("clip", "siglip") else model

pictures = [Image.fromarray(convert_to_rgb(ImageOps.exif_transpose(Image.open(p)), return_numpy=True)) for p in images]
pixels = torch.from_numpy(processor(images=pictures, return_tensors="np")["pixel_values"])
with torch.no_grad():
    out = vision(pixel_values=pixels, output_hidden_states=True)
ref = (out.last_hidden_state if layer == "final" else out.hidden_states[int(layer)]).numpy()
print(f"features {ours.shape}, transformers {ref.shape}, model {model_type}, layer {layer}")
assert ours.shape == ref.shape
worst = 0.0
for i, p in enumerate(images):
    err = float(np.abs(ours[i] - ref[i]).max())
    worst = max(worst, err)
    print(f"  {p}: max |vlm - transformers| = {err:.3e} (max |value| {np.abs(ref[i]).max():.2f})")
print("worst:", worst)
sys.exit(0 if worst <= 1e-4 else 1)
