# Developer shortcuts; the README's two commands (scripts/serve, scripts/test) need none of this.
PY := .venv/bin/python

.PHONY: check format lint types test serve bench venv

venv:
	scripts/bootstrap --extras dev

check: venv format lint types test

format: venv
	$(PY) -m ruff format service tests benchmarks

lint: venv
	$(PY) -m ruff check service tests benchmarks

types: venv
	$(PY) -m mypy

test:
	scripts/test

serve:
	scripts/serve

bench: venv
	$(PY) -m benchmarks
	$(PY) -m benchmarks.layers
