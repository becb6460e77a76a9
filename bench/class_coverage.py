"""Which Fashion-MNIST classes an unconditional model's samples look like: mode collapse at a glance.

    .venv/bin/python bench/class_coverage.py EXPORT_DIR [--num-samples 10000] [--grid grid.png]

Draws samples from an export's `sample` signature (seeds 0..N-1), labels each with the project's
Fashion-MNIST classifier (`keras_gen.feature_extractor`, 93.4 % test accuracy) and prints the share of
each class; a collapsed generator piles its samples onto a few classes. With `--grid` it also writes a
10x10 PNG: one row per class, the first ten samples the classifier put in that class (blank where fewer).
The real test set's shares are 10 % each.
"""

import argparse
import sys

import keras_gen  # noqa: F401
import numpy as np
import tensorflow as tf

from keras_gen import evaluation
from keras_gen import feature_extractor
from keras_gen.callbacks import tile

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export_dir")
    parser.add_argument("--num-samples", type=int, default=10000)
    parser.add_argument("--grid", help="write a 10x10 PNG, one row per predicted class")
    args = parser.parse_args(argv)
    sampler = evaluation.Sampler.from_export(args.export_dir)
    if sampler.conditional:
        raise SystemExit(f"{args.export_dir} is class-conditional; this counts an unconditional model's classes.")
    classifier = feature_extractor.load_classifier()
    images, predicted = [], []
    for start in range(0, args.num_samples, 500):
        batch = np.clip(sampler(np.arange(start, min(start + 500, args.num_samples), dtype=np.int64)), 0.0, 1.0)
        images.append(batch)
        predicted.append(np.argmax(classifier.predict(batch, verbose=0), axis=-1))
    images, predicted = np.concatenate(images), np.concatenate(predicted)
    shares = np.bincount(predicted, minlength=len(CLASS_NAMES)) / len(predicted)
    print(f"{args.export_dir}: {len(predicted)} samples, classes by the project's classifier")
    for index, (name, share) in enumerate(zip(CLASS_NAMES, shares)):
        print(f"  {index} {name:<12} {100 * share:5.1f} %")
    print(f"  smallest share {100 * shares.min():.1f} %, largest {100 * shares.max():.1f} % (real test set: 10.0 % each)")
    if args.grid:
        rows = []
        for label in range(len(CLASS_NAMES)):
            chosen = images[predicted == label][:10]
            blank = np.zeros((10 - len(chosen), *images.shape[1:]), images.dtype)
            rows.append(np.concatenate([chosen, blank]))
        grid = tile(np.concatenate(rows), 10)
        tf.io.write_file(args.grid, tf.io.encode_png(tf.cast(tf.round(grid * 255.0), tf.uint8)))
        print(f"Wrote {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
