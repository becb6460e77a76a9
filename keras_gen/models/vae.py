"""The variational autoencoder (Kingma & Welling, 2014) as the lectures teach it.

The encoder outputs a mean and a log-variance; `exp` makes the variance positive; the
reparameterisation trick z = mean + sigma * eps lets gradients flow through the sample; the loss is
the negative ELBO, -E_q[log p(x | z)] + KL(q(z | x) || p(z)), in nats per image.

`VariationalModel` is what every VAE of the zoo shares: the negative-ELBO loss over two methods,
`latent_terms` (draw z, return its KL) and `decoder_logits` (the logits of p(x | z)), the training step,
the endpoints and the TensorBoard grids. `VAE` adds one Gaussian latent group: `prior`, `posterior`
and `kl_divergence`. Variants override one method each (conditional: `posterior` and `decoder_logits`;
mixture prior: `prior` and `kl_divergence`); a hierarchy of latent groups is a `VariationalModel` with
its own `latent_terms` and `decoder_logits` (`keras_gen.models.hvae`).
"""

import keras_gen  # noqa: F401
import keras
import tensorflow as tf

from keras_gen import distributions
from keras_gen import networks
from keras_gen.callbacks import KLWarmup
from keras_gen.export import UNIT_INTERVAL
from keras_gen.export import Endpoint
from keras_gen.models.base import GenerativeModel
from keras_gen.registry import register_model


