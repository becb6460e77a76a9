"""The TensorBoard image callbacks.

Tests that run a few steps compile their models with `run_eagerly=True`: the steps compute the same
thing, and tracing a tiny model's step costs seconds (tests/test_zoo.py and tests/test_distributed_zoo.py
run every zoo model's traced step).
"""

import keras_gen  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.callbacks import ImageSummaries
from keras_gen.callbacks import tile
from keras_gen.models import VAE
from tests import helpers


def read_images(run_dir):
    """{tag: [(step, decoded image)]} from the event files in `run_dir`."""
    found = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "images":
                    encoded = tf.make_ndarray(value.tensor)[2]
                    found.setdefault(value.tag, []).append((event.step, tf.io.decode_png(encoded).numpy()))
    return found


def test_tile_lays_images_out_row_by_row():
    images = np.stack([np.full((2, 3, 1), i, np.float32) for i in range(5)])
    grid = tile(images, columns=2)
    assert grid.shape == (6, 6, 1)
    assert grid[0, 0, 0] == 0 and grid[0, 3, 0] == 1 and grid[2, 0, 0] == 2 and grid[4, 0, 0] == 4
    assert grid[4, 3, 0] == 0  # padding


def test_image_summaries_write_fixed_grids_each_epoch(tmp_path):
    images = helpers.tiny_images(32)
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    model.compile(optimizer="adam", run_eagerly=True)
    callback = ImageSummaries(tmp_path, images[:8], num_samples=16, seed=1)
    model.fit(images, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
    found = read_images(tmp_path / "train")
    assert set(found) == {"samples", "reconstructions", "interpolation"}
    assert [step for step, _ in found["samples"]] == [0, 1]
    samples = found["samples"][0][1]
    assert samples.shape == (2 * 8, 8 * 8, 1)  # 16 samples of 8x8 in 8 columns
    assert found["reconstructions"][0][1].shape == (2 * 8, 8 * 8, 1)  # 8 originals over 8 reconstructions
    assert found["interpolation"][0][1].shape == (8, 10 * 8, 1)
    # The same latent vectors every epoch: with the weights unchanged the grid is the same.
    fixed_again = model.summary_inputs(images[:8], 16, seed=1)
    np.testing.assert_array_equal(fixed_again["z"], callback._fixed["z"])
    # Originals sit on the first row of the reconstruction grid.
    first_row = found["reconstructions"][0][1][:8, :8, 0] / 255.0
    np.testing.assert_allclose(first_row, images[0, :, :, 0], atol=1 / 255 + 1e-6)


def test_image_summaries_need_a_model_that_draws_them(tmp_path):
    from keras_gen.models.base import GenerativeModel

    with pytest.raises(NotImplementedError):
        GenerativeModel().summary_images({})


def read_histograms(run_dir):
    """{tag: [(step, bucket counts)]} of the histogram summaries in `run_dir`."""
    found = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "histograms":
                    # TensorBoard's histogram tensor: one row per bucket, [left edge, right edge, count].
                    found.setdefault(value.tag, []).append((event.step, tf.make_ndarray(value.tensor)[:, 2]))
    return found


def test_image_summaries_also_write_a_models_histograms(tmp_path):
    from keras_gen.models import AAE

    images = helpers.tiny_images(16, binary=False)
    model = AAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, filters=(4, 8), discriminator_units=(8,), seed=0)
    model.compile(run_eagerly=True)
    model.fit(images, batch_size=8, epochs=2, verbose=0, callbacks=[ImageSummaries(tmp_path, images[:12], num_samples=16)])
    histograms = read_histograms(tmp_path / "train")
    assert set(histograms) == {"latent_0/codes", "latent_0/prior", "latent_1/codes", "latent_1/prior"}
    assert [step for step, _ in histograms["latent_0/codes"]] == [0, 1]
    assert histograms["latent_0/codes"][0][1].sum() == 12  # one entry per validation image's code
    assert histograms["latent_1/prior"][0][1].sum() == 1000  # prior samples beside them
    assert set(read_images(tmp_path / "train")) == {"samples", "reconstructions"}
