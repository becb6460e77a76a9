"""The mixture-prior VAE.

Tests that run a few steps compile their models with `run_eagerly=True`: the steps compute the same
thing, and tracing a tiny model's step costs seconds (tests/test_zoo.py and tests/test_distributed_zoo.py
run every zoo model's traced step).
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import distributions
from keras_gen.models import GMVAE
from keras_gen.models import VAE
from tests import helpers

LATENT = 2


def one_standard_component(seed=0):
    """A 1-component GMVAE whose only component is N(0, I): its prior is the VAE's."""
    model = GMVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, num_components=1, seed=seed)
    model.component_means.assign(tf.zeros_like(model.component_means))
    model.component_log_scales.assign(tf.zeros_like(model.component_log_scales))
    return model


def test_monte_carlo_kl_with_one_standard_component_matches_the_analytic_kl():
    model = one_standard_component()
    images = helpers.tiny_images(4)
    # Move the posterior away from the prior so that the KL is far from zero.
    mean, log_variance = model.encoder(images)
    posterior = distributions.diagonal_gaussian(mean + tf.constant([[1.5, -0.5]]), log_variance - 1.0)
    analytic = np.asarray(posterior.kl_divergence(distributions.standard_normal(LATENT)))
    z = posterior.sample(20000, seed=[1, 2])
    estimates = np.asarray(model.kl_divergence(posterior, z))  # [20000, 4]
    stderr = estimates.std(axis=0) / np.sqrt(len(estimates))
    np.testing.assert_array_less(np.abs(estimates.mean(axis=0) - analytic), 4 * stderr + 1e-4)
    assert analytic.min() > 0.5
    np.testing.assert_allclose(model.prior().log_prob(z[0]), distributions.standard_normal(LATENT).log_prob(z[0]), rtol=1e-6)


def test_one_component_gmvae_and_vae_losses_agree_in_expectation():
    gmvae = one_standard_component()
    vae = VAE(gmvae.encoder, gmvae.decoder, image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, seed=1)
    images = np.tile(helpers.tiny_images(8), [200, 1, 1, 1])
    analytic = {k: np.asarray(v) for k, v in vae.compute_losses(images).items()}
    monte_carlo = {k: np.asarray(v) for k, v in gmvae.compute_losses(images).items()}
    for key in ("loss", "kl", "reconstruction"):
        difference = monte_carlo[key] - analytic[key]
        stderr = difference.std() / np.sqrt(len(difference))
        assert abs(difference.mean()) < 4 * stderr + 1e-4, (key, difference.mean(), stderr)
    # The Monte Carlo KL varies from draw to draw; the analytic one does not.
    assert monte_carlo["kl"].std() > 10 * analytic["kl"].reshape(200, 8).std(axis=0).max()


def separated_mixture(weights=(0.2, 0.5, 0.3)):
    model = GMVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, num_components=len(weights), seed=0)
    model.mixture_logits.assign(np.log(np.asarray(weights, "float32")))
    model.component_means.assign([[-10.0, 0.0], [0.0, 10.0], [10.0, 0.0]])
    model.component_log_scales.assign(np.full((3, LATENT), np.log(0.1), "float32"))
    return model


def test_samples_come_from_the_learned_mixture_and_depend_on_their_seed_alone():
    model = separated_mixture()
    # Traced, as the `sample` signature runs it: eagerly, the per-seed map_fn over 2,000 seeds costs seconds.
    sample_codes = tf.function(model.sample_codes)
    codes = sample_codes(np.arange(2000, dtype="int64"))
    components, z = np.asarray(codes["component"]), np.asarray(codes["z"])
    np.testing.assert_allclose(np.bincount(components, minlength=3) / 2000, [0.2, 0.5, 0.3], atol=0.035)
    means = np.asarray(model.component_means)[components]
    assert np.abs(z - means).max() < 0.1 * 6  # within six standard deviations of its own component
    alone = sample_codes(np.array([7], "int64"))["z"]
    mixed = sample_codes(np.array([3, 7, 11], "int64"))["z"]
    np.testing.assert_array_equal(mixed[1], alone[0])
    np.testing.assert_allclose(model.sample(np.array([7], "int64"))["images"], model.decode(alone)["images"], atol=1e-6)


def test_components_assign_each_code_to_its_most_responsible_component():
    model = separated_mixture()
    responsibilities = np.asarray(model.responsibilities(model.component_means + 0.05))
    np.testing.assert_array_equal(responsibilities.argmax(axis=1), [0, 1, 2])
    np.testing.assert_allclose(responsibilities.sum(axis=1), 1.0, rtol=1e-5)
    images = helpers.tiny_images(5)
    assigned = model.components(images)
    expected = model.responsibilities(model.encode(images)["mean"]).numpy().argmax(axis=1)
    np.testing.assert_array_equal(assigned["component"], expected)


def test_the_prior_trains_and_the_grid_has_one_row_per_component():
    model = GMVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, num_components=3, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    before = np.asarray(model.component_means).copy()
    history = helpers.fit_steps(model, helpers.tiny_images(32), steps=3)
    assert np.isfinite(history["kl"][0])
    assert not np.allclose(np.asarray(model.component_means), before)
    assert {"mixture_logits", "component_means", "component_log_scales"} <= {w.name for w in model.trainable_weights}
    grids = model.summary_images(model.summary_inputs(helpers.tiny_images(8), num_samples=16))
    images, columns = grids["samples"]
    assert (images.shape[0], columns) == (3 * 8, 8)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="num_components"):
        GMVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, num_components=0)
