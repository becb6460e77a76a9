"""The GAN family: one alternating training step for GAN, DCGAN, WGAN-GP and the conditional GAN.

Every variant is a generator, a discriminator (critic), a pair of pure loss functions
(`keras_gen.losses.GAN_LOSSES`), an optional gradient penalty and `d_steps`, the number of
discriminator updates per generator update (the k of Goodfellow et al.'s Algorithm 1). `GAN.train_step`
runs them all: `d_steps` discriminator updates with the generator held fixed, then one generator
update with the discriminator held fixed, all inside the one compiled step.

Generators make images in [-1, 1] (tanh), so the training data are scaled to [-1, 1] (data
preprocessing "tanh"); the serving endpoints take and return images in [0, 1].
"""

import contextlib

import keras_gen  # noqa: F401
import keras
import tensorflow as tf

from keras_gen import losses
from keras_gen import networks
from keras_gen import noise
from keras_gen.export import UNIT_INTERVAL
from keras_gen.export import Endpoint
from keras_gen.models.adversarial import Adversarial
from keras_gen.models.base import GenerativeModel
from keras_gen.registry import register_model

# The default optimizers, DCGAN's: Adam with a learning rate of 2e-4 and beta_1 = 0.5.
DCGAN_ADAM = {"class_name": "Adam", "config": {"learning_rate": 2e-4, "beta_1": 0.5, "beta_2": 0.999}}


def has_batch_norm(network):
    """Whether `network` (a layer or a model, searched through nested models) has a BatchNormalization layer."""
    if isinstance(network, keras.layers.BatchNormalization):
        return True
    return any(has_batch_norm(layer) for layer in getattr(network, "layers", ()))


