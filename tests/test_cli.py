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


def test_export_then_sample_a_grid(trained, capsys):
    root, _ = trained
    run_dir = next(p for p in (root / "checkpoints" / "tiny").iterdir() if p.is_dir())
    # `export` in this process (a fresh Python costs ~7 s of imports); `sample` below runs as a process.
    assert cli.main(["export", str(run_dir / "model.keras"), "--export-dir", str(root / "exports"), "--name", "tiny"]) == 0
    assert (root / "exports" / "tiny" / "2" / "saved_model.pb").exists()
    again = ["export", str(run_dir / "model.keras"), "--export-dir", str(root / "exports"), "--name", "tiny", "--version", "1"]
    assert cli.main(again) == 2 and "never overwritten" in capsys.readouterr().err
    sample = keras_gen_command("sample", "exports/tiny", "--seeds", "0..5", "--columns", "3", "--out", "grid.png", cwd=root)
    assert sample.returncode == 0, sample.stderr[-2000:]
    grid = tf.io.decode_png(tf.io.read_file(str(root / "grid.png"))).numpy()
    assert grid.shape == (2 * 28, 3 * 28, 1) and grid.max() > 0


def test_training_records_its_dataset_beside_the_checkpoints_and_in_every_export(trained, tmp_path):
    from keras_gen import data

    root, _ = trained
    run_dir = next(p for p in (root / "checkpoints" / "tiny").iterdir() if p.is_dir())
    record = data.read_record(run_dir / "model.keras")
    assert record["source"] == "fashion_mnist" and record["image_shape"] == [28, 28, 1] and record["channels"] == 1
    assert len(record["class_names"]) == 10 and record["preprocessing"] == "binarize" and record["source_dir"] == str((root / "idx").resolve())
    assert data.read_record(root / "exports" / "tiny" / "1") == record
    # `keras-gen export` carries the record from beside the checkpoint into the export.
    assert cli.main(["export", str(run_dir / "model.keras"), "--export-dir", str(tmp_path / "exports")]) == 0
    assert data.read_record(next((tmp_path / "exports").glob("*/1"))) == record


def test_bad_input_fails_cleanly_and_keeps_what_was_written(trained, tmp_path, capsys, monkeypatch):
    root, _ = trained
    before = sorted(str(p) for p in root.rglob("*"))
    # One bad command as a process (its exit status and stderr); the rest take the same path in
    # `cli.main`, in this process (a fresh Python costs ~7 s of imports), from the same folder.
    unknown = keras_gen_command("train", "vea", cwd=root)
    assert unknown.returncode == 2 and "Unknown recipe 'vea'" in unknown.stderr and "vae" in unknown.stderr
    monkeypatch.chdir(root)
    (root / "bad.toml").write_text('model = "vae"\n[train]\nepoch = 1\n')
    capsys.readouterr()
    assert cli.main(["train", "bad.toml"]) == 2 and "valid keys are: epochs" in capsys.readouterr().err
    assert cli.main(["train", "tiny.toml", "--data-dir", str(tmp_path / "empty")]) == 2
    assert "apt-get install -y dataset-fashion-mnist" in capsys.readouterr().err
    assert cli.main(["export", "nope.keras"]) == 2 and "No checkpoint at nope.keras" in capsys.readouterr().err
    after = sorted(str(p) for p in root.rglob("*") if p.name != "bad.toml")
    assert after == before


@pytest.mark.usefixtures("eager_steps")
def test_an_interrupted_run_resumes_from_its_last_finished_epoch(tmp_path, monkeypatch):
    from keras_gen import pipelines
    from keras_gen import recipes
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
        pipelines.train_recipe(recipe, **options)
    assert (tmp_path / "ckpt" / "tiny" / "backup").is_dir()
    assert not (tmp_path / "exports").exists()
    monkeypatch.setattr(ImageSummaries, "on_epoch_end", original)
    result = pipelines.train_recipe(recipe, **options)
    assert len(result["history"]["loss"]) == 1, "only the third epoch is left to run"
    assert int(result["model"].optimizer.iterations.numpy()) == 3 * 2
    assert not (tmp_path / "ckpt" / "tiny" / "backup").exists()
    assert result["export"] == tmp_path / "exports" / "tiny" / "1"


TINY_AAE_RECIPE = """
model = "aae"
description = "tiny adversarial autoencoder for the CLI test"
[model_options]
latent_dim = 2
filters = [4, 8]
discriminator_units = [8]
[data]
validation_size = 100
[train]
epochs = 1
batch_size = 4
steps_per_epoch = 2
summary_samples = 4
"""


