"""The hierarchical VAE.

Tests that run a few steps compile their models with `run_eagerly=True`: the steps compute the same
thing, and tracing a tiny model's step costs seconds (tests/test_zoo.py and tests/test_distributed_zoo.py
run every zoo model's traced step).
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import networks
from keras_gen.models import HVAE
from tests import helpers

DIMS = (2, 3)


def tiny_hvae(free_bits=0.0, latent_dims=DIMS, seed=0):
    return HVAE(image_shape=helpers.IMAGE_SHAPE, latent_dims=latent_dims, hidden_units=8, free_bits=free_bits, seed=seed)


def normal_log_pdf(x, mean, log_variance):
    return np.sum(-0.5 * (np.log(2 * np.pi) + log_variance + (x - mean) ** 2 / np.exp(log_variance)), axis=-1)


def perturb_residual_heads(model, seed=0):
    # The residual heads start at zero (posterior = prior); give them weights to see the lower KL at work.
    rng = np.random.default_rng(seed)
    head = model.posterior_heads[1]
    head.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32") for w in head.get_weights()])


def test_a_lower_group_starts_at_its_prior_and_the_loss_adds_one_kl_per_group():
    model = tiny_hvae()
    images = helpers.tiny_images(6)
    terms = {k: np.asarray(v) for k, v in model.compute_losses(images).items()}
    np.testing.assert_allclose(terms["kl_2"], 0.0, atol=1e-6)
    assert terms["kl_1"].min() > 0.0
    perturb_residual_heads(model)
    terms = {k: np.asarray(v) for k, v in model.compute_losses(images).items()}
    assert terms["kl_2"].min() > 0.0
    np.testing.assert_allclose(terms["kl"], terms["kl_1"] + terms["kl_2"], rtol=1e-6)
    np.testing.assert_allclose(terms["loss"], terms["reconstruction"] + terms["kl"], rtol=1e-6)


def test_per_group_terms_match_the_chain_computed_by_hand():
    model = tiny_hvae()
    perturb_residual_heads(model)
    images = helpers.tiny_images(6)
    z, terms = model.latent_terms(images)
    z, terms = np.asarray(z), {k: np.asarray(v) for k, v in terms.items()}
    z_1, z_2 = z[:, :2], z[:, 2:]
    features = model.encoder(images)
    mean_1, log_variance_1 = (np.asarray(t) for t in model.posterior_heads[0](features[0]))
    state, prior_mean, prior_log_variance = model.top_down[0](z_1)
    mean_shift, log_variance_shift = (np.asarray(t) for t in model.posterior_heads[1]([features[1], state]))
    prior_mean, prior_log_variance = np.asarray(prior_mean), np.asarray(prior_log_variance)
    kl_1 = 0.5 * np.sum(np.exp(log_variance_1) + mean_1**2 - 1 - log_variance_1, axis=1)
    # NVAE's form of the residual KL: it depends on the shifts and the prior's scale only.
    kl_2 = 0.5 * np.sum(mean_shift**2 / np.exp(prior_log_variance) + np.exp(log_variance_shift) - 1 - log_variance_shift, axis=1)
    np.testing.assert_allclose(terms["kl_1"], kl_1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(terms["kl_2"], kl_2, rtol=1e-4, atol=1e-5)
    zeros = np.zeros_like(z_1)
    log_prior = normal_log_pdf(z_1, zeros, zeros) + normal_log_pdf(z_2, prior_mean, prior_log_variance)
    log_posterior = normal_log_pdf(z_1, mean_1, log_variance_1) + normal_log_pdf(
        z_2, prior_mean + mean_shift, prior_log_variance + log_variance_shift
    )
    np.testing.assert_allclose(terms["log_ratio"], log_prior - log_posterior, rtol=1e-4, atol=1e-4)


def test_free_bits_stop_penalising_a_group_below_the_floor():
    model = tiny_hvae(free_bits=1.0)
    for kl, expected_value, expected_gradient in (([0.2, 0.4, 0.9], [1.0, 1.0, 1.0], 0.0), ([0.5, 2.0, 3.5], [0.5, 2.0, 3.5], 1.0)):
        kl = tf.constant(kl)
        with tf.GradientTape() as tape:
            tape.watch(kl)
            penalty = model.free_bits_penalty(kl)
        np.testing.assert_allclose(penalty, expected_value)
        gradient = tape.gradient(penalty, kl)
        np.testing.assert_allclose(0.0 if gradient is None else gradient, expected_gradient)
    images = helpers.tiny_images(6)
    terms = model.compute_losses(images)  # at initialisation the lower group's KL is 0: below the floor
    kl_1 = np.asarray(terms["kl_1"])
    first = kl_1 if kl_1.mean() > 1.0 else np.ones_like(kl_1)
    np.testing.assert_allclose(terms["kl_penalty"], first + 1.0, rtol=1e-5)
    np.testing.assert_allclose(terms["objective"], terms["reconstruction"] + terms["kl_penalty"], rtol=1e-6)


def test_fit_logs_one_kl_per_group():
    model = tiny_hvae(latent_dims=(2, 2, 2), free_bits=0.1)
    model.compile(optimizer="adam", run_eagerly=True)
    history = helpers.fit_steps(model, helpers.tiny_images(32), steps=2)
    assert {"loss", "reconstruction", "kl", "kl_1", "kl_2", "kl_3"} == set(history)
    assert history["kl"][0] == pytest.approx(history["kl_1"][0] + history["kl_2"][0] + history["kl_3"][0], rel=1e-5, abs=1e-6)


def test_sampling_runs_the_top_down_path():
    model = tiny_hvae()
    noise = np.random.default_rng(0).normal(size=(4, sum(DIMS))).astype("float32")
    z_1 = noise[:, :2]
    state, prior_mean, prior_log_variance = model.top_down[0](z_1)
    z_2 = prior_mean + tf.exp(0.5 * prior_log_variance) * noise[:, 2:]
    expected = tf.sigmoid(model.decoder(tf.concat([z_2, state], axis=-1)))
    np.testing.assert_allclose(model.sample_from_noise(noise)["images"], expected, atol=1e-6)
    np.testing.assert_allclose(model.decode(np.concatenate([z_1, z_2], axis=1))["images"], expected, atol=1e-6)
    alone = model.sample(np.array([7], "int64"))["images"]
    mixed = model.sample(np.array([3, 7], "int64"))["images"]
    np.testing.assert_allclose(mixed[1], alone[0], atol=1e-6)
    fixed = model.summary_inputs(helpers.tiny_images(8), num_samples=16)
    np.testing.assert_allclose(model.summary_images(fixed)["samples"][0], model.sample_from_noise(fixed["z"])["images"], atol=1e-6)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="at least two"):
        tiny_hvae(latent_dims=(4,))
    with pytest.raises(ValueError, match="free_bits"):
        tiny_hvae(free_bits=-1.0)
    with pytest.raises(ValueError, match="top_down must be a list of 1 Keras models"):
        HVAE(top_down=[], image_shape=helpers.IMAGE_SHAPE, latent_dims=DIMS, hidden_units=8)
    block = networks.top_down_block(2, 3, 8)
    with pytest.raises(ValueError, match="posterior_heads must be a list of 2"):
        HVAE(top_down=[block], posterior_heads=[block], image_shape=helpers.IMAGE_SHAPE, latent_dims=DIMS, hidden_units=8)
    # A chain of groups has no one prior or posterior, and no hook that pretends it has one.
    assert not hasattr(tiny_hvae(), "prior") and not hasattr(tiny_hvae(), "posterior")
    assert keras.saving.get_registered_object("keras_gen>HVAE") is HVAE
