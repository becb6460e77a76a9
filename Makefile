# keras_gen: `make demo` trains, logs and exports the default VAE; `make test` runs the test suite.
# Both set everything up themselves on a fresh Debian machine with Python 3.11.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.keras_gen-installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist
DEMO_EPOCHS ?= 5
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-slow bench data install clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@# Debian's python3 needs python3-venv for `-m venv`; install it if venv creation fails.
	$(PYTHON) -m venv $(VENV) || { $(SUDO) apt-get update && $(SUDO) apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)

# The real Fashion-MNIST IDX files from Debian's package, when apt is there and the files are not.
data:
	@if [ -e $(FASHION_MNIST)/train-images-idx3-ubyte.gz ] || [ -e $(FASHION_MNIST)/train-images-idx3-ubyte ]; then \
		echo "Fashion-MNIST found in $(FASHION_MNIST)"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		$(SUDO) apt-get install -y dataset-fashion-mnist || { $(SUDO) apt-get update && $(SUDO) apt-get install -y dataset-fashion-mnist; } \
			|| echo "warning: could not install dataset-fashion-mnist; training will say how to get the data"; \
	else \
		echo "No apt-get: put the four Fashion-MNIST IDX files in a folder and pass --data-dir (see README)"; \
	fi

demo: $(STAMP) data
	$(BIN)/keras-gen train vae --epochs $(DEMO_EPOCHS)

test: $(STAMP) data
	$(BIN)/python -m pytest

# Checks excluded from the default run (real data, long training).
test-slow: $(STAMP) data
	$(BIN)/python -m pytest -m slow

bench: $(STAMP) data
	$(BIN)/python bench/vae_throughput.py

clean:
	rm -rf $(VENV) *.egg-info build dist