@register_model("gan")
class GAN(Adversarial, GenerativeModel):
    """A generative adversarial network (Goodfellow et al., 2014); by default the original one, with
    fully connected networks and the minimax loss.

    `fit` takes batches of images in [-1, 1] (and labels, which an unconditional GAN ignores). Each
    step makes `d_steps` discriminator updates, each on the step's real batch and a fresh batch of
    generated images with the generator held fixed, then one generator update with the discriminator
    held fixed. The generator update reuses the last discriminator update's generated batch (one
    generator pass fewer per step, as PyTorch's DCGAN example does) unless `fresh_generator_noise`.

    `fit` reports `d_loss` (what the discriminator minimises, penalty included), `g_loss`, `d_real`
    and `d_fake` (the mean of D(x) and D(G(z)): probabilities for the minimax and non-saturating
    losses, raw critic values otherwise), `gradient_penalty` (0 without one) and the gradient norms
    `d_grad_norm` and `g_grad_norm`.

    Args:
        generator: a Keras model, z [batch, latent_dim] -> images in [-1, 1]; defaults to `build_networks()`'s.
        discriminator: a Keras model, images -> one raw score per image, [batch, 1].
        image_shape: (height, width, channels) of the images.
        latent_dim: size of z.
        loss: a name in `keras_gen.losses.GAN_LOSSES` ("minimax", "non_saturating", "wasserstein",
            "hinge", "least_squares") or a pair (discriminator_loss, generator_loss) of registered functions.
        d_steps: discriminator updates per generator update.
        gradient_penalty_weight: weight of the WGAN-GP gradient penalty in the discriminator's loss (0: none).
        fresh_generator_noise: draw new noise for the generator update (Algorithm 1 to the letter)
            instead of reusing the last discriminator update's generated batch.
        generator_widths: hidden units of the default generator's layers (the convolutional variants:
            channels of its stride-2 stages, coarsest first; None scales their `base_generator_widths`
            with the image size, `networks.stage_widths`).
        discriminator_widths: hidden units of the default discriminator's layers (the convolutional
            variants: channels of its stride-2 stages; None scales their `base_discriminator_widths`).
        mixed_precision: "bfloat16", "float16" or False, as in `GenerativeModel` (True: "bfloat16"); bfloat16
            is faster on CPUs with AVX512-BF16 and on recent GPUs. Under float16 the gradient penalty's
            inner gradient is loss-scaled too (see `discriminator_losses`).
        seed: seed of all the model's noise.

    Example:
    >>> gan = GAN(image_shape=(28, 28, 1), latent_dim=64, loss="non_saturating", seed=0)
    >>> gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    >>> gan.fit(images_in_minus_1_1, epochs=10, batch_size=64)  # doctest: +SKIP
    """

    metric_names = ("d_loss", "g_loss", "d_real", "d_fake", "gradient_penalty", "d_grad_norm", "g_grad_norm")
    default_endpoint = "sample"
    optimizer_names = ("d_optimizer", "g_optimizer")
    default_optimizers = {"d_optimizer": DCGAN_ADAM, "g_optimizer": DCGAN_ADAM}
    nested_models = ("generator", "discriminator")
    # The widths that None stands for. The convolutional variants' default networks are stride-2
    # stages, which `networks.stage_widths` fits to the image size; the original GAN's fully connected
    # layers have no stages and keep their widths at any size.
    base_generator_widths = (256, 512)
    base_discriminator_widths = (512, 256)
    scales_with_image = False

    def __init__(
        self,
        generator=None,
        discriminator=None,
        image_shape=(28, 28, 1),
        latent_dim=64,
        loss="minimax",
        d_steps=1,
        gradient_penalty_weight=0.0,
        fresh_generator_noise=False,
        generator_widths=None,
        discriminator_widths=None,
        mixed_precision=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, mixed_precision=mixed_precision, seed=seed, **kwargs)
        # === Config ===
        self.latent_dim = int(latent_dim)
        self.set_adversarial_loss(loss)
        self.d_steps = int(d_steps)
        self.gradient_penalty_weight = float(gradient_penalty_weight)
        self.fresh_generator_noise = bool(fresh_generator_noise)
        self.generator_widths = self.network_widths(generator_widths, self.base_generator_widths, coarsest_first=True)
        self.discriminator_widths = self.network_widths(discriminator_widths, self.base_discriminator_widths)
        if self.latent_dim < 1 or self.d_steps < 1:
            raise ValueError(f"latent_dim and d_steps must be at least 1, got {latent_dim} and {d_steps}.")
        if self.gradient_penalty_weight < 0:
            raise ValueError(f"gradient_penalty_weight must be 0 or more, got {gradient_penalty_weight}.")
        # === Layers ===
        given = generator is not None and discriminator is not None
        default_generator, default_discriminator = (None, None) if given else self.build_networks()
        self.generator = default_generator if generator is None else generator
        self.discriminator = default_discriminator if discriminator is None else discriminator
        self.check_networks("generator", "discriminator")
        # Real and generated batches go through the discriminator in one call (fewer, larger ops: faster on
        # CPUs) unless it has BatchNorm, whose batch statistics would then mix the two.
        self.joint_discriminator_pass = not has_batch_norm(self.discriminator)
        self.built = True

    # === What variants override ===
    def network_widths(self, widths, base, coarsest_first=False):
        """A widths option as the default network is built with: as given, or for None `base`, scaled
        with the image size when `scales_with_image`."""
        if widths is None and not self.scales_with_image:
            widths = base
        return networks.resolve_widths(widths, self.image_shape, base, coarsest_first)

    def build_networks(self):
        """The default (generator, discriminator): here the original GAN's fully connected networks."""
        generator = networks.mlp_generator(self.image_shape, self.latent_dim, self.generator_widths, dtype=self.network_dtype)
        discriminator = networks.mlp_discriminator(self.image_shape, self.discriminator_widths, dtype=self.network_dtype)
        return generator, discriminator

    def conditioned(self, inputs, labels):
        """What the networks are called with: the inputs alone (a conditional GAN adds the labels)."""
        del labels
        return inputs

    # === The networks, called the same way everywhere ===
    def generate_images(self, z, labels=None, training=False):
        """G(z) in [-1, 1], float32."""
        z = tf.cast(z, tf.float32)
        return tf.cast(self.generator(self.conditioned(z, labels), training=training), tf.float32)

    def discriminate(self, images, labels=None, training=False):
        """The discriminator's raw score of each image, float32 [batch]."""
        images = tf.cast(images, tf.float32)
        scores = self.discriminator(self.conditioned(images, labels), training=training)
        return tf.reshape(tf.cast(scores, tf.float32), [-1])

    def network_interfaces(self):
        def conditioned(port):
            # What `conditioned` passes a conditional GAN's networks: [inputs, labels].
            return [port, networks.Port("label", (), "int64")] if self.num_classes else port

        images = networks.Port("images", self.image_shape)
        sizes = f"Build it for image_shape {self.image_shape} and latent_dim {self.latent_dim}."
        return {
            "generator": networks.Interface(conditioned(networks.Port("z", (self.latent_dim,))), images, sizes),
            "discriminator": networks.Interface(conditioned(images), networks.SCORE, f"A discriminator returns one score per image. {sizes}"),
        }

    # === Inputs ===
    def check_training_images(self, images):
        """Checks a training batch: float images of `image_shape` with values in [-1, 1]."""
        hint = "use data preprocessing 'tanh' (keras_gen.data.load_datasets(..., preprocessing='tanh')) or images / 127.5 - 1."
        return self.check_images_in_range(images, -1.0, 1.0, hint)

    # === Losses, shared by train_step and test_step ===
    def discriminator_losses(self, real, fake, labels=None, training=False):
        """Per-example terms of the discriminator's loss: {d_loss, d_real, d_fake[, gradient_penalty]}."""
        if self.joint_discriminator_pass:
            # Interleaved, not stacked: each example's rows stay one block, so per-row noise (dropout)
            # is the same on any number of replicas (see `noise.interleave`).
            both = noise.interleave([real, tf.cast(fake, real.dtype)])
            both_labels = None if labels is None else noise.interleave([labels, labels])
            real_scores, fake_scores = noise.deinterleave(self.discriminate(both, both_labels, training=training), 2)
        else:
            real_scores = self.discriminate(real, labels, training=training)
            fake_scores = self.discriminate(fake, labels, training=training)
        d_loss = self.d_loss_fn(real_scores, fake_scores)
        terms = {"d_real": self.probabilities(real_scores), "d_fake": self.probabilities(fake_scores)}
        if self.gradient_penalty_weight:

            def critic(images):
                return self.discriminate(images, labels, training=training)

            # Under float16 the inner gradient runs through float16 layers too: scaled by the critic's loss scale.
            penalty = losses.gradient_penalty(critic, real, fake, seed=self.next_seed(), loss_scale=self.loss_scale(self.d_optimizer))
            terms["gradient_penalty"] = penalty
            d_loss = d_loss + self.gradient_penalty_weight * penalty
        terms["d_loss"] = d_loss
        return terms

    def generator_losses(self, fake, labels=None, training=False):
        """Per-example terms of the generator's loss: {g_loss}."""
        return {"g_loss": self.g_loss_fn(self.discriminate(fake, labels, training=training))}

    # === Training ===
    def optimizer_variables(self, name):
        return (self.discriminator if name == "d_optimizer" else self.generator).trainable_variables

    def discriminator_step(self, real, fake, labels):
        """One update of the discriminator on a real and a generated batch; returns its terms."""
        weights = self.discriminator.trainable_weights
        with tf.GradientTape() as tape:
            terms = self.discriminator_losses(real, fake, labels, training=True)
            scaled = self.d_optimizer.scale_loss(losses.global_batch_mean(terms["d_loss"]))
        terms["d_grad_norm"] = self.minimise(self.d_optimizer, tape.gradient(scaled, weights), weights)
        return terms

    def train_step(self, data):
        self.require_optimizers()
        images, labels = self.unpack(data)
        real = self.check_training_images(images)
        batch = tf.shape(real)[0]
        weights = self.generator.trainable_weights
        # One tape for the generator update, paused while the discriminator learns: only the generator
        # pass whose output the generator update uses is recorded.
        with tf.GradientTape() as tape:
            for step in range(self.d_steps):
                keep = step == self.d_steps - 1 and not self.fresh_generator_noise
                with contextlib.nullcontext() if keep else tape.stop_recording():
                    fake = self.generate_images(self.normal([batch, self.latent_dim]), labels, training=True)
                with tape.stop_recording():
                    self.update_metrics(self.discriminator_step(real, fake, labels))
            if self.fresh_generator_noise:
                fake = self.generate_images(self.normal([batch, self.latent_dim]), labels, training=True)
            terms = self.generator_losses(fake, labels, training=True)
            scaled = self.g_optimizer.scale_loss(losses.global_batch_mean(terms["g_loss"]))
        terms["g_grad_norm"] = self.minimise(self.g_optimizer, tape.gradient(scaled, weights), weights)
        return self.update_metrics(terms)

    def test_step(self, data):
        images, labels = self.unpack(data)
        real = self.check_training_images(images)
        fake = self.generate_images(self.normal([tf.shape(real)[0], self.latent_dim]), labels)
        terms = self.discriminator_losses(real, fake, labels)
        terms.update(self.generator_losses(fake, labels))
        return self.update_metrics(terms, only_given=True)

    def call(self, inputs, training=False):
        """Generated images in [0, 1] for `z` (a conditional GAN takes `(z, labels)`); deterministic."""
        z, labels = self.unpack(inputs)
        return self.generate(z, labels)["images"]

    # === Deterministic functions behind the serving endpoints ===
    def generate(self, z, label=None):
        # tanh's [-1, 1] to [0, 1], what the export contract promises.
        return {"images": (self.generate_images(z, label) + 1.0) / 2.0}

    def sample(self, seed, label=None):
        return self.generate(self.normal_from_seeds(seed, self.latent_dim), label)

    def score(self, images, label=None):
        return {"score": self.discriminate(images * 2.0 - 1.0, label)}

    def serving_endpoints(self):
        label = [tf.TensorSpec([None], tf.int64, name="label")] if self.num_classes else []
        return [
            Endpoint("sample", self.sample, [tf.TensorSpec([None], tf.int64, name="seed"), *label]),
            Endpoint("generate", self.generate, [tf.TensorSpec([None, self.latent_dim], tf.float32, name="z"), *label]),
            Endpoint("score", self.score, [tf.TensorSpec([None, *self.image_shape], tf.float32, name="images"), *label], {"images": UNIT_INTERVAL}),
        ]

    # === TensorBoard ===
    def summary_inputs(self, validation_images, num_samples=64, seed=0):
        del validation_images
        if not self.num_classes:
            return {"z": tf.random.stateless_normal([num_samples, self.latent_dim], seed=[seed, 0])}
        # One row per class, ten columns; each column keeps its z across the rows, so a row shows a
        # class and a column one "style".
        columns = 10
        z = tf.random.stateless_normal([columns, self.latent_dim], seed=[seed, 0])
        return {
            "z": tf.tile(z, [self.num_classes, 1]),
            "label": tf.repeat(tf.range(self.num_classes, dtype=tf.int64), columns),
        }

    def summary_images(self, fixed):
        columns = 10 if self.num_classes else 8
        return {"samples": (self.generate(fixed["z"], fixed.get("label"))["images"], columns)}

    # === Serialisation ===
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "latent_dim": self.latent_dim,
                "d_steps": self.d_steps,
                "gradient_penalty_weight": self.gradient_penalty_weight,
                "fresh_generator_noise": self.fresh_generator_noise,
                "generator_widths": list(self.generator_widths),
                "discriminator_widths": list(self.discriminator_widths),
            }
        )
        return config


