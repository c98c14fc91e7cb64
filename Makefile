# The two README commands: `make demo` (install + the main job) and `make test` (install + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pearl-installed

.PHONY: install demo test test-extras lint smoke doctor bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/install-llama.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: otherwise the resolver picks a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	# llama.cpp: a portable x86-64 build by default (PEARL_LLAMA_BUILD=native opts in), cached per flags.
	bash scripts/install-llama.sh $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

demo: install
	$(BIN)/pearl demo

test: install
	$(BIN)/python -m pytest -q

# the integrations (inspect_ai, NeMo Guardrails, LiteLLM), each in a venv layered over .venv
test-extras: install
	bash scripts/test-extras.sh $(VENV)

lint: install
	$(BIN)/ruff check src tests bench scripts

# pearl doctor, then one reply from the embedded model with the response cache off (what CI runs first)
smoke: install
	$(BIN)/python scripts/smoke.py

doctor: install
	$(BIN)/pearl doctor

bench: install
	$(BIN)/python bench/bench_llm.py

clean:
	rm -rf $(VENV) .venv-extras demo runs .pytest_cache
