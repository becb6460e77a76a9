"""Tiny instances of every model in the zoo, for the tests that every model gets (tests/test_zoo.py).

Add one entry per new model: a factory returning a compiled tiny model (8x8 images, latent 2) and the
training data `fit` takes, as `(model, data)` where data is a tf.data.Dataset of batches.
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf

from keras_gen.models import VAE
from tests import helpers


def tiny_batches(count=32, batch_size=8, labels=False, seed=0, value_range=(0.0, 1.0)):
    """Batches of tiny binary images (optionally with int64 labels 0..9), mapped to `value_range`."""
    low, high = value_range
    images = helpers.tiny_images(count, seed=seed) * (high - low) + low
    if not labels:
        return tf.data.Dataset.from_tensor_slices(images).batch(batch_size, drop_remainder=True)
    classes = (np.arange(count) % 10).astype("int64")
    return tf.data.Dataset.from_tensor_slices((images, classes)).batch(batch_size, drop_remainder=True)


def vae():
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches()


# zoo name -> factory
TINY_MODELS = {
    "vae": vae,
}
