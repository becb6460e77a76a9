"""Deterministic autoencoders: a convolutional encoder to a bottleneck code and a decoder back.

`Autoencoder` reconstructs its input; `DenoisingAutoencoder` (Vincent et al., 2008) reconstructs the
clean image from a corrupted copy made inside the train step. The two differ by one method,
`corrupted`, so they share `compute_losses`, `train_step` and `test_step`.
"""

import keras_gen  # noqa: F401
import keras
import tensorflow as tf

from keras_gen import corruptions
from keras_gen import losses
from keras_gen import networks
from keras_gen.export import UNIT_INTERVAL
from keras_gen.export import Endpoint
from keras_gen.models.base import GenerativeModel
from keras_gen.registry import register_model

# Mixed into the fixed seed of evaluation-time corruption, away from the training stream.
EVALUATION_SEED_KEY = 0xE7A1


class CodeFunctions:
    """`call`, `encode`, `decode` and `reconstruct` of a model whose `encoder` maps images to a code and
    whose `decoder` maps codes to pixel logits, both run in inference mode: the deterministic functions
    behind the autoencoders' and the adversarial autoencoder's serving endpoints."""

    def call(self, images, training=False):
        """The reconstruction of `images` (no corruption, no noise)."""
        return self.reconstruct(self.check_images(images))["reconstruction"]

    def encode(self, images):
        return {"code": self.encoder(images, training=False)}

    def decode(self, code):
        return {"images": tf.sigmoid(self.decoder(code, training=False))}

    def reconstruct(self, images):
        return {"reconstruction": self.decode(self.encode(images)["code"])["images"]}


@register_model("autoencoder")
class Autoencoder(CodeFunctions, GenerativeModel):
    """A convolutional autoencoder with a bottleneck code of `code_dim` numbers.

    `fit` reports `loss` (the chosen reconstruction loss, averaged over pixels) and `mse` (mean squared
    error of the reconstruction per pixel, comparable whatever the loss). The defaults build
    `networks.ae_encoder` / `networks.ae_decoder`: `filters` and `convs_per_stage` trade width
    against depth, `code_dim` sets the bottleneck.

    Args:
        encoder: a Keras model, images -> code [batch, code_dim]; defaults to `networks.ae_encoder`.
        decoder: a Keras model, code -> logits shaped like the images; defaults to `networks.ae_decoder`.
        image_shape: (height, width, channels) of the images, scaled to [0, 1].
        code_dim: width of the bottleneck code.
        filters: channels of the encoder's stages, finest first (the decoder mirrors them); None:
            `base_filters`, (32, 64), with stages added for larger images (`networks.stage_widths`).
        convs_per_stage: 3x3 convolutions per stage, in the encoder and in the decoder.
        reconstruction_loss: "bce" (binary cross-entropy) or "mse" (squared error).
        mixed_precision: "bfloat16", "float16" or False, as in `GenerativeModel`.
        seed: seed of the model's noise (used by the denoising variant).

    Example:
    >>> autoencoder = Autoencoder(image_shape=(28, 28, 1), code_dim=32, seed=0)
    >>> autoencoder.compile(optimizer="adam")
    >>> autoencoder.fit(images_in_0_1, epochs=5, batch_size=128)  # doctest: +SKIP
    """

    metric_names = ("loss", "mse")
    nested_models = ("encoder", "decoder")
    default_endpoint = "reconstruct"
    # The default networks' filters for 28x28 images, which None scales with the image size.
    base_filters = (32, 64)

    def __init__(
        self,
        encoder=None,
        decoder=None,
        image_shape=(28, 28, 1),
        code_dim=32,
        filters=None,
        convs_per_stage=2,
        reconstruction_loss="bce",
        mixed_precision=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, mixed_precision=mixed_precision, seed=seed, **kwargs)
        if reconstruction_loss not in losses.RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"Unknown reconstruction_loss {reconstruction_loss!r}; expected one of {', '.join(losses.RECONSTRUCTION_LOSSES)}."
            )
        # === Config ===
        self.code_dim = int(code_dim)
        self.filters = networks.resolve_widths(filters, self.image_shape, self.base_filters)
        self.convs_per_stage = int(convs_per_stage)
        self.reconstruction_loss = reconstruction_loss
        # === Layers ===
        self.encoder = encoder or networks.ae_encoder(self.image_shape, self.code_dim, self.filters, self.convs_per_stage, dtype=self.network_dtype)
        self.decoder = decoder or networks.ae_decoder(
            self.image_shape, self.code_dim, self.filters[::-1], self.convs_per_stage, dtype=self.network_dtype
        )
        self.check_networks("encoder", "decoder")
        self.built = True

    def network_interfaces(self):
        code = networks.Port("code", (self.code_dim,))
        sizes = f"Build it for image_shape {self.image_shape} and code_dim {self.code_dim} (code_dim must be the width of the encoder's code)."
        return {
            "encoder": networks.Interface(networks.Port("images", self.image_shape), code, sizes),
            "decoder": networks.Interface(code, networks.Port("logits", self.image_shape), sizes),
        }

    # === The piece the denoising variant overrides ===
    def corrupted(self, images, seed):
        """The encoder's input for clean `images`: the images themselves (no corruption)."""
        del seed
        return images

    def evaluation_seed(self):
        """A fixed seed for evaluation-time noise, so validation losses are comparable across epochs."""
        return tf.constant([self.seed or 0, EVALUATION_SEED_KEY], tf.int32)

    # === Losses, shared by train_step and test_step ===
    def compute_losses(self, images, seed, training=False):
        """Per-example {loss, mse} of reconstructing `images` from `corrupted(images, seed)`."""
        images = self.check_images(images)
        inputs = self.corrupted(images, seed)
        logits = self.decoder(self.encoder(inputs, training=training), training=training)
        squared = tf.square(tf.sigmoid(logits) - images)
        return {
            "loss": losses.reconstruction_loss(self.reconstruction_loss, images, logits),
            "mse": tf.reduce_mean(squared, axis=[1, 2, 3]),
        }

    def train_step(self, data):
        images, _ = self.unpack(data)
        return self.gradient_step(lambda: self.compute_losses(images, self.next_seed(), training=True))

    def test_step(self, data):
        images, _ = self.unpack(data)
        return self.update_metrics(self.compute_losses(images, self.evaluation_seed(), training=False))

    def serving_endpoints(self):
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        code = tf.TensorSpec([None, self.code_dim], tf.float32, name="code")
        return [
            Endpoint("reconstruct", self.reconstruct, [images], {"images": UNIT_INTERVAL}),
            Endpoint("encode", self.encode, [images], {"images": UNIT_INTERVAL}),
            Endpoint("decode", self.decode, [code]),
        ]

    # === TensorBoard ===
    def summary_inputs(self, validation_images, num_samples=64, seed=0):
        del num_samples  # a deterministic autoencoder has nothing to sample
        return {"images": self.check_images(validation_images[:8]), "seed": tf.constant([seed, EVALUATION_SEED_KEY], tf.int32)}

    def summary_images(self, fixed):
        images = fixed["images"]
        # Originals on one row, their reconstructions on the row below.
        pairs = tf.concat([images, self.reconstruct(images)["reconstruction"]], axis=0)
        return {"reconstructions": (pairs, int(images.shape[0]))}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "code_dim": self.code_dim,
                "filters": list(self.filters),
                "convs_per_stage": self.convs_per_stage,
                "reconstruction_loss": self.reconstruction_loss,
            }
        )
        return config


