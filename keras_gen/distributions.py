"""TensorFlow Probability heads: the densities every model in the zoo is built from.

Networks output plain tensors; these functions turn them into `tfd` distributions inside a model's
steps (never `tfp.layers`, which needs Keras 2). Image distributions treat the three image axes as one
event, so `log_prob` returns one number per image, in nats.
"""

import keras_gen  # noqa: F401  (sets the Keras backend before TFP imports tf_keras)
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_gen import noise

tfd = tfp.distributions

LIKELIHOODS = ("bernoulli", "gaussian")


def diagonal_gaussian(mean, log_variance):
    """The encoder's posterior q(z | x): independent Normals with variance exp(log_variance)."""
    # exp keeps the scale positive whatever the network outputs.
    return tfd.Independent(tfd.Normal(loc=mean, scale=tf.exp(0.5 * log_variance)), reinterpreted_batch_ndims=1)


def sample_rows(distribution, seed):
    """One reparameterised draw, mean + stddev * eps, from a diagonal Gaussian with a batch of rows (e.g.
    `diagonal_gaussian`): what tfd's `sample(seed=seed)` computes, with eps from `noise.normal`, so each
    example of the global batch gets the same draw however the batch is split over replicas."""
    mean = distribution.mean()
    return mean + distribution.stddev() * noise.normal(tf.shape(mean), seed, mean.dtype)


def standard_normal(latent_dim, dtype=tf.float32):
    """The prior p(z) = N(0, I) over a `latent_dim`-dimensional code."""
    zeros = tf.zeros([latent_dim], dtype=dtype)
    return tfd.Independent(tfd.Normal(loc=zeros, scale=tf.ones_like(zeros)), reinterpreted_batch_ndims=1)


def image_likelihood(kind, logits, log_scale=None):
    """The decoder's p(x | z) over [batch, height, width, channels] images in [0, 1].

    Args:
        kind: "bernoulli" (pixels are probabilities of a binary image) or "gaussian" (a Normal around
            sigmoid(logits) with one learned scale, `log_scale`).
        logits: the decoder's output, [batch, height, width, channels].
        log_scale: a scalar tensor, needed for "gaussian".
    """
    if kind == "bernoulli":
        pixels = tfd.Bernoulli(logits=logits, dtype=logits.dtype)
    elif kind == "gaussian":
        if log_scale is None:
            raise ValueError("A gaussian likelihood needs `log_scale`.")
        pixels = tfd.Normal(loc=tf.sigmoid(logits), scale=tf.exp(log_scale) * tf.ones_like(logits))
    else:
        raise ValueError(f"Unknown likelihood {kind!r}; expected one of {LIKELIHOODS}.")
    return tfd.Independent(pixels, reinterpreted_batch_ndims=3)


def likelihood_mean(kind, logits):
    """The mean image of `image_likelihood(kind, logits)`, without building the distribution."""
    del kind  # Both likelihoods have mean sigmoid(logits).
    return tf.sigmoid(logits)


def gaussian_mixture(logits, means, log_scales):
    """A mixture of diagonal Gaussians over [latent_dim] codes (e.g. a learned prior p(z)).

    Args:
        logits: [components] unnormalised log mixture weights.
        means: [components, latent_dim] component means.
        log_scales: [components, latent_dim] log standard deviations (exp keeps them positive).
    """
    components = tfd.Independent(tfd.Normal(loc=means, scale=tf.exp(log_scales)), reinterpreted_batch_ndims=1)
    return tfd.MixtureSameFamily(mixture_distribution=tfd.Categorical(logits=logits), components_distribution=components)


def ring_mixture(num_components, latent_dim, radius=4.0, scale=0.5, dtype=tf.float32):
    """A fixed, equally weighted mixture of Gaussians whose means lie on a circle (a prior p(z)).

    Component k has mean radius * (cos(2 pi k / K), sin(2 pi k / K), 0, ..., 0) and standard deviation
    `scale` in every dimension: the 2-d "ten Gaussians on a ring" prior of the adversarial autoencoder
    paper, extended by the same spread in further dimensions. Needs latent_dim >= 2.

    Args:
        num_components: K, the number of components.
        latent_dim: size of the code.
        radius: distance of each mean from the origin.
        scale: standard deviation of each component in every dimension.
        dtype: float dtype of the distribution.
    """
    if latent_dim < 2 or num_components < 1:
        raise ValueError(f"A ring mixture needs latent_dim >= 2 and num_components >= 1, got {latent_dim} and {num_components}.")
    angles = 2.0 * np.pi * np.arange(num_components) / num_components
    means = np.zeros((num_components, latent_dim))
    means[:, 0], means[:, 1] = radius * np.cos(angles), radius * np.sin(angles)
    log_scales = np.full((num_components, latent_dim), np.log(scale))
    return gaussian_mixture(tf.zeros([num_components], dtype), tf.constant(means, dtype), tf.constant(log_scales, dtype))


def feature_likelihood(features):
    """A unit-variance Gaussian around `features` [batch, num_features], one event per example: the
    VAE-GAN's p(Dis_l(x) | z) = N(Dis_l(x); Dis_l(x~), I) (Larsen et al., 2016, eq. 7)."""
    return tfd.Independent(tfd.Normal(loc=features, scale=tf.ones_like(features)), reinterpreted_batch_ndims=1)
