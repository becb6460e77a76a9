"""keras_gen.models.base (and models.adversarial): merged constructors, the one compile, the one label check."""

import inspect

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import losses
from keras_gen.models import AAE
from keras_gen.models import CGAN
from keras_gen.models import CVAE
from keras_gen.models import DCGAN
from keras_gen.models import GAN
from keras_gen.models import HVAE
from keras_gen.models import VAE
from keras_gen.models import VAEGAN
from keras_gen.models import WGANGP
from keras_gen.models.base import constructor_signature
from tests import helpers


def defaults(cls):
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items() if p.default is not p.empty}


# === Constructors: variants list only what they add or change ===
def test_variants_show_every_option_with_their_own_defaults():
    gan, dcgan, wgan, cgan = defaults(GAN), defaults(DCGAN), defaults(WGANGP), defaults(CGAN)
    assert (gan["latent_dim"], gan["loss"], gan["d_steps"]) == (64, "minimax", 1)
    assert (dcgan["latent_dim"], dcgan["loss"]) == (100, "non_saturating")
    assert (wgan["latent_dim"], wgan["loss"], wgan["d_steps"], wgan["gradient_penalty_weight"]) == (128, "wasserstein", 5, 10.0)
    assert (cgan["num_classes"], cgan["embedding_dim"], cgan["loss"], cgan["latent_dim"]) == (10, 10, "non_saturating", 64)
    # Every option of the parent is an option of the variant, in the parent's order (networks first).
    assert list(defaults(DCGAN)) == list(gan)
    assert set(cgan) == set(gan) | {"num_classes", "embedding_dim"} and set(defaults(CVAE)) == set(defaults(VAE)) | {"num_classes"}
    assert "latent_dim" not in defaults(HVAE) and {"latent_dims", "free_bits", "beta", "image_shape"} <= set(defaults(HVAE))
    assert {"discriminator", "feature_weight", "latent_dim", "beta"} <= set(defaults(VAEGAN))


def test_a_variant_built_from_positional_networks_and_its_config_round_trips():
    model = DCGAN(None, None, image_shape=helpers.IMAGE_SHAPE, latent_dim=2, generator_widths=(8, 4), discriminator_widths=(4, 8), seed=0)
    assert (model.latent_dim, model.loss_name) == (2, "non_saturating")
    again = DCGAN.from_config(model.get_config())
    assert again.get_config() == model.get_config()
    cgan = CGAN(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, num_classes=3, generator_widths=(8, 4), discriminator_widths=(4, 8))
    assert CGAN.from_config(cgan.get_config()).num_classes == 3
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to HVAE.*latent_dim"):
        HVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=3)


def test_option_defaults_must_name_an_option_of_the_ancestry():
    with pytest.raises(TypeError, match="option_defaults names latent_size"):

        class Broken(DCGAN):
            option_defaults = {"latent_size": 3}

        del Broken
    # A plain subclass keeps its parent's constructor untouched.
    class Plain(DCGAN):
        pass

    assert Plain.__init__ is DCGAN.__init__ and constructor_signature(Plain) == inspect.signature(DCGAN.__init__)


def test_hvae_overrides_what_it_changes_and_inherits_no_hook_it_must_disable():
    # A hierarchy has no one prior or posterior: it is a VariationalModel, not a VAE whose hooks raise.
    assert not issubclass(HVAE, VAE)
    assert not hasattr(HVAE, "prior") and not hasattr(HVAE, "posterior")
    assert {"latent_terms", "decoder_logits"} <= set(vars(HVAE))


# === One compile for every model with several optimizers ===
def small_dcgan():
    return DCGAN(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, generator_widths=(8, 4), discriminator_widths=(4, 8), seed=0)


def test_compile_takes_each_optimizer_by_name_as_an_instance_a_name_or_a_config():
    model = small_dcgan()
    model.compile(d_optimizer="sgd", g_optimizer={"class_name": "RMSprop", "config": {"learning_rate": 0.01}})
    assert type(model.d_optimizer).__name__ == "SGD" and type(model.g_optimizer).__name__ == "RMSprop"
    # Left out: the model's default (DCGAN's Adam(2e-4, beta_1=0.5)).
    model.compile(d_optimizer=keras.optimizers.Adagrad(0.1))
    assert type(model.d_optimizer).__name__ == "Adagrad" and model.g_optimizer.beta_1 == 0.5
    aae = AAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, filters=(4, 8), discriminator_units=(4,), seed=0)
    aae.compile(ae_optimizer="adamw")
    assert type(aae.ae_optimizer).__name__ == "AdamW" and abs(float(aae.d_optimizer.learning_rate) - 2e-4) < 1e-9


