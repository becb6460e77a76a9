"""Feature spaces: images -> feature vectors, chosen by name (`feature_space("inception")`).

- `inception`: Inception-v3's 2048-d average-pool features (Keras Applications' `InceptionV3(include_top=False,
  pooling="avg")` with ImageNet weights), the space of the standard FID. Images in [0, 1] are resized to
  299x299 with the bilinear resize (`tf.image.resize`, half-pixel centres, no antialiasing, as
  TTUR's and pytorch-fid's reference code resize) and scaled to Inception's [-1, 1]; greyscale images
  are replicated to three channels. Keras' ImageNet weights are not the 2015 graph the FID papers
  used, so published FIDs and these agree closely, not to the digit.
- `classifier:DIR`: the 128-d embedding of a classifier trained by `python -m keras_gen.feature_extractor
  --data SOURCE` on the model's dataset (DIR holds its weights and manifest).
- `fashion_mnist`: the classifier that ships with keras_gen, trained on Fashion-MNIST (28x28x1 only).

Every space records which weights it runs (`description`: path and sha256), and reads images batch by
batch, so memory stays bounded whatever the number of images.

Example:
>>> space = feature_space("inception", weights="inception_v3_notop.h5")  # doctest: +SKIP
>>> features, logits = space(images_in_0_1)  # [n, 2048], None
"""

import os
import pathlib

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf

from keras_gen import feature_extractor
from keras_gen.feature_extractor import FeatureExtractorError

FEATURE_SPACES = ("inception", "classifier:DIR", "fashion_mnist")
INCEPTION_SIZE = 299
# The file Keras Applications downloads for `InceptionV3(include_top=False, weights="imagenet")`, and
# where Keras keeps it (`keras.utils.get_file`'s cache: $KERAS_HOME/models, else ~/.keras/models).
INCEPTION_WEIGHTS_NAME = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + INCEPTION_WEIGHTS_NAME


class FeatureSpace:
    """Maps images to feature vectors (and, for a classifier, class predictions), batch by batch.

    Args:
        model: a Keras model, images -> features, or images -> [features, class logits]. None: the
            shipped Fashion-MNIST classifier (`feature_extractor.load_classifier()`), embedding and logits.
        batch_size: images per forward pass.
        description: what the space is, for the output: {"features": name, "weights": path, "sha256": ...}.

    Example:
    >>> space = FeatureSpace()
    >>> features, logits = space(images_in_0_1)  # [n, 128], [n, 10]
    """

    reader = "The Fashion-MNIST classifier"

    def __init__(self, model=None, batch_size=500, description=None):
        if model is None:
            model, description = _classifier_model(feature_extractor.ASSETS_DIR, "fashion_mnist")
        self.model = model
        self.batch_size = int(batch_size)
        self.image_shape = tuple(model.inputs[0].shape[1:])
        self.has_classes = len(model.outputs) == 2
        self.dim = int(model.outputs[0].shape[-1])
        self.description = dict(description or {"features": "custom", "weights": None, "sha256": None})
        self._forward = tf.function(
            lambda images: model(images, training=False),
            input_signature=[tf.TensorSpec([None, *self.image_shape], tf.float32)],
        )

    def summary(self):
        """One line naming the features and the weights (with their sha256) that made them."""
        text = f"{self.description['features']} features ({self.dim}-d)"
        if self.description.get("weights"):
            text += f", weights {self.description['weights']} (sha256 {self.description['sha256']})"
        return text

    def check(self, images):
        return feature_extractor.check_images(images, self.image_shape, self.reader)

    def _batch(self, images):
        """Model inputs for one batch of checked images."""
        return tf.constant(images)

    def __call__(self, images):
        """(features float32 [n, d], logits float32 [n, classes] or None) of images in [0, 1]."""
        images = self.check(images)
        features, logits = [], []
        for start in range(0, len(images), self.batch_size):
            outputs = self._forward(self._batch(images[start : start + self.batch_size]))
            if self.has_classes:
                features.append(outputs[0].numpy())
                logits.append(outputs[1].numpy())
            else:
                features.append(outputs.numpy())
        features = np.concatenate(features) if features else np.zeros((0, self.dim), np.float32)
        return features, (np.concatenate(logits) if logits else None)


def _classifier_model(folder, name):
    classifier = feature_extractor.load_classifier(folder)
    manifest_file = feature_extractor.manifest_path(folder)
    manifest = feature_extractor.read_manifest(manifest_file)
    weights = manifest_file.parent / manifest.get("weights", feature_extractor.WEIGHTS_NAME)
    description = {
        "features": name,
        "weights": str(weights),
        "sha256": manifest["sha256"],
        "dataset": (manifest.get("dataset") or {}).get("name", "fashion_mnist"),
        "test_accuracy": manifest.get("test_accuracy"),
    }
    return feature_extractor.feature_model(classifier), description


def classifier_space(folder, batch_size=500):
    """The `classifier:DIR` space: the embedding and logits of the classifier whose manifest is in `folder`."""
    model, description = _classifier_model(folder, f"classifier:{folder}")
    space = FeatureSpace(model, batch_size, description)
    space.reader = f"The classifier in {folder} (trained on {description['dataset']})"
    return space


