# Every target bootstraps .venv from the project's own files; nothing else is assumed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint typecheck suite bench soak clean dist

RUN_STAMP := $(VENV)/.installed-run

# The demo needs looop alone; the test tools (mypy, selenium, kubernetes, …) come with the
# first target that runs them. Either way pip names each package as it fetches it.
$(RUN_STAMP): pyproject.toml
	@echo "== installing looop into $(VENV) (first run: about 22 MB, a minute or three, most of it downloads) =="
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar off --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml
	@echo "== installing looop and its test tools into $(VENV) (first run: a few minutes) =="
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --progress-bar off --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -e '.[k8s,mcp,notify]' --group dev
	touch $(STAMP) $(RUN_STAMP)

# a .venv with the test tools already serves the demo
demo: $(if $(wildcard $(STAMP)),$(STAMP),$(RUN_STAMP))
	$(BIN)/looop demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools

typecheck: $(STAMP)
	$(BIN)/mypy

# Bytecode on, as users have it, whatever the shell says: pytest keeps its rewritten test
# modules only then, and otherwise rewrites all of them in every worker (~10 s of CPU each).
# And no MAKEFLAGS: beside mypy (`make test`'s -j2) it names make's jobserver fds, which a
# `make` that a test runs in a worker's workspace would take for its own.
TESTENV := PYTHONDONTWRITEBYTECODE= MAKEFLAGS= MFLAGS=

# Every tier, on every core (the SSH lab's tests: two chains, each on a worker with its own lab).
suite: $(STAMP)
	$(TESTENV) $(BIN)/pytest -n auto --dist loadgroup --durations=20

# Lint first (a second, and the commonest finding); then the types beside the suite rather than
# before it: a cold mypy (a fresh clone, no .mypy_cache) takes 20 s to a minute, which the
# suite's first seconds (workers starting, collecting) leave room for. A type error still fails
# `make test`: make waits for both and reports each.
test: lint
	@$(MAKE) --no-print-directory -j2 typecheck suite

# The one-minute gate before every commit: lint, types and the unit tier (no process, no sleep),
# one xdist worker per core. Only tests/unit is collected (every unit test lives there: the
# suite's conftest refuses one elsewhere): each worker imports ~400 test modules otherwise,
# ~2 s of CPU apiece for tests it never runs.
check: lint typecheck
	$(TESTENV) $(BIN)/pytest tests/unit -m unit --hypothesis-profile=check -n auto

bench: $(STAMP)
	$(BIN)/python bench/run.py

# What PyPI would get: the sdist and wheel built from the tracked files, `twine check --strict`
# on both (build and twine in a throwaway venv under dist/, not the project's).
DIST_TOOLS := dist/.tools
dist:
	rm -rf dist && $(PY) -m venv $(DIST_TOOLS)
	$(DIST_TOOLS)/bin/python -m pip install --progress-bar off build twine
	$(DIST_TOOLS)/bin/python -m build --outdir dist .
	$(DIST_TOOLS)/bin/twine check --strict dist/*.whl dist/*.tar.gz
	rm -rf $(DIST_TOOLS)

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache

SOAK_MINUTES ?= 30
soak: $(STAMP)
	SOAK_MINUTES=$(SOAK_MINUTES) $(BIN)/python bench/soak.py
