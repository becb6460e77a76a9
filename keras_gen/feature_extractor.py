"""The project's feature classifier: a small CNN whose penultimate features embed images for
`keras_gen.evaluation` (the `fashion_mnist` and `classifier:PATH` feature spaces).

Its 128-d `embedding` layer (the one before the class logits) is the feature space of the Fréchet
distance, KID and precision/recall. Numbers computed in it are comparable with each other, and NOT with
Inception FIDs published elsewhere (`--features inception` gives those, when its weights are here).

The Fashion-MNIST classifier's weights ship inside the package (`keras_gen/assets/fashion_classifier.weights.h5`,
1.2 MB) beside a manifest (`fashion_classifier.json`) that records their sha256, the test accuracy and how
they were made; `load_classifier()` refuses weights whose hash does not match. Training one, for
Fashion-MNIST or for any labeled source, is one command:

    .venv/bin/python -m keras_gen.feature_extractor [--data tfds:cifar10] [--epochs 20] [--out-dir DIR]

which writes `feature_classifier.weights.h5` and `feature_classifier.json` (sha256, dataset, test
accuracy) into DIR (default: keras_gen/assets for Fashion-MNIST, else feature_classifiers/<dataset>);
`keras-gen evaluate samples ... --features classifier:DIR` then reads images through it.

Example:

>>> from keras_gen import feature_extractor
>>> classifier = feature_extractor.load_classifier()  # checks the weights' sha256 first
>>> features, logits = feature_extractor.feature_model(classifier).predict(images_in_0_1)  # [n, 128], [n, 10]
"""

import argparse
import datetime
import hashlib
import json
import os
import pathlib
import platform
import sys
import time
import warnings

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf
from keras import layers

ASSETS_DIR = pathlib.Path(__file__).resolve().parent / "assets"
WEIGHTS_NAME = "fashion_classifier.weights.h5"
MANIFEST_NAME = "fashion_classifier.json"
# What `train_classifier` writes for a dataset other than the shipped Fashion-MNIST one.
TRAINED_WEIGHTS_NAME = "feature_classifier.weights.h5"
TRAINED_MANIFEST_NAME = "feature_classifier.json"
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
EMBEDDING_DIM = 128
EMBEDDING_LAYER = "embedding"


class FeatureExtractorError(ValueError):
    """Missing or corrupt classifier weights, or images the classifier cannot read."""


def _conv_block(x, channels, convs):
    for _ in range(convs):
        # BatchNorm supplies the bias.
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    return x


def fashion_classifier(image_shape=IMAGE_SHAPE, num_classes=NUM_CLASSES, embedding_dim=EMBEDDING_DIM, dropout=0.3):
    """The classifier network: images in [0, 1] -> class logits, with an `embedding` layer before them.

    Three convolution stages (32, 64, 128 channels; max-pooling between them), global average pooling,
    a ReLU dense `embedding` layer, dropout and the logits. About 296k weights.

    Args:
        image_shape: (height, width, channels); height and width divisible by 4.
        num_classes: number of classes.
        embedding_dim: width of the embedding (the features the metrics use).
        dropout: dropout rate on the embedding while training.

    Example:
    >>> classifier = fashion_classifier()
    >>> classifier.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    """
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = _conv_block(images, 32, convs=1)
    x = layers.MaxPooling2D()(x)
    x = _conv_block(x, 64, convs=2)
    x = layers.MaxPooling2D()(x)
    x = _conv_block(x, 128, convs=2)
    x = layers.GlobalAveragePooling2D()(x)
    embedding = layers.Dense(embedding_dim, activation="relu", name=EMBEDDING_LAYER)(x)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(dropout)(embedding))
    return keras.Model(images, logits, name="fashion_classifier")


def feature_model(classifier):
    """A model with two outputs, `[embedding, logits]`, sharing the classifier's weights."""
    return keras.Model(classifier.inputs, [classifier.get_layer(EMBEDDING_LAYER).output, classifier.outputs[0]])


# === Shipped weights ===
def sha256_of(path):
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(path=ASSETS_DIR):
    """The manifest a classifier folder (or a manifest file itself) holds: `feature_classifier.json`, or the
    shipped `fashion_classifier.json`."""
    path = pathlib.Path(path).expanduser()
    if path.is_file():
        return path
    for name in (TRAINED_MANIFEST_NAME, MANIFEST_NAME):
        if (path / name).is_file():
            return path / name
    raise FeatureExtractorError(
        f"No classifier manifest in {path} (looked for {TRAINED_MANIFEST_NAME} and {MANIFEST_NAME}). Train one with "
        "`python -m keras_gen.feature_extractor --data SOURCE --out-dir DIR` and pass DIR, or reinstall keras_gen for the shipped one."
    )


