"""PyTorch + transformers peer for `vlm-bench train`: one projector training step through the
frozen SmolLM2 decoder (float32, dequantized from the same GGUF): 8 samples of
[10 text tokens, 64 image rows, 14 text tokens], loss on the last 14 tokens, backward to the
projector (mlp2x_gelu 1536 -> 576 -> 576), AdamW step. Prints one JSON line with the median
samples/s over the timed steps and the process's peak resident memory."""
import json, os, resource, statistics, sys, time
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

path, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# optional 4th argument "bf16": the forward and backward under torch.autocast(cpu, bfloat16), the
# honest peer of swift-vlm's bf16 products (weights stay float32; autocast casts per op)
bf16 = len(sys.argv) > 4 and sys.argv[4] == "bf16"
torch.set_num_threads(threads)
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32)
model.eval()
for p in model.parameters():
    p.requires_grad_(False)
rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
C = model.config.hidden_size
B, pre, img, suf, Dv = 8, 10, 64, 14, 1536
proj = torch.nn.Sequential(torch.nn.Linear(Dv, C), torch.nn.GELU(), torch.nn.Linear(C, C))
opt = torch.optim.AdamW(proj.parameters(), lr=1e-3)
emb = model.get_input_embeddings()
ids_pre = torch.randint(3, 49152, (B, pre)); ids_suf = torch.randint(3, 49152, (B, suf))
feats = torch.randn(B, img, Dv)
times = []
for step in range(steps + 1):
    t = time.perf_counter()
    opt.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        x = torch.cat([emb(ids_pre), proj(feats), emb(ids_suf)], 1)
        logits = model(inputs_embeds=x).logits[:, pre + img - 1:-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids_suf.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(proj.parameters(), 1.0)
    opt.step()
    if step > 0:
        times.append(time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"samples_per_s": B / statistics.median(times), "peak_rss_mib": peak / 1024,
                  "model_rss_mib": rss_model / 1024, "threads": threads, "precision": "bf16" if bf16 else "fp32"}))
