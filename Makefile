# RSCoTr: `make demo` and `make test` are the whole set-up.
VENV   ?= .venv
PY     := $(VENV)/bin/python
MARKER := $(VENV)/.rscotr-install-ok

.PHONY: install test demo clean-demo

# Install (or finish installing) the pinned stack; re-run is cheap (cached mmcv-full wheel).
install:
	bash tools/install.sh

$(MARKER): rscotr/ops/csrc/ms_deform_attn_cpu.cpp tools/install.sh requirements.txt requirements/torch.txt requirements/runtime.txt requirements/tests.txt requirements/constraints.txt setup.py
	bash tools/install.sh

# Run the test suite (installs first if needed).
test: $(MARKER)
	$(PY) -m pytest tests

# Generate the demo data, convert it, co-train the tiny demo model, evaluate it and draw its
# predictions (work_dirs/demo/predictions.png).
demo: $(MARKER)
	PATH="$(abspath $(VENV))/bin:$$PATH" bash tools/misc/run_demo.sh

clean-demo:
	rm -rf data/demo work_dirs/demo