def keras_cache_dir():
    """The folder where `keras.utils.get_file` keeps downloaded model weights."""
    return pathlib.Path(os.environ.get("KERAS_HOME", pathlib.Path("~/.keras").expanduser())) / "models"


def inception_weights_path(weights=None):
    """The Inception-v3 weights file to load: `weights`, else the one in Keras' cache. Never downloads.

    Raises:
        FeatureExtractorError: the file is missing, saying where Keras looks and how to place it.
    """
    if weights is not None:
        path = pathlib.Path(weights).expanduser()
        if not path.is_file():
            raise FeatureExtractorError(f"No Inception-v3 weights file at {path} (--feature-weights).")
        return path
    path = keras_cache_dir() / INCEPTION_WEIGHTS_NAME
    if not path.is_file():
        raise FeatureExtractorError(
            f"Inception-v3 weights are not on this machine: Keras looks for {path} (KERAS_HOME/models/, by default "
            f"~/.keras/models/). keras_gen does not download them (offline it would hang). On a machine with internet "
            f"access, fetch {INCEPTION_WEIGHTS_URL} (or run keras.applications.InceptionV3(include_top=False, "
            f"weights='imagenet') once), copy the file to {path}, or pass it with --feature-weights FILE."
        )
    return path


class InceptionFeatures(FeatureSpace):
    """The `inception` space: Inception-v3 average-pool features, 2048-d (see the module docstring).

    Args:
        weights: an Inception-v3 (no top) weights file; None: Keras' cached ImageNet weights.
        batch_size: images per forward pass (50 at 299x299x3 is about 54 MB of input).
        input_size: the side images are resized to. 299 is Inception's and FID's; smaller sizes (at least
            75) only make tests quicker, and their numbers are not FIDs.
    """

    reader = "Inception-v3"

    def __init__(self, weights=None, batch_size=50, input_size=INCEPTION_SIZE):
        path = inception_weights_path(weights)
        sha256 = feature_extractor.sha256_of(path)
        model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None, input_shape=(input_size, input_size, 3))
        feature_extractor.load_weights_or_refuse(
            model,
            path,
            sha256,
            "is not a weights file of Keras' InceptionV3(include_top=False)",
            f"Pass {INCEPTION_WEIGHTS_NAME} from Keras Applications, or a file written by model.save_weights() of that architecture.",
        )
        self.input_size = int(input_size)
        self.model = model
        self.batch_size = int(batch_size)
        self.image_shape = None  # any height and width, 1 or 3 channels
        self.has_classes = False
        self.dim = int(model.outputs[0].shape[-1])
        name = "inception" if input_size == INCEPTION_SIZE else f"inception at {input_size}x{input_size} (not FID)"
        self.description = {"features": name, "weights": str(path), "sha256": sha256}
        size = [self.input_size, self.input_size]

        def forward(images):
            resized = tf.image.resize(images, size, method="bilinear")
            return model(resized * 2.0 - 1.0, training=False)

        self._forward = tf.function(forward, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])

    def check(self, images):
        images = np.asarray(images)
        if images.dtype == np.uint8:
            raise FeatureExtractorError("Inception-v3 reads float images in [0, 1], got uint8 pixels: divide by 255 first.")
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 3) or min(images.shape[1:3], default=0) < 1:
            raise FeatureExtractorError(f"Inception-v3 reads images [n, height, width, 1 or 3], got {images.shape}.")
        return images.astype(np.float32, copy=False)

    def _batch(self, images):
        # Greyscale images are replicated to three channels one batch at a time, as they are resized.
        return tf.constant(np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images)


def feature_space(spec="fashion_mnist", weights=None, batch_size=None):
    """The feature space named `spec`: "inception", "classifier:DIR" or "fashion_mnist".

    Args:
        spec: the name (see the module docstring).
        weights: for "inception", a weights file (None: Keras' cached ImageNet weights).
        batch_size: images per forward pass (None: 50 for Inception, 500 for the classifiers).

    Raises:
        FeatureExtractorError: an unknown name, a missing argument, weights given to a space that takes
            none, or weights that are missing, corrupt or of another architecture.
    """
    kind, colon, argument = str(spec).partition(":")
    if kind == "inception" and not colon:
        return InceptionFeatures(weights, batch_size or 50)
    if weights is not None and kind in ("fashion_mnist", "classifier"):
        raise FeatureExtractorError(
            f"--feature-weights is for --features inception; the {kind} space reads its weights from its manifest's folder "
            "(for a classifier of your own, pass --features classifier:DIR)."
        )
    if kind == "fashion_mnist" and not colon:
        return FeatureSpace(batch_size=batch_size or 500)
    if kind == "classifier" and argument:
        return classifier_space(argument, batch_size or 500)
    if kind == "classifier":
        raise FeatureExtractorError("classifier: needs the folder of a trained classifier, e.g. --features classifier:feature_classifiers/tfds_cifar10.")
    raise FeatureExtractorError(f"Unknown feature space {spec!r}; use one of: {', '.join(FEATURE_SPACES)}.")
