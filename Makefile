# melsynth: `make run` starts the engine on the bundled default model; `make test` runs the whole suite.
# Both create .venv in the repository root when needed and install what they need, system packages
# included when run as root (otherwise they print the one apt-get line to run).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUNDLE ?= presets/default
ARGS ?=

RUN_APT := libportaudio2 libsndfile1
TEST_APT := $(RUN_APT) fluidsynth fluid-soundfont-gm timgm6mb-soundfont jackd2 puredata-core liblo-tools \
	chromium chromium-driver

.PHONY: run test bench sysdeps-run sysdeps-test venv venv-test lint clean

run: sysdeps-run $(VENV)/.run-stamp
	$(BIN)/melsynth serve --bundle $(BUNDLE) --web $(ARGS)

test: sysdeps-test $(VENV)/.test-stamp
	$(BIN)/python -m pytest -q $(ARGS)

bench: sysdeps-test $(VENV)/.test-stamp
	$(BIN)/python bench/run_all.py $(ARGS)

lint: $(VENV)/.test-stamp
	$(BIN)/ruff check .

sysdeps-run:
	@sh .ci/sysdeps.sh $(RUN_APT)

sysdeps-test:
	@sh .ci/sysdeps.sh $(TEST_APT)

# The venv is rebuilt when pyproject.toml changes. Debian's own Python has no venv module until
# python3-venv is installed: a first failure installs it (as root) and tries once more.
$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); sh .ci/sysdeps.sh python3-venv; $(PYTHON) -m venv $(VENV); } \
		|| { rm -rf $(VENV); echo "melsynth: '$(PYTHON) -m venv' failed: install python3-venv (apt-get install python3-venv)"; exit 1; }
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.run-stamp: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.test-stamp: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[train,dev]'
	@touch $@ $(VENV)/.run-stamp

venv: $(VENV)/.run-stamp
venv-test: $(VENV)/.test-stamp

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
