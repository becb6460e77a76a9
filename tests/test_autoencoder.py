"""The autoencoders.

Tests that run a few steps compile their models with `run_eagerly=True`: the steps compute the same
thing, and tracing a tiny model's step costs seconds (tests/test_zoo.py and tests/test_distributed_zoo.py
run every zoo model's traced step).
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import corruptions
from keras_gen import losses
from keras_gen.callbacks import ImageSummaries
from keras_gen.models import Autoencoder
from keras_gen.models import DenoisingAutoencoder
from tests import helpers
from tests.test_callbacks import read_images

SEED = tf.constant([3, 4], tf.int32)


def tiny(cls=Autoencoder, **kwargs):
    options = dict(image_shape=helpers.IMAGE_SHAPE, code_dim=2, filters=(4, 8), seed=0)
    return cls(**{**options, **kwargs})


def linear_networks(code_dim=16):
    images = keras.Input(helpers.IMAGE_SHAPE)
    encoder = keras.Model(images, keras.layers.Dense(code_dim)(keras.layers.Flatten()(images)))
    code = keras.Input((code_dim,))
    decoder = keras.Model(code, keras.layers.Reshape(helpers.IMAGE_SHAPE)(keras.layers.Dense(64)(code)))
    return encoder, decoder


# === Corruptions: statistics on 64 x 8 x 8 = 4096 pixels (binomial sd of a fraction <= 0.008) ===
def test_masking_zeroes_the_requested_fraction_and_leaves_the_rest():
    images = tf.fill([64, 8, 8, 1], 0.75)
    masked = corruptions.corrupt("masking", images, 0.3, SEED).numpy()
    zeroed = masked == 0.0
    assert zeroed.mean() == pytest.approx(0.3, abs=0.03)
    np.testing.assert_array_equal(masked[~zeroed], 0.75)


def test_salt_and_pepper_hits_the_requested_fraction_with_both_extremes():
    images = tf.fill([64, 8, 8, 1], 0.5)
    noisy = corruptions.corrupt("salt_and_pepper", images, 0.2, SEED).numpy()
    hit = noisy != 0.5
    assert hit.mean() == pytest.approx(0.2, abs=0.03)
    assert set(np.unique(noisy[hit])) == {0.0, 1.0}
    assert (noisy[hit] == 1.0).mean() == pytest.approx(0.5, abs=0.08)


def test_gaussian_noise_has_zero_mean_and_the_requested_std():
    images = tf.fill([64, 8, 8, 1], 0.5)
    noise = corruptions.corrupt("gaussian", images, 0.1, SEED).numpy() - 0.5
    assert noise.mean() == pytest.approx(0.0, abs=0.01)
    assert noise.std() == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("kind", corruptions.CORRUPTIONS)
def test_corruptions_are_seeded_and_strength_zero_is_the_identity(kind):
    images = tf.constant(helpers.tiny_images(16, binary=False))
    first = corruptions.corrupt(kind, images, 0.3, SEED)
    np.testing.assert_array_equal(first, corruptions.corrupt(kind, images, 0.3, SEED))
    assert not np.array_equal(first, corruptions.corrupt(kind, images, 0.3, tf.constant([3, 5])))
    np.testing.assert_array_equal(corruptions.corrupt(kind, images, 0.0, SEED), images)


@pytest.mark.parametrize(
    "kind, strength, message",
    [("blur", 0.1, "gaussian, salt_and_pepper, masking"), ("masking", 1.5, r"fraction of pixels in \[0, 1\]"), ("gaussian", -1.0, ">= 0")],
)
def test_bad_corruptions_are_refused(kind, strength, message):
    with pytest.raises(ValueError, match=message):
        tiny(DenoisingAutoencoder, corruption=kind, corruption_strength=strength)


# === Losses ===
def test_reconstruction_losses_match_numpy():
    images = helpers.tiny_images(4, binary=False).astype("float64")
    logits = np.random.default_rng(0).normal(size=images.shape)
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    bce = -np.mean(images * np.log(probabilities) + (1 - images) * np.log(1 - probabilities), axis=(1, 2, 3))
    mse = np.mean((probabilities - images) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(losses.reconstruction_loss("bce", images, logits), bce, rtol=1e-6)
    np.testing.assert_allclose(losses.reconstruction_loss("mse", images, logits), mse, rtol=1e-6)
    with pytest.raises(ValueError, match="bce, mse"):
        tiny(reconstruction_loss="l1")


def test_training_lowers_the_reconstruction_error():
    images = helpers.tiny_images(64, binary=False)
    model = tiny(reconstruction_loss="mse")
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(images, batch_size=16, epochs=6, verbose=0, validation_data=(images,)).history
    assert set(history) == {"loss", "mse", "val_loss", "val_mse"}
    assert history["mse"][-1] < 0.5 * history["mse"][0]


# === Denoising: corrupted inputs, clean targets ===
def test_denoising_reconstructs_clean_images_from_corrupted_inputs():
    images = helpers.tiny_images(8, binary=False)
    # Linear networks, so that what the decoder outputs clearly depends on what the encoder sees.
    encoder, decoder = linear_networks()
    model = tiny(DenoisingAutoencoder, encoder=encoder, decoder=decoder, code_dim=16, corruption="masking", corruption_strength=1.0)
    # Every pixel masked: the encoder sees zeros, but the loss is measured against the clean images.
    terms = model.compute_losses(images, SEED)
    logits = decoder(encoder(np.zeros_like(images)))
    np.testing.assert_allclose(terms["loss"], losses.reconstruction_loss("bce", images, logits), rtol=1e-5)
    plain = tiny(encoder=encoder, decoder=decoder, code_dim=16)
    unmasked = losses.reconstruction_loss("bce", images, decoder(encoder(images)))
    np.testing.assert_allclose(plain.compute_losses(images, SEED)["loss"], unmasked, rtol=1e-5)
    assert not np.allclose(unmasked, terms["loss"], rtol=1e-3)


def test_evaluation_corrupts_with_a_fixed_seed_so_epochs_compare():
    images = helpers.tiny_images(16, binary=False)
    encoder, decoder = linear_networks()
    model = tiny(DenoisingAutoencoder, encoder=encoder, decoder=decoder, code_dim=16, corruption="salt_and_pepper", corruption_strength=0.3)
    model.compile(optimizer="sgd", run_eagerly=True)
    first = model.evaluate(images, batch_size=16, return_dict=True, verbose=0)
    assert model.evaluate(images, batch_size=16, return_dict=True, verbose=0) == first
    seeded = model.compute_losses(images, model.evaluation_seed())
    assert first["loss"] == pytest.approx(float(np.mean(seeded["loss"])), rel=1e-5)
    assert not np.array_equal(seeded["loss"], model.compute_losses(images, SEED)["loss"]), "the noise depends on the seed"
    # With every pixel masked, evaluation must score the clean images against what zeros decode to.
    blind = tiny(DenoisingAutoencoder, encoder=encoder, decoder=decoder, code_dim=16, corruption="masking", corruption_strength=1.0)
    blind.compile(optimizer="sgd", run_eagerly=True)
    expected = losses.reconstruction_loss("bce", images, decoder(encoder(np.zeros_like(images))))
    assert blind.evaluate(images, batch_size=16, return_dict=True, verbose=0)["loss"] == pytest.approx(float(np.mean(expected)), rel=1e-5)


def test_each_train_step_draws_new_corruption():
    images = helpers.tiny_images(16, binary=False)
    model = tiny(DenoisingAutoencoder, corruption="salt_and_pepper", corruption_strength=0.3)
    # A learning rate of 0 keeps the kernels put, so the training loss moves only with the noise.
    model.compile(optimizer=keras.optimizers.SGD(0.0), run_eagerly=True)
    train_losses = model.fit(images, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
    assert len(set(train_losses)) == 3
    plain = tiny()
    plain.compile(optimizer=keras.optimizers.SGD(0.0), run_eagerly=True)
    assert len(set(plain.fit(images, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"])) == 1


def test_endpoints_encode_decode_and_reconstruct_consistently():
    model = tiny(code_dim=3)
    images = helpers.tiny_images(4, binary=False)
    code = model.encode(images)["code"]
    assert code.shape == (4, 3)
    reconstruction = model.reconstruct(images)["reconstruction"]
    np.testing.assert_allclose(reconstruction, model.decode(code)["images"], atol=1e-6)
    np.testing.assert_allclose(model(images), reconstruction, atol=1e-6)
    assert float(tf.reduce_min(reconstruction)) >= 0.0 and float(tf.reduce_max(reconstruction)) <= 1.0
    assert [e.name for e in model.serving_endpoints()] == ["reconstruct", "encode", "decode"]


def test_config_round_trip_keeps_every_option():
    model = tiny(DenoisingAutoencoder, convs_per_stage=1, reconstruction_loss="mse", corruption="gaussian", corruption_strength=0.4)
    clone = helpers.assert_config_round_trip(model)
    assert (clone.convs_per_stage, clone.reconstruction_loss, clone.corruption, clone.corruption_strength, clone.filters) == (
        1,
        "mse",
        "gaussian",
        0.4,
        (4, 8),
    )


def test_deeper_stages_add_convolutions_and_code_dim_sets_the_bottleneck():
    shallow, deep = tiny(convs_per_stage=1), tiny(convs_per_stage=3, code_dim=5)
    count = lambda model: sum(isinstance(layer, keras.layers.Conv2D) for layer in model.encoder.layers)  # noqa: E731
    assert (count(shallow), count(deep)) == (2, 6)
    assert deep.encoder.outputs[0].shape[-1] == 5
    with pytest.raises(ValueError, match="code_dim"):
        Autoencoder(encoder=shallow.encoder, image_shape=helpers.IMAGE_SHAPE, code_dim=7)


def test_wrong_images_say_what_to_do():
    model = tiny()
    model.compile(optimizer="adam", run_eagerly=True)
    with pytest.raises(ValueError, match=r"\[batch, 8, 8, 1\]"):
        model.fit(np.zeros((8, 9, 9, 1), "float32"), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="uint8.*scale"):
        model.fit(np.zeros((8, 8, 8, 1), "uint8"), batch_size=8, verbose=0)


def test_tensorboard_shows_originals_corrupted_inputs_and_reconstructions(tmp_path):
    images = helpers.tiny_images(16, binary=False)
    model = tiny(DenoisingAutoencoder, corruption="masking", corruption_strength=0.5)
    model.compile(optimizer="adam", run_eagerly=True)
    model.fit(images, batch_size=8, epochs=1, verbose=0, callbacks=[ImageSummaries(tmp_path, images[:8])])
    found = read_images(tmp_path / "train")
    assert set(found) == {"reconstructions", "denoising"}
    grid = found["denoising"][0][1]
    assert grid.shape == (3 * 8, 8 * 8, 1), "rows: originals, corrupted, reconstructions"
    originals, corrupted = grid[:8].astype(int), grid[8:16].astype(int)
    assert (corrupted == 0).mean() > (originals == 0).mean() + 0.2, "about half the pixels are masked"