def read_manifest(assets_dir=ASSETS_DIR):
    """The manifest of a classifier's weights: sha256, test accuracy, dataset, training settings and command."""
    path = manifest_path(assets_dir)
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FeatureExtractorError(f"{path} is not a readable classifier manifest ({error}); retrain the classifier to write a new one.") from None


def load_classifier(assets_dir=ASSETS_DIR):
    """Builds the classifier and loads its weights after checking their sha256 against the manifest.

    Args:
        assets_dir: folder holding the weights and the manifest (`feature_classifier.*`, or the shipped
            `fashion_classifier.*`), or the manifest file itself.

    Returns:
        The `fashion_classifier()` Keras model with its trained weights.

    Raises:
        FeatureExtractorError: the weights are missing, their hash differs from the manifest's, or they do
            not fit the architecture the manifest describes.
    """
    manifest_file = manifest_path(assets_dir)
    manifest = read_manifest(manifest_file)
    weights = manifest_file.parent / manifest.get("weights", WEIGHTS_NAME)
    if not weights.is_file():
        raise FeatureExtractorError(
            f"No classifier weights at {weights}. Reinstall keras_gen, or retrain them with "
            "`python -m keras_gen.feature_extractor`."
        )
    actual = sha256_of(weights)
    if actual != manifest.get("sha256"):
        raise FeatureExtractorError(
            f"{weights} has sha256 {actual}, but {manifest_file.name} records {manifest.get('sha256')}: the file is "
            "corrupt or from another training run. Reinstall keras_gen, or retrain with "
            "`python -m keras_gen.feature_extractor` (which writes both files)."
        )
    classifier = fashion_classifier(
        tuple(manifest.get("image_shape", IMAGE_SHAPE)), manifest.get("num_classes", NUM_CLASSES), manifest.get("embedding_dim", EMBEDDING_DIM)
    )
    load_weights_or_refuse(
        classifier,
        weights,
        actual,
        "does not fit the classifier its manifest describes",
        "Retrain with `python -m keras_gen.feature_extractor`, which writes matching weights and manifest.",
    )
    return classifier


def load_weights_or_refuse(model, path, sha256, mismatch, remedy):
    """`load_weights_strictly`, with any failure (h5py, Keras and zip errors all mean: not these weights)
    raised as a FeatureExtractorError naming the file, its sha256, what it does not fit, and what to do."""
    try:
        load_weights_strictly(model, path)
    except Exception as error:  # noqa: BLE001
        detail = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        raise FeatureExtractorError(f"{path} (sha256 {sha256}) {mismatch} ({detail}). {remedy}") from None


def load_weights_strictly(model, path):
    """`model.load_weights(path)`, failing where Keras would only warn that it skipped part of the file
    (and leave those layers at their initial weights)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(str(path))
    skipped = [str(warning.message) for warning in caught if "skipping" in str(warning.message).lower() or "could not be loaded" in str(warning.message)]
    for warning in caught:
        if str(warning.message) not in skipped:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if skipped:
        raise ValueError(f"Keras loaded only part of the file ({skipped[0].splitlines()[0]})")


def check_images(images, image_shape=IMAGE_SHAPE, reader="The Fashion-MNIST classifier"):
    """Float32 images [n, *image_shape] in [0, 1], or a FeatureExtractorError saying what to do."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        raise FeatureExtractorError(f"{reader} reads float images in [0, 1], got uint8 pixels: divide by 255 first.")
    if images.ndim == 3 and tuple(images.shape[1:]) == tuple(image_shape[:2]):
        images = images[..., None]
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
        raise FeatureExtractorError(
            f"{reader} reads images [n, {', '.join(map(str, image_shape))}], got {images.shape}. Use a feature space "
            "made for the model's images: --features inception (any size), or --features classifier:DIR with a classifier "
            "trained on the model's dataset (`python -m keras_gen.feature_extractor --data SOURCE`)."
        )
    return images.astype(np.float32, copy=False)


# === Training (one command) ===
def _augment(images, seeds, flips=True):
    # Random horizontal flips and shifts of up to 2 pixels: clothes (and most photographs) are left-right
    # symmetric and never perfectly centred, and both regularise a small CNN for a point or so of test accuracy.
    def one(args):
        image, seed = args
        if flips:
            image = tf.image.stateless_random_flip_left_right(image, seed=seed)
        padded = tf.pad(image, [[2, 2], [2, 2], [0, 0]])
        return tf.image.stateless_random_crop(padded, tf.shape(image), seed=seed + 1)

    return tf.map_fn(one, (images, seeds), fn_output_signature=tf.float32)


