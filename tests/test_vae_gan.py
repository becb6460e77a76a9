"""VAE-GAN.

Tests that run a few steps compile their models with `run_eagerly=True`: the steps compute the same
thing, and tracing a tiny model's step costs seconds (tests/test_zoo.py and tests/test_distributed_zoo.py
run every zoo model's traced step).
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from keras_gen import networks
from keras_gen import recipes
from keras_gen.models import VAEGAN
from tests import helpers
from tests.helpers import changed
from tests.helpers import weights_of
from tests.zoo_cases import tiny_batches

LATENT = 2
SHAPE = helpers.IMAGE_SHAPE
NETWORKS = {"e_optimizer": "encoder", "g_optimizer": "decoder", "d_optimizer": "discriminator"}


def tiny_vae_gan(**kwargs):
    options = dict(image_shape=SHAPE, latent_dim=LATENT, discriminator_filters=(4, 8), discriminator_hidden_units=8, seed=0)
    options.update(kwargs)
    return VAEGAN(**options)


def code_blind_decoder(seed=0):
    """A decoder whose logits ignore z (its first layer is frozen at a zero kernel) but still depend on its
    trainable weights: reconstructions and samples are the same image, whatever noise a step draws."""
    z = keras.Input((LATENT,))
    frozen = layers.Dense(4, kernel_initializer="zeros", bias_initializer=keras.initializers.RandomNormal(seed=seed), trainable=False)
    x = layers.Dense(int(np.prod(SHAPE)), kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(frozen(z))
    return keras.Model(z, layers.Reshape(SHAPE)(x), name="decoder")


def one_step(model, images):
    model.fit(tf.data.Dataset.from_tensors(images), epochs=1, verbose=0)


def images_in_0_1(count=8, seed=0):
    return helpers.tiny_images(count, seed=seed, binary=False)


# === The three updates ===
def test_the_three_optimizers_split_the_weights_between_the_networks():
    model = tiny_vae_gan()
    model.compile(run_eagerly=True)
    ids = {name: {id(v) for v in model.optimizer_variables(name)} for name in model.optimizer_names}
    assert sum(len(v) for v in ids.values()) == len(set().union(*ids.values())) == len(model.trainable_weights)
    for name, network in NETWORKS.items():
        assert ids[name] == {id(v) for v in getattr(model, network).trainable_weights}


@pytest.mark.parametrize("active", sorted(NETWORKS))
def test_each_update_moves_only_its_own_network(active):
    model = tiny_vae_gan()
    optimizers = {name: keras.optimizers.SGD(0.0) for name in NETWORKS}
    optimizers[active] = keras.optimizers.Adam(1e-2)
    model.compile(**optimizers, run_eagerly=True)
    before = {network: weights_of(getattr(model, network)) for network in NETWORKS.values()}
    one_step(model, images_in_0_1())
    for name, network in NETWORKS.items():
        moved = changed(before[network], weights_of(getattr(model, network)))
        if name == active:
            assert all(moved), f"every weight of the {network} moves with its own optimizer"
        else:
            assert not any(moved), f"the {active} step changed the {network}"
        assert int(getattr(model, name).iterations.numpy()) == 1


def step_from_same_start(**options):
    """{network: weights} after one SGD step of a model that starts from the same weights and noise as every
    other model this builds, with `options` changed."""
    keras.utils.set_random_seed(0)
    model = tiny_vae_gan(**options)
    model.compile(**{name: keras.optimizers.SGD(0.05) for name in NETWORKS}, run_eagerly=True)
    one_step(model, images_in_0_1())
    return {network: weights_of(getattr(model, network)) for network in NETWORKS.values()}


def test_each_loss_reaches_only_the_networks_it_should():
    """Larsen et al.'s routing: the GAN loss does not reach the encoder, gamma weighs the feature
    reconstruction for the decoder alone, and the discriminator never learns from a reconstruction loss."""
    base = step_from_same_start()
    differs = {
        "loss": step_from_same_start(loss="least_squares"),
        "feature_weight": step_from_same_start(feature_weight=1.0),
        "pixel_weight": step_from_same_start(pixel_weight=1.0),
    }
    expected = {
        "loss": {"encoder": False, "decoder": True, "discriminator": True},
        "feature_weight": {"encoder": False, "decoder": True, "discriminator": False},
        "pixel_weight": {"encoder": True, "decoder": True, "discriminator": False},
    }
    for option, weights in differs.items():
        for network, should_differ in expected[option].items():
            moved = changed(base[network], weights[network])
            assert any(moved) == should_differ, (option, network)


def test_losses_match_the_formulas_by_hand():
    # With a decoder that ignores z, the reconstruction and the sample are the same image x~ whatever the noise.
    model = tiny_vae_gan(decoder=code_blind_decoder(), feature_weight=0.3, pixel_weight=0.5)
    images = images_in_0_1(4)
    terms = {k: np.asarray(v) for k, v in model.compute_losses(images).items()}
    generated = tf.sigmoid(model.decoder(tf.zeros([4, LATENT]))).numpy()
    real_features, real_scores = (np.asarray(o) for o in model.discriminator(images))
    fake_features, fake_scores = (np.asarray(o) for o in model.discriminator(generated))
    real_scores, fake_scores = real_scores[:, 0], fake_scores[:, 0]
    num_features = real_features.shape[1]
    feature = 0.5 * np.sum((real_features - fake_features) ** 2, axis=1) + 0.5 * num_features * np.log(2 * np.pi)
    pixel = -np.sum(images * np.log(generated) + (1 - images) * np.log(1 - generated), axis=(1, 2, 3))
    d_loss = np.log1p(np.exp(-real_scores)) + np.log1p(np.exp(fake_scores))
    g_loss = np.log1p(np.exp(-fake_scores))
    np.testing.assert_allclose(terms["feature_reconstruction"], feature, rtol=1e-5)
    np.testing.assert_allclose(terms["pixel_reconstruction"], pixel, rtol=1e-4)
    np.testing.assert_allclose(terms["d_loss"], d_loss, rtol=1e-5)
    np.testing.assert_allclose(terms["g_loss"], g_loss, rtol=1e-5)
    np.testing.assert_allclose(terms["encoder_loss"], terms["kl"] + feature + 0.5 * pixel, rtol=1e-5)
    np.testing.assert_allclose(terms["decoder_loss"], 0.3 * feature + g_loss + 0.5 * pixel, rtol=1e-5)
    np.testing.assert_allclose(terms["d_real"], 1 / (1 + np.exp(-real_scores)), rtol=1e-5)
    np.testing.assert_allclose(terms["d_fake"], terms["d_reconstruction"], rtol=1e-6)
    assert np.all(terms["kl"] > 0)


def test_fit_and_evaluate_report_every_part():
    model = tiny_vae_gan()
    model.compile(run_eagerly=True)
    history = model.fit(tiny_batches(16), epochs=1, validation_data=tiny_batches(8), verbose=0).history
    for key in model.metric_names:
        assert np.isfinite(history[key][0]), key
    assert min(history[key][0] for key in ("e_grad_norm", "g_grad_norm", "d_grad_norm")) > 0
    assert 0 < history["d_real"][0] < 1 and 0 < history["d_fake"][0] < 1
    validation = {key[4:] for key in history if key.startswith("val_")}
    assert validation == set(model.metric_names) - {"e_grad_norm", "g_grad_norm", "d_grad_norm"}


# === Saving, config, endpoints ===
def test_keras_file_round_trip_resumes_all_three_optimizers(tmp_path):
    data = tiny_batches(32)
    model = tiny_vae_gan()
    model.compile(
        e_optimizer=keras.optimizers.Adam(1e-3),
        g_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5),
        d_optimizer=keras.optimizers.RMSprop(3e-4),
    )
    helpers.fit_steps(model, data, steps=2)
    loaded = helpers.assert_keras_reload(model, images_in_0_1(4), tmp_path / "vae_gan.keras")
    assert [int(getattr(loaded, name).iterations.numpy()) for name in NETWORKS] == [2, 2, 2]
    assert float(loaded.g_optimizer.learning_rate.numpy()) == pytest.approx(2e-3)
    assert float(loaded.g_optimizer.beta_1) == pytest.approx(0.5)
    assert isinstance(loaded.d_optimizer, keras.optimizers.RMSprop)
    # Same weights, optimizer states and noise stream: continuing either gives the same weights.
    for m in (model, loaded):
        helpers.fit_steps(m, data, steps=2)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_config_keeps_every_option():
    model = tiny_vae_gan(loss="hinge", feature_weight=0.01, pixel_weight=0.2, beta=0.5, kl_warmup_epochs=3, feature_block=0)
    clone = helpers.assert_config_round_trip(model)
    assert (clone.loss_name, clone.feature_weight, clone.pixel_weight, clone.beta, clone.kl_warmup_epochs) == ("hinge", 0.01, 0.2, 0.5, 3)
    assert clone.discriminator.output_shape[0] == (None, 4 * 4 * 4), "features from the first block"


def test_endpoints_are_the_vaes_plus_the_discriminators_score():
    model = tiny_vae_gan()
    names = [endpoint.name for endpoint in model.serving_endpoints()]
    assert names == ["reconstruct", "encode", "decode", "sample", "interpolate", "score"]
    assert model.default_endpoint == "reconstruct"
    images = images_in_0_1(3)
    np.testing.assert_allclose(model.score(images)["score"], model.discriminator(images)[1][:, 0], atol=1e-6)
    grids = model.summary_images(model.summary_inputs(images_in_0_1(8), num_samples=16))
    assert set(grids) == {"samples", "reconstructions", "interpolation"}
    assert grids["samples"][0].shape == (16, *SHAPE)


def test_feature_discriminator_exposes_the_chosen_block():
    for block, width in ((0, 4 * 4 * 4), (1, 2 * 2 * 8), (-1, 2 * 2 * 8)):
        features, scores = networks.feature_discriminator(SHAPE, filters=(4, 8), feature_block=block, hidden_units=0)(tf.zeros([3, *SHAPE]))
        assert features.shape == (3, width) and scores.shape == (3, 1)
    with pytest.raises(ValueError, match="feature_block 2 is not a block"):
        networks.feature_discriminator(SHAPE, filters=(4, 8), feature_block=2)


# === Bad input ===
def test_a_discriminator_without_features_is_refused():
    with pytest.raises(ValueError, match=r"must return \[features, score\].*feature_discriminator"):
        tiny_vae_gan(discriminator=networks.conv_discriminator(SHAPE, filters=(4,)))
    images = keras.Input(SHAPE)
    flat = layers.Flatten()(images)
    with pytest.raises(ValueError, match="one score per image"):
        tiny_vae_gan(discriminator=keras.Model(images, [flat, layers.Dense(3)(flat)]))
    with pytest.raises(ValueError, match="discriminator must be a Keras model"):
        tiny_vae_gan(discriminator="conv")


def test_bad_options_and_inputs_say_what_to_do():
    with pytest.raises(ValueError, match="Unknown GAN loss 'wgan'"):
        tiny_vae_gan(loss="wgan")
    with pytest.raises(ValueError, match="feature_weight and pixel_weight must be 0 or more"):
        tiny_vae_gan(feature_weight=-1.0)
    model = tiny_vae_gan()
    with pytest.raises(ValueError, match=r"compile\(\)"):
        model.fit(images_in_0_1(), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="one optimizer instance per network"):
        adam = keras.optimizers.Adam()
        model.compile(e_optimizer=adam, d_optimizer=adam, run_eagerly=True)
    model.compile(run_eagerly=True)
    with pytest.raises(ValueError, match=r"\[batch, 8, 8, 1\]"):
        model.fit(np.zeros((8, 9, 9, 1), "float32"), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match=r"float images scaled to \[0, 1\]"):
        model.fit(np.zeros((8, *SHAPE), "uint8"), batch_size=8, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"images in \[0, 1\]; scale them with data preprocessing"):
        model.fit(np.full((8, *SHAPE), 255.0, "float32"), batch_size=8, verbose=0)


def test_recipe_trains_on_scaled_fashion_mnist():
    recipe = recipes.load_recipe("vae_gan")
    assert recipe.data["preprocessing"] == "scale"
    model = recipe.build_model()
    assert type(model) is VAEGAN and model.image_shape == (28, 28, 1)
    recipe.compile_model(model)
    assert all(getattr(model, name) is not None for name in NETWORKS)
    assert model.discriminator.output_shape == [(None, 4 * 4 * 128), (None, 1)]
