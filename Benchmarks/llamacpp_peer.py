"""llama.cpp (through llama-cpp-python) on the same GGUF, 2 threads: prompt processing of a
512-token prompt, single-stream greedy decode, tokens/s, each the fastest of --repeats runs. Peer of `selfspec bench llm`.
usage: llamacpp_peer.py MODEL.gguf [--prompt-tokens 512] [--decode-tokens 128] [--repeats 3] [--json]
"""
import argparse, json, resource, time
import llama_cpp
from llama_cpp import Llama

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--prompt-tokens", type=int, default=512)
ap.add_argument("--decode-tokens", type=int, default=128)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--json", action="store_true")
a = ap.parse_args()

llm = Llama(model_path=a.model, n_threads=a.threads, n_threads_batch=a.threads, n_ctx=2048, n_batch=512,
            verbose=False)
# The same text as `selfspec bench llm`.
text = ("Aspirin irreversibly inhibits cyclooxygenase-1 and cyclooxygenase-2, reducing the "
        "synthesis of prostaglandins and thromboxanes; low doses prevent platelet aggregation for the life of the "
        "platelet. ") * 64
ids = llm.tokenize(text.encode(), add_bos=False, special=False)[: a.prompt_tokens]
llm.eval(ids[:8]); llm.reset()  # warm-up

# CPU time (all threads) beside wall time: the machine may be shared. Each measurement is the
# fastest of --repeats runs (as in `selfspec bench llm`).
def timed(run):
    best = None
    for _ in range(a.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        t = (time.perf_counter() - t0, time.process_time() - c0)
        best = t if best is None or t[0] < best[0] else best
    return best

def prefill_run():
    llm.reset(); llm.eval(ids)

prefill, prefill_cpu = timed(prefill_run)
n = 0
def decode_run():
    global n
    n = 0
    for tok in llm.generate(ids[:8], top_k=1, temp=0.0, reset=False):
        n += 1
        if n >= a.decode_tokens:
            break

def decode_timed():
    best = None
    for _ in range(a.repeats):
        llm.reset(); llm.eval(ids[:8])
        t0, c0 = time.perf_counter(), time.process_time()
        decode_run()
        t = (time.perf_counter() - t0, time.process_time() - c0)
        best = t if best is None or t[0] < best[0] else best
    return best

decode, decode_cpu = decode_timed()
r = {"engine": f"llama.cpp (llama-cpp-python {llama_cpp.__version__})", "prefill_tokens": len(ids),
     "prefill_tokens_per_second": round(len(ids) / prefill), "decode_tokens": n,
     "decode_tokens_per_second": round(n / decode, 1),
     "prefill_cpu_ms_per_token": round(1000 * prefill_cpu / len(ids), 3),
     "decode_cpu_ms_per_token": round(1000 * decode_cpu / n, 3),
     "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
print(json.dumps(r) if a.json else r)
