"""The adversarial autoencoder: its phases, its three optimizers, its prior, its anomaly score.

Tests that run a few steps compile their models with `run_eagerly=True`: the steps compute the same
thing, and tracing a tiny model's step costs seconds (tests/test_zoo.py and tests/test_distributed_zoo.py
run every zoo model's traced step).
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import anomaly
from keras_gen import training
from keras_gen.models import AAE
from keras_gen.anomaly import THRESHOLD_LEVELS
from tests import helpers
from tests.helpers import moved
from tests.zoo_cases import tiny_batches

SHAPE = helpers.IMAGE_SHAPE


def tiny_aae(**kwargs):
    options = dict(image_shape=SHAPE, latent_dim=2, filters=(4, 8), discriminator_units=(8,), seed=0)
    options.update(kwargs)
    return AAE(**options)


def images(count=16, seed=0):
    return helpers.tiny_images(count, seed=seed, binary=False)


def snapshot(model):
    return helpers.snapshot(model, ("encoder", "decoder", "discriminator"))


# === Each phase touches its own weights only ===
def test_reconstruction_phase_updates_encoder_and_decoder_only():
    model = tiny_aae()
    model.compile(run_eagerly=True)
    before = snapshot(model)
    terms = model.reconstruction_step(tf.constant(images()))
    assert moved(before, snapshot(model)) == {"encoder", "decoder"}
    assert set(terms) == {"reconstruction", "mse", "ae_grad_norm"} and float(terms["ae_grad_norm"]) > 0
    assert int(model.ae_optimizer.iterations) == 1 and int(model.d_optimizer.iterations) == 0


def test_discriminator_phase_updates_the_discriminator_only():
    model = tiny_aae()
    model.compile(run_eagerly=True)
    before = snapshot(model)
    codes = model.encoder(tf.constant(images()), training=True)
    terms = model.discriminator_step(codes)
    assert moved(before, snapshot(model)) == {"discriminator"}
    assert {"d_loss", "d_real", "d_fake", "d_grad_norm"} <= set(terms)


def test_generator_phase_updates_the_encoder_only():
    # Zero learning rates silence the other two updates of the compiled step; Adam then moves nothing.
    model = tiny_aae()
    model.compile(
        ae_optimizer=keras.optimizers.Adam(0.0),
        d_optimizer=keras.optimizers.Adam(0.0),
        g_optimizer=keras.optimizers.Adam(1e-2),
    )
    before = snapshot(model)
    history = helpers.fit_steps(model, tiny_batches(), steps=2)
    assert moved(before, snapshot(model)) == {"encoder"}
    assert history["g_grad_norm"][0] > 0
    assert [int(getattr(model, name).iterations) for name in model.optimizer_names] == [2, 2, 2]


def test_the_step_reports_every_loss_part():
    model = tiny_aae(prior="mixture", num_components=3)
    model.compile(run_eagerly=True)
    history = helpers.fit_steps(model, tiny_batches(), steps=2, validation_data=tiny_batches(count=16))
    assert set(model.metric_names) <= set(history)
    assert 0.0 < history["d_real"][0] < 1.0 and 0.0 < history["d_fake"][0] < 1.0  # probabilities
    assert {"val_reconstruction", "val_mse", "val_d_loss", "val_g_loss", "val_d_real", "val_d_fake"} <= set(history)
    assert "val_d_grad_norm" not in history


# === Saving and resuming ===
def test_keras_file_resumes_all_three_optimizers(tmp_path):
    model, data = tiny_aae(), tiny_batches()
    model.compile(run_eagerly=True)
    helpers.fit_steps(model, data, steps=2)
    model.calibrate(images(8, seed=3))
    loaded = helpers.assert_keras_reload(model, images(4), tmp_path / "aae.keras")
    np.testing.assert_array_equal(np.asarray(loaded.score_thresholds), np.asarray(model.score_thresholds))
    for copy in (model, loaded):
        helpers.fit_steps(copy, data, steps=2)
    for name in model.optimizer_names:
        assert int(getattr(loaded, name).iterations) == int(getattr(model, name).iterations) == 4
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, err_msg=a.path)


# === Prior and samples ===
def test_samples_depend_on_their_own_seed_only_for_both_priors():
    for prior in ("gaussian", "mixture"):
        model = tiny_aae(prior=prior)
        alone = model.sample_codes(tf.constant([5, 1], tf.int64)).numpy()
        mixed = model.sample_codes(tf.constant([1, 9, 5], tf.int64)).numpy()
        np.testing.assert_array_equal(alone[0], mixed[2])
        np.testing.assert_array_equal(alone[1], mixed[0])
        assert not np.allclose(mixed[0], mixed[1])


def test_mixture_prior_samples_fall_evenly_on_the_ring_components():
    model = tiny_aae(prior="mixture", num_components=4)
    angles = 2 * np.pi * np.arange(4) / 4
    means = 4.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # the documented ring of radius 4
    serving = tf.function(model.sample_codes)  # compiled, as in an export (eager map_fn is slow)
    for codes in (serving(tf.range(800, dtype=tf.int64)).numpy(), model.prior_samples(800, tf.constant([3, 4])).numpy()):
        distances = np.linalg.norm(codes[:, None, :] - means[None], axis=-1)
        assert distances.min(axis=1).max() < 0.5 * 5  # every code within 5 standard deviations of a mean
        counts = np.bincount(distances.argmin(axis=1), minlength=4)
        assert counts.min() > 150, counts  # about 200 each
        np.testing.assert_allclose(codes.std(axis=0), np.sqrt(8 + 0.25), rtol=0.1)  # radius^2 / 2 + scale^2 per axis


def test_gaussian_prior_samples_are_standard_normal():
    codes = tf.function(tiny_aae().sample_codes)(tf.range(2000, dtype=tf.int64)).numpy()
    np.testing.assert_allclose(codes.mean(axis=0), 0.0, atol=0.1)
    np.testing.assert_allclose(codes.std(axis=0), 1.0, atol=0.06)


# === Anomaly score ===
def test_anomaly_score_follows_its_documented_formula():
    model = tiny_aae(anomaly_weight=0.7)
    model.compile(run_eagerly=True)
    helpers.fit_steps(model, tiny_batches(), steps=1)
    held_out = images(40, seed=4)
    stats = model.calibrate(held_out)
    x = images(6, seed=5)
    codes = model.encoder(x, training=False).numpy()
    reconstruction = 1 / (1 + np.exp(-model.decoder(codes, training=False).numpy()))
    error = ((reconstruction - x) ** 2).mean(axis=(1, 2, 3))
    log_density = -0.5 * (codes**2).sum(axis=1) - np.log(2 * np.pi)  # N(0, I) in 2 dimensions
    expected = (error - stats["mean_reconstruction_error"]) / stats["std_reconstruction_error"] - 0.7 * (log_density - stats["mean_log_density"]) / stats["std_log_density"]
    got = model.anomaly_score(x)
    np.testing.assert_allclose(got["reconstruction_error"], error, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got["log_density"], log_density, rtol=1e-5)
    np.testing.assert_allclose(got["score"], expected, rtol=1e-3, atol=1e-4)
    # The calibration images' standardised terms have mean 0 and standard deviation 1.
    terms = model.anomaly_score(held_out)
    standardised = (terms["reconstruction_error"] - stats["mean_reconstruction_error"]) / stats["std_reconstruction_error"]
    assert abs(float(np.mean(standardised))) < 1e-3 and float(np.std(standardised)) == pytest.approx(1.0, abs=1e-3)
    # The stored thresholds are threshold_at_fpr of the calibration scores.
    scores = np.asarray(terms["score"])
    thresholds = model.anomaly_threshold(tf.constant([0.0, 0.05, 0.25]))
    np.testing.assert_allclose(thresholds["threshold"], anomaly.threshold_at_fpr(scores, np.array([0.0, 0.05, 0.25])), rtol=1e-4, atol=1e-4)
    assert thresholds["normal_class"].numpy().tolist() == [-1, -1, -1]


def test_anomaly_weight_zero_scores_by_reconstruction_alone():
    model = tiny_aae(anomaly_weight=0.0, normal_class=4)
    stats = model.calibrate(images(20))
    terms = model.anomaly_score(images(5, seed=1))
    np.testing.assert_allclose(terms["score"], (terms["reconstruction_error"] - stats["mean_reconstruction_error"]) / stats["std_reconstruction_error"], rtol=1e-4, atol=1e-5)
    assert model.anomaly_threshold(tf.constant([0.1]))["normal_class"].numpy().tolist() == [4]


def box_mean(x, size):
    """Each pixel's mean over the in-image pixels of its size x size neighbourhood, by loops."""
    half = size // 2
    out = np.zeros_like(x)
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            window = x[:, max(i - half, 0) : i + half + 1, max(j - half, 0) : j + half + 1, :]
            out[:, i, j, :] = window.mean(axis=(1, 2))
    return out