@register_model("dcgan")
class DCGAN(GAN):
    """DCGAN (Radford et al., 2016): a GAN with convolutional networks and the non-saturating loss.

    The generator projects z, then doubles the resolution with stride-2 transposed convolutions, each
    followed by BatchNorm and ReLU; the discriminator halves it with stride-2 convolutions, BatchNorm
    (not on the first) and LeakyReLU(0.2). Arguments as in `GAN`; the widths are channels, one per
    stride-2 stage, and by default grow with the image (`networks.stage_widths`): the generator's
    (128, 64) and the discriminator's (64, 128) at 28x28 (two stages), four stages at 64x64.

    At 64x64 the layout is the paper's: four stride-2 stages of kernel 4 in each network, the
    discriminator's of (64, 128, 256, 512) channels with BatchNorm on all but the first. The generator
    differs: the paper's projects z to a 4x4 map of 1024 channels and its fourth transposed convolution
    makes the image; this one projects to its first width, 512, makes a 64-channel map with its fourth
    and adds a stride-1 tanh convolution.

    Example:
    >>> dcgan = DCGAN(image_shape=(28, 28, 1), latent_dim=100, seed=0)
    >>> dcgan.compile()
    """

    base_generator_widths = (128, 64)
    base_discriminator_widths = (64, 128)
    scales_with_image = True

    option_defaults = {"latent_dim": 100, "loss": "non_saturating"}

    def build_networks(self):
        generator = networks.conv_generator(self.image_shape, self.latent_dim, self.generator_widths, dtype=self.network_dtype)
        discriminator = networks.conv_discriminator(self.image_shape, self.discriminator_widths, batch_norm=True, dtype=self.network_dtype)
        return generator, discriminator


