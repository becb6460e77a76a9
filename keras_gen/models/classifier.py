"""A shallow classifier on an encoder's code, for pre-training on unlabeled images then few labels.

`SemiSupervisedClassifier` is an ordinary Keras model (images -> class probabilities) that trains
with `fit` on `(images, labels)`. With `freeze_encoder=True` only the head learns and the encoder,
BatchNorm included, runs in inference mode, so neither its weights nor its moving statistics move.

Its zoo recipe is more than one `fit` (pre-train an autoencoder, then frozen, fine-tuned and
from-scratch classifiers): the semi-supervised pipeline, `keras_gen.pipelines.semi_supervised`, which
composes this model with the pre-trained encoder and the labels; the model knows nothing of it.
"""

import keras_gen  # noqa: F401
import keras
import tensorflow as tf

from keras_gen import corruptions
from keras_gen import distributions
from keras_gen import losses
from keras_gen import networks
from keras_gen import noise
from keras_gen.export import UNIT_INTERVAL
from keras_gen.export import Endpoint
from keras_gen.models.base import GenerativeModel
from keras_gen.registry import register_model


@register_model("semi_supervised")
class SemiSupervisedClassifier(GenerativeModel):
    """A classifier made of an encoder (images -> code) and a shallow head (code -> class logits).

    `fit` takes `(images, int labels)` and reports `loss` (cross-entropy in nats) and `accuracy`.

    Given the pre-trained autoencoder's `decoder` and a `reconstruction_weight`, a fine-tuned encoder
    keeps learning to reconstruct unlabeled images while it learns the labels (the semi-supervised
    autoencoder of Ranzato & Szummer, 2008): batches are then `(images, labels, unlabeled_images)`,
    the step minimises cross-entropy + `reconstruction_weight` * the decoder's per-pixel binary
    cross-entropy on the unlabeled images, and `fit` also reports `reconstruction`.

    With a `consistency_weight`, a fine-tuned classifier also learns from its own confident predictions
    on unlabeled images (pseudo-labels, as in FixMatch, Sohn et al., 2020): each unlabeled image is
    classified as it is, in inference mode and without gradient; where the top probability reaches
    `confidence_threshold`, that class becomes the target of the cross-entropy on an augmented copy of
    the image (mirrored with probability 1/2, shifted by up to `augment_shift` pixels each way, then a
    `augment_masking` fraction of its pixels set to 0). The step adds `consistency_weight` times the
    unlabeled batch's mean of that term (0 where not confident), and `fit` also reports `consistency` and
    `confident` (the share of unlabeled images above the threshold).

    The pseudo-labels may also come with the data: batches `(images, labels, (unlabeled_images,
    pseudo_labels, weights))`, e.g. from label propagation on the codes of all training images
    (`keras_gen.pipelines.semi_supervised.propagate_labels`, after Iscen et al., 2019). The term is then each
    image's weight times the cross-entropy of its augmented copy against its given pseudo-label, the
    threshold is not used, and `confident` reports the mean weight.

    Both unlabeled terms are off while the encoder is frozen, and batches without unlabeled images
    train on the labels alone.

    Args:
        encoder: a Keras model, images -> code [batch, code_dim], e.g. a pre-trained autoencoder's
            encoder; defaults to a freshly initialised `networks.ae_encoder`.
        image_shape: (height, width, channels) of the images, scaled to [0, 1].
        num_classes: number of classes; labels are integers in [0, num_classes).
        code_dim: width of the encoder's code (must match a given encoder's).
        filters: stages of the default encoder (as `networks.ae_encoder`); None: `base_filters`, (32, 64),
            with stages added for larger images (`networks.stage_widths`).
        convs_per_stage: depth of each stage of the default encoder.
        hidden_units: width of the head's one hidden layer (0: logistic regression on the code).
        dropout: dropout rate on the code while training.
        freeze_encoder: train the head only; the encoder (BatchNorm too) stays in inference mode.
        decoder: a Keras model, code -> image logits (the pre-trained autoencoder's), for the
            reconstruction term; None for none.
        reconstruction_weight: weight of the reconstruction term (0: none).
        consistency_weight: weight of the pseudo-label term on unlabeled images (0: none).
        confidence_threshold: the top class probability from which an unlabeled image gets a pseudo-label.
        augment_shift: most pixels the augmented copy is shifted along each axis.
        augment_masking: fraction of the augmented copy's pixels set to 0.
        mixed_precision: "bfloat16", "float16" or False, as in `GenerativeModel` (a given encoder keeps its policy).
        seed: seed of the dropout noise.

    Example:
    >>> classifier = SemiSupervisedClassifier(encoder=autoencoder.encoder, code_dim=32, freeze_encoder=True)
    >>> classifier.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> classifier.fit(images, labels, epochs=50, batch_size=32)  # doctest: +SKIP
    """

    metric_names = ("loss", "accuracy")
    nested_models = ("encoder", "decoder")
    default_endpoint = "classify"
    # Its recipes written before pipelines had names run the semi-supervised pipeline (a name, not an import).
    recipe_pipeline = "semi_supervised"
    # The default encoder's filters for 28x28 images (the autoencoders'), which None scales with the image size.
    base_filters = (32, 64)

    def __init__(
        self,
        encoder=None,
        image_shape=(28, 28, 1),
        num_classes=10,
        code_dim=32,
        filters=None,
        convs_per_stage=2,
        hidden_units=0,
        dropout=0.0,
        freeze_encoder=False,
        decoder=None,
        reconstruction_weight=0.0,
        consistency_weight=0.0,
        confidence_threshold=0.95,
        augment_shift=1,
        augment_masking=0.0,
        mixed_precision=False,
        seed=None,
        **kwargs,
    ):
        if reconstruction_weight < 0 or (reconstruction_weight and decoder is None):
            raise ValueError(
                f"reconstruction_weight must be 0, or positive with a decoder (code -> image logits); got {reconstruction_weight} "
                f"and {'no decoder' if decoder is None else 'a decoder'}."
            )
        if consistency_weight < 0 or not 0.0 < confidence_threshold <= 1.0:
            raise ValueError(
                f"consistency_weight must be 0 or more and confidence_threshold a probability in (0, 1]; got {consistency_weight} "
                f"and {confidence_threshold}."
            )
        if isinstance(augment_shift, bool) or not isinstance(augment_shift, int) or augment_shift < 0:
            raise ValueError(f"augment_shift is a number of pixels (an int >= 0), got {augment_shift!r}.")
        corruptions.check("masking", augment_masking)
        # Set before GenerativeModel.__init__, which makes one tracker per metric name.
        self.reconstruction_weight = float(reconstruction_weight)
        self.consistency_weight = float(consistency_weight)
        extra_metrics = ("reconstruction",) if self.reconstruction_weight else ()
        extra_metrics += ("consistency", "confident") if self.consistency_weight else ()
        if extra_metrics:
            self.metric_names = (*type(self).metric_names, *extra_metrics)
        super().__init__(image_shape=image_shape, mixed_precision=mixed_precision, seed=seed, **kwargs)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is a rate in [0, 1), got {dropout}.")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
        # === Config ===
        self.num_classes = int(num_classes)
        self.code_dim = int(code_dim)
        self.filters = networks.resolve_widths(filters, self.image_shape, self.base_filters)
        self.convs_per_stage = int(convs_per_stage)
        self.hidden_units = int(hidden_units)
        self.dropout = float(dropout)
        self.confidence_threshold = float(confidence_threshold)
        self.augment_shift = int(augment_shift)
        self.augment_masking = float(augment_masking)
        # === Layers ===
        self.encoder = encoder or networks.ae_encoder(self.image_shape, self.code_dim, self.filters, self.convs_per_stage, dtype=self.network_dtype)
        self.head = networks.code_classifier(self.code_dim, self.num_classes, self.hidden_units, dtype=self.network_dtype)
        self.decoder = decoder
        self.check_networks("encoder", "head", "decoder")
        self.set_encoder_frozen(freeze_encoder)
        self.built = True

    def network_interfaces(self):
        code = networks.Port("code", (self.code_dim,))
        sizes = f"Build it for image_shape {self.image_shape} and code_dim {self.code_dim} (code_dim must be the width of the encoder's code)."
        return {
            "encoder": networks.Interface(networks.Port("images", self.image_shape), code, sizes),
            "head": networks.Interface(code, networks.Port("logits", (self.num_classes,)), sizes),
            "decoder": networks.Interface(code, networks.Port("logits", self.image_shape), f"{sizes} The decoder is the pre-trained autoencoder's."),
        }

    def set_encoder_frozen(self, frozen):
        """Freezes (or unfreezes) the encoder; compile again afterwards, as for any change of `trainable`.

        A non-trainable Keras BatchNormalization runs in inference mode, so freezing also keeps its
        moving statistics fixed.
        """
        self.freeze_encoder = bool(frozen)
        self.encoder.trainable = not self.freeze_encoder
        if self.decoder is not None:
            # The decoder only serves the reconstruction term, which is on while the encoder learns.
            self.decoder.trainable = not self.freeze_encoder

    # === Losses, shared by train_step and test_step ===
    def logits(self, images, training=False):
        code = self.encoder(images, training=training and not self.freeze_encoder)
        if training and self.dropout:
            keep = noise.uniform(tf.shape(code), self.next_seed(), code.dtype) >= self.dropout
            code = tf.where(keep, code / (1.0 - self.dropout), tf.zeros_like(code))
        return self.head(code, training=training)

    def compute_losses(self, images, labels, training=False):
        """Per-example {loss (cross-entropy, nats), accuracy (0 or 1)}."""
        images = self.check_images(images)
        labels = self.check_labels(labels)
        logits = self.logits(images, training=training)
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int64)
        return {
            "loss": -distributions.tfd.Categorical(logits=logits).log_prob(labels),
            "accuracy": tf.cast(tf.equal(predicted, labels), logits.dtype),
        }

    def reconstruction(self, images):
        """Per-image binary cross-entropy (per pixel) of the decoder's reconstruction of `images`."""
        images = self.check_images(images)
        logits = self.decoder(self.encoder(images, training=True), training=True)
        return losses.reconstruction_loss("bce", images, tf.cast(logits, tf.float32))

    def augment(self, images):
        """A randomly mirrored, shifted and masked copy of each image (see the class docstring)."""
        flip_seed, shift_seed, mask_seed = tf.unstack(tf.random.experimental.stateless_split(self.next_seed(), num=3))
        batch = tf.shape(images)[0]
        mirror = noise.uniform([batch, 1, 1, 1], flip_seed) < 0.5
        images = tf.where(mirror, tf.reverse(images, axis=[2]), images)
        if self.augment_shift:
            shift = noise.replica_rows(
                lambda rows: tf.random.stateless_uniform(
                    [rows, 2], seed=shift_seed, minval=-self.augment_shift, maxval=self.augment_shift + 1, dtype=tf.int32
                ),
                batch,
            )
            shift = tf.cast(shift, images.dtype)
            ones, zeros = tf.ones([batch], images.dtype), tf.zeros([batch], images.dtype)
            # Output pixel (x, y) reads input pixel (x + dx, y + dy); what comes in from outside is 0.
            transform = tf.stack([ones, zeros, shift[:, 0], zeros, ones, shift[:, 1], zeros, zeros], axis=1)
            images = keras.ops.image.affine_transform(images, transform, interpolation="nearest", fill_mode="constant")
        return corruptions.masking(images, self.augment_masking, mask_seed)

    def consistency(self, unlabeled, pseudo_labels=None, weights=None):
        """Per unlabeled image: (its weight times the cross-entropy of its augmented copy against its
        pseudo-label; its weight).

        Without given `pseudo_labels` (and `weights` [batch], >= 0), the pseudo-label is the model's own
        prediction on the image and the weight is 1 where that prediction is confident, else 0.
        """
        unlabeled = self.check_images(unlabeled)
        if pseudo_labels is None:
            probabilities = tf.stop_gradient(tf.nn.softmax(self.logits(unlabeled, training=False)))
            weights = tf.cast(tf.reduce_max(probabilities, axis=-1) >= self.confidence_threshold, tf.float32)
            pseudo_labels = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        else:
            pseudo_labels = self.check_labels(pseudo_labels)
            weights = tf.cast(weights, tf.float32)
            if weights.shape.rank != 1:
                raise ValueError(f"Pseudo-label weights must have shape [batch] (one per unlabeled image), got {weights.shape}.")
        logits = tf.cast(self.logits(self.augment(unlabeled), training=True), tf.float32)
        cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=pseudo_labels, logits=logits)
        return weights * cross_entropy, weights

    def train_step(self, data):
        images, labels = self.unpack(data)
        unlabeled = data[2] if isinstance(data, (tuple, list)) and len(data) > 2 else None
        given = ()
        if isinstance(unlabeled, (tuple, list)):
            if len(unlabeled) != 3:
                raise ValueError(
                    "The unlabeled part of a batch is images, or (images, pseudo_labels, weights); "
                    f"got a tuple of {len(unlabeled)}."
                )
            unlabeled, *given = unlabeled
        if unlabeled is None or self.freeze_encoder or not (self.reconstruction_weight or self.consistency_weight):
            return self.gradient_step(lambda: self.compute_losses(images, labels, training=True))

        def loss_terms():
            terms = self.compute_losses(images, labels, training=True)
            # Each unlabeled term enters as its unlabeled batch's mean, added to every labeled example's loss:
            # the step's mean objective is cross-entropy + weight * term, whatever the two batch sizes.
            objective = terms["loss"]
            if self.reconstruction_weight:
                terms["reconstruction"] = self.reconstruction(unlabeled)
                objective += self.reconstruction_weight * tf.reduce_mean(terms["reconstruction"])
            if self.consistency_weight:
                terms["consistency"], terms["confident"] = self.consistency(unlabeled, *given)
                objective += self.consistency_weight * tf.reduce_mean(terms["consistency"])
            terms["objective"] = objective
            return terms

        return self.gradient_step(loss_terms, "objective")

    def test_step(self, data):
        images, labels = self.unpack(data)
        terms = self.compute_losses(images, labels, training=False)
        # Evaluation scores the labels only; a `val_reconstruction` of zero would mislead.
        return self.update_metrics(terms, only_given=True)

    def call(self, images, training=False):
        """Class probabilities [batch, num_classes]."""
        return tf.nn.softmax(self.logits(self.check_images(images), training=training))

    # === Serving ===
    def classify(self, images):
        probabilities = tf.nn.softmax(self.logits(images, training=False))
        return {"probabilities": probabilities, "label": tf.argmax(probabilities, axis=-1, output_type=tf.int64)}

    def serving_endpoints(self):
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        return [Endpoint("classify", self.classify, [images], {"images": UNIT_INTERVAL})]

    # === TensorBoard: scalars only ===
    def summary_inputs(self, validation_images, num_samples=64, seed=0):
        return {}

    def summary_images(self, fixed):
        return {}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "code_dim": self.code_dim,
                "filters": list(self.filters),
                "convs_per_stage": self.convs_per_stage,
                "hidden_units": self.hidden_units,
                "dropout": self.dropout,
                "freeze_encoder": self.freeze_encoder,
                "reconstruction_weight": self.reconstruction_weight,
                "consistency_weight": self.consistency_weight,
                "confidence_threshold": self.confidence_threshold,
                "augment_shift": self.augment_shift,
                "augment_masking": self.augment_masking,
            }
        )
        return config
