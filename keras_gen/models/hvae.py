"""A hierarchical VAE with a top-down generative path (ladder VAE / NVAE style, vector latents).

The code is split into groups z_1 (top) ... z_L (bottom). The prior is a chain,
p(z) = p(z_1) p(z_2 | z_1) ... p(z_L | z_<L), computed by a top-down path of small networks whose
deterministic state carries z_<i down. The posterior follows the same path,
q(z) = q(z_1 | x) q(z_2 | x, z_1) ..., and reads the image through a bottom-up deterministic path run
once beforehand. Each lower group's posterior is parameterised as a residual of its prior (NVAE):
mean = prior mean + shift, log-variance = prior log-variance + shift, so a group that has nothing to add
about the image stays at its prior.

The ELBO's KL splits into one analytic term per group, KL(q(z_i | x, z_<i) || p(z_i | z_<i)) at the
sampled z_<i, logged as `kl_1` ... `kl_L`. Free bits (Kingma et al., 2016) keep groups from collapsing:
while a group's batch-mean KL is below `free_bits` nats, its KL is not penalised.
It is a `VariationalModel` with its own `latent_terms` and `decoder_logits` (a chain has no one
prior or posterior to override); the loss, the training step and the endpoints are the VAE family's.
"""

import keras_gen  # noqa: F401
import keras
import tensorflow as tf

from keras_gen import distributions
from keras_gen import networks
from keras_gen.models.vae import VariationalModel
from keras_gen.registry import register_model


