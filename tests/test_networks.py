"""The default networks grow with the image size (networks.stage_widths) and stay as they were at 28x28."""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from keras_gen import losses
from keras_gen import networks
from keras_gen.models import AAE
from keras_gen.models import CGAN
from keras_gen.models import CVAE
from keras_gen.models import DCGAN
from keras_gen.models import GAN
from keras_gen.models import GMVAE
from keras_gen.models import HVAE
from keras_gen.models import VAE
from keras_gen.models import VAEGAN
from keras_gen.models import WGANGP
from keras_gen.models import Autoencoder
from keras_gen.models import DenoisingAutoencoder
from keras_gen.models import SemiSupervisedClassifier
from tests import helpers

AUTOENCODER_NETWORKS = ("encoder", "decoder")
GAN_NETWORKS = ("generator", "discriminator")

# zoo name -> (class, small options, the widths options' literal defaults before they scaled, the
# networks built from those widths, i.e. made of stride-2 stages).
CONV_MODELS = {
    "vae": (VAE, dict(latent_dim=2), {"filters": (32, 64)}, AUTOENCODER_NETWORKS),
    "cvae": (CVAE, dict(latent_dim=2, num_classes=3), {"filters": (32, 64)}, AUTOENCODER_NETWORKS),
    "gmvae": (GMVAE, dict(latent_dim=2, num_components=2), {"filters": (32, 64)}, AUTOENCODER_NETWORKS),
    "hvae": (HVAE, dict(latent_dims=(2, 2), hidden_units=8), {"filters": (32, 64)}, AUTOENCODER_NETWORKS),
    "autoencoder": (Autoencoder, dict(code_dim=2), {"filters": (32, 64)}, AUTOENCODER_NETWORKS),
    "denoising_autoencoder": (DenoisingAutoencoder, dict(code_dim=2), {"filters": (32, 64)}, AUTOENCODER_NETWORKS),
    "semi_supervised": (SemiSupervisedClassifier, dict(code_dim=2, num_classes=3), {"filters": (32, 64)}, ("encoder",)),
    "aae": (AAE, dict(latent_dim=2, discriminator_units=(8,)), {"filters": (32, 64)}, AUTOENCODER_NETWORKS),
    "dcgan": (DCGAN, dict(latent_dim=2), {"generator_widths": (128, 64), "discriminator_widths": (64, 128)}, GAN_NETWORKS),
    "wgan_gp": (WGANGP, dict(latent_dim=2), {"generator_widths": (128, 64), "discriminator_widths": (64, 128, 256)}, GAN_NETWORKS),
    "cgan": (CGAN, dict(latent_dim=2, num_classes=3), {"generator_widths": (128, 64), "discriminator_widths": (64, 128)}, GAN_NETWORKS),
    "vae_gan": (
        VAEGAN,
        dict(latent_dim=2, discriminator_hidden_units=8),
        {"filters": (32, 64), "discriminator_filters": (32, 64, 128)},
        ("encoder", "decoder", "discriminator"),
    ),
}


def build(name, image_shape, **options):
    model_class, small, _, _ = CONV_MODELS[name]
    return model_class(image_shape=image_shape, seed=0, **small, **options)


def stride2_stages(network):
    """How many stride-2 convolutions (plain or transposed) a network has."""
    return sum(tuple(getattr(layer, "strides", ())) == (2, 2) for layer in network.layers)


def weight_shapes(model):
    return [tuple(v.shape) for v in model.weights]


# === The rule ===
@pytest.mark.parametrize("size, stages", [(28, 2), (32, 3), (64, 4), (8, 1), (48, 3), (30, 1), (4, 0)])
def test_stages_that_fit(size, stages):
    assert networks.stages_that_fit((size, size, 3)) == stages


def test_stages_that_fit_a_rectangle_by_its_shorter_side():
    assert networks.stages_that_fit((64, 32, 1)) == 3
    assert networks.stages_that_fit((64, 28, 1)) == 2


def test_larger_images_gain_stages_that_double_the_coarse_end():
    assert networks.stage_widths((64, 64, 3), (64, 128)) == (64, 128, 256, 512)
    assert networks.stage_widths((64, 64, 3), (128, 64), coarsest_first=True) == (512, 256, 128, 64)
    assert networks.stage_widths((32, 32, 3), (32, 64)) == (32, 64, 128)
    assert networks.stage_widths((48, 48, 3), (64, 128, 256)) == (64, 128, 256)


def test_smaller_images_keep_the_base():
    assert networks.stage_widths((28, 28, 1), (64, 128, 256)) == (64, 128, 256)
    assert networks.stage_widths(helpers.IMAGE_SHAPE, [128, 64], coarsest_first=True) == (128, 64)


# === 28x28 (and the tests' 8x8) models are built as before ===
@pytest.mark.parametrize("name", CONV_MODELS)
def test_28x28_defaults_are_the_old_widths(name):
    old_widths = CONV_MODELS[name][2]
    model = build(name, (28, 28, 1))
    assert {option: getattr(model, option) for option in old_widths} == old_widths
    assert weight_shapes(model) == weight_shapes(build(name, (28, 28, 1), **old_widths))


