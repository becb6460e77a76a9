"""The Fashion-MNIST classifier whose penultimate features embed images for `keras_gen.evaluation`.

Inception-v3 FID cannot be computed offline (its weights are a download, and it would need the 28x28
grey images blown up to 299x299 RGB). The zoo's metrics therefore use this small CNN, trained
by the project on Fashion-MNIST: its 128-d `embedding` layer (the one before the class logits) is the
feature space of the Fréchet distance, KID and precision/recall. Numbers computed in it are comparable
with each other, and NOT with Inception FIDs published elsewhere.

Its weights ship inside the package (`keras_gen/assets/fashion_classifier.weights.h5`, 1.2 MB) beside
a manifest (`fashion_classifier.json`) that records their sha256, the test accuracy and how they were
made; `load_classifier()` refuses weights whose hash does not match. Retraining is one command:

    .venv/bin/python -m keras_gen.feature_extractor [--epochs 20] [--out-dir keras_gen/assets]

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

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf
from keras import layers

ASSETS_DIR = pathlib.Path(__file__).resolve().parent / "assets"
WEIGHTS_NAME = "fashion_classifier.weights.h5"
MANIFEST_NAME = "fashion_classifier.json"
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


def read_manifest(assets_dir=ASSETS_DIR):
    """The manifest of the shipped weights: sha256, test accuracy, training settings and command."""
    path = pathlib.Path(assets_dir) / MANIFEST_NAME
    if not path.is_file():
        raise FeatureExtractorError(
            f"No classifier manifest at {path}. Reinstall keras_gen, or retrain the classifier with "
            "`python -m keras_gen.feature_extractor`."
        )
    return json.loads(path.read_text())


def load_classifier(assets_dir=ASSETS_DIR):
    """Builds the classifier and loads the shipped weights after checking their sha256.

    Args:
        assets_dir: folder holding `fashion_classifier.weights.h5` and `fashion_classifier.json`.

    Returns:
        The `fashion_classifier()` Keras model with its trained weights.

    Raises:
        FeatureExtractorError: the weights are missing, or their hash differs from the manifest's.
    """
    assets_dir = pathlib.Path(assets_dir)
    manifest = read_manifest(assets_dir)
    weights = assets_dir / WEIGHTS_NAME
    if not weights.is_file():
        raise FeatureExtractorError(
            f"No classifier weights at {weights}. Reinstall keras_gen, or retrain them with "
            "`python -m keras_gen.feature_extractor`."
        )
    actual = sha256_of(weights)
    if actual != manifest["sha256"]:
        raise FeatureExtractorError(
            f"{weights} has sha256 {actual}, but {MANIFEST_NAME} records {manifest['sha256']}: the file is "
            "corrupt or from another training run. Reinstall keras_gen, or retrain with "
            "`python -m keras_gen.feature_extractor` (which writes both files)."
        )
    classifier = fashion_classifier(
        tuple(manifest.get("image_shape", IMAGE_SHAPE)), manifest.get("num_classes", NUM_CLASSES), manifest.get("embedding_dim", EMBEDDING_DIM)
    )
    classifier.load_weights(weights)
    return classifier


def check_images(images, image_shape=IMAGE_SHAPE):
    """Float32 images [n, *image_shape] in [0, 1], or a FeatureExtractorError saying what to do."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        raise FeatureExtractorError("The classifier reads float images in [0, 1], got uint8 pixels: divide by 255 first.")
    if images.ndim == 3 and tuple(images.shape[1:]) == tuple(image_shape[:2]):
        images = images[..., None]
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
        raise FeatureExtractorError(
            f"The Fashion-MNIST classifier reads images [n, {', '.join(map(str, image_shape))}], got {images.shape}. "
            "Evaluate models trained on 28x28x1 Fashion-MNIST, or pass your own feature model."
        )
    return images.astype(np.float32, copy=False)


# === Training (one command) ===
def _augment(images, seeds):
    # Random horizontal flips and shifts of up to 2 pixels: clothes are left-right symmetric and never
    # perfectly centred, and both regularise a small CNN for a point or so of test accuracy.
    def one(args):
        image, seed = args
        image = tf.image.stateless_random_flip_left_right(image, seed=seed)
        padded = tf.pad(image, [[2, 2], [2, 2], [0, 0]])
        return tf.image.stateless_random_crop(padded, tf.shape(image), seed=seed + 1)

    return tf.map_fn(one, (images, seeds), fn_output_signature=tf.float32)


