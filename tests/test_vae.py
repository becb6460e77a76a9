"""The VAE.

Tests that run a few steps compile their models with `run_eagerly=True`: the steps compute the same
thing, and tracing a tiny model's step costs seconds (tests/test_zoo.py and tests/test_distributed_zoo.py
run every zoo model's traced step).
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import networks
from keras_gen.callbacks import KLWarmup
from keras_gen.models import VAE
from tests import helpers

LATENT = 2


def tiny_vae(seed=0, **kwargs):
    return VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, seed=seed, **kwargs)


def near_deterministic_vae(seed=0):
    """A VAE whose posterior variance is exp(-30): z equals the posterior mean to float precision,
    so its losses can be checked by hand and compared across devices."""
    encoder = networks.conv_encoder(helpers.IMAGE_SHAPE, LATENT, filters=(4,), hidden_units=8)
    head = encoder.get_layer("log_variance")
    kernel, bias = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.full_like(bias, -30.0)])
    decoder = networks.conv_decoder(helpers.IMAGE_SHAPE, LATENT, filters=(4,), hidden_units=8)
    return VAE(encoder, decoder, image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, seed=seed)


def test_losses_are_the_negative_elbo_computed_by_hand():
    model = near_deterministic_vae()
    images = helpers.tiny_images(4)
    terms = {k: np.asarray(v) for k, v in model.compute_losses(images).items()}
    mean, log_variance = (np.asarray(t) for t in model.encoder(images))
    kl = 0.5 * np.sum(np.exp(log_variance) + mean**2 - 1.0 - log_variance, axis=1)
    probabilities = 1.0 / (1.0 + np.exp(-np.asarray(model.decoder(mean), np.float64)))
    reconstruction = -np.sum(images * np.log(probabilities) + (1 - images) * np.log(1 - probabilities), axis=(1, 2, 3))
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["reconstruction"], reconstruction, rtol=1e-4)
    np.testing.assert_allclose(terms["loss"], reconstruction + kl, rtol=1e-4)


def test_fit_reports_loss_reconstruction_and_kl_in_nats_per_image():
    model = tiny_vae()
    model.compile(optimizer="adam", run_eagerly=True)
    history = helpers.fit_steps(model, helpers.tiny_images(32), steps=3)
    assert set(history) == {"loss", "reconstruction", "kl"}
    loss, reconstruction, kl = history["loss"][0], history["reconstruction"][0], history["kl"][0]
    assert kl >= 0.0
    assert loss == pytest.approx(reconstruction + kl, rel=1e-5)
    # 64 Bernoulli pixels: an untrained decoder is near log(2) nats per pixel.
    assert 0.3 * 64 < reconstruction < 2.0 * 64


def test_reparameterised_sample_moves_with_the_seed_and_gradients_reach_both_heads():
    model = tiny_vae()
    images = helpers.tiny_images(8)
    first, second = model.compute_losses(images)["loss"], model.compute_losses(images)["loss"]
    assert not np.allclose(first, second), "each call must draw fresh noise from the seed generator"
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.compute_losses(images, training=True)["loss"])
    heads = [model.encoder.get_layer("mean").kernel, model.encoder.get_layer("log_variance").kernel]
    for gradient in tape.gradient(loss, heads):
        assert float(tf.reduce_max(tf.abs(gradient))) > 0.0


def test_same_seed_gives_the_same_training_run():
    images = helpers.tiny_images(32)
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        model = tiny_vae(seed=7)
        model.compile(optimizer="adam", run_eagerly=True)
        runs.append(helpers.fit_steps(model, images, steps=2, shuffle=False)["loss"][0])
    assert runs[0] == runs[1]


def test_training_lowers_the_validation_loss():
    images = helpers.tiny_images(64)
    model = tiny_vae()
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = model.evaluate(images, batch_size=32, return_dict=True, verbose=0)["loss"]
    model.fit(images, batch_size=16, epochs=8, verbose=0)
    after = model.evaluate(images, batch_size=32, return_dict=True, verbose=0)["loss"]
    assert after < before - 5.0


def test_kl_weight_scales_the_objective_not_the_reported_elbo():
    model = tiny_vae()
    images = helpers.tiny_images(8)
    model.kl_weight.assign(0.0)
    terms = model.compute_losses(images)
    np.testing.assert_allclose(terms["objective"], terms["reconstruction"])
    assert float(tf.reduce_min(terms["kl"])) > 0.0
    np.testing.assert_allclose(terms["loss"], terms["reconstruction"] + terms["kl"], rtol=1e-6)


def test_kl_warmup_ramps_the_weight_from_zero_to_beta():
    model = tiny_vae(beta=2.0, kl_warmup_epochs=4)
    model.compile(optimizer="adam", run_eagerly=True)
    callbacks = model.recipe_callbacks()
    assert len(callbacks) == 1 and isinstance(callbacks[0], KLWarmup)
    seen = []
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(float(model.kl_weight.numpy())))
    history = model.fit(helpers.tiny_images(16), batch_size=8, epochs=6, verbose=0, callbacks=[*callbacks, record])
    assert seen == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0])
    assert history.history["kl_weight"] == pytest.approx(seen)
    assert tiny_vae().recipe_callbacks() == []


def test_gaussian_likelihood_learns_its_scale():
    model = tiny_vae(likelihood="gaussian")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    helpers.fit_steps(model, helpers.tiny_images(32, binary=False), steps=4)
    assert float(model.log_scale.numpy()) != 0.0
    assert "likelihood_log_scale" in [w.name for w in model.trainable_weights]


def test_unknown_likelihood_is_refused():
    with pytest.raises(ValueError, match="bernoulli"):
        tiny_vae(likelihood="poisson")


def test_wrong_image_shape_or_dtype_says_what_to_do():
    model = tiny_vae()
    model.compile(optimizer="adam", run_eagerly=True)
    with pytest.raises(ValueError, match=r"\[batch, 8, 8, 1\].*image_shape"):
        model.fit(np.zeros((8, 9, 9, 1), "float32"), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="channel axis"):
        model.fit(np.zeros((8, 8, 8), "float32"), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="uint8.*scale"):
        model.fit(np.zeros((8, 8, 8, 1), "uint8"), batch_size=8, verbose=0)


def test_fit_accepts_tf_data_with_or_without_labels():
    model = tiny_vae()
    model.compile(optimizer="adam", run_eagerly=True)
    images = helpers.tiny_images(16)
    labels = np.arange(16) % 10
    for data in (tf.data.Dataset.from_tensor_slices(images), tf.data.Dataset.from_tensor_slices((images, labels))):
        history = model.fit(data.batch(8), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])


def test_config_round_trip():
    model = tiny_vae(beta=0.5, kl_warmup_epochs=2, likelihood="gaussian")
    clone = helpers.assert_config_round_trip(model)
    assert (clone.beta, clone.kl_warmup_epochs, clone.likelihood_kind, clone.latent_dim) == (0.5, 2, "gaussian", LATENT)


def test_keras_file_round_trip_resumes_training_identically(tmp_path):
    images = helpers.tiny_images(32)
    model = tiny_vae()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    helpers.fit_steps(model, images, steps=2, shuffle=False)
    loaded = helpers.assert_keras_reload(model, images[:4], tmp_path / "vae.keras")
    # Same weights, optimizer state and noise stream: continuing either gives the same weights.
    for m in (model, loaded):
        helpers.fit_steps(m, images, steps=2, shuffle=False)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_standard_callbacks_work_unchanged(tmp_path):
    images = helpers.tiny_images(32)
    model = tiny_vae()
    model.compile(optimizer="adam")  # traced, as a user's fit runs with these callbacks
    checkpoint = tmp_path / "best.keras"
    history = model.fit(
        images,
        validation_data=(images[:16],),
        batch_size=8,
        epochs=30,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=1e9),
            keras.callbacks.ModelCheckpoint(str(checkpoint), monitor="val_loss", save_best_only=True),
            keras.callbacks.TensorBoard(str(tmp_path / "logs")),
        ],
    )
    assert len(history.history["loss"]) == 2, "EarlyStopping must stop after patience 0 with no big improvement"
    assert isinstance(keras.models.load_model(checkpoint), VAE)
    assert list((tmp_path / "logs" / "train").glob("events.out.tfevents.*"))


def test_backup_and_restore_resumes_an_interrupted_run(tmp_path):
    images = helpers.tiny_images(16)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    model = tiny_vae()
    model.compile(optimizer="adam", run_eagerly=True)
    with pytest.raises(KeyboardInterrupt):
        model.fit(images, batch_size=8, epochs=4, verbose=0, callbacks=[backup, Interrupt()])
    resumed = tiny_vae(seed=1)
    resumed.compile(optimizer="adam", run_eagerly=True)
    epochs = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))
    resumed.fit(images, batch_size=8, epochs=4, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup")), record])
    assert epochs == [2, 3]
    assert int(resumed.optimizer.iterations.numpy()) == 8