def test_compile_refuses_keras_single_optimizer_arguments_on_a_multi_optimizer_model():
    model = small_dcgan()
    with pytest.raises(ValueError, match=r"takes each by its name, compile\(d_optimizer=..., g_optimizer=...\).*does not take optimizer"):
        model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="does not take loss"):
        model.compile(loss="mse")
    with pytest.raises(ValueError, match="one optimizer instance per network"):
        shared = keras.optimizers.Adam()
        model.compile(d_optimizer=shared, g_optimizer=shared)


def test_a_compiled_multi_optimizer_model_restores_its_optimizers_from_its_compile_config():
    model = small_dcgan()
    model.compile(d_optimizer=keras.optimizers.RMSprop(0.003), jit_compile=False)
    config = model.get_compile_config()
    fresh = small_dcgan()
    fresh.compile_from_config(config)
    assert type(fresh.d_optimizer).__name__ == "RMSprop" and abs(float(fresh.d_optimizer.learning_rate) - 0.003) < 1e-9


# === One label check ===
def test_every_model_that_reads_labels_checks_them_with_one_rule_and_one_message():
    cvae = CVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, num_classes=4, seed=0)
    cgan = CGAN(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, num_classes=4, generator_widths=(8, 4), discriminator_widths=(4, 8))
    for model in (cvae, cgan):
        name = type(model).__name__
        np.testing.assert_array_equal(model.check_labels(np.array([[1], [3]], "int32")), [1, 3])
        assert model.check_labels(np.array([0, 2], "int32")).dtype == tf.int64
        with pytest.raises(ValueError, match=f"{name} needs a class label per image.*with_labels = true"):
            model.check_labels(None)
        with pytest.raises(ValueError, match=rf"{name} labels must be integer class indices 0..3, got dtype float32 \(one-hot"):
            model.check_labels(np.zeros(2, "float32"))
        with pytest.raises(ValueError, match=rf"{name} labels must have shape \[batch\]"):
            model.check_labels(np.zeros((2, 2), "int64"))
        with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{name} labels must be class indices in \[0, 4\)"):
            model.check_labels(np.array([0, 4]))


# === The adversarial component ===
def test_adversarial_models_share_one_loss_option_one_report_and_one_config():
    gan = small_dcgan()
    aae = AAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, filters=(4, 8), discriminator_units=(4,), loss="least_squares", seed=0)
    vae_gan = VAEGAN(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, filters=(4, 8), discriminator_filters=(4, 8), discriminator_hidden_units=0, seed=0)
    scores = tf.constant([0.0, 2.0])
    for model, expected in ((gan, tf.sigmoid(scores)), (aae, scores), (vae_gan, tf.sigmoid(scores))):
        np.testing.assert_allclose(model.probabilities(scores), expected)
        assert model.get_config()["loss"] == model.loss_name
    pair = (losses.hinge_discriminator_loss, losses.wasserstein_generator_loss)
    custom = GAN(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, generator_widths=(8,), discriminator_widths=(8,), loss=pair)
    assert custom.loss_name is None and custom.get_config()["loss"] == [keras.saving.get_registered_name(fn) for fn in pair]
    assert GAN.from_config(custom.get_config()).d_loss_fn is losses.hinge_discriminator_loss
    with pytest.raises(ValueError, match="Unknown GAN loss 'minmax'"):
        losses.resolve_gan_loss("minmax")


def test_adversarial_models_check_their_training_range_in_one_way():
    gan = small_dcgan()
    aae = AAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, filters=(4, 8), discriminator_units=(4,), seed=0)
    images = helpers.tiny_images(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"DCGAN trains on images in \[-1, 1\]; use data preprocessing 'tanh'"):
        gan.check_training_images(images * 3.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"AAE trains on images in \[0, 1\]; use data preprocessing 'scale'"):
        aae.check_training_images(images - 0.5)
    with pytest.raises(ValueError, match=r"DCGAN trains on float images scaled to \[-1, 1\], got dtype uint8"):
        gan.check_training_images(np.zeros((2, *helpers.IMAGE_SHAPE), "uint8"))


def test_a_new_model_gets_the_generic_compile_from_its_optimizer_names_and_defaults():
    class TwoOptimizers(GAN):
        optimizer_names = ("d_optimizer", "g_optimizer")
        default_optimizers = {name: {"class_name": "SGD", "config": {"learning_rate": 0.5}} for name in optimizer_names}

    model = TwoOptimizers(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, generator_widths=(8,), discriminator_widths=(8,))
    model.compile()
    assert type(model.d_optimizer).__name__ == "SGD" and float(model.g_optimizer.learning_rate) == 0.5