@pytest.mark.parametrize("name", CONV_MODELS)
def test_8x8_defaults_are_the_old_widths(name):
    old_widths = CONV_MODELS[name][2]
    model = build(name, helpers.IMAGE_SHAPE)
    assert {option: getattr(model, option) for option in old_widths} == old_widths


def test_the_mlp_gan_keeps_its_widths_at_any_size():
    gan = GAN(image_shape=(64, 64, 3), latent_dim=2)
    assert (gan.generator_widths, gan.discriminator_widths) == ((256, 512), (512, 256))


# === Larger images ===
def test_dcgan_at_64x64_has_the_papers_four_stages():
    dcgan = DCGAN(image_shape=(64, 64, 3), seed=0)
    assert dcgan.generator_widths == (512, 256, 128, 64)
    assert dcgan.discriminator_widths == (64, 128, 256, 512)
    transposed = [layer for layer in dcgan.generator.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert [(layer.filters, layer.kernel_size, layer.strides) for layer in transposed] == [(w, (4, 4), (2, 2)) for w in (512, 256, 128, 64)]
    projection = next(layer for layer in dcgan.generator.layers if isinstance(layer, keras.layers.Reshape))
    assert tuple(projection.output.shape) == (None, 4, 4, 512)
    assert tuple(dcgan.generator.output_shape) == (None, 64, 64, 3)
    convolutions = [layer for layer in dcgan.discriminator.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(layer.filters, layer.kernel_size, layer.strides) for layer in convolutions] == [(w, (4, 4), (2, 2)) for w in (64, 128, 256, 512)]
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in dcgan.discriminator.layers) == 3


@pytest.mark.parametrize("size, stages", [(32, 3), (64, 4)])
@pytest.mark.parametrize("name", CONV_MODELS)
def test_conv_models_gain_stages_and_their_config_rebuilds_them(name, size, stages):
    model = build(name, (size, size, 3))
    for network in CONV_MODELS[name][3]:
        assert stride2_stages(getattr(model, network)) == stages, network
    config = model.get_config()
    for option in CONV_MODELS[name][2]:
        assert len(config[option]) == stages, option
    clone = helpers.assert_config_round_trip(model)
    assert {option: getattr(clone, option) for option in CONV_MODELS[name][2]} == {
        option: getattr(model, option) for option in CONV_MODELS[name][2]
    }
    # The stored widths alone (without the serialised networks) build the same default networks.
    plain = {key: value for key, value in config.items() if key not in type(model).nested_models}
    assert weight_shapes(type(model).from_config(plain)) == weight_shapes(model)


def test_given_widths_are_used_as_given():
    dcgan = DCGAN(image_shape=(64, 64, 3), latent_dim=2, generator_widths=[8, 4], discriminator_widths=[4, 8])
    assert (dcgan.generator_widths, dcgan.discriminator_widths) == ((8, 4), (4, 8))
    assert stride2_stages(dcgan.generator) == stride2_stages(dcgan.discriminator) == 2


# === Sizes the stages cannot halve evenly ===
UNEVEN = r"image_shape \(30, 30, 1\) cannot be halved evenly by 2 stride-2 stages.*divisible by 4.*28 or 32.*image_size.*--image-size.*fewer widths"


@pytest.mark.parametrize("name", CONV_MODELS)
def test_an_uneven_image_size_fails_at_construction(name):
    with pytest.raises(ValueError, match=UNEVEN):
        build(name, (30, 30, 1))


@pytest.mark.parametrize(
    "encoder",
    [
        lambda shape: networks.conv_encoder(shape, 2),
        lambda shape: networks.ae_encoder(shape, 2),
        lambda shape: networks.conditional_conv_encoder(shape, 2, num_classes=3),
        lambda shape: networks.ladder_encoder(shape, num_groups=2, hidden_units=8),
    ],
)
def test_encoders_fail_on_an_uneven_image_size_too(encoder):
    with pytest.raises(ValueError, match=UNEVEN):
        encoder((30, 30, 1))


def test_masked_leaky_relu_is_keras_leaky_relu_to_second_order():
    def critic(activation):
        images = keras.Input(helpers.IMAGE_SHAPE)
        x = activation(layers.Conv2D(4, 3, strides=2, padding="same")(images))
        x = activation(layers.Dense(8)(layers.Flatten()(x)))
        return keras.Model(images, layers.Dense(1)(x))

    keras.utils.set_random_seed(0)
    masked, plain = critic(networks.MaskedLeakyReLU(0.2)), critic(layers.LeakyReLU(0.2))
    plain.set_weights(masked.get_weights())
    x = tf.constant(helpers.tiny_images(6, binary=False) * 2.0 - 1.0)
    np.testing.assert_allclose(masked(x), plain(x), atol=1e-6)
    gradients = []
    for model in (masked, plain):
        with tf.GradientTape() as tape:
            penalty = tf.reduce_mean(losses.gradient_penalty(model, x, x[::-1], tf.constant([0, 1])))
        found = tape.gradient(penalty, model.trainable_weights)
        # The biases only reach the penalty through the slopes, whose derivative is zero.
        gradients.append([np.zeros(w.shape) if g is None else np.asarray(g) for g, w in zip(found, model.trainable_weights)])
    assert float(penalty) > 0
    for a, b in zip(*gradients):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert any(np.abs(a).max() > 1e-3 for a in gradients[0])