@register_model("denoising_autoencoder")
class DenoisingAutoencoder(Autoencoder):
    """An autoencoder trained to reconstruct clean images from corrupted ones.

    Each train step corrupts its batch afresh with noise from the model's seed generator; `test_step`
    (and so `validation_data` and `evaluate`) corrupts with a fixed seed, so that its `loss` and `mse`
    (of the clean images, reconstructed from corrupted inputs) are comparable from epoch to epoch.
    The serving endpoints apply no corruption: `reconstruct` denoises whatever it is given.

    Args:
        corruption: "gaussian", "salt_and_pepper" or "masking" (see `keras_gen.corruptions`).
        corruption_strength: the noise's standard deviation (gaussian) or the fraction of pixels hit
            (salt_and_pepper, masking).
        **kwargs: the options of `Autoencoder`.

    Example:
    >>> denoiser = DenoisingAutoencoder(corruption="masking", corruption_strength=0.3, seed=0)
    >>> denoiser.compile(optimizer="adam")
    >>> denoiser.fit(images_in_0_1, epochs=5, batch_size=128)  # doctest: +SKIP
    """

    def __init__(self, *, corruption="masking", corruption_strength=0.25, **kwargs):
        corruptions.check(corruption, corruption_strength)
        super().__init__(**kwargs)
        self.corruption = corruption
        self.corruption_strength = float(corruption_strength)

    def corrupted(self, images, seed):
        return corruptions.corrupt(self.corruption, images, self.corruption_strength, seed)

    def summary_images(self, fixed):
        images = fixed["images"]
        noisy = self.corrupted(images, fixed["seed"])
        # Rows: originals, their corrupted copies, what the model makes of the corrupted copies.
        rows = tf.concat([images, noisy, self.reconstruct(noisy)["reconstruction"]], axis=0)
        return {**super().summary_images(fixed), "denoising": (rows, int(images.shape[0]))}

    def get_config(self):
        config = super().get_config()
        config.update({"corruption": self.corruption, "corruption_strength": self.corruption_strength})
        return config
