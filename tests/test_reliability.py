"""Nothing lost, nothing published broken: divergence, kills after the last epoch, torn resume state, bad pixels.

A kill is simulated by an exception raised where the process would die (nothing after it runs, as with
kill -9); a kill during a write by a write that leaves a partial file and then raises.

Tests that run a few steps compile their models with `run_eagerly=True`: the steps compute the same
thing, and tracing a tiny model's step costs seconds (tests/test_zoo.py and tests/test_distributed_zoo.py
run every zoo model's traced step).
"""

import json

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import cli
from keras_gen import data as data_lib
from keras_gen import export as export_lib
from keras_gen import recipes
from keras_gen import training
from keras_gen.callbacks import ResumeState
from keras_gen.callbacks import ResumeStateError
from keras_gen.callbacks import StopOnNonFinite
from keras_gen.callbacks import TrainingDiverged
from keras_gen.models import GAN
from keras_gen.models import VAE
from tests import helpers
from tests.test_cli import TINY_RECIPE


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The fake Fashion-MNIST files and their prepared TFDS copy, shared by the module's runs."""
    root = tmp_path_factory.mktemp("reliability")
    helpers.make_fake_source(root / "idx", seed=0)
    (root / "tiny.toml").write_text(TINY_RECIPE)
    return root


@pytest.fixture
def run(prepared, tmp_path):
    """(recipe, train_recipe options) writing into this test's folder."""
    recipe = recipes.load_recipe(prepared / "tiny.toml")
    options = dict(
        epochs=3,
        source_dir=prepared / "idx",
        data_dir=prepared / "tfds",
        verbose=0,
        logdir=tmp_path / "logs",
        export_dir=tmp_path / "exports",
        checkpoint_dir=tmp_path / "ckpt",
    )
    return recipe, options


def backup_dir(options):
    return options["checkpoint_dir"] / "tiny" / "backup"


