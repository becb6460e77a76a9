"""`checkpoints.load_checkpoint`, through which every command and pipeline reads a user's `.keras` file."""

import pathlib
import re
import zipfile

import keras_gen  # noqa: F401
import numpy as np
import pytest

from keras_gen import anomaly
from keras_gen import evaluation
from keras_gen import semi_supervised
from keras_gen.checkpoints import CheckpointError
from keras_gen.checkpoints import load_checkpoint
from tests import helpers
from tests.zoo_cases import TINY_MODELS

DAMAGES = ("truncated", "garbage", "bad_crc")


def save_tiny_checkpoint(path):
    """A tiny VAE after one step, saved to `path`; returns the model."""
    model, data = TINY_MODELS["vae"]()
    helpers.fit_steps(model, data, steps=1, shuffle=False)
    model.save(path)
    return model


def damaged_copies(checkpoint, folder):
    """{kind: path} of damaged copies of the `.keras` file `checkpoint`: cut in half (a kill during the
    write), overwritten with text, and with 16 bytes of its weights entry flipped inside an intact zip."""
    checkpoint, folder = pathlib.Path(checkpoint), pathlib.Path(folder)
    raw = checkpoint.read_bytes()
    with zipfile.ZipFile(checkpoint) as archive:
        entry = archive.getinfo("model.weights.h5")
    # The entry's bytes start after its local header: 30 bytes, then its name and extra field.
    start = entry.header_offset + 30 + len(entry.filename) + len(entry.extra) + entry.compress_size // 2
    flipped = bytearray(raw)
    flipped[start : start + 16] = bytes(byte ^ 0xFF for byte in flipped[start : start + 16])
    contents = {"truncated": raw[: len(raw) // 2], "garbage": b"not a checkpoint\n" * 64, "bad_crc": bytes(flipped)}
    paths = {}
    for kind in DAMAGES:
        paths[kind] = folder / f"{kind}.keras"
        paths[kind].write_bytes(contents[kind])
    return paths


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("checkpoint") / "model.keras"
    return path, save_tiny_checkpoint(path)


def test_a_good_checkpoint_loads_with_its_weights_and_optimizer(checkpoint):
    path, model = checkpoint
    loaded = load_checkpoint(path)
    assert type(loaded) is type(model) and int(loaded.optimizer.iterations.numpy()) == 1
    for saved, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(restored))


@pytest.mark.parametrize("kind", DAMAGES)
def test_a_damaged_file_is_not_a_valid_keras_file_wherever_it_is_loaded(kind, checkpoint, tmp_path):
    path = damaged_copies(checkpoint[0], tmp_path)[kind]
    message = rf"^{re.escape(str(path))} is not a valid \.keras file \(truncated or corrupt: "
    loaders = [
        load_checkpoint,
        evaluation.Sampler.load,
        anomaly.AnomalyScorer.load,
        # The semi-supervised recipe's `pretrained` option.
        lambda path: semi_supervised.pretrain_autoencoder("denoising_autoencoder", str(path), 1, train={}, run={}, preprocessing="scale"),
    ]
    for load in loaders:
        with pytest.raises(CheckpointError, match=message):
            load(path)
    assert issubclass(CheckpointError, ValueError), "keras-gen reports ValueErrors without a traceback, exit code 2"


def test_the_weights_crc_is_named_and_a_missing_file_is_not_found(checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match=r"its entry model\.weights\.h5 fails its CRC check"):
        load_checkpoint(damaged_copies(checkpoint[0], tmp_path)["bad_crc"])
    with pytest.raises(FileNotFoundError, match=r"No checkpoint at .*nope\.keras; pass a \.keras file"):
        load_checkpoint(tmp_path / "nope.keras")


def test_files_that_are_no_keras_archive_say_so(checkpoint, tmp_path):
    other_zip = tmp_path / "other.keras"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(CheckpointError, match=r"not a valid \.keras file \(a zip archive without the config\.json of a Keras model\)"):
        load_checkpoint(other_zip)
    renamed = tmp_path / "model.h5"
    renamed.write_bytes(checkpoint[0].read_bytes())
    with pytest.raises(CheckpointError, match=r"model\.h5 is not a \.keras file \(its name must end in \.keras\)"):
        load_checkpoint(renamed)
