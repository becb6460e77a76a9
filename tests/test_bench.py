"""The GPU readiness script's CPU dry run (bench/gpu_check.sh --dry-run): what CI can check of it here."""

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_prints_the_devices_and_a_row_per_recipe_and_mode():
    env = dict(os.environ, PYTHON=sys.executable, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(["bash", "bench/gpu_check.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "PhysicalDevice(name='/physical_device:CPU:0'" in out
    assert "DRY RUN" in out and "float32 img/s" in out and "mixed img/s" in out and "XLA img/s" in out
    for recipe in ("dcgan", "wgan_gp", "vae", "dcgan_celeba"):
        row = re.search(rf"^{recipe} +16x16x[13] +8 +(\d+) +(\d+) +(\d+)$", out, re.MULTILINE)
        assert row, f"no row for {recipe}:\n{out}"
        assert all(int(figure) > 0 for figure in row.groups()), row.group(0)
