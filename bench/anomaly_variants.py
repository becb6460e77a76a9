"""Forms of the AAE anomaly score compared on validation images, from saved one-class checkpoints.

For each `CLASS=CHECKPOINT` (an `aae` trained with `normal_class = CLASS`, e.g. by bench/anomaly.py), the
model scores the 5,000-image validation split (seed 0, carved from the training images as the recipe
does; the model trained on none of them): normal = its class, anomalies = the other nine. Prints the
ROC-AUC of each form of the reconstruction error alone and combined with the code's log density (both
standardised on the class's own validation images, as `AAE.calibrate` does), per class and the mean.
The test set is not touched, so the forms can be compared without spending it.

    .venv/bin/python bench/anomaly_variants.py 0=/tmp/keras_gen_anomaly/checkpoints/aae_class0/<run>/model.keras ...
"""

import argparse

import keras_gen  # noqa: F401
import numpy as np
import tensorflow as tf

from keras_gen import anomaly
from keras_gen import data
from keras_gen.checkpoints import load_checkpoint

# Name -> the image transform applied to the image and its reconstruction before the squared error.
ERROR_FORMS = {
    "per pixel": lambda x: x,
    "3x3 mean": lambda x: tf.nn.avg_pool2d(x, 3, 1, "SAME"),
    "5x5 mean": lambda x: tf.nn.avg_pool2d(x, 5, 1, "SAME"),
    "7x7 mean": lambda x: tf.nn.avg_pool2d(x, 7, 1, "SAME"),
    "2x2 pool": lambda x: tf.nn.avg_pool2d(x, 2, 2, "SAME"),
    "4x4 pool": lambda x: tf.nn.avg_pool2d(x, 4, 4, "SAME"),
}
DENSITY_WEIGHTS = (0.0, 0.5, 1.0)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", metavar="CLASS=CHECKPOINT")
    args = parser.parse_args(argv)
    pairs = []
    for item in args.checkpoints:
        label, sep, path = item.partition("=")
        if not sep or not label.isdigit():
            parser.error(f"expected CLASS=CHECKPOINT (e.g. 3=run/model.keras), got {item!r}")
        pairs.append((int(label), path))
    return pairs


def validation_images():
    arrays = data.load_fashion_mnist()
    (_, _), (images, labels) = data.split_train_validation(*arrays["train"], 5000, 0)
    return data.preprocess(images, "scale").numpy(), labels


def standardised(values, normal):
    return (values - values[normal].mean()) / values[normal].std()


def score_forms(model, images, is_anomaly, batch_size=500):
    """{column name: ROC-AUC} for every error form alone and with the density term at each weight."""
    batches = [images[start : start + batch_size] for start in range(0, len(images), batch_size)]
    reconstructions = np.concatenate([np.asarray(model.reconstruct(batch)["reconstruction"]) for batch in batches])
    log_density = np.concatenate([np.asarray(model.anomaly_score(batch)["log_density"]) for batch in batches])
    normal = ~is_anomaly
    density = -standardised(log_density, normal)
    aucs = {"-log p(z)": anomaly.roc_auc(density, is_anomaly)}
    for name, transform in ERROR_FORMS.items():
        difference = transform(reconstructions) - transform(images)
        error = standardised(np.mean(np.square(difference), axis=(1, 2, 3)), normal)
        for weight in DENSITY_WEIGHTS:
            column = name if weight == 0 else f"{name} + {weight:g} density"
            aucs[column] = anomaly.roc_auc(error + weight * density, is_anomaly)
    return aucs


def main(argv=None):
    pairs = parse_args(argv)
    images, labels = validation_images()
    table = {}
    for normal_class, path in pairs:
        model = load_checkpoint(path)
        table[normal_class] = score_forms(model, images, labels != normal_class)
        print(f"class {normal_class} ({data.CLASS_NAMES[normal_class]}) scored", flush=True)
    columns = list(next(iter(table.values())))
    print()
    print("Validation ROC-AUC (normal = the model's class, anomalies = the other classes' validation images):")
    print()
    print(f"{'score':<26}" + "".join(f"{c:>8}" for c in table) + f"{'mean':>8}")
    for column in columns:
        values = [table[c][column] for c in table]
        print(f"{column:<26}" + "".join(f"{v:8.4f}" for v in values) + f"{np.mean(values):8.4f}")


if __name__ == "__main__":
    main()
