"""Tiny instances of every model in the zoo, for the tests that every model gets (tests/test_zoo.py).

Add one entry per new model: a factory returning a compiled tiny model (8x8 images, latent 2) and the
training data `fit` takes, as `(model, data)` where data is a tf.data.Dataset of batches.
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf

from keras_gen.models import VAE
from keras_gen.models import CVAE
from keras_gen.models import GMVAE
from keras_gen.models import HVAE
from keras_gen.models import Autoencoder
from keras_gen.models import DenoisingAutoencoder
from keras_gen.models import SemiSupervisedClassifier
from keras_gen.models import CGAN
from keras_gen.models import DCGAN
from keras_gen.models import GAN
from keras_gen.models import WGANGP
from keras_gen.models import VAEGAN
from keras_gen.models import AAE
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


def cvae():
    model = CVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, num_classes=10, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches(labels=True)


def gmvae():
    model = GMVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, num_components=3, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches()


def hvae():
    model = HVAE(image_shape=helpers.IMAGE_SHAPE, latent_dims=(2, 2), hidden_units=8, free_bits=0.1, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches()


def autoencoder():
    model = Autoencoder(image_shape=helpers.IMAGE_SHAPE, code_dim=2, filters=(4, 8), convs_per_stage=2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches()


def denoising_autoencoder():
    model = DenoisingAutoencoder(image_shape=helpers.IMAGE_SHAPE, code_dim=2, filters=(4, 8), corruption="salt_and_pepper", corruption_strength=0.2, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches()


def semi_supervised():
    model = SemiSupervisedClassifier(image_shape=helpers.IMAGE_SHAPE, code_dim=2, filters=(4, 8), hidden_units=4, dropout=0.1, seed=0)
    model.compile_recipe(learning_rate=1e-3)
    return model, tiny_batches(labels=True)


# zoo name -> factory
TINY_MODELS = {
    "vae": vae,
    "cvae": cvae,
    "gmvae": gmvae,
    "hvae": hvae,
    "autoencoder": autoencoder,
    "denoising_autoencoder": denoising_autoencoder,
    "semi_supervised": semi_supervised,
}


# === The GAN family: generators make images in [-1, 1], so their data are too ===
def gan():
    model = GAN(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, generator_widths=(16,), discriminator_widths=(16,), seed=0)
    model.compile()
    return model, tiny_batches(value_range=(-1.0, 1.0))


def dcgan():
    model = DCGAN(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, generator_widths=(8, 4), discriminator_widths=(4, 8), seed=0)
    model.compile()
    return model, tiny_batches(value_range=(-1.0, 1.0))


def wgan_gp():
    model = WGANGP(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, generator_widths=(8, 4), discriminator_widths=(4, 8), d_steps=2, seed=0)
    model.compile()
    return model, tiny_batches(value_range=(-1.0, 1.0))


def cgan():
    model = CGAN(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, generator_widths=(8, 4), discriminator_widths=(4, 8), seed=0)
    model.compile()
    return model, tiny_batches(labels=True, value_range=(-1.0, 1.0))


TINY_MODELS.update({"gan": gan, "dcgan": dcgan, "wgan_gp": wgan_gp, "cgan": cgan})


# === Adversarial hybrids ===
def vae_gan():
    model = VAEGAN(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, discriminator_filters=(4, 8), discriminator_hidden_units=8, seed=0)
    model.compile()
    return model, tiny_batches()


TINY_MODELS["vae_gan"] = vae_gan


def aae():
    model = AAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, filters=(4, 8), discriminator_units=(8,), seed=0)
    model.compile()
    return model, tiny_batches()


TINY_MODELS["aae"] = aae