@register_model("wgan_gp")
class WGANGP(GAN):
    """WGAN-GP (Gulrajani et al., 2017): a Wasserstein critic with a gradient penalty of weight 10,
    updated 5 times per generator update.

    The critic has no BatchNorm (the penalty is defined per example) and kernel 5, with stride-2 stages
    of (64, 128, 256) channels at 28x28 that grow with the image as DCGAN's do; the generator is DCGAN's.
    Arguments as in `GAN`. The paper's optimizer is Adam(1e-4, beta_1=0, beta_2=0.9):
    `compile(d_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9), g_optimizer=...)` (zoo/wgan_gp.toml).

    Example:
    >>> wgan = WGANGP(image_shape=(28, 28, 1), latent_dim=128, seed=0)
    >>> wgan.compile(d_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9), g_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9))
    """

    base_generator_widths = (128, 64)
    base_discriminator_widths = (64, 128, 256)
    scales_with_image = True

    option_defaults = {"latent_dim": 128, "loss": "wasserstein", "d_steps": 5, "gradient_penalty_weight": 10.0}

    def build_networks(self):
        generator = networks.conv_generator(self.image_shape, self.latent_dim, self.generator_widths, dtype=self.network_dtype)
        critic = networks.conv_discriminator(self.image_shape, self.discriminator_widths, kernel_size=5, dtype=self.network_dtype, name="critic")
        return generator, critic


