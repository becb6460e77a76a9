"""Writes a source's images as PNG files in class sub-folders: a real dataset as a `folder:` source.

    python -m keras_gen.data.write_folder --out /tmp/fashion_png [--tint --pad-to 32] [--per-class N]

writes `OUT/train/<class>/<index>.png` and `OUT/test/<class>/<index>.png` from Fashion-MNIST (or any
source, `--data`). `--tint` colours each image with its own seeded random colour (grey level times an
RGB colour drawn uniformly from [0.25, 1]^3), a synthetic colouring of real images for testing colour
pipelines offline; `--pad-to 32` pads 28x28 images with black to 32x32. Class folder names are the
class names made safe for file names, prefixed with the class index so that their sorted order is the
class order.
"""

import keras_gen  # noqa: F401

import argparse
import pathlib
import re

import numpy as np
import tensorflow as tf

from keras_gen.data import sources


def class_folder_names(class_names):
    """`03_Dress`-style folder names whose sorted order is the class order."""
    width = len(str(len(class_names) - 1))
    return [f"{index:0{width}d}_{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-')}" for index, name in enumerate(class_names)]


def tint(images, seed):
    """uint8 grey images [n, h, w, 1] -> uint8 RGB [n, h, w, 3], each image times its own random colour."""
    colours = np.random.default_rng(seed).uniform(0.25, 1.0, size=(len(images), 1, 1, 3))
    return np.round(images.astype(np.float64) * colours).astype(np.uint8)


def pad_to(images, size):
    """Pads [n, h, w, c] images with black, centred, to [n, size, size, c]."""
    height, width = images.shape[1:3]
    top, left = (size - height) // 2, (size - width) // 2
    return np.pad(images, ((0, 0), (top, size - height - top), (left, size - width - left), (0, 0)))


def write_split(root, images, labels, class_names):
    """Writes images [n, h, w, c] uint8 as root/<class folder>/<index>.png; returns the paths."""
    folders = class_folder_names(class_names)
    paths = []
    for index, (image, label) in enumerate(zip(images, labels)):
        path = pathlib.Path(root) / folders[int(label)] / f"{index:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tf.io.encode_png(image).numpy())
        paths.append(path)
    return paths


def write_folder(out, source="fashion_mnist", per_class=None, colour=False, pad=None, seed=0, **source_options):
    """Writes the train and test splits of `source` under `out` (see the module docstring); returns
    {split: number of files}."""
    opened = sources.open_source(source, **source_options)
    counts = {}
    for offset, split in enumerate(("train", "test")):
        images, labels = sources.load_split_arrays(opened, split, validation_size=0)
        if per_class is not None:
            keep = np.concatenate([np.flatnonzero(labels == label)[:per_class] for label in range(len(opened.class_names))])
            images, labels = images[np.sort(keep)], labels[np.sort(keep)]
        if colour:
            images = tint(images, seed + offset)
        if pad:
            images = pad_to(images, pad)
        counts[split] = len(write_split(pathlib.Path(out) / split, images, labels, opened.class_names))
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write (its train/ and test/ are created)")
    parser.add_argument("--data", default="fashion_mnist", help="the source to write (default: fashion_mnist)")
    parser.add_argument("--data-dir", help="Fashion-MNIST IDX folder")
    parser.add_argument("--per-class", type=int, help="at most this many images per class and split")
    parser.add_argument("--tint", action="store_true", help="colour each image with a seeded random colour (RGB)")
    parser.add_argument("--pad-to", type=int, help="pad the images with black to this square size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = write_folder(args.out, args.data, args.per_class, args.tint, args.pad_to, args.seed, source_dir=args.data_dir)
    print(f"Wrote {', '.join(f'{count} {split}' for split, count in counts.items())} PNG files under {args.out}")


if __name__ == "__main__":
    main()
