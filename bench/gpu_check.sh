#!/usr/bin/env bash
# GPU readiness in one run of at most 8 minutes: for a person with a GPU to run once and send back.
#
#   bash bench/gpu_check.sh             # on a GPU machine, from the repository root, after `make install`
#   bash bench/gpu_check.sh --dry-run   # anywhere: tiny sizes, no tests; CI runs this (tests/test_bench.py)
#
# It prints the devices TensorFlow sees, runs the distributed-step and mixed-precision tests
# (tests/test_distributed_zoo.py, tests/test_mixed_precision.py) with the GPU visible, and prints the
# train-step images/s table of bench/train_step_modes.py for dcgan, wgan_gp, vae and the 64x64
# dcgan_celeba recipe: float32, mixed precision (float16 with loss scaling on a GPU) and XLA, one row
# each. The dry run skips the tests (the default suite runs them) and shrinks the table to seconds.
# GPU_CHECK_RECIPES=vae,dcgan limits the table to those recipes (the default suite's dry run uses one;
# the slow-marked test runs all four).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
DRY_RUN=0
[ "${1:-}" = "--dry-run" ] && DRY_RUN=1
# The whole check stays within 8 minutes: the tests get 4, the table the rest.
deadline=$((SECONDS + 480))

echo "== devices"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
"$PYTHON" -c 'import os; os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3"); import tensorflow as tf; print("TensorFlow", tf.__version__, "built with CUDA:", tf.test.is_built_with_cuda()); [print(" ", d) for d in tf.config.list_physical_devices()]'

if [ "$DRY_RUN" = 0 ]; then
    echo "== distributed and mixed-precision tests"
    timeout 240 "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_distributed_zoo.py tests/test_mixed_precision.py || echo "TESTS FAILED (exit $?)"
    echo "== train-step images/s"
    timeout $((deadline - SECONDS)) "$PYTHON" bench/train_step_modes.py --steps 20 --rounds 3 ${GPU_CHECK_RECIPES:+--recipes "$GPU_CHECK_RECIPES"}
else
    echo "== train-step images/s (dry run)"
    "$PYTHON" bench/train_step_modes.py --dry-run ${GPU_CHECK_RECIPES:+--recipes "$GPU_CHECK_RECIPES"}
fi
