// The page served at `/`: one self-contained HTML file (no build step, no external assets).
// Pick or drop an image, type a question or press Caption, watch the answer stream in over
// /v1/chat/completions (SSE), with time to first token and tokens/s. Images other than JPEG/PNG
// are converted to PNG in the browser (a canvas) before they are sent.
// `data-state` on <body> (idle, running, done, error) lets a headless browser wait for the answer.

enum WebPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>swift-vlm</title>
<link rel="icon" href="data:,">
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #d0d5dd; --accent: #2f6feb; --bg: #f6f7f9; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header .model { color: var(--muted); font-size: 13px; }
  main { max-width: 980px; margin: 20px auto; padding: 0 16px; display: grid; grid-template-columns: 340px 1fr; gap: 20px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px; }
  #drop { border: 2px dashed var(--line); border-radius: 10px; min-height: 240px; display: flex; align-items: center; justify-content: center;
          text-align: center; color: var(--muted); cursor: pointer; overflow: hidden; position: relative; background: #fafbfc; }
  #drop.over { border-color: var(--accent); background: #eef4ff; }
  #drop img { max-width: 100%; max-height: 300px; display: none; }
  #drop.has-image img { display: block; }
  #drop.has-image span { display: none; }
  #file { display: none; }
  .meta { color: var(--muted); font-size: 12px; margin-top: 6px; min-height: 18px; }
  label { display: block; font-size: 13px; color: var(--muted); margin: 12px 0 4px; }
  textarea, input[type=text], input[type=password], input[type=number] { width: 100%; padding: 8px 10px; border: 1px solid var(--line); border-radius: 8px; font: inherit; }
  textarea { resize: vertical; min-height: 64px; }
  .row { display: flex; gap: 8px; margin-top: 12px; }
  .row > * { flex: 1; }
  button { padding: 9px 14px; border-radius: 8px; border: 1px solid var(--accent); background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
  button.secondary { background: #fff; color: var(--accent); }
  button:disabled { opacity: .5; cursor: default; }
  #answer { white-space: pre-wrap; min-height: 120px; font-size: 17px; }
  #answer.error { color: #b42318; }
  .stats { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; margin-top: 14px; }
  .stat { background: var(--bg); border-radius: 8px; padding: 8px 10px; }
  .stat b { display: block; font-size: 18px; }
  .stat small { color: var(--muted); }
  details { margin-top: 12px; font-size: 13px; }
  .settings { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
</style>
</head>
<body data-state="idle">
<header><h1>swift-vlm</h1><span class="model" id="model">connecting…</span></header>
<main>
  <section class="card">
    <div id="drop" title="Click to pick an image, or drop one here">
      <span>Drop an image here<br>or click to pick one</span>
      <img id="preview" alt="the chosen image">
    </div>
    <input type="file" id="file" accept="image/*">
    <div class="meta" id="imageMeta"></div>
    <label for="question">Question (leave empty and press Caption for a caption)</label>
    <textarea id="question" placeholder="What is in this picture?"></textarea>
    <div class="row">
      <button id="caption">Caption</button>
      <button id="ask" class="secondary">Ask</button>
      <button id="stop" class="secondary" disabled>Stop</button>
    </div>
    <details>
      <summary>Settings</summary>
      <div class="settings">
        <div><label for="maxTokens">max_tokens</label><input type="number" id="maxTokens" value="128" min="1"></div>
        <div><label for="temperature">temperature</label><input type="number" id="temperature" value="0" min="0" max="2" step="0.1"></div>
      </div>
      <label for="apiKey">API key (when the server has one)</label>
      <input type="password" id="apiKey" autocomplete="off">
    </details>
  </section>
  <section class="card">
    <div id="answer"></div>
    <div class="stats">
      <div class="stat"><small>time to first token</small><b id="ttft">–</b></div>
      <div class="stat"><small>tokens/s</small><b id="tps">–</b></div>
      <div class="stat"><small>tokens</small><b id="tokens">–</b></div>
      <div class="stat"><small>total</small><b id="total">–</b></div>
    </div>
    <div class="meta" id="detail"></div>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let imageURL = null, controller = null;

const keyField = $("apiKey");
keyField.value = localStorage.getItem("vlm-api-key") || "";
keyField.addEventListener("change", () => localStorage.setItem("vlm-api-key", keyField.value));

function headers() {
  const h = { "Content-Type": "application/json" };
  if (keyField.value) h["Authorization"] = "Bearer " + keyField.value;
  return h;
}

fetch("/health").then(r => r.json()).then(h => {
  $("model").textContent = `${h.model} · ${h.parallel} parallel · queue ${h.queue} · context ${h.context}` + (h.api_key_required ? " · API key required" : "");
  if (h.api_key_required) document.querySelector("details").open = true;
}).catch(() => { $("model").textContent = "server unreachable"; });

// Images: JPEG and PNG go as they are; anything else the browser can show is re-encoded as PNG.
function useFile(file) {
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    const url = reader.result;
    const img = new Image();
    img.onload = () => {
      if (/^data:image\/(jpeg|png);/.test(url)) { setImage(url, file, img); return; }
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
      canvas.getContext("2d").drawImage(img, 0, 0);
      setImage(canvas.toDataURL("image/png"), file, img);
    };
    img.onerror = () => showError("the browser cannot read this image");
    img.src = url;
  };
  reader.readAsDataURL(file);
}
function setImage(url, file, img) {
  imageURL = url;
  $("preview").src = url;
  $("drop").classList.add("has-image");
  $("imageMeta").textContent = `${file.name} · ${img.naturalWidth}×${img.naturalHeight} · ${(file.size / 1024).toFixed(1)} KiB`;
}
$("drop").addEventListener("click", () => $("file").click());
$("file").addEventListener("change", (e) => useFile(e.target.files[0]));
$("drop").addEventListener("dragover", (e) => { e.preventDefault(); $("drop").classList.add("over"); });
$("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
$("drop").addEventListener("drop", (e) => { e.preventDefault(); $("drop").classList.remove("over"); useFile(e.dataTransfer.files[0]); });

function showError(message) {
  $("answer").textContent = message;
  $("answer").classList.add("error");
  document.body.dataset.state = "error";
}

function setRunning(running) {
  $("caption").disabled = running; $("ask").disabled = running; $("stop").disabled = !running;
}

async function run(caption) {
  const question = $("question").value.trim();
  if (caption && !imageURL) { showError("pick an image first"); return; }
  if (!caption && !question) { showError("type a question"); return; }
  const content = [];
  if (imageURL) content.push({ type: "image_url", image_url: { url: imageURL } });
  if (!caption) content.push({ type: "text", text: question });
  const body = {
    model: "swift-vlm", stream: true, stream_options: { include_usage: true },
    max_tokens: Number($("maxTokens").value) || 128, temperature: Number($("temperature").value) || 0,
    messages: [{ role: "user", content }],
  };
  $("answer").textContent = ""; $("answer").classList.remove("error");
  for (const id of ["ttft", "tps", "tokens", "total"]) $(id).textContent = "…";
  $("detail").textContent = "";
  document.body.dataset.state = "running";
  setRunning(true);
  controller = new AbortController();
  const t0 = performance.now();
  let tFirst = null, pieces = 0, usage = null, timings = null, finish = null;
  try {
    const response = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal });
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try { const e = await response.json(); message += ": " + e.error.message; } catch (_) {}
      throw new Error(message);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          if (chunk.usage) usage = chunk.usage;
          if (chunk.x_timings) timings = chunk.x_timings;
          const choice = chunk.choices && chunk.choices[0];
          if (!choice) continue;
          if (choice.finish_reason) finish = choice.finish_reason;
          const text = choice.delta && choice.delta.content;
          if (text) {
            if (tFirst === null) { tFirst = performance.now(); $("ttft").textContent = `${(tFirst - t0).toFixed(0)} ms`; }
            pieces += 1;
            $("answer").textContent += text;
            const seconds = (performance.now() - tFirst) / 1000;
            if (seconds > 0.05) $("tps").textContent = (pieces / seconds).toFixed(1);
            $("tokens").textContent = pieces;
          }
        }
      }
    }
    const tEnd = performance.now();
    const tokens = usage ? usage.completion_tokens : pieces;
    $("tokens").textContent = tokens;
    // tokens/s of the decode loop as the server timed it (text can arrive in bursts: a stop string is held back until it cannot match)
    if (timings && usage && timings.decode_ms > 0) $("tps").textContent = (usage.completion_tokens / (timings.decode_ms / 1000)).toFixed(1);
    else if (tFirst !== null && tEnd > tFirst) $("tps").textContent = (Math.max(tokens - 1, 1) / ((tEnd - tFirst) / 1000)).toFixed(1);
    if (tFirst === null) $("ttft").textContent = "–";
    $("total").textContent = `${((tEnd - t0) / 1000).toFixed(2)} s`;
    let detail = `finish: ${finish || "?"}`;
    if (usage) detail += ` · prompt ${usage.prompt_tokens} tokens`;
    if (timings) detail += ` · queue ${timings.queue_ms.toFixed(0)} ms · vision ${timings.vision_ms.toFixed(0)} ms · prefill ${timings.prefill_ms.toFixed(0)} ms · decode ${timings.decode_ms.toFixed(0)} ms`;
    $("detail").textContent = detail;
    document.body.dataset.state = "done";
  } catch (e) {
    if (e.name === "AbortError") { $("detail").textContent = "stopped"; document.body.dataset.state = "done"; }
    else showError(e.message);
  } finally {
    setRunning(false);
    controller = null;
  }
}
$("caption").addEventListener("click", () => run(true));
$("ask").addEventListener("click", () => run(false));
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("question").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(false); });
</script>
</body>
</html>
"""#
}
