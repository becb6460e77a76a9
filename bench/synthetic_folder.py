"""Folders of colour image files for the data benchmarks (bench/data_pipeline.py, bench/data_memory.py).

Not a benchmark itself. The images are real Fashion-MNIST training images (the IDX files), each tinted
with its own seeded colour (`keras_gen.data.write_folder.tint`) and resized to the size asked for, so
that the files are of a realistic size for their format (unlike noise, which compresses badly, or flat
images, which compress to almost nothing). A folder of many files is written from a pool of distinct
encoded images, each written several times under different names: encoding is the slow part, and the
input pipeline decodes every file whatever its bytes.
"""

import keras_gen  # noqa: F401

import os

import numpy as np
import tensorflow as tf

from keras_gen import data
from keras_gen.data import write_folder

ENCODERS = {
    "png": tf.io.encode_png,
    # CelebA's aligned faces are JPEGs of about this quality.
    "jpg": lambda image: tf.io.encode_jpeg(image, quality=90),
}


def coloured_images(count, size, seed=0, source_dir=None):
    """`count` uint8 RGB images [count, height, width, 3] made from the first Fashion-MNIST training images.

    Args:
        count: how many images (at most the 60,000 training images).
        size: (height, width) to resize the 28x28 images to (bilinear).
        seed: seed of the tints.
        source_dir: Fashion-MNIST's IDX folder (None: the default, see `data.find_source_dir`).
    """
    folder = data.find_source_dir(source_dir)
    path = next(folder.glob("train-images-idx3-ubyte*"))
    grey = data.read_idx(path)[:count, :, :, np.newaxis]
    tinted = write_folder.tint(grey, seed)
    resized = tf.image.resize(tinted, size, method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8).numpy()


def encode(images, image_format):
    """Each image as the bytes of a `image_format` ("png" or "jpg") file."""
    encoder = ENCODERS[image_format]
    return [encoder(image).numpy() for image in images]


def write_files(folder, encoded, count, image_format):
    """Writes `count` files `folder/000000.<format>`, ... cycling over the `encoded` images; returns the
    number of bytes written."""
    os.makedirs(folder, exist_ok=True)
    total = 0
    for index in range(count):
        content = encoded[index % len(encoded)]
        with open(os.path.join(folder, f"{index:06d}.{image_format}"), "wb") as file:
            file.write(content)
        total += len(content)
    return total


def make_folder(folder, count, size, image_format, distinct=500, seed=0, source_dir=None):
    """A folder of `count` files of `size` (height, width) images, from `distinct` different images
    (see the module docstring); returns the number of bytes written."""
    images = coloured_images(min(count, distinct), size, seed, source_dir)
    return write_files(folder, encode(images, image_format), count, image_format)
