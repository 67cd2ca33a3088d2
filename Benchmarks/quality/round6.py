#!/usr/bin/env python3
"""Round 6 of the blind ratings: what Qwen2.5-Coder-1.5B writes (issue 25).

Items, shuffled together with random.Random(2026) and numbered:
- `bt-kept`: every example of `selfspec specialize backtranslate --model qwen2.5 --count 60 --seed 1`
  (runs/qwen-gen/bt60.jsonl): a yes/no question back-translated from a structured abstract, the
  abstract without its conclusion, the label and the conclusion;
- `bt-disagrees`: up to 20 questions that verification dropped (the model answered its own
  question against the label), drawn with random.Random(7), shown exactly as a kept example would be;
- `paper`: every example of `selfspec specialize generate --model qwen2.5 --count 24 --seed 1`
  (runs/qwen-gen/run24/examples.jsonl), the paper's recipe, with its retrieved passages' text.

Writes NAME.txt (what the rater sees) and NAME.key.json (k -> run, label, pmid); NAME is round6
unless a fifth argument names it; "-" leaves a file out (round 7: the paper recipe's examples alone).
Usage: python3 Benchmarks/quality/round6.py runs/qwen-gen/bt60.jsonl runs/qwen-gen/bt60.dropped.jsonl \
           runs/qwen-gen/run24/examples.jsonl runs/qwen-gen/corpus.sqlite [NAME]
"""
import json, random, sqlite3, sys, os

bt, dropped, paper, db = sys.argv[1:5]
name = sys.argv[5] if len(sys.argv) > 5 else "round6"
here = os.path.dirname(os.path.abspath(__file__))
items = []
for line in (open(bt) if bt != "-" else []):
    r = json.loads(line)
    items.append({"run": "bt-kept", "r": r})
dis = [json.loads(l) for l in open(dropped)] if dropped != "-" else []
dis = [r for r in dis if r.get("dropped") == "disagrees"]
random.Random(7).shuffle(dis)
for r in dis[:20]:
    items.append({"run": "bt-disagrees", "r": r})
con = sqlite3.connect(db)
if os.path.exists(paper):
    for line in open(paper):
        r = json.loads(line)
        texts = []
        for p in r.get("passages", []):
            row = con.execute("select title, text, pmid from passage_texts where id = ?", (p["passage_id"],)).fetchone()
            if row:
                texts.append(f"[PMID {row[2]}] {row[0]}\n{row[1]}")
        r["_passages"] = texts
        items.append({"run": "paper", "r": r})
random.Random(2026).shuffle(items)
out, key = [], []
for k, it in enumerate(items, 1):
    r = it["r"]
    block = [f"### {k}", f"INSTRUCTION: {r['instruction']}"]
    if r.get("input"):
        block.append(f"INPUT: {r['input']}")
    block.append(f"OUTPUT: {r['output']}")
    for t in r.get("_passages", []):
        block.append(f"PASSAGE: {t}")
    out.append("\n".join(block))
    key.append({"k": k, "run": it["run"], "label": r.get("label"), "pmid": r.get("pmid"),
                "verified_as": r.get("verified_as"), "task": r.get("task")})
open(os.path.join(here, name + ".txt"), "w").write("\n\n".join(out) + "\n")
json.dump(key, open(os.path.join(here, name + ".key.json"), "w"))
print(len(items), "items:", {r: sum(1 for i in items if i["run"] == r) for r in ("bt-kept", "bt-disagrees", "paper")})
