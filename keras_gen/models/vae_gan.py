"""VAE-GAN (Larsen et al., 2016, "Autoencoding beyond pixels using a learned similarity metric").

A VAE whose decoder is also a GAN's generator. Pixel-wise errors reward blurry reconstructions; here a
reconstruction x~ = Dec(z), z ~ q(z | x), is judged in the feature space of the GAN's discriminator
instead: -log N(Dis_l(x); Dis_l(x~), I), the Gaussian likelihood of the real image's features at its
l-th layer given the reconstruction's. The three networks learn from one forward pass, each with its
own loss and optimizer:

- encoder: beta * KL(q(z | x) || p(z)) + feature reconstruction (the GAN loss does not reach it);
- decoder: feature_weight * feature reconstruction (the paper's gamma) + the generator's GAN loss on
  both the reconstructions Dec(Enc(x)) and the samples Dec(z_p), z_p ~ p(z);
- discriminator: the GAN loss, real images against both reconstructions and samples (the feature
  reconstruction does not reach it, or it could shrink its features to make every image look alike).

The likelihood has unit variance, so the features' scale sets the weight of reconstruction against the
KL term: the default discriminator normalises its layers (LayerNorm), without which its features start
tiny and the encoder's code collapses onto the prior.

Everything else, from the posterior and the prior to the endpoints and the TensorBoard grids, is the
VAE's.
"""

import keras_gen  # noqa: F401
import tensorflow as tf

from keras_gen import distributions
from keras_gen import losses
from keras_gen import networks
from keras_gen import noise
from keras_gen.export import UNIT_INTERVAL
from keras_gen.export import Endpoint
from keras_gen.models.adversarial import Adversarial
from keras_gen.models.vae import VAE
from keras_gen.registry import register_model

# The default optimizers: Adam at Larsen et al.'s rate (they used RMSProp(3e-4)) with DCGAN's beta_1 = 0.5,
# as the zoo's GANs use; pass RMSprop to `compile` (or name it in a recipe) for the paper's choice.
ADAM = {"class_name": "Adam", "config": {"learning_rate": 3e-4, "beta_1": 0.5, "beta_2": 0.999}}

# (optimizer, the network it updates, the per-example term it minimises, its gradient-norm metric).
UPDATES = (
    ("e_optimizer", "encoder", "encoder_loss", "e_grad_norm"),
    ("g_optimizer", "decoder", "decoder_loss", "g_grad_norm"),
    ("d_optimizer", "discriminator", "d_loss", "d_grad_norm"),
)


