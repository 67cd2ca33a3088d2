#!/usr/bin/env python3
"""Tally a blind rating round per setting: python3 tally.py round3 (reads roundN.key.json and roundN.ratings.tsv)."""
import collections, csv, json, os, sys

name = sys.argv[1] if len(sys.argv) > 1 else "round3"
here = os.path.dirname(os.path.abspath(__file__))
key = {k["k"]: k.get("cfg") or k.get("run") for k in json.load(open(os.path.join(here, f"{name}.key.json")))}
rows = list(csv.DictReader(open(os.path.join(here, f"{name}.ratings.tsv")), delimiter="\t"))
columns = [c for c in rows[0] if c not in ("k", "note")]
totals = collections.defaultdict(lambda: collections.Counter())
for r in rows:
    t = totals[key[int(r["k"])]]
    t["n"] += 1
    for c in columns:
        t[c] += r[c] == "y"
print("setting".ljust(44), "n".rjust(4), *(c.rjust(11) for c in columns))
for setting, t in sorted(totals.items()):
    print(setting.ljust(44), str(t["n"]).rjust(4), *(str(t[c]).rjust(11) for c in columns))
