# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint format bench clean kafka-jars

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP) $@

demo: $(STAMP)
	$(BIN)/python -m podium.demo

# mypy and import-linter cannot follow setuptools' editable-install finder, so they
# read a link tree shaped like the installed package (podium/events -> events/, ...)
TYPECHECK := .typecheck
MAPPED := events workflow conductor services

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/podium
	ln -s $(addprefix $(CURDIR)/,$(wildcard podium/*)) $(TYPECHECK)/podium/
	$(foreach m,$(MAPPED),ln -s $(CURDIR)/$(m) $(TYPECHECK)/podium/$(m);)
	cd $(TYPECHECK) && PYTHONPATH=. $(CURDIR)/$(BIN)/lint-imports $(CURDIR)/pyproject.toml
	cd $(TYPECHECK) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p podium

test: lint kafka-jars
	$(BIN)/pytest

# Apache Kafka's jars for its tests, fetched once by Maven (podium/jvm/pom.xml) into
# ~/.cache/podium; without java >= 17 and mvn this says why and those tests skip.
kafka-jars: $(STAMP)
	@$(BIN)/python -m podium.apache_kafka || true

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
