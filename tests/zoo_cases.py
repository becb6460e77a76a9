"""Tiny instances of every model in the zoo, for the tests that every model gets (tests/test_zoo.py).

Add one entry per new model: a factory returning a compiled tiny model (8x8 images, latent 2) and the
training data `fit` takes, as `(model, data)` where data is a tf.data.Dataset of batches. Keyword
arguments beyond `image_shape` go to the model's constructor (e.g. `mixed_precision="float16"`).
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
from keras_gen.models import EBM
from tests import helpers


def tiny_batches(count=32, batch_size=8, labels=False, seed=0, value_range=(0.0, 1.0), shape=helpers.IMAGE_SHAPE):
    """Batches of tiny binary images (optionally with int64 labels 0..9), mapped to `value_range`."""
    low, high = value_range
    images = helpers.tiny_images(count, seed=seed, shape=shape) * (high - low) + low
    if not labels:
        return tf.data.Dataset.from_tensor_slices(images).batch(batch_size, drop_remainder=True)
    classes = (np.arange(count) % 10).astype("int64")
    return tf.data.Dataset.from_tensor_slices((images, classes)).batch(batch_size, drop_remainder=True)


def vae(image_shape=helpers.IMAGE_SHAPE, **options):
    model = VAE(image_shape=image_shape, latent_dim=2, seed=0, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches(shape=image_shape)


def cvae(image_shape=helpers.IMAGE_SHAPE, **options):
    model = CVAE(image_shape=image_shape, latent_dim=2, num_classes=10, seed=0, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches(labels=True, shape=image_shape)


def gmvae(image_shape=helpers.IMAGE_SHAPE, **options):
    model = GMVAE(image_shape=image_shape, latent_dim=2, num_components=3, seed=0, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches(shape=image_shape)


def hvae(image_shape=helpers.IMAGE_SHAPE, **options):
    model = HVAE(image_shape=image_shape, latent_dims=(2, 2), hidden_units=8, free_bits=0.1, seed=0, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches(shape=image_shape)


def autoencoder(image_shape=helpers.IMAGE_SHAPE, **options):
    model = Autoencoder(image_shape=image_shape, code_dim=2, filters=(4, 8), convs_per_stage=2, seed=0, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches(shape=image_shape)


def denoising_autoencoder(image_shape=helpers.IMAGE_SHAPE, **options):
    model = DenoisingAutoencoder(
        image_shape=image_shape, code_dim=2, filters=(4, 8), corruption="salt_and_pepper", corruption_strength=0.2, seed=0, **options
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches(shape=image_shape)


def semi_supervised(image_shape=helpers.IMAGE_SHAPE, **options):
    model = SemiSupervisedClassifier(image_shape=image_shape, code_dim=2, filters=(4, 8), hidden_units=4, dropout=0.1, seed=0, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches(labels=True, shape=image_shape)


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
def gan(image_shape=helpers.IMAGE_SHAPE, **options):
    model = GAN(image_shape=image_shape, latent_dim=2, generator_widths=(16,), discriminator_widths=(16,), seed=0, **options)
    model.compile()
    return model, tiny_batches(value_range=(-1.0, 1.0), shape=image_shape)


def dcgan(image_shape=helpers.IMAGE_SHAPE, **options):
    model = DCGAN(image_shape=image_shape, latent_dim=2, generator_widths=(8, 4), discriminator_widths=(4, 8), seed=0, **options)
    model.compile()
    return model, tiny_batches(value_range=(-1.0, 1.0), shape=image_shape)


def wgan_gp(image_shape=helpers.IMAGE_SHAPE, **options):
    model = WGANGP(image_shape=image_shape, latent_dim=2, generator_widths=(8, 4), discriminator_widths=(4, 8), d_steps=2, seed=0, **options)
    model.compile()
    return model, tiny_batches(value_range=(-1.0, 1.0), shape=image_shape)


def cgan(image_shape=helpers.IMAGE_SHAPE, **options):
    model = CGAN(image_shape=image_shape, latent_dim=2, generator_widths=(8, 4), discriminator_widths=(4, 8), seed=0, **options)
    model.compile()
    return model, tiny_batches(labels=True, value_range=(-1.0, 1.0), shape=image_shape)


TINY_MODELS.update({"gan": gan, "dcgan": dcgan, "wgan_gp": wgan_gp, "cgan": cgan})


# === Adversarial hybrids ===
def vae_gan(image_shape=helpers.IMAGE_SHAPE, **options):
    model = VAEGAN(image_shape=image_shape, latent_dim=2, discriminator_filters=(4, 8), discriminator_hidden_units=8, seed=0, **options)
    model.compile()
    return model, tiny_batches(shape=image_shape)


TINY_MODELS["vae_gan"] = vae_gan


def aae(image_shape=helpers.IMAGE_SHAPE, **options):
    model = AAE(image_shape=image_shape, latent_dim=2, filters=(4, 8), discriminator_units=(8,), seed=0, **options)
    model.compile()
    return model, tiny_batches(shape=image_shape)


TINY_MODELS["aae"] = aae


def ebm(image_shape=helpers.IMAGE_SHAPE, **options):
    model = EBM(
        image_shape=image_shape, filters=(4, 8), hidden_units=8, langevin_steps=2, sample_steps=3, buffer_size=16, reinit_rate=0.5, seed=0, **options
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model, tiny_batches(shape=image_shape)


TINY_MODELS["ebm"] = ebm
