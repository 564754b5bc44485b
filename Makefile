# Both targets create or reuse .venv/ (tools/setup_env.sh) before they run.
PY := .venv/bin/python

.PHONY: setup test demo

setup:
	bash tools/setup_env.sh

test: setup
	$(PY) -m pytest tests

demo: setup
	$(PY) tools/run_demo.py
