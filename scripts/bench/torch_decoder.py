"""PyTorch + transformers peer for `vlm-bench decoder`: prefill and decode speed of the same GGUF
(dequantized to float32 by transformers), same prompt length, same thread count.
Prints one JSON line: {"prefill_tokens_per_s": ..., "decode_tokens_per_s": ..., "threads": ...}."""
import json, os, statistics, sys, time
import torch
from transformers import AutoModelForCausalLM

path, prompt_len, new_tokens, threads, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32).eval()
ids = torch.randint(3, model.config.vocab_size, (1, prompt_len), generator=torch.Generator().manual_seed(0))
prefill, decode = [], []
with torch.inference_mode():
    for _ in range(repeats):
        t = time.perf_counter()
        out = model(ids, use_cache=True)
        prefill.append(prompt_len / (time.perf_counter() - t))
        past = out.past_key_values
        nxt = out.logits[:, -1:].argmax(-1)
        t = time.perf_counter()
        for _ in range(new_tokens):
            out = model(nxt, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1:].argmax(-1)
        decode.append(new_tokens / (time.perf_counter() - t))
print(json.dumps({"prefill_tokens_per_s": statistics.median(prefill), "decode_tokens_per_s": statistics.median(decode), "threads": threads}))