def training_datasets(batch_size, seed, validation_size=5000, source_dir=None, data_dir=None):
    """(train, validation, test) tf.data pipelines of (images in [0, 1], labels); train is augmented."""
    from keras_gen import data

    splits = data.load_fashion_mnist(source_dir=source_dir, data_dir=data_dir)
    (train_x, train_y), (valid_x, valid_y) = data.split_train_validation(*splits["train"], validation_size, seed)
    test_x, test_y = splits["test"]

    def scaled(x, y):
        return tf.cast(x, tf.float32) / 255.0, y

    train = tf.data.Dataset.from_tensor_slices((train_x, train_y)).shuffle(len(train_x), seed=seed, reshuffle_each_iteration=True)
    train = train.batch(batch_size, drop_remainder=True).map(scaled)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2 * batch_size)
    train = tf.data.Dataset.zip(train, seeds).map(
        lambda batch, s: (_augment(batch[0], tf.reshape(s, [-1, 2])), batch[1]), num_parallel_calls=tf.data.AUTOTUNE
    )

    def plain(x, y):
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(512).map(scaled)

    return train.prefetch(tf.data.AUTOTUNE), plain(valid_x, valid_y).prefetch(2), plain(test_x, test_y).prefetch(2)


def train_classifier(epochs=20, batch_size=128, learning_rate=2e-3, seed=0, out_dir=ASSETS_DIR, max_minutes=None, source_dir=None, data_dir=None, verbose=2):
    """Trains the classifier on Fashion-MNIST and writes its weights and manifest to `out_dir`.

    Adam with a cosine-decayed learning rate, augmented training images, 5000 training images held out
    for validation; the test set is evaluated once at the end and recorded in the manifest.

    Args:
        epochs: passes over the training set.
        batch_size: batch size.
        learning_rate: initial learning rate.
        seed: seed of the split, the shuffle, the augmentation and the initial weights.
        out_dir: folder to write `fashion_classifier.weights.h5` and `fashion_classifier.json` into.
        max_minutes: stop after the first epoch that ends past this wall-clock budget (None: no cap).
        source_dir: Fashion-MNIST IDX folder (see `keras_gen.data`).
        data_dir: TFDS data folder (see `keras_gen.data`).
        verbose: `fit`'s verbosity.

    Returns:
        The manifest dict that was written.
    """
    keras.utils.set_random_seed(seed)
    train, validation, test = training_datasets(batch_size, seed, source_dir=source_dir, data_dir=data_dir)
    steps = int(train.cardinality().numpy())
    classifier = fashion_classifier()
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps)
    classifier.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
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
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS_NAME
    # An uncompiled copy: the compiled model's file would also hold Adam's two moments (3x the size).
    shipped = fashion_classifier()
    shipped.set_weights(classifier.get_weights())
    shipped.save_weights(weights)
    manifest = {
        "sha256": sha256_of(weights),
        "test_accuracy": round(float(test_accuracy), 4),
        "validation_accuracy": round(float(history.history["val_accuracy"][-1]), 4),
        "epochs_run": len(history.history["loss"]),
        "image_shape": list(IMAGE_SHAPE),
        "num_classes": NUM_CLASSES,
        "embedding_dim": EMBEDDING_DIM,
        "embedding_layer": EMBEDDING_LAYER,
        "settings": {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed, "max_minutes": max_minutes},
        "train_minutes": round(minutes, 1),
        "trained_on": f"{platform.machine()}, {os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, Keras {keras.__version__}",
        "date": datetime.date.today().isoformat(),
        "command": "python -m keras_gen.feature_extractor " + " ".join(sys.argv[1:]),
    }
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv=None):
    parser = argparse.ArgumentParser(description="Retrain the Fashion-MNIST feature classifier behind keras_gen.evaluation.")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, help="wall-clock cap; stops after the epoch that crosses it")
    parser.add_argument("--out-dir", default=str(ASSETS_DIR), help=f"where the weights and manifest go (default: {ASSETS_DIR})")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files")
    args = parser.parse_args(argv)
    manifest = train_classifier(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
        out_dir=args.out_dir, max_minutes=args.max_minutes, source_dir=args.data_dir,
    )
    print(json.dumps(manifest, indent=2))
    if manifest["test_accuracy"] < 0.93:
        print(f"warning: test accuracy {manifest['test_accuracy']:.4f} is below the 0.93 the metrics call for.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