@register_model("cgan")
class CGAN(GAN):
    """A class-conditional GAN (Mirza & Osindero, 2014): both networks read the class label.

    Batches are `(images, labels)` with int64 labels 0..num_classes - 1 (recipe `[data] with_labels =
    true`); the generated images of a step take the real batch's labels. The networks take
    `[inputs, labels]` and read the labels through a learned embedding (the default discriminator
    broadcasts it to extra image channels and uses dropout 0.3); their widths are DCGAN's and grow with
    the image as DCGAN's do. The endpoints take a `label`:
    `sample(seed, label)`, `generate(z, label)`, `score(images, label)`. Other arguments as in `GAN`.

    Args:
        num_classes: number of classes.
        embedding_dim: size of the default networks' label embeddings.

    Example:
    >>> cgan = CGAN(image_shape=(28, 28, 1), latent_dim=64, num_classes=10, seed=0)
    >>> cgan.compile()
    >>> cgan.fit(tf.data.Dataset.from_tensor_slices((images, labels)).batch(64))  # doctest: +SKIP
    """

    base_generator_widths = (128, 64)
    base_discriminator_widths = (64, 128)
    scales_with_image = True

    option_defaults = {"loss": "non_saturating"}

    def __init__(self, *, num_classes=10, embedding_dim=10, **kwargs):
        # Set before GAN.__init__, which builds the default networks from them.
        self.num_classes = int(num_classes)
        self.embedding_dim = int(embedding_dim)
        if self.num_classes < 2 or self.embedding_dim < 1:
            raise ValueError(f"num_classes must be at least 2 and embedding_dim at least 1, got {num_classes} and {embedding_dim}.")
        super().__init__(**kwargs)

    def build_networks(self):
        conditioning = dict(num_classes=self.num_classes, embedding_dim=self.embedding_dim, dtype=self.network_dtype)
        generator = networks.conv_generator(self.image_shape, self.latent_dim, self.generator_widths, **conditioning)
        # Dropout rather than BatchNorm in the discriminator: it sees real and generated batches apart.
        discriminator = networks.conv_discriminator(self.image_shape, self.discriminator_widths, dropout=0.3, **conditioning)
        return generator, discriminator

    def conditioned(self, inputs, labels):
        return [inputs, self.check_labels(labels)]

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "embedding_dim": self.embedding_dim})
        return config
