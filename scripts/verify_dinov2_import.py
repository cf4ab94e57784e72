"""Checks an imported DINOv2 checkpoint against the ONNX graph it came from.

Usage: python3 scripts/verify_dinov2_import.py <model.onnx> <imported folder>

The folder is what DINOv2ONNXImporter wrote (model.safetensors, config.json). It is loaded into
transformers' Dinov2Model with strict loading (no missing, unexpected or mismatched tensors
allowed), run on 224x224 inputs, and compared with onnxruntime running the original graph, whose
internal values are exposed as extra outputs: the embeddings (hidden_states[0]), the output of
layer 11 (hidden_states[11]) and the final LayerNorm (last_hidden_state). Prints the max abs
errors and exits non-zero when any exceeds 1e-4.
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
from safetensors.numpy import load_file
from transformers import Dinov2Model

onnx_path, folder = sys.argv[1], sys.argv[2]

model, info = Dinov2Model.from_pretrained(folder, output_loading_info=True)
problems = {k: v for k, v in info.items() if v}
print("strict load:", "ok" if not problems else problems)
assert not problems, problems
model.eval()
state = load_file(f"{folder}/model.safetensors")
print("parameters in file:", sum(v.size for v in state.values()),
      "without mask_token:", sum(v.size for k, v in state.items() if k != "embeddings.mask_token"))

graph = onnx.load(onnx_path)
names = {n.name for n in graph.graph.node}
prefix = "/backbone" if "/backbone/embeddings/Add" in names else ""
L = model.config.num_hidden_layers
taps = {"hidden_states[0]": f"{prefix}/embeddings/Add_output_0",
        f"hidden_states[{L - 1}]": f"{prefix}/encoder/layer.{L - 2}/Add_1_output_0",
        f"hidden_states[{L}]": f"{prefix}/encoder/layer.{L - 1}/Add_1_output_0",
        "last_hidden_state": f"{prefix}/layernorm/Add_1_output_0"}
for t in taps.values():
    graph.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name

worst = 0.0
rng = np.random.default_rng(0)
mean = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
std = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]
for trial in range(3):
    pixels = ((rng.random((2, 3, 224, 224), dtype=np.float32) - mean) / std).astype(np.float32)
    outs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {input_name: pixels})))
    with torch.no_grad():
        hf = model(pixel_values=torch.from_numpy(pixels), output_hidden_states=True)
    for label, tap in taps.items():
        ours = hf.last_hidden_state if label == "last_hidden_state" else hf.hidden_states[int(label[14:-1])]
        err = float(np.abs(ours.numpy() - outs[tap]).max())
        scale = float(np.abs(outs[tap]).max())
        worst = max(worst, err)
        print(f"trial {trial} {label:20s} shape {tuple(ours.shape)}: max |transformers - onnxruntime| = {err:.3e} (max |value| {scale:.2f})")
print("worst max abs error:", worst)
sys.exit(0 if worst <= 1e-4 else 1)
