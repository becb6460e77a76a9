"""TensorFlow Probability heads: the densities every model in the zoo is built from.

Networks output plain tensors; these functions turn them into `tfd` distributions inside a model's
steps (never `tfp.layers`, which needs Keras 2). Image distributions treat the three image axes as one
event, so `log_prob` returns one number per image, in nats.
"""

import keras_gen  # noqa: F401  (sets the Keras backend before TFP imports tf_keras)
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

LIKELIHOODS = ("bernoulli", "gaussian")


def diagonal_gaussian(mean, log_variance):
    """The encoder's posterior q(z | x): independent Normals with variance exp(log_variance)."""
    # exp keeps the scale positive whatever the network outputs.
    return tfd.Independent(tfd.Normal(loc=mean, scale=tf.exp(0.5 * log_variance)), reinterpreted_batch_ndims=1)


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
