"""The GAN loop and its variants.

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

from keras_gen import losses
from keras_gen import networks
from keras_gen import recipes
from keras_gen.models import CGAN
from keras_gen.models import DCGAN
from keras_gen.models import GAN
from keras_gen.models import WGANGP
from tests import helpers
from tests.helpers import changed
from tests.helpers import weights_of
from tests.zoo_cases import tiny_batches

LATENT = 2
SHAPE = helpers.IMAGE_SHAPE


def tiny_gan(**kwargs):
    options = dict(image_shape=SHAPE, latent_dim=LATENT, generator_widths=(16,), discriminator_widths=(16,), seed=0)
    options.update(kwargs)
    return GAN(**options)


def tiny_cgan(**kwargs):
    return CGAN(image_shape=SHAPE, latent_dim=LATENT, generator_widths=(8, 4), discriminator_widths=(4, 8), seed=0, **kwargs)


def real_images(count=16, seed=0):
    """Tiny images in [-1, 1], the generators' range."""
    return helpers.tiny_images(count, seed=seed, binary=False) * 2.0 - 1.0


def constant_generator(seed=0):
    """A generator whose output ignores z: its first layer is frozen with a zero kernel. Its images
    still depend on its trainable weights, so training moves it, but noise cannot matter, which lets
    a test compare a step with a computation by hand or across devices."""
    z = keras.Input((LATENT,))
    frozen = layers.Dense(6, kernel_initializer="zeros", bias_initializer=keras.initializers.RandomNormal(seed=seed), trainable=False)
    x = layers.Dense(16, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(frozen(z))
    x = layers.Dense(int(np.prod(SHAPE)), activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1))(x)
    return keras.Model(z, layers.Reshape(SHAPE)(x), name="generator")


def small_critic(seed=0):
    images = keras.Input(SHAPE)
    x = layers.Conv2D(4, 3, strides=2, padding="same", kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(images)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1))(layers.Flatten()(x))
    return keras.Model(images, x, name="discriminator")


# === The training step ===
@pytest.mark.parametrize("loss", sorted(losses.GAN_LOSSES))
def test_one_step_of_each_loss_updates_both_networks(loss):
    model = tiny_gan(loss=loss)
    model.compile(run_eagerly=True)
    g_before, d_before = weights_of(model.generator), weights_of(model.discriminator)
    history = model.fit(tiny_batches(8, value_range=(-1.0, 1.0)), epochs=1, verbose=0).history
    d_moved = changed(d_before, weights_of(model.discriminator))
    assert all(changed(g_before, weights_of(model.generator))) and all(d_moved[:-1])
    # The score's bias cancels out of f(G(z)) - f(x); the cross-entropy and least-squares losses move
    # it (the hinge loss only once some score leaves the margin, so it is not checked).
    if loss != "hinge":
        assert d_moved[-1] == (loss != "wasserstein")
    assert int(model.d_optimizer.iterations.numpy()) == 1 and int(model.g_optimizer.iterations.numpy()) == 1
    for key in model.metric_names:
        assert np.isfinite(history[key][0]), key
    assert history["d_grad_norm"][0] > 0 and history["g_grad_norm"][0] > 0 and history["gradient_penalty"][0] == 0
    if loss in losses.PROBABILITY_GAN_LOSSES:
        assert 0 < history["d_real"][0] < 1 and 0 < history["d_fake"][0] < 1


def hand_written_step(generator, discriminator, real, d_loss, g_loss, learning_rate, d_steps, g_sees_updated_d=True):
    """Algorithm 1 of Goodfellow et al. with plain SGD, for a generator whose output ignores z."""
    z = tf.zeros([real.shape[0], LATENT])
    old_discriminator = [w.numpy() for w in discriminator.trainable_weights]
    for _ in range(d_steps):
        fake = generator(z)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(d_loss(tf.reshape(discriminator(real), [-1]), tf.reshape(discriminator(fake), [-1])))
        for w, g in zip(discriminator.trainable_weights, tape.gradient(loss, discriminator.trainable_weights)):
            w.assign_sub(learning_rate * g)
    new_discriminator = [w.numpy() for w in discriminator.trainable_weights]
    if not g_sees_updated_d:
        discriminator.set_weights(old_discriminator)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(g_loss(tf.reshape(discriminator(generator(z)), [-1])))
    for w, g in zip(generator.trainable_weights, tape.gradient(loss, generator.trainable_weights)):
        w.assign_sub(learning_rate * g)
    discriminator.set_weights(new_discriminator)