class VariationalModel(GenerativeModel):
    """What the zoo's VAEs share (subclass it; it is not a model on its own).

    A subclass sets `latent_dim` (the width of the codes the endpoints take and return) before calling
    this constructor, and implements `build_networks()` (the default encoder and decoder),
    `network_interfaces()`, `latent_terms` and, when its decoder is not simply z -> logits,
    `decoder_logits`.

    Args:
        encoder: a Keras model, images -> what the subclass's `latent_terms` reads.
        decoder: a Keras model, what `decoder_logits` feeds it -> logits shaped like the images.
        image_shape: (height, width, channels) of the images.
        likelihood: "bernoulli" (binary or binarised images) or "gaussian" (one learned scale).
        beta: weight of the KL term in the training objective (1 is the ELBO).
        kl_warmup_epochs: epochs over which the KL weight ramps from 0 to `beta` (0: no warm-up).
        filters: channels of the default encoder's stride-2 convolutions, finest first (the default
            decoder mirrors them); None: `base_filters`, (32, 64), with stages added for larger images
            (`networks.stage_widths`).
        mixed_precision: "bfloat16", "float16" or False, as in `GenerativeModel`.
        seed: seed of the reparameterisation noise.
    """

    metric_names = ("loss", "reconstruction", "kl")
    nested_models = ("encoder", "decoder")
    default_endpoint = "reconstruct"
    # The default networks' filters for 28x28 images, which None scales with the image size.
    base_filters = (32, 64)

    def __init__(
        self,
        encoder=None,
        decoder=None,
        image_shape=(28, 28, 1),
        likelihood="bernoulli",
        beta=1.0,
        kl_warmup_epochs=0,
        filters=None,
        mixed_precision=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, mixed_precision=mixed_precision, seed=seed, **kwargs)
        if likelihood not in distributions.LIKELIHOODS:
            raise ValueError(f"Unknown likelihood {likelihood!r}; expected one of {distributions.LIKELIHOODS}.")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be at least 1, got {self.latent_dim}.")
        # === Config ===
        self.likelihood_kind = likelihood
        self.beta = float(beta)
        self.kl_warmup_epochs = int(kl_warmup_epochs)
        self.filters = networks.resolve_widths(filters, self.image_shape, self.base_filters)
        # === Layers ===
        default_encoder, default_decoder = (None, None) if encoder is not None and decoder is not None else self.build_networks()
        self.encoder = encoder or default_encoder
        self.decoder = decoder or default_decoder
        self.check_networks("encoder", "decoder")
        self.kl_weight = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.beta), trainable=False, name="kl_weight"
        )
        self.log_scale = None
        if likelihood == "gaussian":
            self.log_scale = self.add_weight(shape=(), initializer="zeros", name="likelihood_log_scale")
        self.built = True

    # === The pieces subclasses give ===
    def build_networks(self):
        """The default (encoder, decoder)."""
        raise NotImplementedError(f"{type(self).__name__} must build its default networks.")

    def latent_terms(self, images, labels=None, training=False):
        """Draws the code z of each image and returns `(z, terms)`, the terms per example in nats.

        `terms["kl"]` is what the ELBO subtracts; `terms["log_ratio"]` is log p(z) - log q(z | x) at the
        drawn z, the latent part of an importance weight (`keras_gen.evaluation` adds log p(x | z) to it).
        A model may add `kl_penalty` (the KL as the training objective weighs it, e.g. with free bits)
        and further terms, which become metrics when listed in `metric_names`.
        """
        raise NotImplementedError(f"{type(self).__name__} must say how it draws its code.")

    def decoder_logits(self, z, labels=None, training=False):
        """Logits of p(x | z), shaped like the images."""
        del labels
        return self.decoder(z, training=training)

    def likelihood(self, z, labels=None, training=False):
        """p(x | z) as a tfd distribution over images."""
        return distributions.image_likelihood(self.likelihood_kind, self.decoder_logits(z, labels, training=training), self.log_scale)

    # === Losses, shared by train_step and test_step ===
    def compute_losses(self, images, labels=None, training=False):
        """Per-example terms of the negative ELBO, in nats: {loss, reconstruction, kl, objective} and
        whatever else `latent_terms` returns."""
        images = self.check_images(images)
        z, terms = self.latent_terms(images, labels, training=training)
        reconstruction = -self.likelihood(z, labels, training=training).log_prob(images)
        kl = terms["kl"]
        penalty = terms.get("kl_penalty", kl)
        return {
            **terms,
            "loss": reconstruction + kl,
            "reconstruction": reconstruction,
            "objective": reconstruction + tf.cast(self.kl_weight, penalty.dtype) * penalty,
        }

    def train_step(self, data):
        images, labels = self.unpack(data)
        return self.gradient_step(lambda: self.compute_losses(images, labels, training=True), "objective")

    def test_step(self, data):
        images, labels = self.unpack(data)
        return self.update_metrics(self.compute_losses(images, labels, training=False))

    def call(self, images, training=False):
        """The mean reconstruction of `images` through the posterior mean (deterministic)."""
        return self.reconstruct(self.check_images(images))["reconstruction"]

    # === Deterministic functions behind the serving endpoints ===
    def encode(self, images):
        mean, log_variance = self.encoder(images, training=False)
        return {"mean": mean, "log_variance": log_variance}

    def decode(self, z):
        return {"images": distributions.likelihood_mean(self.likelihood_kind, self.decoder_logits(z))}

    def reconstruct(self, images):
        return {"reconstruction": self.decode(self.encode(images)["mean"])["images"]}

    def sample(self, seed):
        return self.decode(self.normal_from_seeds(seed, self.latent_dim))

    def interpolate(self, z_start, z_end, t):
        t = tf.reshape(t, [-1, 1])
        z = (1.0 - t) * z_start + t * z_end
        return {"images": self.decode(z)["images"], "z": z}

    def serving_endpoints(self):
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")

        def code(name):
            return tf.TensorSpec([None, self.latent_dim], tf.float32, name=name)

        return [
            Endpoint("reconstruct", self.reconstruct, [images], {"images": UNIT_INTERVAL}),
            Endpoint("encode", self.encode, [images], {"images": UNIT_INTERVAL}),
            Endpoint("decode", self.decode, [code("z")]),
            Endpoint("sample", self.sample, [tf.TensorSpec([None], tf.int64, name="seed")]),
            Endpoint(
                "interpolate",
                self.interpolate,
                [code("z_start"), code("z_end"), tf.TensorSpec([None], tf.float32, name="t")],
                {"t": UNIT_INTERVAL},
            ),
        ]

    # === TensorBoard ===
    def summary_inputs(self, validation_images, num_samples=64, seed=0):
        images = self.check_images(validation_images[:8])
        return {
            "z": tf.random.stateless_normal([num_samples, self.latent_dim], seed=[seed, 0]),
            "images": images,
        }

    def summary_images(self, fixed):
        images = fixed["images"]
        reconstructions = self.reconstruct(images)["reconstruction"]
        # Originals on one row, their reconstructions on the row below.
        pairs = tf.concat([images, reconstructions], axis=0)
        codes = self.encode(images[:2])["mean"]
        steps = 10
        t = tf.linspace(0.0, 1.0, steps)
        strip = self.interpolate(tf.repeat(codes[:1], steps, 0), tf.repeat(codes[1:2], steps, 0), t)["images"]
        return {
            "samples": (self.decode(fixed["z"])["images"], 8),
            "reconstructions": (pairs, int(images.shape[0])),
            "interpolation": (strip, steps),
        }

    def recipe_callbacks(self):
        return [KLWarmup(self.kl_warmup_epochs)] if self.kl_warmup_epochs > 0 else []

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "likelihood": self.likelihood_kind,
                "beta": self.beta,
                "kl_warmup_epochs": self.kl_warmup_epochs,
                "filters": list(self.filters),
            }
        )
        return config