@register_model("hvae")
class HVAE(VariationalModel):
    """A hierarchical VAE: at least two latent groups, bottom-up inference features, a top-down
    generative path, residual posteriors, one KL per group and free bits.

    `fit` reports `loss` (negative ELBO), `reconstruction`, `kl` (the sum over groups) and `kl_1` (top)
    ... `kl_L` (bottom), all in nats per image. Codes given to or returned by the serving endpoints are
    the groups concatenated top first, [batch, sum(latent_dims)]. `sample` runs the top-down path.

    Args:
        latent_dims: size of each latent group, top first (at least two groups).
        hidden_units: width of the bottom-up features and of the top-down state.
        free_bits: nats per group below which a group's KL is not penalised (0 turns this off).
        top_down: one Keras model per group below the top, `networks.top_down_block`'s interface.
        posterior_heads: one Keras model per group: the top's maps its features to [mean, log_variance]
            (`networks.gaussian_head`), each lower one maps [features, state] to shifts from its prior
            (`networks.residual_posterior_head`).
        encoder: the bottom-up path, images -> one feature vector per group (top first); defaults to
            `networks.ladder_encoder`.
        decoder: [z_L, top-down state] (concatenated) -> logits shaped like the images; defaults to
            `networks.conv_decoder`.
        **kwargs: the other options of `VariationalModel` (image_shape, likelihood, beta,
            kl_warmup_epochs, filters, mixed_precision, seed).

    Example:
    >>> hvae = HVAE(image_shape=(28, 28, 1), latent_dims=(16, 16), free_bits=0.5, seed=0)
    >>> hvae.compile(optimizer="adam")
    >>> hvae.fit(images_in_0_1, epochs=10, batch_size=128)  # doctest: +SKIP
    """

    nested_models = VariationalModel.nested_models + ("top_down", "posterior_heads")

    def __init__(self, *, latent_dims=(16, 16), hidden_units=256, free_bits=0.5, top_down=None, posterior_heads=None, **kwargs):
        latent_dims = tuple(int(d) for d in latent_dims)
        if len(latent_dims) < 2 or min(latent_dims) < 1:
            raise ValueError(f"latent_dims must list at least two positive group sizes (top first), got {list(latent_dims)}.")
        if float(free_bits) < 0:
            raise ValueError(f"free_bits must be 0 (off) or positive nats per group, got {free_bits}.")
        # === Config (set before the VariationalModel's constructor, which builds the default networks) ===
        self.latent_dims = latent_dims
        self.latent_dim = sum(latent_dims)
        self.hidden_units = int(hidden_units)
        self.free_bits = float(free_bits)
        self.metric_names = VariationalModel.metric_names + tuple(f"kl_{i}" for i in range(1, len(latent_dims) + 1))
        super().__init__(**kwargs)
        # === Layers ===
        dims, dtype = self.latent_dims, self.network_dtype
        if top_down is None:
            top_down = [
                networks.top_down_block(dims[i - 1] + (self.hidden_units if i > 1 else 0), size, self.hidden_units, dtype=dtype, name=f"top_down_{i + 1}")
                for i, size in enumerate(dims)
                if i > 0
            ]
        if posterior_heads is None:
            posterior_heads = [networks.gaussian_head(self.hidden_units, dims[0], name="posterior_1")] + [
                networks.residual_posterior_head(self.hidden_units, self.hidden_units, size, self.hidden_units, dtype=dtype, name=f"posterior_{i + 1}")
                for i, size in enumerate(dims)
                if i > 0
            ]
        for name, networks_list, count in (("top_down", top_down, len(dims) - 1), ("posterior_heads", posterior_heads, len(dims))):
            if not isinstance(networks_list, (list, tuple)) or len(networks_list) != count or not all(isinstance(n, keras.Model) for n in networks_list):
                raise ValueError(f"{name} must be a list of {count} Keras models for latent_dims {list(dims)}, got {networks_list!r}.")
        self.top_down = list(top_down)
        self.posterior_heads = list(posterior_heads)
        self.check_networks("top_down", "posterior_heads")

    def build_networks(self):
        encoder = networks.ladder_encoder(self.image_shape, len(self.latent_dims), self.hidden_units, self.filters, dtype=self.network_dtype)
        decoder = networks.conv_decoder(self.image_shape, self.latent_dims[-1] + self.hidden_units, self.filters[::-1], dtype=self.network_dtype)
        return encoder, decoder

    # === What the model feeds its networks ===
    def network_interfaces(self):
        dims, hidden = self.latent_dims, self.hidden_units
        sizes = (
            f"Build it for image_shape {self.image_shape}, latent_dims {list(dims)} and hidden_units {hidden} "
            "(the width of the features and of the state)."
        )
        features, state = networks.Port("features", (hidden,)), networks.Port("state", (hidden,))

        def pair(names, size):
            return [networks.Port(name, (size,)) for name in names]

        below = [
            networks.Interface(
                networks.Port("above", (dims[i - 1] + (hidden if i > 1 else 0),)),
                [state, *pair(("prior_mean", "prior_log_variance"), dims[i])],
                f"{sizes} A top-down block maps [z above, state above] (concatenated) to [state, prior mean, "
                "prior log-variance], as networks.top_down_block does.",
            )
            for i in range(1, len(dims))
        ]
        heads = [networks.Interface(features, pair(("mean", "log_variance"), dims[0]), f"{sizes} The top group's head is a networks.gaussian_head.")]
        heads += [
            networks.Interface([features, state], pair(("mean_shift", "log_variance_shift"), size), f"{sizes} See networks.residual_posterior_head.")
            for size in dims[1:]
        ]
        return {
            "encoder": networks.Interface(
                networks.Port("images", self.image_shape),
                [networks.Port(f"features_{i}", (hidden,)) for i in range(1, len(dims) + 1)],
                f"{sizes} The bottom-up path returns one feature vector per group, top first, as "
                "networks.ladder_encoder does.",
            ),
            "decoder": networks.Interface(networks.Port("z_and_state", (dims[-1] + hidden,)), networks.Port("logits", self.image_shape), sizes),
            "top_down": below,
            "posterior_heads": heads,
        }

    # === The top-down path ===
    def top_down_path(self, pick, features=None, training=False):
        """Runs the generative path from the top group down.

        For each group i (top first) it builds the prior p(z_i | z_<i) and, when bottom-up `features`
        are given, the residual posterior q(z_i | x, z_<i); `pick(i, prior, posterior)` returns the z_i
        to continue with (a sample, a mean, or a given code).

        Returns:
            (decoder input [batch, latent_dims[-1] + hidden_units], [(z_i, prior_i, posterior_i)] top first).
        """
        groups, z, state = [], None, None
        for i, size in enumerate(self.latent_dims):
            if i == 0:
                prior = distributions.standard_normal(size)
            else:
                above = z if state is None else tf.concat([z, state], axis=-1)
                state, prior_mean, prior_log_variance = self.top_down[i - 1](above, training=training)
                prior = distributions.diagonal_gaussian(prior_mean, prior_log_variance)
            posterior = None
            if features is not None:
                if i == 0:
                    mean, log_variance = self.posterior_heads[0](features[0], training=training)
                else:
                    mean_shift, log_variance_shift = self.posterior_heads[i]([features[i], state], training=training)
                    mean, log_variance = prior_mean + mean_shift, prior_log_variance + log_variance_shift
                posterior = distributions.diagonal_gaussian(mean, log_variance)
            z = pick(i, prior, posterior)
            groups.append((z, prior, posterior))
        return tf.concat([z, state], axis=-1), groups

    def split_groups(self, z):
        """[batch, sum(latent_dims)] -> one [batch, size] tensor per group, top first."""
        return tf.split(z, list(self.latent_dims), axis=-1)

    def decoder_logits(self, z, labels=None, training=False):
        """Logits of p(x | z) for codes z (the groups concatenated, top first)."""
        del labels
        parts = self.split_groups(z)
        decoder_input, _ = self.top_down_path(lambda i, prior, posterior: parts[i], training=training)
        return self.decoder(decoder_input, training=training)

    # === The code: one group at a time down the chain ===
    def latent_terms(self, images, labels=None, training=False):
        features = self.encoder(images, training=training)
        _, groups = self.top_down_path(lambda i, prior, posterior: distributions.sample_rows(posterior, self.next_seed()), features, training)
        terms = {}
        kls, penalties, log_ratios = [], [], []
        for i, (z, prior, posterior) in enumerate(groups, start=1):
            kl = posterior.kl_divergence(prior)
            terms[f"kl_{i}"] = kl
            kls.append(kl)
            penalties.append(self.free_bits_penalty(kl))
            log_ratios.append(prior.log_prob(z) - posterior.log_prob(z))
        terms.update(kl=tf.add_n(kls), kl_penalty=tf.add_n(penalties), log_ratio=tf.add_n(log_ratios))
        return tf.concat([z for z, _, _ in groups], axis=-1), terms

    def free_bits_penalty(self, kl):
        """A group's per-example KL as the objective weighs it: unchanged while its batch mean is above
        `free_bits`; below, the constant `free_bits`, so nothing pushes the group further towards its prior.
        The batch mean of the result is max(free_bits, batch mean of kl) (per replica under a strategy)."""
        if self.free_bits <= 0:
            return kl
        floor = tf.constant(self.free_bits, kl.dtype)
        return tf.where(tf.reduce_mean(kl) > floor, kl, tf.fill(tf.shape(kl), floor))

    # === Deterministic functions behind the serving endpoints ===
    def encode(self, images):
        """Posterior means and log-variances of every group, each group conditioned on the means above it."""
        features = self.encoder(images, training=False)
        _, groups = self.top_down_path(lambda i, prior, posterior: posterior.mean(), features)
        return {
            "mean": tf.concat([posterior.mean() for _, _, posterior in groups], axis=-1),
            "log_variance": tf.concat([tf.math.log(posterior.variance()) for _, _, posterior in groups], axis=-1),
        }

    def sample_from_noise(self, noise):
        """Ancestral sampling down the hierarchy: z_i = prior mean + prior scale * noise_i, group by group."""
        parts = self.split_groups(noise)
        decoder_input, _ = self.top_down_path(lambda i, prior, posterior: prior.mean() + prior.stddev() * parts[i])
        return {"images": distributions.likelihood_mean(self.likelihood_kind, self.decoder(decoder_input, training=False))}

    def sample(self, seed):
        return self.sample_from_noise(self.normal_from_seeds(seed, self.latent_dim))

    # === TensorBoard ===
    def summary_images(self, fixed):
        grids = super().summary_images(fixed)
        # The VAE's grid would decode the noise as a code; a hierarchy samples by running its top-down path.
        grids["samples"] = (self.sample_from_noise(fixed["z"])["images"], 8)
        return grids

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "latent_dims": list(self.latent_dims),
                "hidden_units": self.hidden_units,
                "free_bits": self.free_bits,
            }
        )
        return config
