"""keras_gen.losses: the GAN loss pairs, their resolution from a `loss` option, the gradient penalty, the
reconstruction losses and the global-batch mean."""

import keras_gen  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import losses
from tests import helpers

SHAPE = helpers.IMAGE_SHAPE


# === Losses ===
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


FORMULAS = {
    # name: (discriminator loss, generator loss) of raw outputs r = D(x), f = D(G(z)).
    "minimax": (lambda r, f: -np.log(sigmoid(r)) - np.log(1 - sigmoid(f)), lambda f: np.log(1 - sigmoid(f))),
    "non_saturating": (lambda r, f: -np.log(sigmoid(r)) - np.log(1 - sigmoid(f)), lambda f: -np.log(sigmoid(f))),
    "wasserstein": (lambda r, f: f - r, lambda f: -f),
    "hinge": (lambda r, f: np.maximum(0, 1 - r) + np.maximum(0, 1 + f), lambda f: -f),
    "least_squares": (lambda r, f: 0.5 * ((r - 1) ** 2 + f**2), lambda f: 0.5 * (f - 1) ** 2),
}


@pytest.mark.parametrize("name", sorted(losses.GAN_LOSSES))
def test_loss_functions_match_their_formulas(name):
    assert set(FORMULAS) == set(losses.GAN_LOSSES)
    real = np.array([-3.0, -0.5, 0.0, 0.7, 4.0], "float32")
    fake = np.array([2.0, -1.5, 0.3, 0.0, -4.0], "float32")
    d_loss, g_loss = losses.GAN_LOSSES[name]
    d_formula, g_formula = FORMULAS[name]
    np.testing.assert_allclose(d_loss(tf.constant(real), tf.constant(fake)), d_formula(real, fake), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_loss(tf.constant(fake)), g_formula(fake), rtol=1e-5, atol=1e-6)


def test_minimax_generator_loss_saturates_where_the_non_saturating_one_does_not():
    # A discriminator that confidently rejects the samples (logit -8): the minimax generator barely
    # learns (gradient -sigmoid(-8) ~ -3e-4 per unit logit), the non-saturating one does (~ -1).
    logits = tf.constant([-8.0])
    gradients = {}
    for name in ("minimax", "non_saturating"):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = losses.GAN_LOSSES[name][1](logits)
        gradients[name] = float(tape.gradient(loss, logits)[0])
    assert abs(gradients["minimax"]) < 1e-3
    assert gradients["non_saturating"] == pytest.approx(-1.0, abs=1e-3)


def test_gradient_penalty_matches_closed_forms():
    rng = np.random.default_rng(0)
    real = tf.constant(rng.normal(size=(4, *SHAPE)), tf.float32)
    fake = tf.constant(rng.normal(size=(4, *SHAPE)), tf.float32)
    seed = tf.constant([1, 2])
    # A linear critic f(x) = <w, x> has gradient w everywhere: the penalty is (|w| - 1)^2 at any point.
    w = tf.Variable(rng.normal(size=SHAPE).astype("float32"))
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty(lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3]), real, fake, seed)
        mean = tf.reduce_mean(penalty)
    norm = np.linalg.norm(w.numpy())
    np.testing.assert_allclose(penalty, np.full(4, (norm - 1.0) ** 2), rtol=1e-5)
    # Its gradient reaches the critic's weights through the inner gradient: 2 (|w| - 1) w / |w|.
    np.testing.assert_allclose(tape.gradient(mean, w), 2 * (norm - 1.0) * w.numpy() / norm, rtol=1e-4, atol=1e-6)
    # f(x) = a |x|^2 / 2 has gradient a x: with real == fake every interpolate is x itself.
    a = tf.Variable(0.3)
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty(lambda x: a * 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3]), real, real, seed)
        mean = tf.reduce_mean(penalty)
    norms = np.linalg.norm(real.numpy().reshape(4, -1), axis=1)
    np.testing.assert_allclose(penalty, (0.3 * norms - 1.0) ** 2, rtol=1e-4)
    np.testing.assert_allclose(float(tape.gradient(mean, a)), np.mean(2 * (0.3 * norms - 1.0) * norms), rtol=1e-4)


def test_gradient_penalty_interpolates_at_uniform_random_points_between_real_and_generated():
    # f(x) = |x|^2 / 2 has gradient x. Between real = 0 and generated = 1/8 everywhere (|.| = 1 for
    # 64 pixels) the interpolate eps * fake has gradient norm eps, so the penalty (eps - 1)^2 reveals eps.
    def critic(x):
        return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])

    zeros, fakes = tf.zeros([512, *SHAPE]), tf.fill([512, *SHAPE], 1.0 / 8.0)
    eps = 1.0 - np.sqrt(losses.gradient_penalty(critic, zeros, fakes, tf.constant([3, 4])).numpy())
    assert eps.min() >= 0.0 and eps.max() < 1.0
    assert eps.mean() == pytest.approx(0.5, abs=0.05) and eps.std() == pytest.approx(np.sqrt(1 / 12), abs=0.03)
    again = 1.0 - np.sqrt(losses.gradient_penalty(critic, zeros, fakes, tf.constant([3, 4])).numpy())
    other = 1.0 - np.sqrt(losses.gradient_penalty(critic, zeros, fakes, tf.constant([3, 5])).numpy())
    np.testing.assert_allclose(eps, again, atol=1e-6)
    assert not np.allclose(eps, other), "the seed sets the mixing weights"


def test_a_loss_option_resolves_to_a_pair_of_registered_functions():
    assert losses.resolve_gan_loss("hinge") == (losses.hinge_discriminator_loss, losses.wasserstein_generator_loss)
    names = ["keras_gen>least_squares_discriminator_loss", "keras_gen>least_squares_generator_loss"]
    assert losses.resolve_gan_loss(names) == losses.GAN_LOSSES["least_squares"]
    with pytest.raises(ValueError, match="Unknown GAN loss 'hing'; expected one of minimax, non_saturating"):
        losses.resolve_gan_loss("hing")
    with pytest.raises(ValueError, match=r"or a pair \(discriminator_loss, generator_loss\)"):
        losses.resolve_gan_loss(("minimax",))
    with pytest.raises(ValueError, match="is not registered, so a saved model could not find it again"):
        losses.resolve_gan_loss((lambda r, f: r - f, losses.wasserstein_generator_loss))


def test_reconstruction_losses_are_per_image_means_over_pixels():
    images = tf.constant(helpers.tiny_images(3, binary=False))
    logits = tf.zeros_like(images)
    np.testing.assert_allclose(losses.reconstruction_loss("mse", images, logits), np.mean((0.5 - images.numpy()) ** 2, axis=(1, 2, 3)), rtol=1e-5)
    bce = -(images * np.log(0.5) + (1 - images) * np.log(0.5))
    np.testing.assert_allclose(losses.reconstruction_loss("bce", images, logits), np.mean(bce, axis=(1, 2, 3)), rtol=1e-5)
    with pytest.raises(ValueError, match="Unknown reconstruction loss 'l1'"):
        losses.reconstruction_loss("l1", images, logits)


def test_global_batch_mean_without_a_strategy_is_the_mean():
    assert float(losses.global_batch_mean(tf.constant([1.0, 2.0, 6.0]))) == pytest.approx(3.0)
