"""The GPU readiness script's CPU dry run (bench/gpu_check.sh --dry-run): what CI can check of it here."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# What the GPU run's table holds (bench/train_step_modes.py's default recipes).
ALL_RECIPES = ("dcgan", "wgan_gp", "vae", "dcgan_celeba")


def dry_run(recipes=None):
    """The dry run's output; `recipes` (comma-separated) limits the table through GPU_CHECK_RECIPES."""
    env = dict(os.environ, PYTHON=sys.executable, TF_CPP_MIN_LOG_LEVEL="3")
    if recipes:
        env["GPU_CHECK_RECIPES"] = recipes
    result = subprocess.run(["bash", "bench/gpu_check.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "PhysicalDevice(name='/physical_device:CPU:0'" in out
    assert "DRY RUN" in out and "float32 img/s" in out and "mixed img/s" in out and "XLA img/s" in out
    return out


def assert_rows(out, recipes):
    for recipe in recipes:
        row = re.search(rf"^{recipe} +16x16x[13] +8 +(\d+) +(\d+) +(\d+)$", out, re.MULTILINE)
        assert row, f"no row for {recipe}:\n{out}"
        assert all(int(figure) > 0 for figure in row.groups()), row.group(0)
    rows = re.findall(r"^(\w+) +16x16x", out, re.MULTILINE)
    assert rows == list(recipes), rows


def test_gpu_check_dry_run_prints_the_devices_and_a_row_per_mode_for_the_recipes_asked():
    # One recipe in all three modes checks the script end to end in a tenth of the full table's time;
    # every model's float32 and mixed-precision steps are tested in tests/test_mixed_precision.py.
    assert_rows(dry_run("vae"), ["vae"])


@pytest.mark.slow
def test_gpu_check_dry_run_prints_a_row_per_recipe_and_mode():
    """The whole table a GPU run prints (XLA for each recipe is checked only here): 95 s on 2 cores."""
    assert_rows(dry_run(), ALL_RECIPES)
