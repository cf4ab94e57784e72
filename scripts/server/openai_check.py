#!/usr/bin/env python3
"""The `openai` PyPI client against a running `vlm serve`: a caption request with a data: URL
image, a streamed question, /v1/score, and error cases. Asserts the answers' shapes and that the
greedy caption (and answer, and scores) equal what the `vlm` CLI prints for the same image.

Usage: python openai_check.py --base-url http://127.0.0.1:PORT/v1 --vlm .build/release/vlm --image IMG
(scripts/server/openai-check.sh starts the server and a throwaway venv, then runs this.)
"""
import argparse, base64, json, subprocess, sys, time, urllib.request

import openai

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--vlm", required=True, help="the vlm binary, for the reference outputs")
    ap.add_argument("--image", required=True)
    ap.add_argument("--question", default="What is in this picture?")
    args = ap.parse_args()

    kind = "png" if args.image.lower().endswith(".png") else "jpeg"
    data_url = f"data:image/{kind};base64," + base64.b64encode(open(args.image, "rb").read()).decode()
    client = openai.OpenAI(base_url=args.base_url, api_key="not-needed", max_retries=0, timeout=120)
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    def cli(*a):
        return subprocess.run([args.vlm, *a], check=True, capture_output=True, text=True).stdout

    models = client.models.list()
    model = models.data[0].id
    check(len(models.data) == 1 and models.data[0].object == "model", f"/v1/models lists one model ({model})")

    # 1. caption: an image and no text; greedy; equal to `vlm caption`
    t0 = time.time()
    r = client.chat.completions.create(model=model, temperature=0, max_tokens=128,
                                       messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url}}]}])
    caption_s = time.time() - t0
    c = r.choices[0]
    check(r.object == "chat.completion" and r.id.startswith("chatcmpl-") and len(r.choices) == 1, "chat.completion shape")
    check(c.message.role == "assistant" and isinstance(c.message.content, str) and c.message.content, "assistant message with text")
    check(c.finish_reason in ("stop", "length"), f"finish_reason {c.finish_reason}")
    u = r.usage
    check(u.prompt_tokens > 0 and u.completion_tokens > 0 and u.total_tokens == u.prompt_tokens + u.completion_tokens, f"usage {u.prompt_tokens}+{u.completion_tokens}")
    expected_caption = cli("caption", args.image).strip()
    print(f"     server caption: {c.message.content!r} ({caption_s:.2f} s)\n     vlm caption:    {expected_caption!r}")
    check(c.message.content == expected_caption, "the greedy caption equals `vlm caption`'s")

    # 2. streamed question; equal to `vlm ask`
    t0 = time.time()
    stream = client.chat.completions.create(model=model, temperature=0, max_tokens=64, stream=True, stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url}},
                                                                                   {"type": "text", "text": args.question}]}])
    pieces, roles, finishes, usage, first, ids = [], [], [], None, None, set()
    for chunk in stream:
        ids.add(chunk.id)
        check(chunk.object == "chat.completion.chunk", "chunk object") if chunk.object != "chat.completion.chunk" else None
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            if ch.delta.role:
                roles.append(ch.delta.role)
            if ch.delta.content:
                if first is None:
                    first = time.time()
                pieces.append(ch.delta.content)
            if ch.finish_reason:
                finishes.append(ch.finish_reason)
    end = time.time()
    answer = "".join(pieces)
    check(roles == ["assistant"] and len(finishes) == 1 and len(ids) == 1, f"stream framing: role once, one finish_reason ({finishes}), one id")
    check(usage is not None and usage.completion_tokens >= 1, "include_usage: a usage chunk at the end")
    expected_answer = cli("ask", "--max-tokens", "64", args.image, args.question).strip()
    print(f"     streamed answer: {answer!r} in {len(pieces)} deltas\n     vlm ask:         {expected_answer!r}")
    check(answer == expected_answer, "the streamed greedy answer equals `vlm ask`'s")
    if first is not None and usage is not None:
        print(f"     time to first token {1000 * (first - t0):.0f} ms; {usage.completion_tokens} tokens; "
              f"{(usage.completion_tokens - 1) / max(end - first, 1e-9):.1f} tokens/s after the first")

    # 3. /v1/score (swift-vlm's extension) equals `vlm score --image`
    cands = ["a hedgehog", "a cat", "a red square"]
    req = urllib.request.Request(args.base_url + "/score", data=json.dumps({"prompt": "What is this?", "candidates": cands, "image": data_url, "softmax": True}).encode(),
                                 headers={"Content-Type": "application/json"})
    got = json.load(urllib.request.urlopen(req))["results"]
    want = [json.loads(l) for l in cli("score", "--image", args.image, "--prompt", "What is this?", "--softmax", *cands).splitlines()]
    err = max(abs(g["logprob"] - w["logprob"]) for g, w in zip(got, want))
    check([g["candidate"] for g in got] == cands and err < 1e-9, f"/v1/score equals `vlm score --image` (max |Δ logprob| {err:.1e})")

    # 4. errors: OpenAI's shape, raised by the client as its own exception types
    def expect_error(kind, code, **kw):
        try:
            client.chat.completions.create(model=model, **kw)
            check(False, f"{code}: expected {kind.__name__}")
        except kind as e:
            body = e.body if isinstance(e.body, dict) else {}
            check(body.get("code") == code and isinstance(body.get("message"), str), f"{kind.__name__} {e.status_code} code={body.get('code')}: {body.get('message')}")
    expect_error(openai.BadRequestError, "max_tokens_too_large", max_tokens=10**6, messages=[{"role": "user", "content": "hi"}])
    expect_error(openai.BadRequestError, "invalid_image", messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}])
    expect_error(openai.BadRequestError, "unsupported_image_type", messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lGODlh"}}]}])

    if failures:
        print(f"{len(failures)} checks failed", file=sys.stderr)
        sys.exit(1)
    print("all checks passed")

if __name__ == "__main__":
    main()