@register_model("vae")
class VAE(VariationalModel):
    """A VAE with a Gaussian encoder, N(0, I) prior and a Bernoulli or Gaussian decoder.

    `fit` reports, in nats per image: `loss` (the negative ELBO), `reconstruction` (-log p(x | z))
    and `kl` (KL(q(z | x) || p(z))). The gradient step minimises `reconstruction + beta * kl`
    (beta ramps up from 0 over `kl_warmup_epochs` when that is set).

    Args:
        latent_dim: size of z.
        encoder: a Keras model, images -> [mean, log_variance], two tensors [batch, latent_dim] (one
            output of width 2 * latent_dim is refused, not split); defaults to `networks.conv_encoder`.
        decoder: a Keras model, z -> logits shaped like the images; defaults to `networks.conv_decoder`.
            Both are checked when the model is built (`network_interfaces`).
        **kwargs: the other options of `VariationalModel` (image_shape, likelihood, beta,
            kl_warmup_epochs, filters, mixed_precision, seed).

    Example:
    >>> vae = VAE(image_shape=(28, 28, 1), latent_dim=16, seed=0)
    >>> vae.compile(optimizer="adam")
    >>> vae.fit(images_in_0_1, epochs=10, batch_size=128)  # doctest: +SKIP
    """

    def __init__(self, *, latent_dim=16, **kwargs):
        self.latent_dim = int(latent_dim)
        super().__init__(**kwargs)

    def build_networks(self):
        encoder = networks.conv_encoder(self.image_shape, self.latent_dim, self.filters, dtype=self.network_dtype)
        decoder = networks.conv_decoder(self.image_shape, self.latent_dim, self.filters[::-1], dtype=self.network_dtype)
        return encoder, decoder

    # === What the model feeds its networks (variants with other networks override it) ===
    def network_interfaces(self):
        sizes = f"Build it for image_shape {self.image_shape} and latent_dim {self.latent_dim}."
        gaussian = (
            f"{sizes} A Gaussian encoder returns two tensors, the mean and the log-variance of q(z | x): end it in two "
            "Dense(latent_dim) heads, as networks.conv_encoder does (one Dense(2 * latent_dim) output is not split)."
        )
        code = (self.latent_dim,)
        return {
            "encoder": networks.Interface(
                networks.Port("images", self.image_shape), [networks.Port("mean", code), networks.Port("log_variance", code)], gaussian
            ),
            "decoder": networks.Interface(networks.Port("z", code), networks.Port("logits", self.image_shape), sizes),
        }

    # === The pieces variants override ===
    def prior(self):
        """p(z)."""
        return distributions.standard_normal(self.latent_dim)

    def posterior(self, images, labels=None, training=False):
        """q(z | x) as a tfd distribution over [batch, latent_dim]."""
        mean, log_variance = self.encoder(images, training=training)
        return distributions.diagonal_gaussian(mean, log_variance)

    def kl_divergence(self, posterior, z):
        """KL(q(z | x) || p(z)) per example; analytic for Gaussians (`z` is there for Monte Carlo variants)."""
        del z
        return posterior.kl_divergence(self.prior())

    def latent_terms(self, images, labels=None, training=False):
        """One z ~ q(z | x) per image, reparameterised, and its {kl, log_ratio} (see `VariationalModel`)."""
        posterior = self.posterior(images, labels, training=training)
        # Reparameterised: mean + scale * eps, differentiable in both.
        z = distributions.sample_rows(posterior, self.next_seed())
        log_ratio = self.prior().log_prob(z) - posterior.log_prob(z)
        return z, {"kl": self.kl_divergence(posterior, z), "log_ratio": log_ratio}

    def get_config(self):
        config = super().get_config()
        config["latent_dim"] = self.latent_dim
        return config
