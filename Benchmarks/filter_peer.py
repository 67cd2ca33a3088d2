"""The self-instruct novelty filter with Google's rouge_score (the peer of `selfspec specialize
bench-filter`): keep each line whose ROUGE-L F to every kept line is below 0.7. Like
self-instruct, each kept instruction is tokenized once and `_score_lcs` is called per pair.
usage: filter_peer.py FILE [--json]"""
import json, sys, time
from rouge_score import rouge_scorer, tokenize

lines = open(sys.argv[1]).read().split("\n")
if lines and lines[-1] == "":
    lines.pop()
scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
start = time.perf_counter()
kept_tokens = []
for line in lines:
    toks = scorer._tokenizer.tokenize(line)
    if all(rouge_scorer._score_lcs(toks, k).fmeasure < 0.7 for k in kept_tokens):
        kept_tokens.append(toks)
dt = time.perf_counter() - start
r = {"engine": "rouge_score (self-instruct loop)", "instructions": len(lines), "kept": len(kept_tokens), "seconds": round(dt, 3),
     "instructions_per_second": round(len(lines) / dt)}
print(json.dumps(r) if "--json" in sys.argv else r)