def training_datasets(batch_size, seed, validation_size=5000, data="fashion_mnist", image_size=None, channels=None, flips=True, **source_options):
    """(train, validation, test, info) of a labeled source: tf.data pipelines of (images in [0, 1], labels),
    the training one augmented, and the `DatasetInfo`. `source_options` go to `data.open_source`."""
    from keras_gen import data as data_lib

    source = data_lib.open_source(data, **source_options) if isinstance(data, str) else data
    if source.class_names is None:
        raise data_lib.DataError(f"{source.name} has no labels, and the feature classifier learns them; use a labeled source (for a folder: one sub-folder per class).")
    splits = data_lib.load_datasets(
        source, batch_size=batch_size, preprocessing="scale", validation_size=validation_size, seed=seed, with_labels=True,
        image_size=image_size, channels=channels,
    )
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2 * batch_size)
    train = tf.data.Dataset.zip(splits["train"], seeds).map(
        lambda batch, s: (_augment(batch[0], tf.reshape(s, [-1, 2]), flips), batch[1]), num_parallel_calls=tf.data.AUTOTUNE
    )
    validation = splits["validation"]
    return train.prefetch(tf.data.AUTOTUNE), None if validation is None else validation.prefetch(2), splits["test"].prefetch(2), splits["info"]


def default_out_dir(data):
    """Where `train_classifier` writes: the package's assets for Fashion-MNIST, else feature_classifiers/<dataset>."""
    if data == "fashion_mnist":
        return ASSETS_DIR
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(data).replace(":", "_")).strip("_.")
    return pathlib.Path("feature_classifiers") / slug


