"""The conditional VAE (Sohn et al., 2015): the class label is fed to both encoder and decoder.

With the class given, the code z is free to hold what the label does not say (the "style": brightness,
width), so decoding one z under each of the ten labels keeps the style and changes the class.
Only `posterior` and `decoder_logits` differ from the VAE (and the default networks); the loss and the training step are the VAE's.
"""

import keras_gen  # noqa: F401
import tensorflow as tf

from keras_gen import distributions
from keras_gen import networks
from keras_gen.export import UNIT_INTERVAL
from keras_gen.export import Endpoint
from keras_gen.models.vae import VAE
from keras_gen.registry import register_model


@register_model("cvae")
class CVAE(VAE):
    """A VAE whose encoder q(z | x, y) and decoder p(x | z, y) both read the class label y.

    Batches are `(images, labels)` with int64 labels 0..num_classes - 1 (recipe `[data] with_labels =
    true`, or `data.load_datasets(..., with_labels=True)`). The prior stays N(0, I).

    Args:
        num_classes: number of classes.
        encoder: a Keras model, [images, labels] -> [mean, log_variance]; defaults to
            `networks.conditional_conv_encoder`.
        decoder: a Keras model, [z, labels] -> logits shaped like the images; defaults to
            `networks.conditional_conv_decoder`.
        **kwargs: the other options of `VAE`.

    Example:
    >>> cvae = CVAE(image_shape=(28, 28, 1), latent_dim=16, num_classes=10, seed=0)
    >>> cvae.compile(optimizer="adam")
    >>> cvae.fit(tf.data.Dataset.from_tensor_slices((images, labels)).batch(128))  # doctest: +SKIP
    """

    def __init__(self, *, num_classes=10, **kwargs):
        # Set before the VAE's constructor, which builds the default networks from it.
        self.num_classes = int(num_classes)
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
        super().__init__(**kwargs)

    def build_networks(self):
        encoder = networks.conditional_conv_encoder(self.image_shape, self.latent_dim, self.num_classes, self.filters, dtype=self.network_dtype)
        decoder = networks.conditional_conv_decoder(self.image_shape, self.latent_dim, self.num_classes, self.filters[::-1], dtype=self.network_dtype)
        return encoder, decoder

    # === The pieces that differ from the VAE ===
    def network_interfaces(self):
        # The VAE's, with the label beside each network's input: [images, labels] and [z, labels].
        labels = networks.Port("labels", (), "int64")
        return {role: interface._replace(inputs=[interface.inputs, labels]) for role, interface in super().network_interfaces().items()}

    def posterior(self, images, labels=None, training=False):
        mean, log_variance = self.encoder([images, self.check_labels(labels)], training=training)
        return distributions.diagonal_gaussian(mean, log_variance)

    def decoder_logits(self, z, labels=None, training=False):
        return self.decoder([z, self.check_labels(labels)], training=training)

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