class PoisonAtEpoch(keras.callbacks.Callback):
    """Sets the decoder's output bias to NaN when epoch `epoch` (0-based) begins: the loss is NaN from then on."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            poison(self.model)


def poison(model):
    bias = model.decoder.trainable_weights[-1]
    bias.assign(np.full(bias.shape, np.nan, np.float32))


@pytest.mark.usefixtures("eager_steps")
def test_divergence_stops_at_the_first_nan_step_keeps_the_last_good_epoch_and_resumes(run):
    recipe, options = run
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 2, step 1") as raised:
        training.train_recipe(recipe, callbacks=[PoisonAtEpoch(1)], **options)
    message = str(raised.value)
    assert "epoch-001.keras" in message and "holds epoch 1" in message and "learning_rate" in message
    (run_dir,) = [p for p in (options["checkpoint_dir"] / "tiny").iterdir() if p.name != "backup"]
    # Beside the dataset record written before training: nothing of the NaN epoch is saved.
    assert sorted(p.name for p in run_dir.iterdir()) == ["dataset.json", "epoch-001.keras"], "nothing of the NaN epoch is saved"
    assert not options["export_dir"].exists(), "nothing is exported"
    assert json.loads((backup_dir(options) / "state.json").read_text())["epoch"] == 1
    good = keras.models.load_model(run_dir / "epoch-001.keras")
    assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in good.weights)

    resumed = training.train_recipe(recipe, **options)
    assert resumed["resumed_epochs"] == 1 and len(resumed["history"]["loss"]) == 2
    assert np.isfinite(list(resumed["test"].values())).all()
    assert resumed["export"] == options["export_dir"] / "tiny" / "1"
    assert not backup_dir(options).exists()


@pytest.mark.usefixtures("eager_steps")
def test_non_finite_test_metrics_are_never_exported_and_the_resume_state_is_kept(run, monkeypatch):
    recipe, options = run
    monkeypatch.setattr(VAE, "after_training", lambda self, datasets: poison(self), raising=False)
    with pytest.raises(TrainingDiverged, match=r"The test-set loss is nan, reconstruction is nan: the trained model is not exported"):
        training.train_recipe(recipe, epochs=1, **{k: v for k, v in options.items() if k != "epochs"})
    assert not options["export_dir"].exists()
    assert not list(options["checkpoint_dir"].rglob("model.keras"))
    assert json.loads((backup_dir(options) / "state.json").read_text())["epoch"] == 1


@pytest.mark.usefixtures("eager_steps")
def test_a_kill_after_the_last_epoch_resumes_with_evaluation_and_export_only(run, monkeypatch):
    recipe, options = run

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies between fit and the published export

    monkeypatch.setattr(export_lib, "export_model", killed)
    with pytest.raises(KeyboardInterrupt):
        training.train_recipe(recipe, **options)
    assert json.loads((backup_dir(options) / "state.json").read_text())["epoch"] == 3
    monkeypatch.undo()
    result = training.train_recipe(recipe, **options)
    assert result["resumed_epochs"] == 3 and result["history"] == {}, "no epoch is trained again"
    assert int(result["model"].optimizer.iterations.numpy()) == 3 * 2
    assert (result["export"] / "saved_model.pb").exists()
    assert not backup_dir(options).exists(), "removed once the export is published"


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt


def interrupted_after_one_epoch(recipe, options):
    with pytest.raises(KeyboardInterrupt):
        training.train_recipe(recipe, callbacks=[Interrupt()], **options)
    state = json.loads((backup_dir(options) / "state.json").read_text())
    assert state == {"epoch": 1, "weights": "epoch-0001.weights.h5", "previous": None}
    return backup_dir(options) / state["weights"]


@pytest.mark.usefixtures("eager_steps")
def test_a_torn_resume_state_is_reported_with_what_to_do_and_restart_sets_it_aside(run, capsys):
    recipe, options = run
    weights = interrupted_after_one_epoch(recipe, options)
    weights.write_bytes(weights.read_bytes()[:200])  # damaged on disk after it was written
    with pytest.raises(ResumeStateError, match=r"cannot be read \(epoch-0001.weights.h5: .*--restart"):
        training.train_recipe(recipe, **options)
    # The command line says the same, with exit status 2 and no traceback.
    arguments = ["train", str(recipe.path), "--data-dir", str(options["source_dir"]), "--tfds-dir", str(options["data_dir"])]
    for key in ("logdir", "export_dir", "checkpoint_dir"):
        arguments += [f"--{key.replace('_', '-')}", str(options[key])]
    capsys.readouterr()
    assert cli.main([*arguments, "--epochs", "3"]) == 2
    error = capsys.readouterr().err
    assert "cannot be read" in error and "--restart" in error and "Traceback" not in error

    result = training.train_recipe(recipe, restart=True, **options)
    assert result["resumed_epochs"] == 0 and len(result["history"]["loss"]) == 3
    (aside,) = options["checkpoint_dir"].joinpath("tiny").glob("backup-set-aside-*")
    assert (aside / "epoch-0001.weights.h5").exists(), "the damaged state is renamed, not deleted"


def test_keras_own_resume_layout_is_read_and_its_torn_weights_reported(tmp_path):
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    model.compile(optimizer="adam", run_eagerly=True)
    images = helpers.tiny_images(16)
    model.fit(images, batch_size=8, epochs=2, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path), delete_checkpoint=False)])
    resume = ResumeState(tmp_path)
    assert resume.finished_epochs() == 2
    fresh = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=1)
    fresh.compile(optimizer="adam", run_eagerly=True)
    history = fresh.fit(images, batch_size=8, epochs=3, verbose=0, callbacks=[resume])
    assert len(history.history["loss"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0003.weights.h5", "state.json"]

    legacy = tmp_path / "legacy"
    model.fit(images, batch_size=8, epochs=1, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(str(legacy), delete_checkpoint=False)])
    (legacy / "latest.weights.h5").write_bytes((legacy / "latest.weights.h5").read_bytes()[:100])
    with pytest.raises(ResumeStateError, match=r"latest.weights.h5"):
        fresh.fit(images, batch_size=8, epochs=3, verbose=0, callbacks=[ResumeState(legacy)])


def test_a_kill_while_the_resume_state_is_written_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    model.compile(optimizer="adam", run_eagerly=True)
    images = helpers.tiny_images(16)
    model.fit(images, batch_size=8, epochs=1, verbose=0, callbacks=[ResumeState(tmp_path)])
    saved = [keras.ops.convert_to_numpy(w) for w in model.weights]
    original = keras.Model.save_weights

    def dies_mid_write(self, filepath, *args, **kwargs):
        original(self, filepath, *args, **kwargs)
        with open(filepath, "r+b") as handle:
            handle.truncate(300)
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.Model, "save_weights", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        model.fit(images, batch_size=8, epochs=2, verbose=0, callbacks=[ResumeState(tmp_path)])
    monkeypatch.undo()
    assert ResumeState(tmp_path).finished_epochs() == 1
    fresh = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=1)
    fresh.compile(optimizer="adam", run_eagerly=True)
    resume = ResumeState(tmp_path)
    resume.set_model(fresh)
    resume.on_train_begin()
    for restored, expected in zip(fresh.weights, saved):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored), expected)
    # The next save clears the partial file.
    fresh.fit(images, batch_size=8, epochs=2, verbose=0, callbacks=[ResumeState(tmp_path)])
    # The epoch before is kept too (workers of a cluster may need to go back to it).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0001.weights.h5", "epoch-0002.weights.h5", "state.json"]


class PoisonDiscriminatorAtStep(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        if batch == 1:
            bias = self.model.discriminator.trainable_weights[-1]
            bias.assign(np.full(bias.shape, np.nan, np.float32))


def test_stop_on_non_finite_names_a_gan_loss_and_validation_metrics_for_fit_users():
    gan = GAN(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    gan.compile(run_eagerly=True)
    images = helpers.tiny_images(16) * 2 - 1
    with pytest.raises(TrainingDiverged, match=r"d_loss is nan at epoch 1, step 2") as raised:
        gan.fit(images, batch_size=8, epochs=2, verbose=0, callbacks=[StopOnNonFinite(), PoisonDiscriminatorAtStep()])
    assert (raised.value.epoch, raised.value.step, raised.value.name) == (1, 2, "d_loss")
    vae = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    vae.compile(optimizer="adam", run_eagerly=True)
    bad = helpers.tiny_images(8)
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(TrainingDiverged, match=r"val_loss is nan at the end of epoch 1 \(validation\)"):
        vae.fit(helpers.tiny_images(16), validation_data=(bad,), batch_size=8, epochs=1, verbose=0, callbacks=[StopOnNonFinite()])


def test_streams_refuse_non_finite_pixels_naming_the_source():
    images = np.full((4, 8, 8, 1), 100.0, np.float32)
    images[2, 3, 3, 0] = np.nan
    keys = tf.data.Dataset.from_tensor_slices((images, np.zeros(4, np.int64)))
    examples = data_lib.Examples(keys, 4, source="tfds:floaty")
    batches, _ = data_lib.stream_dataset(examples, batch_size=2, image_size=(8, 8), channels=1)

    class Source:
        splits = ("train",)

    with pytest.raises(data_lib.DataError, match=r"^tfds:floaty has an image with NaN, infinite or out-of-range pixels"):
        with training.naming_unreadable_files(Source()):
            list(batches)
    fine = data_lib.Examples(tf.data.Dataset.from_tensor_slices((np.clip(np.nan_to_num(images), 0, 255), np.zeros(4, np.int64))), 4)
    batches, _ = data_lib.stream_dataset(fine, batch_size=2, image_size=(8, 8), channels=1)
    assert sum(int(batch.shape[0]) for batch in batches) == 4


def test_every_test_the_readme_names_for_a_reliability_promise_exists():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    table = readme.split("## Reliability: what is never lost", 1)[1].split("\n## ", 1)[0]
    named, current = [], None
    for reference in re.findall(r"`((?:tests/[\w/]+\.py)?(?:::\w+)?)`", table):
        path, _, name = reference.partition("::")
        current = path or current
        named.append((current, name))
    assert len(named) >= 15
    for path, name in named:
        source = (root / path).read_text()
        assert not name or re.search(rf"^def {name}\(", source, re.M), f"README names {path}::{name}, which does not exist"