def train_classifier(
    epochs=20, batch_size=128, learning_rate=2e-3, seed=0, out_dir=None, max_minutes=None, source_dir=None, data_dir=None, verbose=2,
    data="fashion_mnist", image_size=None, channels=None, validation_size=5000, flips=True,
):
    """Trains the classifier on a labeled source and writes its weights and manifest to `out_dir`.

    Adam with a cosine-decayed learning rate, augmented training images (shifts of up to 2 pixels, and
    horizontal flips unless `flips` is False), `validation_size` training images held out for validation
    (or the source's own validation split); the test set is evaluated once at the end and recorded.

    Args:
        epochs: passes over the training set.
        batch_size: batch size.
        learning_rate: initial learning rate.
        seed: seed of the split, the shuffle, the augmentation and the initial weights.
        out_dir: folder to write the weights and manifest into (None: `default_out_dir(data)`). The shipped
            Fashion-MNIST folder keeps its `fashion_classifier.*` names; any other gets `feature_classifier.*`.
        max_minutes: stop after the first epoch that ends past this wall-clock budget (None: no cap).
        source_dir: Fashion-MNIST IDX folder (see `keras_gen.data`).
        data_dir: TFDS data folder (see `keras_gen.data`).
        verbose: `fit`'s verbosity.
        data: the labeled source (`fashion_mnist`, `tfds:NAME`, `folder:DIR`).
        image_size: (height, width) to fit the images to (None: the source's; both divisible by 4).
        channels: 1 or 3 to convert the images to (None: the source's).
        validation_size: training images held out for validation when the source has no validation split.
        flips: augment with horizontal flips (leave off for data where a flip changes the class, e.g. digits).

    Returns:
        The manifest dict that was written.
    """
    keras.utils.set_random_seed(seed)
    out_dir = pathlib.Path(default_out_dir(data) if out_dir is None else out_dir)
    train, validation, test, info = training_datasets(
        batch_size, seed, validation_size, data=data, image_size=image_size, channels=channels, flips=flips, source_dir=source_dir, data_dir=data_dir
    )
    shape = tuple(info.image_shape)
    if shape[0] % 4 or shape[1] % 4:
        raise FeatureExtractorError(f"The classifier needs a height and width divisible by 4, got {shape}; pass --image-size (e.g. 32).")

    def build():
        return fashion_classifier(shape, info.num_classes)

    classifier = build()
    steps = max(1, info.split_sizes.get("train", 0) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps)
    classifier.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # Built before `fit` traces the step: Keras (3.15, TensorFlow) builds it inside the first trace, and the
    # variables it creates there make TensorFlow trace the step twice (as GenerativeModel.make_train_function says).
    classifier.optimizer.build(classifier.trainable_variables)
    started = time.monotonic()
    deadline = None if max_minutes is None else started + 60.0 * max_minutes

    class Deadline(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if deadline is not None and time.monotonic() > deadline:
                print(f"Stopping after epoch {epoch + 1}: the {max_minutes}-minute budget is spent.", flush=True)
                self.model.stop_training = True

    history = classifier.fit(train, validation_data=validation, epochs=epochs, callbacks=[Deadline()], verbose=verbose)
    minutes = (time.monotonic() - started) / 60.0
    _, test_accuracy = classifier.evaluate(test, verbose=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    shipped_names = out_dir.resolve() == ASSETS_DIR.resolve()
    weights_name, manifest_name = (WEIGHTS_NAME, MANIFEST_NAME) if shipped_names else (TRAINED_WEIGHTS_NAME, TRAINED_MANIFEST_NAME)
    weights = out_dir / weights_name
    # An uncompiled copy: the compiled model's file would also hold Adam's two moments (3x the size).
    shipped = build()
    shipped.set_weights(classifier.get_weights())
    shipped.save_weights(weights)
    val_accuracy = history.history.get("val_accuracy")
    manifest = {
        "sha256": sha256_of(weights),
        "weights": weights_name,
        "dataset": info.to_dict(),
        "test_accuracy": round(float(test_accuracy), 4),
        "validation_accuracy": None if not val_accuracy else round(float(val_accuracy[-1]), 4),
        "epochs_run": len(history.history["loss"]),
        "image_shape": list(shape),
        "num_classes": info.num_classes,
        "embedding_dim": EMBEDDING_DIM,
        "embedding_layer": EMBEDDING_LAYER,
        "settings": {
            "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed, "max_minutes": max_minutes,
            "validation_size": validation_size, "flips": flips,
        },
        "train_minutes": round(minutes, 1),
        "trained_on": f"{platform.machine()}, {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, Keras {keras.__version__}",
        "date": datetime.date.today().isoformat(),
        "command": "python -m keras_gen.feature_extractor " + " ".join(sys.argv[1:]),
    }
    (out_dir / manifest_name).write_text(json.dumps(manifest, indent=2) + "\n")
    manifest["out_dir"] = str(out_dir)
    return manifest


def main(argv=None):
    from keras_gen.cli import parse_image_size
    from keras_gen.data import DataError

    parser = argparse.ArgumentParser(description="Train the feature classifier behind keras_gen.evaluation's fashion_mnist and classifier:DIR feature spaces.")
    parser.add_argument("--data", default="fashion_mnist", metavar="SOURCE", help="a labeled source: fashion_mnist (default), tfds:NAME or folder:DIR")
    parser.add_argument("--image-size", type=parse_image_size, metavar="N|HxW", help="fit the images to this size (divisible by 4)")
    parser.add_argument("--channels", type=int, choices=(1, 3), help="convert the images to greyscale (1) or RGB (3)")
    parser.add_argument("--validation-size", type=int, default=5000, help="training images held out when the source has no validation split")
    parser.add_argument("--no-flip", action="store_true", help="no horizontal flips in the augmentation (e.g. for digits)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, help="wall-clock cap; stops after the epoch that crosses it")
    parser.add_argument("--out-dir", help=f"where the weights and manifest go (default: {ASSETS_DIR} for fashion_mnist, else feature_classifiers/<dataset>)")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--tfds-dir", help="TensorFlow Datasets data_dir for the prepared dataset (default: TFDS's)")
    args = parser.parse_args(argv)
    try:
        manifest = train_classifier(
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
            out_dir=args.out_dir, max_minutes=args.max_minutes, source_dir=args.data_dir, data_dir=args.tfds_dir,
            data=args.data, image_size=args.image_size, channels=args.channels, validation_size=args.validation_size, flips=not args.no_flip,
        )
    except (DataError, FeatureExtractorError) as error:
        print(f"keras_gen.feature_extractor: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(manifest, indent=2))
    print(f"Test accuracy on {manifest['dataset']['name']}: {manifest['test_accuracy']:.4f} ({manifest['dataset']['split_sizes'].get('test', 0)} test images).")
    print(f"Use it with: keras-gen evaluate samples EXPORT --features classifier:{manifest['out_dir']}")
    if args.data == "fashion_mnist" and manifest["test_accuracy"] < 0.93:
        print(f"warning: test accuracy {manifest['test_accuracy']:.4f} is below the 0.93 the metrics call for.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
