"""Writes rouge_golden.json: ROUGE-L F-measures from Google's rouge_score (the scorer
self-instruct uses, no stemming) for pairs of real texts, as the reference for RougeL tests.

Run: .venv-bench/bin/python Tests/GeneratorTests/Fixtures/make_rouge_golden.py  (pip install rouge-score)
"""
import json, os, random
from rouge_score import rouge_scorer

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", "..", ".."))
seeds = [json.loads(l) for l in open(os.path.join(root, "corpora/seeds/biomedical.jsonl"))]
pqa = json.load(open(os.path.join(root, "corpora/eval/pubmedqa/pqal_dev.json")))
texts = [s["instruction"] for s in seeds] + [s["input"] for s in seeds if s["input"]]
texts += [v["QUESTION"] for v in list(pqa.values())[:60]] + [" ".join(v["CONTEXTS"]) for v in list(pqa.values())[:20]]
tricky = [("", "empty candidate"), ("Same words, same ORDER!", "same words same order"),
          ("The cat the cat the cat", "the the cat cat"), ("x-ray CT/MRI: 3.5 mg/kg", "X RAY ct mri 3 5 MG kg"),
          ("naïve café résumé", "nave caf rsum"), ("a b c d e f g", "g f e d c b a"), ("!!!", "???")]
rng = random.Random(7)
pairs = tricky + [(rng.choice(texts), rng.choice(texts)) for _ in range(300)]
# Near-paraphrases: the same instruction with words dropped or swapped, around the 0.7 threshold.
for s in rng.sample(texts[:59], 40):
    w = s.split()
    i = rng.randrange(len(w))
    pairs.append((s, " ".join(w[:i] + w[i + 1:] + ["carefully"])))
scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
out = [{"a": a, "b": b, "f": scorer.score(b, a)["rougeL"].fmeasure} for a, b in pairs]
json.dump({"tool": "rouge_score (use_stemmer=False)", "pairs": out}, open(os.path.join(here, "rouge_golden.json"), "w"), indent=0)
print(len(out), "pairs")
