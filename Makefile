VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[embedded,temporal,encryption,web,server,dev,bench]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	./.ci/install-chromium   # the browser tests drive Debian's chromium package
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check durable_graph tests benchmarks examples
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV)