def test_smoothed_reconstruction_error_compares_neighbourhood_means():
    model = tiny_aae(error_smoothing=3)
    x = images(4, seed=6)
    reconstruction = 1 / (1 + np.exp(-model.decoder(model.encoder(x, training=False), training=False).numpy()))
    expected = ((box_mean(reconstruction, 3) - box_mean(x, 3)) ** 2).mean(axis=(1, 2, 3))
    unsmoothed = ((reconstruction - x) ** 2).mean(axis=(1, 2, 3))
    got = model.anomaly_score(x)["reconstruction_error"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)
    assert np.all(got < unsmoothed)  # averaging cancels part of the pixel-level differences
    assert tiny_aae(error_smoothing=3).get_config()["error_smoothing"] == 3


def test_bench_score_forms_match_the_models_own_error():
    import importlib.util
    import pathlib

    spec = importlib.util.spec_from_file_location("anomaly_variants", pathlib.Path(__file__).parent.parent / "bench" / "anomaly_variants.py")
    variants = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(variants)
    model = tiny_aae()
    x = images(40, seed=9)
    is_anomaly = np.arange(40) % 3 == 0
    aucs = variants.score_forms(model, x, is_anomaly, batch_size=16)
    smoothed = tiny_aae(error_smoothing=3)
    smoothed.set_weights(model.get_weights())
    for column, scorer in (("per pixel", model), ("3x3 mean", smoothed)):
        error = scorer.anomaly_score(x)["reconstruction_error"].numpy()
        assert aucs[column] == pytest.approx(anomaly.roc_auc(error, is_anomaly), abs=1e-9), column
    assert aucs["-log p(z)"] == pytest.approx(anomaly.roc_auc(-model.anomaly_score(x)["log_density"].numpy(), is_anomaly))
    assert "3x3 mean + 1 density" in aucs


