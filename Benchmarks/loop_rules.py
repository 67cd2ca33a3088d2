"""Which loop rule to use: replays `RepetitionStop`'s rule on the answers of a `generate --prompts`
run made without it, for several settings.

    python Benchmarks/loop_rules.py OFF.jsonl [MODEL.gguf]

OFF.jsonl: `selfspec generate --prompts P.jsonl --max-tokens 256` output (no --repetition-stop).
The answers are re-tokenized with the model's vocabulary (llama-cpp-python, in .venv-bench/), so
the token ids are those a greedy run produced up to BPE merge differences. For each rule it prints
how many answers it stops, and how many of those had ended by themselves (eos/stop): those would be
normal answers cut. It then runs each rule over human text that must never stop: the abstracts
and long answers of corpora/eval/pubmedqa/pqal_dev.json. Needs .venv-bench (scripts/bench-peers)."""
import json
import sys

from llama_cpp import Llama


def first_loop(tokens, repeats, min_tokens, max_period):
    """The length of the first prefix the rule calls a loop (as generation checks it), or None."""
    for end in range(1, len(tokens) + 1):
        longest = min(max_period, end // repeats)
        if end < min_tokens or longest < 1:
            continue
        for p in range(1, longest + 1):
            run = 0
            while run < end - p and tokens[end - 1 - run] == tokens[end - 1 - run - p]:
                run += 1
            copies = (run + p) // p
            if copies >= repeats and copies * p >= min_tokens:
                return end
    return None


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    model = sys.argv[2] if len(sys.argv) > 2 else "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    vocab = Llama(model_path=model, vocab_only=True, verbose=False)
    tokens = [vocab.tokenize(r["text"].encode(), add_bos=False, special=False) for r in rows]
    finished = {}
    for r in rows:
        finished[r["finish_reason"]] = finished.get(r["finish_reason"], 0) + 1
    print(f"{len(rows)} answers, finish reasons {finished}")
    print("| rule R,T,P | stopped | of them ended by themselves | mean stop (tokens) | tokens saved |")
    print("|---|---|---|---|---|")
    for rule in [(2, 16, 128), (2, 32, 128), (2, 32, 64), (3, 32, 128), (3, 48, 128), (4, 48, 128)]:
        stops = [(r, first_loop(t, *rule), len(t)) for r, t in zip(rows, tokens)]
        stopped = [(r, s, n) for r, s, n in stops if s is not None]
        natural = [r["id"] for r, s, n in stopped if r["finish_reason"] in ("eos", "stop")]
        mean = sum(s for _, s, _ in stopped) / max(1, len(stopped))
        saved = sum(n - s for _, s, n in stopped)
        print(f"| {','.join(map(str, rule))} | {len(stopped)}/{len(rows)} | {len(natural)} {natural or ''} | {mean:.0f} | {saved} |")
    dev = json.load(open("corpora/eval/pubmedqa/pqal_dev.json"))
    human = [" ".join(v["CONTEXTS"]) for v in dev.values()] + [v["LONG_ANSWER"] for v in dev.values()]
    human_tokens = [vocab.tokenize(t.encode(), add_bos=False, special=False) for t in human]
    print(f"human text: {len(human)} texts, {sum(map(len, human_tokens))} tokens")
    for rule in [(2, 16, 128), (2, 32, 128), (3, 48, 128)]:
        hits = [t for t, ids in zip(human, human_tokens) if first_loop(ids, *rule) is not None]
        print(f"  rule {','.join(map(str, rule))}: stops {len(hits)} {[h[:80] for h in hits[:3]]}")


if __name__ == "__main__":
    main()