@pytest.mark.parametrize("fresh_generator_noise", [False, True])
def test_step_alternates_d_steps_discriminator_updates_then_one_generator_update(fresh_generator_noise):
    real = tf.constant(real_images(8))
    model = GAN(constant_generator(), small_critic(), image_shape=SHAPE, latent_dim=LATENT, loss="non_saturating", d_steps=2, fresh_generator_noise=fresh_generator_noise, seed=0)
    model.compile(d_optimizer=keras.optimizers.SGD(0.5), g_optimizer=keras.optimizers.SGD(0.5), run_eagerly=True)
    expected = {}
    for order in (True, False):
        generator, discriminator = constant_generator(), small_critic()
        generator.set_weights(model.generator.get_weights())
        discriminator.set_weights(model.discriminator.get_weights())
        hand_written_step(generator, discriminator, real, *losses.GAN_LOSSES["non_saturating"], 0.5, 2, g_sees_updated_d=order)
        expected[order] = (generator.get_weights(), discriminator.get_weights())
    model.fit(tf.data.Dataset.from_tensors(real), epochs=1, verbose=0)
    for a, b in zip(model.discriminator.get_weights(), expected[True][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for a, b in zip(model.generator.get_weights(), expected[True][0]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # The generator learnt against the discriminator as updated in the same step, not the old one.
    assert any(not np.allclose(a, b, atol=1e-5) for a, b in zip(expected[True][0], expected[False][0]))


def test_d_steps_discriminator_updates_per_generator_update():
    model = tiny_gan(d_steps=3)
    model.compile(run_eagerly=True)
    model.fit(tiny_batches(16, value_range=(-1.0, 1.0)), epochs=1, verbose=0)
    assert int(model.d_optimizer.iterations.numpy()) == 2 * 3
    assert int(model.g_optimizer.iterations.numpy()) == 2


def test_each_update_moves_only_its_own_network():
    for frozen in ("d_optimizer", "g_optimizer"):
        model = DCGAN(image_shape=SHAPE, latent_dim=LATENT, generator_widths=(8, 4), discriminator_widths=(4, 8), d_steps=2, seed=0)
        optimizers = {"d_optimizer": keras.optimizers.Adam(1e-2), "g_optimizer": keras.optimizers.Adam(1e-2)}
        optimizers[frozen] = keras.optimizers.SGD(0.0)
        model.compile(**optimizers, run_eagerly=True)
        g_before, d_before = weights_of(model.generator), weights_of(model.discriminator)
        model.fit(tiny_batches(16, value_range=(-1.0, 1.0)), epochs=1, verbose=0)
        g_moved, d_moved = changed(g_before, weights_of(model.generator)), changed(d_before, weights_of(model.discriminator))
        if frozen == "d_optimizer":
            assert not any(d_moved) and all(g_moved)
        else:
            assert not any(g_moved) and all(d_moved)


class CountCalls(layers.Layer):
    """Counts (eager) calls: how many generator passes a step makes."""

    calls = 0

    def call(self, x):
        CountCalls.calls += 1
        return x


@pytest.mark.parametrize("fresh_generator_noise, passes", [(False, 3), (True, 4)])
def test_generator_update_reuses_the_last_generated_batch_unless_asked_for_fresh_noise(fresh_generator_noise, passes):
    z = keras.Input((LATENT,))
    x = layers.Dense(int(np.prod(SHAPE)), activation="tanh")(CountCalls()(z))
    generator = keras.Model(z, layers.Reshape(SHAPE)(x))
    model = GAN(generator, small_critic(), image_shape=SHAPE, latent_dim=LATENT, d_steps=3, fresh_generator_noise=fresh_generator_noise, seed=0)
    model.compile(run_eagerly=True)
    CountCalls.calls = 0
    model.fit(tiny_batches(8, value_range=(-1.0, 1.0)), epochs=1, verbose=0)
    assert CountCalls.calls == passes


def test_evaluate_reports_the_losses_without_gradient_norms():
    model = WGANGP(image_shape=SHAPE, latent_dim=LATENT, generator_widths=(8, 4), discriminator_widths=(4, 8), d_steps=2, seed=0)
    model.compile(run_eagerly=True)
    results = model.evaluate(tiny_batches(16, value_range=(-1.0, 1.0)), return_dict=True, verbose=0)
    assert set(results) == {"d_loss", "g_loss", "d_real", "d_fake", "gradient_penalty"}
    assert results["gradient_penalty"] > 0
    assert results["d_loss"] == pytest.approx(results["d_fake"] - results["d_real"] + 10.0 * results["gradient_penalty"], rel=1e-4, abs=1e-5)


# === Saving, config, export ===
def test_keras_file_round_trip_resumes_training_identically(tmp_path):
    data = tiny_batches(32, value_range=(-1.0, 1.0))
    model = WGANGP(image_shape=SHAPE, latent_dim=LATENT, generator_widths=(8, 4), discriminator_widths=(4, 8), d_steps=2, seed=0)
    model.compile(d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.0, beta_2=0.9), g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), run_eagerly=True)
    helpers.fit_steps(model, data, steps=2)
    z = tf.random.stateless_normal([4, LATENT], seed=[0, 1])
    loaded = helpers.assert_keras_reload(model, z, tmp_path / "wgan.keras")
    assert int(loaded.d_optimizer.iterations.numpy()) == 4 and int(loaded.g_optimizer.iterations.numpy()) == 2
    assert float(loaded.d_optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    assert float(loaded.g_optimizer.beta_1) == pytest.approx(0.5)
    # Same weights, optimizer states and noise stream: continuing either gives the same weights.
    for m in (model, loaded):
        helpers.fit_steps(m, data, steps=2)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


@keras.saving.register_keras_serializable(package="tests")
def scaled_hinge_discriminator_loss(real_scores, fake_scores):
    return 2.0 * losses.hinge_discriminator_loss(real_scores, fake_scores)


def test_config_round_trip_of_each_variant_and_a_custom_loss_pair():
    custom = tiny_gan(loss=(scaled_hinge_discriminator_loss, "keras_gen>least_squares_generator_loss"), d_steps=2, fresh_generator_noise=True)
    clone = helpers.assert_config_round_trip(custom)
    assert clone.d_loss_fn is scaled_hinge_discriminator_loss and clone.g_loss_fn is losses.least_squares_generator_loss
    assert (clone.d_steps, clone.fresh_generator_noise) == (2, True)
    wgan = helpers.assert_config_round_trip(WGANGP(image_shape=SHAPE, latent_dim=LATENT, generator_widths=(8, 4), discriminator_widths=(4, 8), seed=0))
    assert (wgan.loss_name, wgan.d_steps, wgan.gradient_penalty_weight) == ("wasserstein", 5, 10.0)
    cgan = helpers.assert_config_round_trip(tiny_cgan(num_classes=3, embedding_dim=2))
    assert (cgan.num_classes, cgan.embedding_dim, cgan.loss_name) == (3, 2, "non_saturating")
    dcgan = helpers.assert_config_round_trip(DCGAN(image_shape=SHAPE, latent_dim=LATENT, generator_widths=(8, 4), discriminator_widths=(4, 8)))
    assert any(isinstance(layer, layers.BatchNormalization) for layer in dcgan.discriminator.layers)
    assert not any(isinstance(layer, layers.BatchNormalization) for layer in wgan.discriminator.layers)


def test_bad_options_say_what_to_do():
    with pytest.raises(ValueError, match="Unknown GAN loss 'wgan'; expected one of minimax, non_saturating, wasserstein"):
        tiny_gan(loss="wgan")
    with pytest.raises(ValueError, match="not registered"):
        tiny_gan(loss=(lambda r, f: f - r, losses.wasserstein_generator_loss))
    with pytest.raises(ValueError, match="d_steps must be at least 1"):
        tiny_gan(d_steps=0)
    with pytest.raises(ValueError, match="gradient_penalty_weight"):
        tiny_gan(gradient_penalty_weight=-1.0)
    with pytest.raises(ValueError, match=r"generator must map z.*\(None, 8, 8, 1\)"):
        GAN(networks.mlp_generator((4, 4, 1), LATENT), small_critic(), image_shape=SHAPE, latent_dim=LATENT)
    with pytest.raises(ValueError, match="generator must be a Keras model"):
        GAN("mlp", small_critic(), image_shape=SHAPE, latent_dim=LATENT)
    with pytest.raises(ValueError, match="one score per image"):
        GAN(constant_generator(), keras.Sequential([keras.Input(SHAPE), layers.Flatten(), layers.Dense(3)]), image_shape=SHAPE, latent_dim=LATENT)
    model = tiny_gan()
    with pytest.raises(ValueError, match="one optimizer instance per network"):
        adam = keras.optimizers.Adam()
        model.compile(d_optimizer=adam, g_optimizer=adam, run_eagerly=True)


def test_wrong_images_say_what_to_do():
    model = tiny_gan()
    model.compile(run_eagerly=True)
    with pytest.raises(ValueError, match=r"\[batch, 8, 8, 1\]"):
        model.fit(np.zeros((8, 9, 9, 1), "float32"), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match=r"\[-1, 1\].*'tanh'"):
        model.fit(np.zeros((8, *SHAPE), "uint8"), batch_size=8, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"images in \[-1, 1\]"):
        model.fit(np.full((8, *SHAPE), 255.0, "float32"), batch_size=8, verbose=0)


def test_sampling_is_deterministic_per_seed_whatever_the_batch():
    model = tiny_gan()
    first = model.sample(tf.constant([3, 5], tf.int64))["images"].numpy()
    second = model.sample(tf.constant([5, 9, 3], tf.int64))["images"].numpy()
    np.testing.assert_allclose(first[0], second[2], atol=1e-6)
    np.testing.assert_allclose(first[1], second[0], atol=1e-6)
    assert not np.allclose(first[0], first[1])
    assert first.min() >= 0.0 and first.max() <= 1.0
    # generate maps the tanh output to [0, 1]; score maps [0, 1] images back to [-1, 1].
    z = tf.random.stateless_normal([2, LATENT], seed=[1, 1])
    np.testing.assert_allclose(model.generate(z)["images"], (model.generator(z) + 1.0) / 2.0, atol=1e-6)
    images = helpers.tiny_images(3, binary=False)
    np.testing.assert_allclose(model.score(images)["score"], model.discriminator(images * 2.0 - 1.0)[:, 0], atol=1e-6)


def test_cgan_samples_the_chosen_class_deterministically():
    # (tests/test_zoo.py checks the export's sample, generate and score, labels included, in a fresh process.)
    model = tiny_cgan()
    seeds, labels = np.array([4, 4, 7], "int64"), np.array([0, 3, 3], "int64")
    images = model.sample(seeds, labels)["images"].numpy()
    assert not np.allclose(images[0], images[1]), "the label changes the image"
    assert not np.allclose(images[1], images[2]), "the seed changes the image"
    np.testing.assert_allclose(model.sample(seeds[1:2], labels[1:2])["images"][0], images[1], atol=1e-6)
    assert images.min() >= 0.0 and images.max() <= 1.0
    score = model.score(images, labels)["score"].numpy()
    np.testing.assert_allclose(score, model.discriminator([images * 2.0 - 1.0, labels])[:, 0], atol=1e-6)
    assert not np.allclose(score, model.score(images, np.array([5, 5, 5]))["score"]), "the score reads the label"


def test_cgan_refuses_missing_wrong_or_out_of_range_labels():
    model = tiny_cgan(num_classes=4)
    model.compile(run_eagerly=True)
    images = real_images(8)
    with pytest.raises(ValueError, match=r"needs a class label per image.*with_labels = true"):
        model.fit(images, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="integer class indices"):
        model.fit(images, np.zeros(8, "float32"), batch_size=8, verbose=0)
    for bad in (4, -1):
        labels = np.zeros(8, "int64")
        labels[3] = bad
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must be class indices in \[0, 4\)"):
            model.fit(images, labels, batch_size=8, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[0, 4\)"):
        model.sample(tf.constant([0], tf.int64), tf.constant([9], tf.int64))


def test_cgan_grid_has_one_row_per_class_from_fixed_noise():
    model = tiny_cgan()
    fixed = model.summary_inputs(None, num_samples=64, seed=2)
    again = model.summary_inputs(None, num_samples=64, seed=2)
    np.testing.assert_array_equal(fixed["z"], again["z"])
    (images, columns), = model.summary_images(fixed).values()
    assert columns == 10 and images.shape == (100, *SHAPE)
    # Row 3, column 6: class 3 drawn from column 6's noise, which every row shares.
    np.testing.assert_allclose(images[36], model.generate(fixed["z"][6:7], tf.constant([3], tf.int64))["images"][0], atol=1e-6)
    np.testing.assert_array_equal(fixed["z"][6], fixed["z"][96])
    unconditional = tiny_gan()
    (images, columns), = unconditional.summary_images(unconditional.summary_inputs(None, num_samples=16)).values()
    assert columns == 8 and images.shape == (16, *SHAPE)


# === Recipes ===
@pytest.mark.parametrize("name, model", [("gan", GAN), ("dcgan", DCGAN), ("wgan_gp", WGANGP), ("cgan", CGAN)])
def test_recipes_train_on_tanh_scaled_fashion_mnist(name, model):
    recipe = recipes.load_recipe(name)
    assert recipe.data["preprocessing"] == "tanh"
    assert recipe.data["with_labels"] == (name == "cgan")
    built = recipe.build_model()
    assert type(built) is model and built.image_shape == (28, 28, 1)
    recipe.compile_model(built)
    assert built.d_optimizer is not None and built.g_optimizer is not None
    if name == "wgan_gp":
        assert (built.d_steps, built.gradient_penalty_weight, built.loss_name) == (5, 10.0, "wasserstein")


@pytest.mark.usefixtures("eager_steps")
def test_train_recipe_logs_grids_exports_and_resumes_both_optimizers(tmp_path, monkeypatch):
    from keras_gen import training
    from keras_gen.callbacks import ImageSummaries
    from tests.test_callbacks import read_images

    helpers.make_fake_source(tmp_path / "idx", seed=0)
    (tmp_path / "tiny_cgan.toml").write_text(
        'model = "cgan"\ndescription = "tiny"\n[model_options]\nlatent_dim = 2\ngenerator_widths = [4, 4]\n'
        'discriminator_widths = [4]\n[data]\npreprocessing = "tanh"\nwith_labels = true\nvalidation_size = 8\n'
        "[train]\nepochs = 2\nbatch_size = 8\nsteps_per_epoch = 2\n"
    )
    recipe = recipes.load_recipe(tmp_path / "tiny_cgan.toml")
    dirs = {"logdir": tmp_path / "logs", "export_dir": tmp_path / "exports", "checkpoint_dir": tmp_path / "ckpt"}
    options = dict(source_dir=tmp_path / "idx", data_dir=tmp_path / "tfds", verbose=0, **dirs)
    original = ImageSummaries.on_epoch_end

    def crash_after_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(ImageSummaries, "on_epoch_end", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        training.train_recipe(recipe, **options)
    monkeypatch.setattr(ImageSummaries, "on_epoch_end", original)
    result = training.train_recipe(recipe, **options)
    model = result["model"]
    assert len(result["history"]["d_loss"]) == 1, "the second run resumed after the first epoch"
    assert int(model.d_optimizer.iterations.numpy()) == int(model.g_optimizer.iterations.numpy()) == 2 * 2
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(result["test"])
    grids = read_images(next((tmp_path / "logs" / "tiny_cgan").iterdir()) / "train")
    assert grids["samples"][-1][1].shape == (10 * 28, 10 * 28, 1)
    loaded = tf.saved_model.load(str(result["export"]))
    assert {"sample", "generate", "score", "serving_default"} <= set(loaded.signatures)
    images = loaded.signatures["serving_default"](seed=tf.constant([1, 2], tf.int64), label=tf.constant([0, 9], tf.int64))["images"]
    assert images.shape == (2, 28, 28, 1)


@pytest.mark.parametrize("make", [tiny_gan, tiny_cgan, lambda: WGANGP(image_shape=SHAPE, latent_dim=LATENT, generator_widths=(8, 4), discriminator_widths=(4, 8), seed=0)])
def test_one_discriminator_pass_over_real_and_generated_images_gives_the_separate_passes_scores(make):
    model = make()
    assert model.joint_discriminator_pass
    real = real_images(8) * 2.0 - 1.0
    fake = model.generate_images(tf.random.stateless_normal([8, LATENT], seed=[1, 2]), np.arange(8) % 10 if model.num_classes else None)
    labels = np.arange(8) % 10 if model.num_classes else None
    joint = model.discriminator_losses(real, fake, labels)
    model.joint_discriminator_pass = False
    separate = model.discriminator_losses(real, fake, labels)
    for name in ("d_real", "d_fake"):
        np.testing.assert_allclose(joint[name], separate[name], rtol=1e-5, atol=1e-6, err_msg=name)
    # The penalty draws its own noise, so only the adversarial part can be compared exactly.
    penalty = model.gradient_penalty_weight * (joint.get("gradient_penalty", 0.0) - separate.get("gradient_penalty", 0.0))
    np.testing.assert_allclose(joint["d_loss"] - penalty, separate["d_loss"], rtol=1e-5, atol=1e-5)


def test_a_discriminator_with_batch_norm_sees_real_and_generated_batches_apart():
    model = DCGAN(image_shape=SHAPE, latent_dim=LATENT, generator_widths=(8, 4), discriminator_widths=(4, 8), seed=0)
    assert not model.joint_discriminator_pass
