"""PyTorch + transformers peer for `vlm-bench vision`: ms per image of a Dinov2Model forward
(output_hidden_states, as feature extraction needs) at 224x224, batch 1 and 8, for the DINOv2-S/14
checkpoint given and for a ViT-B/16-sized Dinov2 config (random weights: speed only).
Prints one JSON line."""
import json, statistics, sys, time
import torch
from transformers import Dinov2Config, Dinov2Model

path, threads, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# optional 4th argument "bf16": the forward under torch.autocast(cpu, bfloat16)
bf16 = len(sys.argv) > 4 and sys.argv[4] == "bf16"
torch.set_num_threads(threads)
out = {}
small = Dinov2Model.from_pretrained(path).eval()
base = Dinov2Model(Dinov2Config(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                                patch_size=16, image_size=224)).eval()
for name, model in [("dinov2_s14", small), ("vit_b16", base)]:
    for batch in (1, 8):
        x = torch.randn(batch, 3, 224, 224)
        times = []
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(pixel_values=x, output_hidden_states=True)
            for _ in range(repeats):
                t = time.perf_counter()
                model(pixel_values=x, output_hidden_states=True)
                times.append((time.perf_counter() - t) * 1000 / batch)
        out[f"{name}_b{batch}_ms"] = statistics.median(times)
out["precision"] = "bf16" if bf16 else "fp32"
print(json.dumps(out))
