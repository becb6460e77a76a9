"""A VAE with a learned Gaussian-mixture prior.

The VAE's marginal p(x) = integral of p(x | z) p(z) dz is already an infinite mixture of Gaussians in
x; here the prior over z becomes a finite, learned mixture, p(z) = sum_k pi_k N(z; mu_k, sigma_k^2),
so that the code space can form clusters. KL(q(z | x) || p(z)) has no closed form for a mixture, so it
is estimated by Monte Carlo with the same reparameterised z the reconstruction uses:
log q(z | x) - log p(z). Only `prior` and `kl_divergence` differ from the VAE.
"""

import keras_gen  # noqa: F401
import keras
import tensorflow as tf

from keras_gen import distributions
from keras_gen.export import UNIT_INTERVAL
from keras_gen.export import Endpoint
from keras_gen.models.base import SERVING_SEED_KEY
from keras_gen.models.vae import VAE
from keras_gen.registry import register_model

# Keys the stateless draw that picks a sample's mixture component apart from its Gaussian noise.
COMPONENT_SEED_KEY = SERVING_SEED_KEY + 1


@register_model("gmvae")
class GMVAE(VAE):
    """A VAE whose prior is a learned mixture of `num_components` diagonal Gaussians (`tfd.MixtureSameFamily`).

    The mixture weights, means and scales train with the networks. `kl` in the logs is the Monte Carlo
    estimate log q(z | x) - log p(z) at the sampled z (unbiased; it can be negative for one example).
    `components(images)` says which component each image's code falls in.

    Args:
        num_components: number of mixture components.
        **kwargs: the options of `VAE` (the seed also draws the initial component means).

    Example:
    >>> gmvae = GMVAE(image_shape=(28, 28, 1), latent_dim=16, num_components=10, seed=0)
    >>> gmvae.compile(optimizer="adam")
    >>> gmvae.fit(images_in_0_1, epochs=10, batch_size=128)  # doctest: +SKIP
    """

    def __init__(self, *, num_components=10, **kwargs):
        super().__init__(**kwargs)
        if int(num_components) < 1:
            raise ValueError(f"num_components must be at least 1, got {num_components}.")
        self.num_components = int(num_components)
        shape = (self.num_components, self.latent_dim)
        self.mixture_logits = self.add_weight(shape=(self.num_components,), initializer="zeros", name="mixture_logits")
        # Identical components would receive identical gradients and never separate: spread the means.
        self.component_means = self.add_weight(
            shape=shape, initializer=keras.initializers.RandomNormal(stddev=1.0, seed=self.seed), name="component_means"
        )
        self.component_log_scales = self.add_weight(shape=shape, initializer="zeros", name="component_log_scales")

    # === The pieces that differ from the VAE ===
    def prior(self):
        """p(z): the learned mixture."""
        return distributions.gaussian_mixture(self.mixture_logits, self.component_means, self.component_log_scales)

    def kl_divergence(self, posterior, z):
        """Monte Carlo KL(q(z | x) || p(z)) with the sampled z: log q(z | x) - log p(z)."""
        return posterior.log_prob(z) - self.prior().log_prob(z)

    # === Mixture components ===
    def responsibilities(self, z):
        """p(k | z) for each component k: [batch, num_components]."""
        component_log_prob = self.prior().components_distribution.log_prob(z[:, None, :])
        return tf.nn.softmax(tf.nn.log_softmax(self.mixture_logits) + component_log_prob, axis=-1)

    def components(self, images):
        """The mixture component each image's code (its posterior mean) falls in, and p(k | z)."""
        responsibilities = self.responsibilities(self.encode(images)["mean"])
        return {"component": tf.argmax(responsibilities, axis=-1), "responsibilities": responsibilities}

    def sample_codes(self, seed):
        """One code z ~ p(z) per int64 seed, and the component it was drawn from.

        Each seed picks its component by inverting the weights' CDF at a uniform drawn from that seed
        alone, and its noise with `normal_from_seeds`, so a code does not depend on the rest of the batch.
        """

        def uniform(one_seed):
            return tf.random.stateless_uniform([], seed=tf.stack([one_seed, tf.constant(COMPONENT_SEED_KEY, tf.int64)]))

        draws = tf.map_fn(uniform, tf.cast(seed, tf.int64), fn_output_signature=tf.float32)
        cumulative = tf.cumsum(tf.nn.softmax(self.mixture_logits))
        components = tf.reduce_sum(tf.cast(cumulative[None, :] <= draws[:, None], tf.int32), axis=1)
        components = tf.minimum(components, self.num_components - 1)  # cumsum may end just below 1
        noise = self.normal_from_seeds(seed, self.latent_dim)
        z = tf.gather(self.component_means, components) + tf.exp(tf.gather(self.component_log_scales, components)) * noise
        return {"component": components, "z": z}

    def sample(self, seed):
        return self.decode(self.sample_codes(seed)["z"])

    def serving_endpoints(self):
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        return [*super().serving_endpoints(), Endpoint("components", self.components, [images], {"images": UNIT_INTERVAL})]

    # === TensorBoard ===
    def summary_images(self, fixed):
        grids = super().summary_images(fixed)
        # The VAE's grid decodes N(0, I) codes; here one row per component, the same noise down each column.
        noise = fixed["z"][:8]
        columns = int(noise.shape[0])
        means = tf.repeat(self.component_means, columns, axis=0)
        scales = tf.exp(tf.repeat(self.component_log_scales, columns, axis=0))
        grids["samples"] = (self.decode(means + scales * tf.tile(noise, [self.num_components, 1]))["images"], columns)
        return grids

    def get_config(self):
        config = super().get_config()
        config["num_components"] = self.num_components
        return config
