"""The conditional VAE.

Tests that run a few steps compile their models with `run_eagerly=True`: the steps compute the same
thing, and tracing a tiny model's step costs seconds (tests/test_zoo.py and tests/test_distributed_zoo.py
run every zoo model's traced step).
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import export
from keras_gen import networks
from keras_gen.models import CVAE
from tests import helpers

LATENT = 2


def near_deterministic_cvae(seed=0):
    """A CVAE whose posterior variance is exp(-30), so z is the posterior mean and the loss can be
    recomputed by hand."""
    encoder = networks.conditional_conv_encoder(helpers.IMAGE_SHAPE, LATENT, 10, filters=(4,), hidden_units=8)
    head = encoder.get_layer("log_variance")
    kernel, bias = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.full_like(bias, -30.0)])
    decoder = networks.conditional_conv_decoder(helpers.IMAGE_SHAPE, LATENT, 10, filters=(4,), hidden_units=8)
    return CVAE(encoder, decoder, image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, seed=seed)


def test_losses_condition_encoder_and_decoder_on_the_label():
    keras.utils.set_random_seed(0)  # the networks' initial weights, whatever ran before
    model = near_deterministic_cvae()
    images = helpers.tiny_images(4)
    labels = np.array([0, 3, 3, 9], "int64")
    terms = {k: np.asarray(v) for k, v in model.compute_losses(images, labels).items()}
    mean, log_variance = (np.asarray(t) for t in model.encoder([tf.constant(images), tf.constant(labels)]))
    kl = 0.5 * np.sum(np.exp(log_variance) + mean**2 - 1.0 - log_variance, axis=1)
    logits = np.asarray(model.decoder([tf.constant(mean), tf.constant(labels)]), np.float64)
    reconstruction = np.sum(np.logaddexp(0.0, logits) - images * logits, axis=(1, 2, 3))
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["reconstruction"], reconstruction, rtol=1e-4)
    other = np.asarray(model.compute_losses(images, (labels + 1) % 10)["loss"])
    assert np.abs(other - terms["loss"]).max() > 1e-3, "the label must change the loss"


def test_one_code_under_every_label_keeps_the_code_and_changes_the_class():
    model = CVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, seed=0)
    grid, columns = model.summary_images(model.summary_inputs(helpers.tiny_images(8), num_samples=16))["class_samples"]
    assert (grid.shape[0], columns) == (10 * 8, 8)
    z = model.summary_inputs(helpers.tiny_images(8), num_samples=16)["z"]
    # Row 3, column 5: code 5 decoded as class 3.
    np.testing.assert_allclose(grid[3 * 8 + 5], model.decode(z[5:6], np.array([3], "int64"))["images"][0], atol=1e-6)
    seeds = np.array([4, 4], "int64")
    same_code = model.sample(seeds, np.array([1, 7], "int64"))["images"]
    assert not np.allclose(same_code[0], same_code[1])
    alone = model.sample(np.array([4], "int64"), np.array([7], "int64"))["images"]
    np.testing.assert_allclose(same_code[1], alone[0], atol=1e-6)


def test_missing_or_bad_labels_say_what_to_do():
    model = CVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, seed=0)
    model.compile(optimizer="adam", run_eagerly=True)
    images = helpers.tiny_images(8)
    with pytest.raises(ValueError, match="with_labels = true"):
        model.fit(images, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="integer class indices"):
        model.compute_losses(images, np.zeros(8, "float32"))
    with pytest.raises(ValueError, match=r"shape \[batch\]"):
        model.compute_losses(images, np.zeros((8, 2), "int64"))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class indices in \[0, 10\)"):
        model.compute_losses(images, np.full(8, 10, "int64"))
    fresh = CVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, seed=0)  # a failed trace leaves `model`'s train function unusable
    fresh.compile(optimizer="adam", run_eagerly=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class indices in \[0, 10\)"):
        fresh.fit(tf.data.Dataset.from_tensor_slices((images, np.full(8, -1, "int64"))).batch(8), verbose=0)


def test_exported_signatures_take_a_label_and_refuse_an_unknown_one(tmp_path):
    model = CVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, seed=0)
    loaded = tf.saved_model.load(str(export.export_model(model, tmp_path)))
    assert {"sample", "encode", "decode", "reconstruct", "serving_default"} <= set(loaded.signatures)
    sample = loaded.signatures["sample"]
    images = sample(seed=tf.constant([1, 1], tf.int64), label=tf.constant([2, 8], tf.int64))["images"].numpy()
    np.testing.assert_allclose(images, model.sample(np.array([1, 1], "int64"), np.array([2, 8], "int64"))["images"], atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class indices in \[0, 10\)"):
        sample(seed=tf.constant([1], tf.int64), label=tf.constant([12], tf.int64))
