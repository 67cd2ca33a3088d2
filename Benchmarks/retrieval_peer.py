#!/usr/bin/env python3
"""Peers of `selfspec bench embed|exact|hnsw` (see Benchmarks/retrieval.sh).

embed   sentence-transformers (PyTorch CPU) on the same texts, batch 32, N threads
exact   faiss IndexFlatIP, batched and one query at a time
hnsw    hnswlib (M=16, efConstruction=200): build time, recall@k and queries/s per efSearch
random  fixed-seed random unit vectors (numpy) written as float32 files for both engines
export  the corpus' stored vectors (SQLite `vectors` table) split into base and query files

Vector files are raw little-endian float32, row-major (N, D). Every command prints JSON.
"""
import argparse
import json
import os
import resource
import sqlite3
import sys
import time


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(path, d):
    import numpy as np
    return np.fromfile(path, dtype="<f4").reshape(-1, d)


def cmd_embed(a):
    os.environ["HF_HUB_OFFLINE"] = "1"
    import numpy as np
    import torch
    torch.set_num_threads(a.threads)
    from sentence_transformers import SentenceTransformer
    texts = [json.loads(line) for line in open(a.texts, encoding="utf-8") if line.strip()]
    model = SentenceTransformer(a.model, device="cpu")
    model.encode(texts[:32], batch_size=a.batch)  # warm up
    t = time.perf_counter()
    vecs = model.encode(texts, batch_size=a.batch, normalize_embeddings=True, convert_to_numpy=True)
    dt = time.perf_counter() - t
    out = {"engine": f"sentence-transformers {__import__('sentence_transformers').__version__} / torch {torch.__version__}",
           "threads": a.threads, "batch": a.batch, "passages": len(texts), "seconds": round(dt, 3),
           "passagesPerSecond": round(len(texts) / dt, 1)}
    if a.compare:
        ours = load(a.compare, vecs.shape[1])
        cos = (ours * vecs).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(vecs, axis=1))
        out["minCosineToSelfspec"] = float(cos.min())
    print(json.dumps(out))


def cmd_random(a):
    import numpy as np
    rng = np.random.default_rng(a.seed)
    for n, path in ((a.n, a.base), (a.q, a.queries)):
        x = rng.standard_normal((n, a.d), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        x.astype("<f4").tofile(path)
    print(json.dumps({"n": a.n, "q": a.q, "d": a.d, "seed": a.seed}))


def cmd_exact(a):
    import numpy as np
    import faiss
    faiss.omp_set_num_threads(a.threads)
    base, q = load(a.base, a.d), load(a.queries, a.d)
    t = time.perf_counter()
    index = faiss.IndexFlatIP(a.d)
    index.add(base)
    build = time.perf_counter() - t
    index.search(q[:8], a.k)  # warm up
    tb = float("inf")
    for _ in range(3):  # best of three batched passes (as selfspec's side does)
        t = time.perf_counter()
        _, ids = index.search(q, a.k)
        tb = min(tb, time.perf_counter() - t)
    ns = min(a.single, len(q))
    t = time.perf_counter()
    for i in range(ns):
        index.search(q[i:i + 1], a.k)
    ts = time.perf_counter() - t
    out = {"engine": f"faiss {faiss.__version__} IndexFlatIP", "threads": a.threads, "n": len(base), "q": len(q),
           "batchedQPS": round(len(q) / tb, 1), "singleQPS": round(ns / ts, 1), "buildSeconds": round(build, 3)}
    if a.compare_ids:
        ours = np.fromfile(a.compare_ids, dtype="<i8").reshape(len(q), a.k)
        out["top1AgreementWithSelfspec"] = float((ours[:, 0] == ids[:, 0]).mean())
        out["topKOverlapWithSelfspec"] = float(np.mean([len(set(x) & set(y)) / a.k for x, y in zip(ours, ids)]))
    print(json.dumps(out))


def cmd_hnsw(a):
    import numpy as np
    import hnswlib
    base, q = load(a.base, a.d), load(a.queries, a.d)
    truth = np.argsort(-(q @ base.T), axis=1)[:, :a.k]
    index = hnswlib.Index(space="ip", dim=a.d)
    index.init_index(max_elements=len(base), M=16, ef_construction=200, random_seed=100)
    t = time.perf_counter()
    index.add_items(base, np.arange(len(base)), num_threads=a.threads)
    build = time.perf_counter() - t
    points = []
    for ef in [int(x) for x in a.ef.split(",")]:
        index.set_ef(max(ef, a.k))
        found = []
        t = time.perf_counter()
        for i in range(len(q)):
            labels, _ = index.knn_query(q[i:i + 1], k=a.k, num_threads=1)
            found.append(labels[0])
        dt = time.perf_counter() - t
        recall = np.mean([len(set(f) & set(tr)) / a.k for f, tr in zip(found, truth)])
        points.append({"ef": ef, "recall": round(float(recall), 4), "qps": round(len(q) / dt, 1)})
    print(json.dumps({"engine": f"hnswlib {getattr(hnswlib, '__version__', '0.8')}", "threads": a.threads, "n": len(base),
                      "q": len(q), "buildSeconds": round(build, 3), "peakRSSMB": round(peak_rss_mb()), "points": points}))


def cmd_export(a):
    import numpy as np
    db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
    rows = [np.frombuffer(b, dtype="<f4") for (b,) in db.execute("SELECT vector FROM vectors ORDER BY passage_id")]
    x = np.stack(rows)
    rng = np.random.default_rng(a.seed)
    pick = np.zeros(len(x), dtype=bool)
    pick[rng.choice(len(x), size=a.queries, replace=False)] = True
    x[~pick].astype("<f4").tofile(a.base)
    x[pick].astype("<f4").tofile(a.queries_out)
    print(json.dumps({"vectors": len(x), "base": int((~pick).sum()), "queries": int(pick.sum()), "d": x.shape[1]}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed"); e.add_argument("--texts", required=True); e.add_argument("--model", default="models/all-MiniLM-L6-v2")
    e.add_argument("--threads", type=int, default=2); e.add_argument("--batch", type=int, default=32); e.add_argument("--compare")
    r = sub.add_parser("random"); r.add_argument("--n", type=int, required=True); r.add_argument("--q", type=int, default=1000)
    r.add_argument("--d", type=int, default=384); r.add_argument("--seed", type=int, default=42)
    r.add_argument("--base", required=True); r.add_argument("--queries", required=True)
    x = sub.add_parser("exact"); x.add_argument("--base", required=True); x.add_argument("--queries", required=True)
    x.add_argument("--d", type=int, default=384); x.add_argument("--k", type=int, default=10); x.add_argument("--single", type=int, default=200)
    x.add_argument("--threads", type=int, default=2); x.add_argument("--compare-ids")
    h = sub.add_parser("hnsw"); h.add_argument("--base", required=True); h.add_argument("--queries", required=True)
    h.add_argument("--d", type=int, default=384); h.add_argument("--k", type=int, default=10); h.add_argument("--threads", type=int, default=2)
    h.add_argument("--ef", default="10,16,24,32,48,64,96,128")
    o = sub.add_parser("export"); o.add_argument("--db", required=True); o.add_argument("--base", required=True)
    o.add_argument("--queries-out", required=True); o.add_argument("--queries", type=int, default=500); o.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    {"embed": cmd_embed, "random": cmd_random, "exact": cmd_exact, "hnsw": cmd_hnsw, "export": cmd_export}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
