"""The `keras-gen` command end to end, on tiny fake Fashion-MNIST files."""

import os
import pathlib
import subprocess
import sys

import keras_gen  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import cli
from tests import helpers
from tests.test_callbacks import read_images

TINY_RECIPE = """
model = "vae"
description = "tiny VAE for the CLI test"
[model_options]
latent_dim = 2
[data]
preprocessing = "binarize"
validation_size = 8
[train]
epochs = 2
batch_size = 8
steps_per_epoch = 2
summary_samples = 4
"""


def keras_gen_command(*args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "keras_gen.cli", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One `keras-gen train` run of a tiny recipe, shared by the tests that inspect what it left."""
    root = tmp_path_factory.mktemp("cli")
    helpers.make_fake_source(root / "idx", seed=0)
    (root / "tiny.toml").write_text(TINY_RECIPE)
    run = keras_gen_command("train", "tiny.toml", "--data-dir", "idx", "--tfds-dir", "tfds", "--epochs", "2", cwd=root)
    assert run.returncode == 0, run.stderr[-3000:]
    return root, run


def test_seed_ranges():
    assert cli.parse_seeds("0..3") == [0, 1, 2, 3]
    assert cli.parse_seeds("5,1..2") == [5, 1, 2]
    for bad in ("3..1", "a", "1..", ""):
        with pytest.raises(Exception, match="bad seeds"):
            cli.parse_seeds(bad)


def test_list_shows_the_zoo(capsys):
    assert cli.main(["list"]) == 0
    assert "vae" in capsys.readouterr().out


def test_train_logs_checkpoints_and_exports(trained):
    root, run = trained
    runs = list((root / "tensorboard_logs" / "tiny").iterdir())
    assert len(runs) == 1
    scalars = {v.tag for p in (runs[0] / "train").glob("events*") for e in tf.compat.v1.train.summary_iterator(str(p)) for v in e.summary.value}
    assert {"epoch_loss", "epoch_reconstruction", "epoch_kl"} <= scalars
    images = read_images(runs[0] / "train")
    assert {"samples", "reconstructions", "interpolation"} <= set(images)
    assert [step for step, _ in images["samples"]] == [0, 1]
    assert list((runs[0] / "validation").glob("events*"))
    checkpoints = sorted(p.name for p in (root / "checkpoints" / "tiny").iterdir() if p.is_dir())
    assert checkpoints and "backup" not in checkpoints, "the backup is removed once training finishes"
    assert {"epoch-001.keras", "epoch-002.keras", "model.keras"} <= {p.name for p in (root / "checkpoints" / "tiny" / checkpoints[0]).iterdir()}
    assert (root / "exports" / "tiny" / "1" / "saved_model.pb").exists()
    assert "tensorboard --logdir" in run.stdout and "docker run" in run.stdout and "exports/tiny" in run.stdout
    assert "Epoch 2/2" in run.stdout  # Keras' progress output is shown


def test_export_then_sample_a_grid(trained):
    root, _ = trained
    run_dir = next(p for p in (root / "checkpoints" / "tiny").iterdir() if p.is_dir())
    export = keras_gen_command("export", run_dir / "model.keras", "--export-dir", "exports", "--name", "tiny", cwd=root)
    assert export.returncode == 0, export.stderr[-2000:]
    assert (root / "exports" / "tiny" / "2" / "saved_model.pb").exists()
    again = keras_gen_command("export", run_dir / "model.keras", "--export-dir", "exports", "--name", "tiny", "--version", "1", cwd=root)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    sample = keras_gen_command("sample", "exports/tiny", "--seeds", "0..5", "--columns", "3", "--out", "grid.png", cwd=root)
    assert sample.returncode == 0, sample.stderr[-2000:]
    grid = tf.io.decode_png(tf.io.read_file(str(root / "grid.png"))).numpy()
    assert grid.shape == (2 * 28, 3 * 28, 1) and grid.max() > 0


def test_bad_input_fails_cleanly_and_keeps_what_was_written(trained, tmp_path):
    root, _ = trained
    before = sorted(str(p) for p in root.rglob("*"))
    unknown = keras_gen_command("train", "vea", cwd=root)
    assert unknown.returncode == 2 and "Unknown recipe 'vea'" in unknown.stderr and "vae" in unknown.stderr
    (root / "bad.toml").write_text('model = "vae"\n[train]\nepoch = 1\n')
    bad_key = keras_gen_command("train", "bad.toml", cwd=root)
    assert bad_key.returncode == 2 and "valid keys are: epochs" in bad_key.stderr
    no_data = keras_gen_command("train", "tiny.toml", "--data-dir", tmp_path / "empty", cwd=root)
    assert no_data.returncode == 2 and "apt-get install -y dataset-fashion-mnist" in no_data.stderr
    missing = keras_gen_command("export", "nope.keras", cwd=root)
    assert missing.returncode == 2 and "No checkpoint at nope.keras" in missing.stderr
    after = sorted(str(p) for p in root.rglob("*") if p.name != "bad.toml")
    assert after == before


def test_an_interrupted_run_resumes_from_its_last_finished_epoch(tmp_path, monkeypatch):
    from keras_gen import recipes
    from keras_gen import training
    from keras_gen.callbacks import ImageSummaries

    helpers.make_fake_source(tmp_path / "idx", seed=0)
    (tmp_path / "tiny.toml").write_text(TINY_RECIPE)
    recipe = recipes.load_recipe(tmp_path / "tiny.toml")
    dirs = {"logdir": tmp_path / "logs", "export_dir": tmp_path / "exports", "checkpoint_dir": tmp_path / "ckpt"}
    options = dict(epochs=3, source_dir=tmp_path / "idx", data_dir=tmp_path / "tfds", verbose=0, **dirs)
    original = ImageSummaries.on_epoch_end

    def crash_after_second_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(ImageSummaries, "on_epoch_end", crash_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        training.train_recipe(recipe, **options)
    assert (tmp_path / "ckpt" / "tiny" / "backup").is_dir()
    assert not (tmp_path / "exports").exists()
    monkeypatch.setattr(ImageSummaries, "on_epoch_end", original)
    result = training.train_recipe(recipe, **options)
    assert len(result["history"]["loss"]) == 1, "only the third epoch is left to run"
    assert int(result["model"].optimizer.iterations.numpy()) == 3 * 2
    assert not (tmp_path / "ckpt" / "tiny" / "backup").exists()
    assert result["export"] == tmp_path / "exports" / "tiny" / "1"
