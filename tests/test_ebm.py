"""The energy-based model: its Langevin sampler, replay buffer, training step, options and endpoints.

The zoo-wide tests (fit, config, `.keras` reload, export, two replicas, mixed precision) run it too,
through tests/zoo_cases.py.
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen.models import EBM
from keras_gen.models.ebm import MAX_LANGEVIN_STEPS
from tests import helpers
from tests.zoo_cases import tiny_batches


# The options of tests/zoo_cases.py's tiny EBM, which the tests here change one at a time.
TINY_OPTIONS = dict(image_shape=helpers.IMAGE_SHAPE, filters=(4, 8), hidden_units=8, langevin_steps=2, sample_steps=3, buffer_size=16, reinit_rate=0.5, seed=0)


def tiny(**options):
    """A compiled tiny EBM (8x8 images, buffer of 16) with `options` changed, and batches of 8 images in [0, 1].
    It runs eagerly: these tests check what the steps do, and tracing would cost seconds per test (the
    traced step is run by tests/test_zoo.py and tests/test_distributed_zoo.py)."""
    model = EBM(**{**TINY_OPTIONS, **options})
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    return model, tiny_batches()


def uniform_images(count, seed=0):
    return tf.random.stateless_uniform([count, *helpers.IMAGE_SHAPE], seed=[seed, 1])


def chain_noise(seed):
    return lambda index: tf.random.stateless_normal([6, *helpers.IMAGE_SHAPE], seed=tf.random.experimental.stateless_fold_in([seed, 2], index))


@pytest.mark.parametrize("noise_scale", [0.0, 0.005])
def test_langevin_lowers_the_energy_of_its_chains_on_a_fixed_network(noise_scale):
    model, _ = tiny(noise_scale=noise_scale, step_size=1.0, gradient_clip=0.0)
    weights = helpers.weights_of(model.energy_network)
    starts = uniform_images(6)
    ends, norms = model.langevin(starts, 30, chain_noise(0))
    before, after = model.energies(starts).numpy(), model.energies(ends).numpy()
    assert after.mean() < before.mean(), (before, after)
    if noise_scale == 0:
        assert np.all(after < before), (before, after)  # gradient descent lowers every chain
    assert np.all(np.asarray(ends) >= 0.0) and np.all(np.asarray(ends) <= 1.0)
    assert np.all(norms.numpy() > 0)
    assert not any(helpers.changed(weights, helpers.weights_of(model.energy_network), atol=0.0)), "the sampler moves images, not weights"


def test_per_chain_steps_stop_each_chain_at_its_own_count():
    model, _ = tiny()
    starts = uniform_images(3)
    ends, _ = model.langevin(starts, tf.constant([0, 1, 4]), lambda index: tf.zeros_like(starts))
    np.testing.assert_array_equal(ends[0], starts[0])
    one, _ = model.langevin(starts[1:2], 1, lambda index: tf.zeros_like(starts[1:2]))
    np.testing.assert_allclose(ends[1], one[0], atol=1e-6)
    assert not np.allclose(ends[2], starts[2])


def test_chain_ends_are_written_back_to_the_replay_buffer():
    model, _ = tiny(reinit_rate=0.0)
    before = np.array(model.replay_buffer)
    negatives, terms = model.draw_negatives(8)
    after = np.array(model.replay_buffer)
    rewritten = np.flatnonzero(np.any(before != after, axis=(1, 2, 3)))
    assert len(rewritten) == 8, "one distinct buffer entry per chain"
    np.testing.assert_array_equal(np.sort(after[rewritten].reshape(8, -1), axis=0), np.sort(np.asarray(negatives).reshape(8, -1), axis=0))
    np.testing.assert_array_equal(terms["fresh_share"], np.zeros(8))  # reinit_rate 0: every chain continues one from the buffer
    _, restarted = tiny(reinit_rate=1.0)[0].draw_negatives(8)
    np.testing.assert_array_equal(restarted["fresh_share"], np.ones(8))


def test_the_replay_buffer_and_noise_stream_come_back_from_a_keras_file_and_training_resumes_the_same(tmp_path):
    model, data = tiny()
    initial = np.array(model.replay_buffer)
    history = helpers.fit_steps(model, data, steps=2)
    assert set(history) == set(EBM.metric_names)
    assert not np.array_equal(np.array(model.replay_buffer), initial), "training wrote its chains to the buffer"
    model.save(tmp_path / "ebm.keras")
    loaded = keras.models.load_model(tmp_path / "ebm.keras")
    np.testing.assert_array_equal(np.array(loaded.replay_buffer), np.array(model.replay_buffer))
    np.testing.assert_array_equal(np.array(loaded.seed_generator.state), np.array(model.seed_generator.state))
    helpers.assert_optimizers_restored(model, loaded)
    # One more step from each: the same chains, noise and update.
    batch = data.skip(2).take(1)
    model.fit(batch, epochs=1, verbose=0)
    loaded.fit(batch, epochs=1, verbose=0)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6, err_msg=a.path)


def test_only_the_energy_network_learns_and_no_gradient_flows_through_the_chains():
    model, data = tiny()
    assert [id(w) for w in model.trainable_weights] == [id(w) for w in model.energy_network.trainable_weights]
    state = {"buffer": np.array(model.replay_buffer), "statistics": np.array(model.score_statistics)}
    weights = helpers.weights_of(model.energy_network)
    helpers.fit_steps(model, data, steps=1)
    assert any(helpers.changed(weights, helpers.weights_of(model.energy_network)))
    np.testing.assert_array_equal(np.array(model.score_statistics), state["statistics"])
    assert not np.array_equal(np.array(model.replay_buffer), state["buffer"])

    # The chains depend on the weights through dE/dx, but reach the loss as constants.
    real = next(iter(data))
    variables = model.energy_network.trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        negatives, _ = model.draw_negatives(8)
        through_chains = tf.reduce_sum(negatives)
        loss = tf.reduce_mean(model.compute_losses(real, negatives, training=True)["loss"])
        constant = tf.reduce_mean(model.compute_losses(real, tf.constant(negatives.numpy()), training=True)["loss"])
    assert all(g is None for g in tape.gradient(through_chains, variables))
    for got, want in zip(tape.gradient(loss, variables), tape.gradient(constant, variables)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_seeded_sample_and_refine_are_batch_independent_and_deterministic():
    model, _ = tiny()
    together = model.sample(tf.constant([3, 7, 11], tf.int64))["images"].numpy()
    alone = model.sample(tf.constant([7], tf.int64))["images"].numpy()
    np.testing.assert_allclose(alone[0], together[1], atol=1e-6)
    np.testing.assert_array_equal(model.sample(tf.constant([3, 7, 11], tf.int64))["images"], together)
    assert not np.allclose(together[0], together[2])
    assert together.min() >= 0.0 and together.max() <= 1.0

    images = uniform_images(3, seed=5)
    steps = tf.constant([0, 2, 5], tf.int64)
    refined = model.refine(images, steps)["images"].numpy()
    np.testing.assert_array_equal(refined[0], images[0])  # zero steps: unchanged
    np.testing.assert_allclose(model.refine(images[2:], steps[2:])["images"][0], refined[2], atol=1e-6)
    np.testing.assert_allclose(model.refine(tf.reverse(images, [0]), tf.reverse(steps, [0]))["images"][0], refined[2], atol=1e-6)


@pytest.mark.parametrize(
    "option, value, match",
    [
        ("langevin_steps", 0, "langevin_steps must be an int from 1"),
        ("langevin_steps", 2.5, "langevin_steps must be an int"),
        ("step_size", -1.0, "step_size must be greater than 0"),
        ("step_size", 0.0, "step_size must be greater than 0"),
        ("noise_scale", -0.1, "noise_scale must be 0 or more"),
        ("gradient_clip", -1.0, "gradient_clip must be 0 or more"),
        ("buffer_size", 0, "buffer_size must be an int >= 1"),
        ("reinit_rate", 1.5, "reinit_rate must be 0 or more and at most 1"),
        ("reinit_rate", -0.1, "reinit_rate must be 0 or more"),
        ("regularisation_weight", -1.0, "regularisation_weight must be 0 or more"),
        ("sample_steps", MAX_LANGEVIN_STEPS + 1, "sample_steps must be an int from 1"),
        ("normal_class", -1, "normal_class"),
        ("step_size", float("nan"), "step_size must be a finite number"),
    ],
)
def test_bad_options_are_clear_errors(option, value, match):
    with pytest.raises(ValueError, match=match):
        EBM(**{"image_shape": helpers.IMAGE_SHAPE, "filters": (4,), "hidden_units": 0, "buffer_size": 16, option: value})


def test_a_buffer_smaller_than_the_batch_is_a_clear_error():
    model, data = tiny(buffer_size=4)
    with pytest.raises(ValueError, match="replay buffer holds 4 chains, fewer than the global batch.*raise buffer_size"):
        model.fit(data, epochs=1, steps_per_epoch=1, verbose=0)
    # A batch size unknown when the step is traced is checked when it runs.
    model, _ = tiny(buffer_size=4)
    model.run_eagerly = False
    unknown = tf.data.Dataset.from_tensor_slices(helpers.tiny_images(8)).batch(8)
    assert unknown.element_spec.shape[0] is None
    with pytest.raises(tf.errors.InvalidArgumentError, match="raise buffer_size"):
        model.fit(unknown, epochs=1, verbose=0)


def test_training_images_must_be_in_the_unit_interval():
    model, _ = tiny()
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"EBM trains on images in \[0, 1\]; use data preprocessing"):
        model.fit(tiny_batches(value_range=(-1.0, 1.0)), epochs=1, steps_per_epoch=1, verbose=0)


def test_endpoints_refuse_out_of_range_requests_in_a_tensorflow_only_process(tmp_path):
    model, _ = tiny()
    images = np.asarray(uniform_images(2))
    calls = {"refine": {"images": images, "steps": np.array([1, 3], np.int64)}, "energy": {"images": images}}
    refusals = {
        "too_many_steps": ("refine", {"images": images, "steps": np.array([1, MAX_LANGEVIN_STEPS + 1], np.int64)}),
        "negative_steps": ("refine", {"images": images, "steps": np.array([-1, 0], np.int64)}),
        "image_above_one": ("energy", {"images": images + 1.0}),
        "images_and_steps_differ": ("refine", {"images": images, "steps": np.array([1], np.int64)}),
    }
    _, result = helpers.export_and_call(model, calls, tmp_path, refusals=refusals)
    for label in ("too_many_steps", "negative_steps"):
        refusal = result["refusals"][label]
        assert refusal["error"] == "InvalidArgumentError" and f"steps must be from 0 to {MAX_LANGEVIN_STEPS}" in refusal["message"], refusal
    assert "must lie in [0, 1]" in result["refusals"]["image_above_one"]["message"]
    assert "must have the same batch size" in result["refusals"]["images_and_steps_differ"]["message"]
    np.testing.assert_allclose(result["refine"]["images"], model.refine(images, np.array([1, 3]))["images"], atol=1e-5)
    np.testing.assert_allclose(result["energy"]["energy"], model.energy(images)["energy"], atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="steps must be from 0"):
        model.refine(images, tf.constant([0, MAX_LANGEVIN_STEPS + 1], tf.int64))


def test_the_energy_is_the_calibrated_anomaly_score():
    model, _ = tiny(normal_class=3)
    assert model.training_classes() == [3]
    images = helpers.tiny_images(16, binary=False)
    summary = model.calibrate(images)
    energies = model.energies(images).numpy()
    assert summary["mean_energy"] == pytest.approx(energies.mean(), rel=1e-5)
    scores = model.anomaly_score(images)
    np.testing.assert_allclose(scores["score"], (energies - energies.mean()) / energies.std(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scores["energy"], energies, rtol=1e-6)
    threshold = model.anomaly_threshold(tf.constant([0.05]))
    assert np.isfinite(threshold["threshold"].numpy()).all() and threshold["normal_class"].numpy().tolist() == [3]


def test_tensorboard_shows_k_and_4k_step_samples_and_one_chains_strip():
    model, _ = tiny()
    fixed = model.summary_inputs(None, num_samples=4)
    grids = model.summary_images(fixed)
    assert set(grids) == {"samples_after_k_steps", "samples_after_4k_steps", "chain"}
    assert grids["samples_after_k_steps"][0].shape == (4, *helpers.IMAGE_SHAPE)
    strip, columns = grids["chain"]
    assert strip.shape == (columns, *helpers.IMAGE_SHAPE) and columns == 10
    # The strip is the first sample's chain: it starts at its noise and ends where the 4K grid's first image is.
    np.testing.assert_allclose(strip[-1], grids["samples_after_4k_steps"][0][0], atol=1e-5)
    np.testing.assert_allclose(model.summary_images(fixed)["chain"][0], strip, atol=0)
