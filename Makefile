# SelfSpec: the two commands of the README are `make demo` and `make test`.
# Both run the idempotent set-up first (apt packages, models and corpus from PyPI).
.PHONY: setup build demo test bench-ingest clean

setup:
	@scripts/setup

build: setup
	swift build -c release

## The main job on the embedded default: ingest, embed, a grounded dataset, LoRA, eval, ask, report.
demo: setup
	@scripts/demo

## All tests, in release (numeric code is 10-100x slower in debug); the server tests drive the
## official openai Python client, installed into .venv-test by scripts/python-clients.
## scripts/check-standalone fails if a tracked file reads the developers' reference folder beside the checkout.
## scripts/reliability-short then runs the short kill -9 soak, load test and fuzzing (RELIABILITY.md).
test: setup
	@scripts/check-standalone
	@scripts/python-clients
	swift test -c release -Xswiftc -enable-testing
	@scripts/reliability-short

## Ingest benchmark against the lxml peer (see BENCHMARKS.md).
bench-ingest: setup
	@Benchmarks/ingest.sh

clean:
	rm -rf .build runs
