"""The conditional VAE (Sohn et al., 2015): the class label is fed to both encoder and decoder.

With the class given, the code z is free to hold what the label does not say (the "style": brightness,
width), so decoding one z under each of the ten labels keeps the style and changes the class.
Only `posterior` and `likelihood` differ from the VAE; the loss and the training step are the VAE's.
"""

import keras_gen  # noqa: F401
import tensorflow as tf

from keras_gen import distributions
from keras_gen import networks
from keras_gen.export import UNIT_INTERVAL
from keras_gen.export import Endpoint
from keras_gen.models.base import mixed_precision_policy
from keras_gen.models.vae import VAE
from keras_gen.registry import register_model


@register_model("cvae")
class CVAE(VAE):
    """A VAE whose encoder q(z | x, y) and decoder p(x | z, y) both read the class label y.

    Batches are `(images, labels)` with int64 labels 0..num_classes - 1 (recipe `[data] with_labels =
    true`, or `data.load_datasets(..., with_labels=True)`). The prior stays N(0, I).

    Args:
        encoder: a Keras model, [images, labels] -> [mean, log_variance]; defaults to
            `networks.conditional_conv_encoder`.
        decoder: a Keras model, [z, labels] -> logits shaped like the images; defaults to
            `networks.conditional_conv_decoder`.
        image_shape: (height, width, channels) of the images.
        latent_dim: size of z.
        num_classes: number of classes.
        likelihood: "bernoulli" or "gaussian".
        beta: weight of the KL term in the training objective.
        kl_warmup_epochs: epochs over which the KL weight ramps from 0 to `beta`.
        filters: channels of the default encoder's stride-2 convolutions, finest first (the decoder
            mirrors them); None: the VAE's `base_filters`, scaled with the image size.
        mixed_precision: "bfloat16", "float16" or False, as in `GenerativeModel`.
        seed: seed of the reparameterisation noise.

    Example:
    >>> cvae = CVAE(image_shape=(28, 28, 1), latent_dim=16, num_classes=10, seed=0)
    >>> cvae.compile(optimizer="adam")
    >>> cvae.fit(tf.data.Dataset.from_tensor_slices((images, labels)).batch(128))  # doctest: +SKIP
    """

    def __init__(
        self,
        encoder=None,
        decoder=None,
        image_shape=(28, 28, 1),
        latent_dim=16,
        num_classes=10,
        likelihood="bernoulli",
        beta=1.0,
        kl_warmup_epochs=0,
        filters=None,
        mixed_precision=False,
        seed=None,
        **kwargs,
    ):
        self.num_classes = int(num_classes)
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
        image_shape = tuple(int(d) for d in image_shape)
        filters = networks.resolve_widths(filters, image_shape, self.base_filters)
        dtype = mixed_precision_policy(mixed_precision)
        encoder = encoder or networks.conditional_conv_encoder(image_shape, latent_dim, self.num_classes, filters, dtype=dtype)
        decoder = decoder or networks.conditional_conv_decoder(image_shape, latent_dim, self.num_classes, filters[::-1], dtype=dtype)
        super().__init__(
            encoder=encoder,
            decoder=decoder,
            image_shape=image_shape,
            latent_dim=latent_dim,
            likelihood=likelihood,
            beta=beta,
            kl_warmup_epochs=kl_warmup_epochs,
            filters=filters,
            mixed_precision=mixed_precision,
            seed=seed,
            **kwargs,
        )

    def check_labels(self, labels):
        """Checks class labels and returns them as int64 [batch].

        Shape and dtype errors are raised at trace time; a label outside 0..num_classes - 1 fails the
        step (or the serving call) with an InvalidArgumentError naming the valid range.
        """
        if labels is None:
            raise ValueError(
                f"{type(self).__name__} needs a class label per image: fit it on (images, labels) batches "
                "(recipe `[data] with_labels = true`, or data.load_datasets(..., with_labels=True))."
            )
        labels = tf.convert_to_tensor(labels)
        if not labels.dtype.is_integer:
            raise ValueError(f"labels must be integer class ids 0..{self.num_classes - 1}, got dtype {labels.dtype.name}.")
        if labels.shape.rank != 1:
            raise ValueError(f"labels must have shape [batch] (one class id per image), got {labels.shape}.")
        labels = tf.cast(labels, tf.int64)
        message = f"labels must be class ids in [0, {self.num_classes}) for this {self.num_classes}-class model"
        checks = [
            tf.debugging.assert_non_negative(labels, message=message),
            tf.debugging.assert_less(labels, tf.constant(self.num_classes, tf.int64), message=message),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(labels)

    # === The pieces that differ from the VAE ===
    def network_interfaces(self):
        # The VAE's, with the label beside each network's input: [images, labels] and [z, labels].
        labels = networks.Port("labels", (), "int64")
        return {role: interface._replace(inputs=[interface.inputs, labels]) for role, interface in super().network_interfaces().items()}

    def posterior(self, images, labels=None, training=False):
        mean, log_variance = self.encoder([images, self.check_labels(labels)], training=training)
        return distributions.diagonal_gaussian(mean, log_variance)

    def likelihood(self, z, labels=None, training=False):
        logits = self.decoder([z, self.check_labels(labels)], training=training)
        return distributions.image_likelihood(self.likelihood_kind, logits, self.log_scale)

    def call(self, inputs, training=False):
        """The mean reconstruction of `(images, labels)` through the posterior mean (deterministic)."""
        images, labels = inputs
        return self.reconstruct(self.check_images(images), labels)["reconstruction"]

    # === Deterministic functions behind the serving endpoints ===
    def encode(self, images, label):
        images = tf.convert_to_tensor(images, tf.float32)  # a functional model takes all-tensor input lists
        mean, log_variance = self.encoder([images, self.check_labels(label)], training=False)
        return {"mean": mean, "log_variance": log_variance}

    def decode(self, z, label):
        logits = self.decoder([tf.convert_to_tensor(z, tf.float32), self.check_labels(label)], training=False)
        return {"images": distributions.likelihood_mean(self.likelihood_kind, logits)}

    def reconstruct(self, images, label):
        return {"reconstruction": self.decode(self.encode(images, label)["mean"], label)["images"]}

    def sample(self, seed, label):
        return self.decode(self.normal_from_seeds(seed, self.latent_dim), label)

    def serving_endpoints(self):
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        label = tf.TensorSpec([None], tf.int64, name="label")
        return [
            Endpoint("reconstruct", self.reconstruct, [images, label], {"images": UNIT_INTERVAL}),
            Endpoint("encode", self.encode, [images, label], {"images": UNIT_INTERVAL}),
            Endpoint("decode", self.decode, [tf.TensorSpec([None, self.latent_dim], tf.float32, name="z"), label]),
            Endpoint("sample", self.sample, [tf.TensorSpec([None], tf.int64, name="seed"), label]),
        ]

    # === TensorBoard ===
    def summary_inputs(self, validation_images, num_samples=64, seed=0):
        # The callback has no validation labels, so the grid is drawn from fixed codes alone.
        columns = max(1, min(8, num_samples))
        return {"z": tf.random.stateless_normal([columns, self.latent_dim], seed=[seed, 0])}

    def summary_images(self, fixed):
        """One row per class, one fixed z per column: down a column the style stays and the class changes."""
        z = fixed["z"]
        columns = int(z.shape[0])
        labels = tf.repeat(tf.range(self.num_classes, dtype=tf.int64), columns)
        images = self.decode(tf.tile(z, [self.num_classes, 1]), labels)["images"]
        return {"class_samples": (images, columns)}

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config