@register_model("vae_gan")
class VAEGAN(Adversarial, VAE):
    """A VAE-GAN: a VAE whose reconstruction error is measured by its GAN discriminator's features.

    `fit` takes batches of images in [0, 1] (data preprocessing "scale"); the decoder outputs logits and
    images are sigmoid(logits), as in the VAE. Each step draws one z ~ q(z | x) and one z_p ~ p(z) per
    image, shows the discriminator the real, reconstructed and sampled batches in one call, and updates
    encoder, decoder and discriminator simultaneously, each on its own loss (see the module docstring).

    `fit` reports, per image: `kl` and `feature_reconstruction` (-log N(Dis_l(x); Dis_l(x~), I), in nats,
    so it includes the constant num_features / 2 * log(2 pi)); `pixel_reconstruction` (the VAE's Bernoulli
    -log p(x | z), for monitoring; it enters the losses only with `pixel_weight`); `encoder_loss`,
    `decoder_loss`, `g_loss` (the generator's GAN loss, the mean over reconstructions and samples) and
    `d_loss` (the discriminator's, real against each generated batch, averaged); `d_real`, `d_fake` and
    `d_reconstruction` (the mean of D(x), D(Dec(z_p)) and D(Dec(Enc(x))): probabilities for the
    cross-entropy losses, raw scores otherwise); and each network's gradient norm.

    Args:
        discriminator: a Keras model, images -> [features, score] (features [batch, ...] of a hidden
            layer, best normalised to a unit scale, and one raw score per image); defaults to
            `networks.feature_discriminator`.
        loss: a name in `keras_gen.losses.GAN_LOSSES` or a pair (discriminator_loss, generator_loss) of
            registered functions, as in `GAN`.
        feature_weight: gamma, the weight of the feature reconstruction in the decoder's loss against
            the GAN loss (the encoder always weighs it 1).
        pixel_weight: weight of the pixel-space Bernoulli reconstruction added to the encoder's and the
            decoder's losses (0: Larsen et al.'s model). An option for stability: a small weight ties
            reconstructions to the pixels while the discriminator's features still change quickly.
        discriminator_filters: channels of the default discriminator's stride-2 convolutions; None:
            `base_discriminator_filters`, (32, 64, 128), with stages added for larger images
            (`networks.stage_widths`).
        discriminator_hidden_units: width of its dense layer before the score (0: none).
        feature_block: which of its convolution blocks gives the features, the paper's l (-1: the last).
        **kwargs: the options of `VAE` (encoder, decoder, image_shape, latent_dim, beta, kl_warmup_epochs,
            filters, mixed_precision, seed). The pixel likelihood is Bernoulli: a Gaussian's learned
            scale would belong to no network's optimizer.

    Example:
    >>> vae_gan = VAEGAN(image_shape=(28, 28, 1), latent_dim=32, feature_weight=0.1, seed=0)
    >>> vae_gan.compile()  # Adam(3e-4, beta_1=0.5) for each network
    >>> vae_gan.fit(images_in_0_1, epochs=10, batch_size=64)  # doctest: +SKIP
    """

    metric_names = (
        "kl",
        "feature_reconstruction",
        "pixel_reconstruction",
        "encoder_loss",
        "decoder_loss",
        "g_loss",
        "d_loss",
        "d_real",
        "d_fake",
        "d_reconstruction",
        "e_grad_norm",
        "g_grad_norm",
        "d_grad_norm",
    )
    nested_models = ("encoder", "decoder", "discriminator")
    optimizer_names = tuple(update[0] for update in UPDATES)
    default_optimizers = {name: ADAM for name in optimizer_names}
    # An autoencoder first ("autoencoding beyond pixels"): its serving_default is the VAE's.
    default_endpoint = "reconstruct"
    # The default discriminator's filters for 28x28 images, which None scales with the image size.
    base_discriminator_filters = (32, 64, 128)

    def __init__(
        self,
        *,
        discriminator=None,
        loss="non_saturating",
        feature_weight=0.1,
        pixel_weight=0.0,
        discriminator_filters=None,
        discriminator_hidden_units=256,
        feature_block=-1,
        **kwargs,
    ):
        if kwargs.get("likelihood", "bernoulli") != "bernoulli":
            raise ValueError(f"A VAE-GAN's pixel likelihood is Bernoulli (a Gaussian's learned scale would belong to no network's optimizer), got likelihood={kwargs['likelihood']!r}.")
        super().__init__(**kwargs)
        # === Config ===
        self.set_adversarial_loss(loss)
        self.feature_weight = float(feature_weight)
        self.pixel_weight = float(pixel_weight)
        self.discriminator_filters = networks.resolve_widths(discriminator_filters, self.image_shape, self.base_discriminator_filters)
        self.discriminator_hidden_units = int(discriminator_hidden_units)
        self.feature_block = int(feature_block)
        if self.feature_weight < 0 or self.pixel_weight < 0:
            raise ValueError(f"feature_weight and pixel_weight must be 0 or more, got {feature_weight} and {pixel_weight}.")
        # === Layers ===
        if discriminator is None:
            discriminator = networks.feature_discriminator(
                self.image_shape,
                self.discriminator_filters,
                feature_block=self.feature_block,
                hidden_units=self.discriminator_hidden_units,
                dtype=self.network_dtype,
            )
        self.discriminator = discriminator
        self.check_networks("discriminator")

    # === What the model feeds its networks: the VAE's, and the discriminator ===
    def network_interfaces(self):
        similarity = (
            "A VAE-GAN's discriminator must return [features, score]: the features of one of its hidden layers "
            "(the learned similarity metric) and one score per image. Build it with "
            "keras_gen.networks.feature_discriminator, or as keras.Model(images, [hidden_layer_output, score])."
        )
        discriminator = networks.Interface(networks.Port("images", self.image_shape), [networks.Port("features", None), networks.SCORE], similarity)
        return {**super().network_interfaces(), "discriminator": discriminator}

    # === The discriminator ===
    def discriminate(self, images, training=False):
        """(features [batch, num_features], raw scores [batch]) of `images` in [0, 1]."""
        features, scores = self.discriminator(images, training=training)
        batch = tf.shape(images)[0]
        return tf.reshape(tf.cast(features, tf.float32), [batch, -1]), tf.reshape(tf.cast(scores, tf.float32), [batch])

    # === Inputs ===
    def check_training_images(self, images):
        """Checks a training batch: float images of `image_shape` with values in [0, 1]."""
        return self.check_images_in_range(images, 0.0, 1.0, "scale them with data preprocessing 'scale' (x / 255).")

    # === Losses, shared by train_step and test_step ===
    def compute_losses(self, images, labels=None, training=False):
        """Per-example terms of the three losses and what `fit` reports (see the class docstring)."""
        images = self.check_training_images(images)
        z, terms = self.latent_terms(images, labels, training=training)
        reconstruction = self.likelihood(z, labels, training=training)
        prior, seed = self.prior(), self.next_seed()
        prior_codes = noise.replica_rows(lambda count: prior.sample(count, seed=seed), tf.shape(images)[0])
        samples = self.likelihood(prior_codes, labels, training=training).mean()
        # One discriminator pass over the three batches (the default discriminator has no BatchNorm, so
        # an image's output does not depend on the others').
        features, scores = self.discriminate(tf.concat([images, reconstruction.mean(), samples], axis=0), training=training)
        real_features, reconstruction_features, _ = tf.split(features, 3)
        real, reconstructed, sampled = tf.split(scores, 3)

        kl = terms["kl"]
        feature_reconstruction = -distributions.feature_likelihood(reconstruction_features).log_prob(real_features)
        pixel_reconstruction = -reconstruction.log_prob(images)
        g_loss = 0.5 * (self.g_loss_fn(reconstructed) + self.g_loss_fn(sampled))
        pixel_term = self.pixel_weight * pixel_reconstruction
        return {
            "kl": kl,
            "feature_reconstruction": feature_reconstruction,
            "pixel_reconstruction": pixel_reconstruction,
            "encoder_loss": tf.cast(self.kl_weight, kl.dtype) * terms.get("kl_penalty", kl) + feature_reconstruction + pixel_term,
            "decoder_loss": self.feature_weight * feature_reconstruction + g_loss + pixel_term,
            "g_loss": g_loss,
            "d_loss": 0.5 * (self.d_loss_fn(real, reconstructed) + self.d_loss_fn(real, sampled)),
            "d_real": self.probabilities(real),
            "d_fake": self.probabilities(sampled),
            "d_reconstruction": self.probabilities(reconstructed),
        }

    # === Training ===
    def optimizer_variables(self, name):
        network = {update[0]: update[1] for update in UPDATES}[name]
        return getattr(self, network).trainable_variables

    def train_step(self, data):
        self.require_optimizers()
        images, labels = self.unpack(data)
        with tf.GradientTape(persistent=True) as tape:
            terms = self.compute_losses(images, labels, training=True)
            scaled = {name: getattr(self, name).scale_loss(losses.global_batch_mean(terms[objective])) for name, _, objective, _ in UPDATES}
        # Every gradient before any update: the three networks learn from the same forward pass.
        gradients = {name: tape.gradient(scaled[name], self.optimizer_variables(name)) for name, _, _, _ in UPDATES}
        del tape
        for name, _, _, norm in UPDATES:
            terms[norm] = self.minimise(getattr(self, name), gradients[name], self.optimizer_variables(name))
        return self.update_metrics(terms)

    def test_step(self, data):
        images, labels = self.unpack(data)
        terms = self.compute_losses(images, labels, training=False)
        return self.update_metrics(terms, only_given=True)

    # === Serving: the VAE's endpoints and the discriminator's score ===
    def score(self, images):
        return {"score": self.discriminate(images)[1]}

    def serving_endpoints(self):
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        return [*super().serving_endpoints(), Endpoint("score", self.score, [images], {"images": UNIT_INTERVAL})]

    # === Serialisation ===
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "feature_weight": self.feature_weight,
                "pixel_weight": self.pixel_weight,
                "discriminator_filters": list(self.discriminator_filters),
                "discriminator_hidden_units": self.discriminator_hidden_units,
                "feature_block": self.feature_block,
            }
        )
        return config
