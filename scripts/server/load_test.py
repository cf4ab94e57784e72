#!/usr/bin/env python3
"""A bounded load test of `vlm serve` on loopback (127.0.0.1 only): a fixed number of requests,
a time cap. Phase 1 (throughput): parallel+queue clients back to back → requests/s, p50/p99.
Phase 2 (overload): 10 × queue concurrent clients, each retrying after 0.25 s on 503
without honouring Retry-After → only 200s and 503s may come back, the server must stay up and
its memory flat (RSS sampled from /proc/PID/status).

Usage: python load_test.py --port PORT --pid SERVER_PID --image IMG --parallel P --queue Q
"""
import argparse, base64, http.client, json, os, statistics, sys, threading, time

def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")

def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))]

def run_phase(port, body, clients, total, cap_s, pid, retry_pause=None):
    lock = threading.Lock()
    state = {"issued": 0}
    results = []          # (status, seconds)
    errors = []
    rss = []
    stop = time.time() + cap_s

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if state["issued"] >= total or time.time() >= stop:
                    break
                state["issued"] += 1
            t = time.time()
            try:
                conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                payload = r.read()
                status = r.status
                if status == 503:
                    assert r.getheader("Retry-After", "").isdigit(), "503 without Retry-After"
                    assert json.loads(payload)["error"]["code"] == "queue_full"
                elif status == 200:
                    assert json.loads(payload)["choices"][0]["message"]["content"]
            except Exception as e:  # a transport error or a bad body: counted, never hidden
                with lock:
                    errors.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            with lock:
                results.append((status, time.time() - t))
            if status == 503 and retry_pause:
                time.sleep(retry_pause)
        conn.close()

    def sampler():
        while any(t.is_alive() for t in threads):
            try:
                rss.append(rss_mib(pid))
            except FileNotFoundError:
                rss.append(float("nan"))
                return
            time.sleep(0.25)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    s = threading.Thread(target=sampler)
    s.start()
    for t in threads:
        t.join()
    s.join()
    return results, errors, rss, time.time() - t0

def report(name, results, errors, rss, wall):
    by_status = {}
    for status, _ in results:
        by_status[status] = by_status.get(status, 0) + 1
    ok = [s for st, s in results if st == 200]
    busy = [s for st, s in results if st == 503]
    print(f"{name}: {len(results)} responses in {wall:.1f} s; statuses {dict(sorted(by_status.items()))}; transport errors {len(errors)}")
    if ok:
        print(f"  200: {len(ok) / wall:.2f} requests/s; latency p50 {1000 * percentile(ok, 50):.0f} ms, p99 {1000 * percentile(ok, 99):.0f} ms, max {1000 * max(ok):.0f} ms")
    if busy:
        print(f"  503: {len(busy) / wall:.1f}/s; latency p50 {1000 * percentile(busy, 50):.1f} ms, p99 {1000 * percentile(busy, 99):.1f} ms")
    good = [x for x in rss if x == x]
    if good:
        print(f"  server RSS: start {good[0]:.0f} MiB, max {max(good):.0f} MiB, end {good[-1]:.0f} MiB ({len(good)} samples)")
    return by_status

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--parallel", type=int, required=True)
    ap.add_argument("--queue", type=int, required=True)
    ap.add_argument("--requests", type=int, default=20, help="phase 1 requests")
    ap.add_argument("--overload-requests", type=int, default=20000)
    ap.add_argument("--cap", type=float, default=45, help="seconds per phase at most")
    ap.add_argument("--max-tokens", type=int, default=16)
    args = ap.parse_args()

    kind = "png" if args.image.endswith(".png") else "jpeg"
    url = f"data:image/{kind};base64," + base64.b64encode(open(args.image, "rb").read()).decode()
    body = json.dumps({"max_tokens": args.max_tokens, "temperature": 0,
                       "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]})
    failures = []

    # warm-up: one request, so the first figures do not include page faults of the weights
    run_phase(args.port, body, 1, 1, 60, args.pid)
    slots = args.parallel + args.queue
    r, e, rss, wall = run_phase(args.port, body, slots, args.requests, args.cap, args.pid)
    statuses = report(f"phase 1 (throughput, {slots} clients = parallel {args.parallel} + queue {args.queue})", r, e, rss, wall)
    if set(statuses) - {200} or e:
        failures.append("phase 1 had non-200 answers or transport errors")

    clients = 10 * args.queue
    r, e, rss, wall = run_phase(args.port, body, clients, args.overload_requests, args.cap, args.pid, retry_pause=0.25)
    statuses = report(f"phase 2 (overload, {clients} clients = 10 x queue {args.queue})", r, e, rss, wall)
    if set(statuses) - {200, 503}:
        failures.append(f"phase 2 answered {sorted(set(statuses) - {200, 503})}")
    if e:
        failures.append(f"phase 2 had {len(e)} transport errors: {e[:3]}")
    if 200 not in statuses or 503 not in statuses:
        failures.append("phase 2 should both serve (200) and refuse (503)")
    good = [x for x in rss if x == x]
    if len(good) >= 8:
        settled = statistics.median(good[len(good) // 4: len(good) // 2])
        end = statistics.median(good[-len(good) // 4:])
        growth = end - settled
        print(f"  memory: median RSS {settled:.0f} MiB in the 2nd quarter vs {end:.0f} MiB in the last quarter ({growth:+.0f} MiB)")
        if growth > max(32, 0.05 * settled):
            failures.append(f"RSS grew by {growth:.0f} MiB under load")

    # still alive and answering
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=30)
    conn.request("GET", "/health")
    health = json.loads(conn.getresponse().read())
    print(f"after the load: /health {health['status']}, completed {health['completed']}, running {health['running']}, waiting {health['waiting']}")
    if health["status"] != "ok":
        failures.append("the server is not healthy after the load")
    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)

if __name__ == "__main__":
    main()