def test_uncalibrated_thresholds_are_nan():
    assert np.isnan(tiny_aae().anomaly_threshold(tf.constant([0.05]))["threshold"].numpy()).all()
    assert np.asarray(tiny_aae().score_thresholds).shape == (THRESHOLD_LEVELS,)


def test_calibrate_accepts_a_dataset_and_rejects_too_little_or_bad_data():
    model = tiny_aae()
    from_array = model.calibrate(images(16))
    from_dataset = model.calibrate(tf.data.Dataset.from_tensor_slices(images(16)).batch(5))
    assert from_dataset == pytest.approx(from_array, rel=1e-5)
    with pytest.raises(ValueError, match="at least 2 held-out"):
        model.calibrate(images(1))
    with pytest.raises(ValueError, match="got none"):
        model.calibrate(np.zeros((0, *SHAPE), np.float32))
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match=r"trains on images in \[0, 1\]"):
        model.calibrate(images(4) * 255.0)


def test_export_of_a_calibrated_mixture_model_serves_samples_scores_and_thresholds(tmp_path):
    # The zoo-wide test exports an uncalibrated Gaussian-prior model; this one carries calibration,
    # a normal class and the mixture prior's sampler into a TensorFlow-only process.
    model = tiny_aae(prior="mixture", num_components=3, normal_class=6)
    model.compile(run_eagerly=True)
    helpers.fit_steps(model, tiny_batches(), steps=1)
    model.calibrate(images(30, seed=2))
    x, seeds, fpr = images(5, seed=6), np.array([3, 0, 11], np.int64), np.array([0.0, 0.1, 0.5], np.float32)
    calls = {"sample": {"seed": seeds}, "anomaly_score": {"images": x}, "anomaly_threshold": {"fpr": fpr}}
    _, result = helpers.export_and_call(model, calls, tmp_path)
    np.testing.assert_allclose(result["sample"]["images"], model.sample(tf.constant(seeds))["images"], atol=1e-5)
    for key, value in model.anomaly_score(x).items():
        np.testing.assert_allclose(result["anomaly_score"][key], value, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result["anomaly_threshold"]["threshold"], model.anomaly_threshold(tf.constant(fpr))["threshold"], rtol=1e-5)
    assert np.isfinite(result["anomaly_threshold"]["threshold"]).all()
    assert result["anomaly_threshold"]["normal_class"].tolist() == [6, 6, 6]


