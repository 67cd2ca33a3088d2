"""Load client for Benchmarks/serve.sh: C concurrent clients send short /v1/completions requests
over loopback (one connection per request, stdlib only) and report requests/s and latency
percentiles. The same client drives selfspec serve and llama.cpp's server.

usage: serve_load.py URL MODEL --concurrency 1,8,32 [--requests-per-client 4] [--max-tokens 16] [--json]
"""
import argparse, json, statistics, sys, threading, time, urllib.request

PROMPTS = ["The heart pumps", "Diabetes is a disease in which", "Antibiotics are used to", "The human genome contains",
           "Vaccines work by", "A randomized controlled trial is", "Insulin is produced by", "The kidneys filter"]


def one(url, model, prompt, max_tokens, api_key=None):
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    req = urllib.request.Request(url + "/v1/completions", data=body, headers=headers)
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        out = json.loads(r.read())
    return time.perf_counter() - t, out["usage"]["completion_tokens"]


def run(url, model, clients, per_client, max_tokens):
    latencies, tokens, errors = [], [], []
    lock = threading.Lock()

    def worker(c):
        for i in range(per_client):
            try:
                dt, n = one(url, model, PROMPTS[(c + i) % len(PROMPTS)], max_tokens)
                with lock:
                    latencies.append(dt); tokens.append(n)
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(str(e))

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for t in threads: t.start()
    for t in threads: t.join()
    wall = time.perf_counter() - start
    latencies.sort()
    pct = lambda q: latencies[min(len(latencies) - 1, int(round(q * (len(latencies) - 1))))] if latencies else float("nan")
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "seconds": round(wall, 3),
            "requests_per_second": round(len(latencies) / wall, 3), "tokens_per_second": round(sum(tokens) / wall, 1),
            "p50_ms": round(pct(0.5) * 1000, 1), "p99_ms": round(pct(0.99) * 1000, 1),
            "mean_ms": round(statistics.mean(latencies) * 1000, 1) if latencies else None,
            "first_error": errors[0] if errors else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url"); ap.add_argument("model")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--requests-per-client", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    one(a.url, a.model, "Warm up", 4)
    rows = [run(a.url, a.model, int(c), a.requests_per_client, a.max_tokens) for c in a.concurrency.split(",")]
    if a.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(r)


if __name__ == "__main__":
    sys.exit(main())
