#!/usr/bin/env python3
"""Headless Chromium against the page `vlm serve` serves at /, driven through the DevTools
protocol: load the page, put an image in its file input, click Caption (a real mouse event),
wait for the streamed answer, check the time-to-first-token and tokens/s figures, ask a typed
question, save a screenshot.

Usage: python browser_check.py --url http://127.0.0.1:PORT/ --image IMG --screenshot out.png [--expect TEXT]
Needs Debian's `chromium` and the `websocket-client` PyPI package.
"""
import argparse, base64, json, os, shutil, subprocess, sys, tempfile, time, urllib.request

import websocket

class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=600, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expression, timeout=600, every=0.05, on_poll=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.eval(expression)
            if on_poll:
                on_poll()
            if value:
                return value
            time.sleep(every)
        raise TimeoutError(expression)

    def click(self, selector):
        doc = self.call("DOM.getDocument")
        node = self.call("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector=selector)["nodeId"]
        quad = self.call("DOM.getBoxModel", nodeId=node)["model"]["content"]
        x, y = (quad[0] + quad[4]) / 2, (quad[1] + quad[5]) / 2
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--question", default="Is this a photo or a drawing?")
    ap.add_argument("--expect", help="the caption `vlm caption` gives for the image")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args()

    profile = tempfile.mkdtemp(prefix="vlm-chromium-")
    browser = subprocess.Popen([args.chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1200,860", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    failures = []
    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Page.enable"); page.call("Runtime.enable"); page.call("DOM.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=1200, height=860, deviceScaleFactor=1, mobile=False)
        page.call("Page.navigate", url=args.url)
        page.wait("document.readyState === 'complete' && document.getElementById('model').textContent.includes('parallel')")
        check(True, "page loaded: " + page.eval("document.getElementById('model').textContent"))

        # the image goes in through the page's own file input (as a user picking a file)
        doc = page.call("DOM.getDocument")
        node = page.call("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="#file")["nodeId"]
        page.call("DOM.setFileInputFiles", files=[os.path.abspath(args.image)], nodeId=node)
        page.wait("document.getElementById('drop').classList.contains('has-image')")
        check(True, "image shown: " + page.eval("document.getElementById('imageMeta').textContent"))

        # Caption: click, then watch the answer grow until the page says done
        seen = []
        def record():
            text = page.eval("document.getElementById('answer').textContent")
            if not seen or seen[-1] != text:
                seen.append(text)
        t0 = time.time()
        page.click("#caption")
        state = page.wait("['done', 'error'].includes(document.body.dataset.state) && document.body.dataset.state", on_poll=record)
        elapsed = time.time() - t0
        answer = page.eval("document.getElementById('answer').textContent")
        figures = {k: page.eval(f"document.getElementById('{k}').textContent") for k in ("ttft", "tps", "tokens", "total")}
        detail = page.eval("document.getElementById('detail').textContent")
        print(f"     caption in the page: {answer!r} after {elapsed:.2f} s; {figures}; {detail}")
        print(f"     answer states seen while streaming: {seen}")
        check(state == "done", f"the page finished without error (state {state})")
        check(bool(answer.strip()), "an answer is shown")
        check(figures["ttft"].endswith(" ms") and figures["tps"] not in ("–", "…"), "time to first token and tokens/s are shown")
        if args.expect is not None:
            check(answer == args.expect, f"the page's caption equals `vlm caption`'s ({args.expect!r})")
        page.call("Page.captureScreenshot", format="png")  # warm-up frame
        shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
        open(args.screenshot, "wb").write(shot)
        print(f"     screenshot: {args.screenshot} ({len(shot)} bytes)")

        # a typed question through Ask
        page.click("#question")
        page.call("Input.insertText", text=args.question)
        page.click("#ask")
        state = page.wait("['done', 'error'].includes(document.body.dataset.state) && document.getElementById('answer').textContent !== " + json.dumps(answer) + " && document.body.dataset.state")
        answer2 = page.eval("document.getElementById('answer').textContent")
        print(f"     answer to {args.question!r}: {answer2!r}")
        check(state == "done" and bool(answer2.strip()), "a typed question is answered")
        shot = base64.b64decode(page.call("Page.captureScreenshot", format="png")["data"])
        second = args.screenshot.replace(".png", "-question.png")
        open(second, "wb").write(shot)
        print(f"     screenshot: {second}")
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)
    if failures:
        sys.exit(1)
    print("all checks passed")

if __name__ == "__main__":
    main()