@pytest.mark.usefixtures("eager_steps")
def test_one_class_aae_trains_then_evaluate_prints_the_anomaly_table(tmp_path, capsys):
    from keras_gen import data

    arrays = helpers.make_fake_source(tmp_path / "idx", seed=0, num_train=200, num_test=60)
    (tmp_path / "tiny_aae.toml").write_text(TINY_AAE_RECIPE)
    where = ["--data-dir", str(tmp_path / "idx"), "--tfds-dir", str(tmp_path / "tfds")]
    dirs = ["--logdir", str(tmp_path / "logs"), "--export-dir", str(tmp_path / "exports"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    assert cli.main(["train", str(tmp_path / "tiny_aae.toml"), "--normal-class", "3", *where, *dirs]) == 0
    capsys.readouterr()
    checkpoint = next((tmp_path / "ckpt" / "tiny_aae").glob("*/model.keras"))
    export = tmp_path / "exports" / "tiny_aae"
    # The checkpoint and the export of one model: two rows of the same normal class, with the same figures.
    assert cli.main(["evaluate", str(checkpoint), str(export), "--anomaly", "--fpr", "0.1", *where]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("3 Dress")]
    assert len(rows) == 2 and rows[0].split() == rows[1].split(), out
    assert "ROC-AUC" in out and "threshold (FPR 0.1)" in out and "mean of 2" in out and "more than once" in out
    assert "n/a" not in rows[0], "training calibrated the model on its held-out class-3 images"
    # The one-class model trained on class 3 alone, and its held-out images were class 3's share of the split.
    (_, _), (_, validation_labels) = data.split_train_validation(*arrays["train"], 100, 0)
    assert np.sum(validation_labels == 3) >= 2


def test_anomaly_evaluation_and_normal_class_fail_cleanly(trained, tmp_path, capsys):
    root, _ = trained
    checkpoint = str(next((root / "checkpoints" / "tiny").glob("*/model.keras")))
    assert cli.main(["evaluate", checkpoint, checkpoint]) == 2
    assert "only evaluated together with --anomaly" in capsys.readouterr().err
    assert cli.main(["evaluate", checkpoint, "--anomaly", "--fpr", "1.5"]) == 2
    assert "--fpr must be in [0, 1)" in capsys.readouterr().err
    where = ["--data-dir", str(root / "idx"), "--tfds-dir", str(root / "tfds")]
    assert cli.main(["evaluate", checkpoint, "--anomaly", *where]) == 2
    assert "no anomaly_score or anomaly_threshold endpoint" in capsys.readouterr().err
    assert cli.main(["train", str(root / "tiny.toml"), "--normal-class", "3", *where]) == 2
    assert "'vae' has no normal_class option" in capsys.readouterr().err


# === Any image dataset ===
def dirs_in(root):
    return ["--logdir", str(root / "logs"), "--export-dir", str(root / "exports"), "--checkpoint-dir", str(root / "ckpt")]


@pytest.fixture(scope="module")
def colour_pngs(tmp_path_factory):
    """Real Fashion-MNIST images, tinted with seeded colours and padded to 32x32, as PNG class folders."""
    root = tmp_path_factory.mktemp("colour_pngs")
    helpers.write_image_folder(root / "data", per_class=4, rgb=True, pad=32)
    return root


@pytest.mark.usefixtures("eager_steps")
def test_train_dcgan_on_a_folder_of_rgb_pngs_at_64(colour_pngs, tmp_path, capsys):
    folder = colour_pngs / "data"
    args = ["train", "dcgan", "--data", f"folder:{folder}", "--image-size", "64", "--epochs", "1", "--steps-per-epoch", "5", "--batch-size", "4", "--validation-size", "8"]
    assert cli.main([*args, *dirs_in(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"Data: folder:{folder}: 64x64x3 images (train 32, validation 8, test 40), 10 classes" in out
    run = next((tmp_path / "logs" / "dcgan").iterdir())
    grid = read_images(run / "train")["samples"][0][1]
    assert grid.shape[-1] == 3 and grid.shape[0] % 64 == 0, "TensorBoard's grid is RGB, 64 pixels a tile"
    assert cli.main(["sample", str(tmp_path / "exports" / "dcgan"), "--seeds", "0..3", "--out", str(tmp_path / "grid.png")]) == 0
    assert tf.io.decode_png(tf.io.read_file(str(tmp_path / "grid.png"))).shape == (128, 128, 3)
    settings = (run / "run.json").read_text()
    assert '"image_shape": [\n      64,\n      64,\n      3\n    ]' in settings and "3_Dress" in settings


@pytest.mark.usefixtures("eager_steps")
def test_train_vae_on_tfds_cifar10(tmp_path, capsys):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=24):
        args = ["train", "vae", "--data", "tfds:cifar10", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8", "--validation-size", "8"]
        assert cli.main([*args, "--tfds-dir", str(tmp_path / "tfds"), *dirs_in(tmp_path)]) == 0
    assert "Data: tfds:cifar10: 32x32x3 images (train 16, validation 8, test 24), 10 classes" in capsys.readouterr().out
    loaded = tf.saved_model.load(str(tmp_path / "exports" / "vae" / "1"))
    assert loaded.signatures["reconstruct"].structured_input_signature[1]["images"].shape.as_list() == [None, 32, 32, 3]


# The two DCGAN recipes are slow-marked: the default run trains the DCGAN networks at 64x64x3 from a folder
# (test_train_dcgan_on_a_folder_of_rgb_pngs_at_64) and reads TFDS cifar10 through the CLI (test_train_vae_on_tfds_cifar10).
@pytest.mark.parametrize("name", [pytest.param("dcgan_celeba", marks=pytest.mark.slow), "vae_celeba", pytest.param("dcgan_cifar10", marks=pytest.mark.slow)])
def test_the_colour_recipes_run_offline_on_mock_data(name, tmp_path):
    import tensorflow_datasets as tfds

    from keras_gen import pipelines
    from keras_gen import recipes

    with tfds.testing.mock_data(num_examples=12):
        result = pipelines.train_recipe(
            recipes.load_recipe(name), epochs=1, steps_per_epoch=1, batch_size=4, data={"validation_size": 4, "tfds_dir": str(tmp_path / "tfds")},
            logdir=tmp_path / "logs", checkpoint_dir=tmp_path / "ckpt", export=False, verbose=0,
        )
    expected = (32, 32, 3) if name.endswith("cifar10") else (64, 64, 3)
    assert result["model"].image_shape == expected
    assert all(np.isfinite(value) for value in result["test"].values())


def test_bad_data_stops_before_anything_is_written(colour_pngs, tmp_path, capsys):
    folder = colour_pngs / "data"
    flat = tmp_path / "flat"
    flat.mkdir()
    for index, image in enumerate(helpers.real_images(per_class=1)[0]):
        (flat / f"{index}.png").write_bytes(tf.io.encode_png(image).numpy())
    (tmp_path / "pinned.toml").write_text('model = "vae"\n[model_options]\nimage_shape = [28, 28, 1]\n[data]\nvalidation_size = 4\n')
    (tmp_path / "classes.toml").write_text('model = "cvae"\n[model_options]\nnum_classes = 5\n[data]\nvalidation_size = 4\nwith_labels = true\n')
    cases = [
        (["vae", "--data", f"folder:{folder}", "--image-size", "30"], "divisible by 4"),
        (["cgan", "--data", f"folder:{flat}", "--validation-size", "2"], "trains a class-conditional CGAN, but folder:"),
        ([str(tmp_path / "pinned.toml"), "--data", f"folder:{folder}"], "sets [model_options] image_shape = [28, 28, 1], but its data"),
        ([str(tmp_path / "classes.toml"), "--data", f"folder:{folder}"], "sets [model_options] num_classes = 5, but folder:"),
        (["vae", "--data", f"folder:{folder}"], "validation_size must be in [0, 40)"),
        (["vae", "--data", "tfds:no_such_dataset_here"], "TFDS has no dataset 'no_such_dataset_here'"),
        (["aae", "--data", f"folder:{folder}", "--normal-class", "12", "--validation-size", "4"], "class indices 0..9"),
    ]
    for args, message in cases:
        assert cli.main(["train", *args, *dirs_in(tmp_path)]) == 2, args
        assert message in capsys.readouterr().err, args
    assert not any((tmp_path / name).exists() for name in ("logs", "ckpt", "exports"))


@pytest.mark.usefixtures("eager_steps")
def test_an_unreadable_image_is_named_and_earlier_runs_are_kept(colour_pngs, tmp_path, capsys):
    import shutil

    folder = tmp_path / "data"
    shutil.copytree(colour_pngs / "data", folder)
    args = ["train", "autoencoder", "--data", f"folder:{folder}", "--epochs", "1", "--batch-size", "8", "--validation-size", "8", *dirs_in(tmp_path)]
    assert cli.main(args) == 0
    before = sorted(str(path) for path in tmp_path.rglob("*") if "data" not in path.parts)
    victim = sorted((folder / "train").rglob("*.png"))[3]
    raw = bytearray(victim.read_bytes())
    raw[40:-20] = bytes(len(raw) - 60)
    victim.write_bytes(bytes(raw))
    capsys.readouterr()
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert f"{victim} cannot be decoded" in err and "--skip-corrupt" in err
    after = sorted(str(path) for path in tmp_path.rglob("*") if "data" not in path.parts)
    assert set(before) <= set(after), "the first run's checkpoints and export are intact"
    # (--skip-corrupt on such a file: tests/test_data_folder.py.)


@pytest.mark.usefixtures("eager_steps")
def test_one_class_protocol_on_a_folder(colour_pngs, tmp_path, capsys):
    folder = colour_pngs / "data"
    (tmp_path / "tiny_aae.toml").write_text(TINY_AAE_RECIPE.replace("validation_size = 100", "validation_size = 12"))
    train = ["train", str(tmp_path / "tiny_aae.toml"), "--data", f"folder:{folder}", "--normal-class", "2", *dirs_in(tmp_path)]
    # Class 2 keeps 2 of its 4 training images after the seeded held-out carve: fewer than a batch of 4.
    assert cli.main(train) == 2
    assert "has 2 training images of the classes [2], fewer than one batch of 4" in capsys.readouterr().err
    assert cli.main([*train, "--batch-size", "1"]) == 0
    capsys.readouterr()
    export = tmp_path / "exports" / "tiny_aae"
    # The explicit mode; the older `evaluate PATH --anomaly` is tested above. The folder comes from the export's dataset record.
    assert cli.main(["evaluate", "anomaly", str(export)]) == 0
    out = capsys.readouterr().out
    assert f"40 test images of folder:{folder}" in out and "2 2_Pullover" in out


# === Damaged checkpoints ===
@pytest.fixture(scope="module")
def damaged_checkpoints(tmp_path_factory):
    """{truncated, garbage, bad_crc: path} of damaged copies of a tiny VAE's .keras file."""
    from tests.test_checkpoints import damaged_copies
    from tests.test_checkpoints import save_tiny_checkpoint

    root = tmp_path_factory.mktemp("damaged")
    save_tiny_checkpoint(root / "model.keras")
    return damaged_copies(root / "model.keras", root)


def checkpoint_commands(path, tmp_path):
    """Every command line that reads a .keras checkpoint."""
    return [
        ["export", str(path), "--export-dir", str(tmp_path / "exports")],
        ["evaluate", str(path)],
        ["evaluate", str(path), "--num-samples", "2"],
        ["evaluate", str(path), "--anomaly"],
    ]


@pytest.mark.parametrize("kind", ["truncated", "garbage", "bad_crc"])
def test_every_command_reports_a_damaged_checkpoint_without_a_traceback(kind, damaged_checkpoints, tmp_path, capsys):
    path = damaged_checkpoints[kind]
    for command in checkpoint_commands(path, tmp_path):
        assert cli.main(command) == 2, command
        err = capsys.readouterr().err
        assert f"keras-gen: error: {path} is not a valid .keras file (truncated or corrupt: " in err, (command, err)
        assert "Traceback" not in err and "File not found" not in err, (command, err)
    assert not (tmp_path / "exports").exists()
    assert cli.main(["sample", str(path)]) == 2
    assert "`keras-gen sample` reads an export folder" in capsys.readouterr().err


def test_a_missing_checkpoint_is_not_found(tmp_path, capsys):
    for command in checkpoint_commands(tmp_path / "nope.keras", tmp_path):
        assert cli.main(command) == 2, command
        err = capsys.readouterr().err
        assert "nope.keras" in err and ("No checkpoint at" in err or "is neither a .keras checkpoint, an export folder" in err), (command, err)


def test_a_checkpoint_with_damaged_weights_fails_cleanly_in_a_fresh_process(damaged_checkpoints, tmp_path):
    """What used to end in a zipfile.BadZipFile traceback."""
    run = keras_gen_command("export", damaged_checkpoints["bad_crc"], "--export-dir", "exports", cwd=tmp_path)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "is not a valid .keras file (truncated or corrupt: its entry model.weights.h5 fails its CRC check)" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "exports").exists()