# === Recipes: the one-class variant ===
def test_one_class_model_asks_for_its_class_and_a_conflicting_recipe_is_refused():
    from keras_gen import recipes

    recipe = recipes.validate({"model": "aae", "model_options": {"normal_class": 3}, "data": {"classes": [1]}}, name="conflict")
    model = recipe.build_model()
    assert model.training_classes() == [3]
    with pytest.raises(ValueError, match=r"keeps the classes \[1\] in \[data\] but its model trains on \[3\]"):
        training.data_classes(recipe, model)
    agreeing = recipes.validate({"model": "aae", "model_options": {"normal_class": 3}}, name="one_class")
    assert training.data_classes(agreeing, agreeing.build_model()) == [3]
    generic = recipes.validate({"model": "aae", "data": {"classes": [7, 2]}}, name="two")
    assert training.data_classes(generic, generic.build_model()) == [2, 7]


# === Bad input ===
@pytest.mark.parametrize(
    "options, message",
    [
        ({"prior": "laplace"}, "Unknown prior 'laplace'"),
        ({"prior": "mixture", "latent_dim": 1}, "latent_dim >= 2"),
        ({"normal_class": -1}, "normal_class must be a class index"),
        ({"normal_class": "3"}, "normal_class must be a class index"),
        ({"reconstruction_loss": "l1"}, "Unknown reconstruction_loss 'l1'"),
        ({"loss": "bogus"}, "Unknown GAN loss 'bogus'"),
        ({"anomaly_weight": -1.0}, "anomaly_weight must be 0 or more"),
        ({"error_smoothing": 2}, "error_smoothing must be an odd int"),
        ({"error_smoothing": 0}, "error_smoothing must be an odd int"),
        ({"discriminator": "mlp"}, "discriminator must be a Keras model"),
    ],
)
def test_bad_options_say_what_is_wrong(options, message):
    with pytest.raises(ValueError, match=message):
        tiny_aae(**options)


def test_networks_of_the_wrong_shape_are_refused():
    encoder = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"AAE's encoder must map images \(None, 8, 8, 1\) to code \(None, 2\), but it outputs \(None, 3\)"):
        tiny_aae(encoder=encoder)


def test_fit_rejects_bad_images_and_a_missing_compile():
    model = tiny_aae()
    with pytest.raises(ValueError, match=r"compile\(ae_optimizer=..., d_optimizer=..., g_optimizer=...\)"):
        model.train_step(tf.constant(images(4)))
    model.compile(run_eagerly=True)
    with pytest.raises(ValueError, match="float images"):
        model.fit((images(8) * 255).astype("uint8"), batch_size=4, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="was built for images of shape"):
        model.fit(np.zeros((8, 28, 28, 1), np.float32), batch_size=4, epochs=1, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"trains on images in \[0, 1\]"):
        model.fit(images(8) * 2.0 - 1.0, batch_size=4, epochs=1, verbose=0)


def test_a_nan_false_positive_rate_gets_a_clear_error():
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"fpr must be a false-positive rate in \[0, 1\)"):
        tiny_aae().anomaly_threshold(tf.constant([float("nan")]))
