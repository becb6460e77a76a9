"""Every model of the zoo takes the same step on two replicas as on one device.

Under MirroredStrategy on the two logical CPUs (tests/conftest.py) each replica sees half of the global
batch. With every loss scaled to the global batch, noise drawn per example of the global batch
(`keras_gen.noise`), Dropout masks likewise and BatchNorm over the global batch
(`networks.GlobalBatchNormalization`), one step must give the single-device weights, for each of the
model's optimizers. Plain SGD makes the update proportional to the gradient, so a wrong scale shows.
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import networks
from keras_gen import noise
from tests import helpers
from tests.zoo_cases import TINY_MODELS

# Float sums over two replicas add in another order than over one batch.
RTOL, ATOL = 1e-4, 1e-6


def build(name, strategy=None, **options):
    """The tiny zoo model `name` (with constructor `options`), every optimizer replaced by SGD, and its
    data; built in `strategy`'s scope when given. Keras' global seed is reset first so that layers with
    their own seed generators (Dropout) start from the same seeds in both builds."""
    keras.utils.set_random_seed(0)
    with strategy.scope() if strategy else tf.distribute.get_strategy().scope():
        model, data = TINY_MODELS[name](**options)
        names = model.optimizer_names or ("optimizer",)

        def sgd():
            if options.get("mixed_precision") != "float16":
                return keras.optimizers.SGD(0.1)
            # A scale that does not overflow on the first step (the default 2^15 does here, and skips it).
            return keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=2.0**8)

        if model.optimizer_names:
            model.compile(**{one: sgd() for one in names})
        else:
            model.compile(optimizer=sgd())
    return model, data, names


def optimizer_variables(model, name):
    if name == "optimizer":
        return model.trainable_weights
    return model.optimizer_variables(name)


def one_step_each(name, strategy, **options):
    """(single, mirrored, initial weights, names of the optimizers): the tiny model `name` after one step
    on the same global batch, on one device and on `strategy`'s replicas, from the same weights."""
    single, data, names = build(name, **options)
    mirrored, _, _ = build(name, strategy, **options)
    mirrored.set_weights(single.get_weights())
    initial = [np.array(v) for v in single.weights]
    batch = data.take(1)
    # The one-device reference step runs eagerly (tracing it would cost seconds per model); the
    # mirrored step is the traced one under test.
    single.run_eagerly = True
    single.logs = single.fit(batch, epochs=1, verbose=0).history
    mirrored.logs = mirrored.fit(batch, epochs=1, verbose=0).history
    before = {id(v): value for v, value in zip(single.weights, initial)}
    for one in names:
        variables = optimizer_variables(single, one)
        assert any(helpers.changed([before[id(v)] for v in variables], variables)), f"{one} moved no variable: the comparison would be empty"
    return single, mirrored, initial, names


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_one_step_on_two_replicas_equals_one_device(name, two_cpu_strategy):
    single, mirrored, _, _ = one_step_each(name, two_cpu_strategy)
    for key, value in single.logs.items():
        assert mirrored.logs[key][0] == pytest.approx(value[0], rel=RTOL, abs=ATOL), key
    for a, b in zip(single.weights, mirrored.weights):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=RTOL, atol=ATOL, err_msg=a.path)


@pytest.mark.parametrize("name", ["vae", "wgan_gp"])
def test_a_float16_step_on_two_replicas_equals_one_device(name, two_cpu_strategy):
    """With loss scaling (float16) each replica scales its loss and the summed gradients are unscaled
    once. float16 sums over half a batch round differently from sums over all of it, so each variable's
    update is compared as a whole: within 5% of its norm (a loss scaled twice, or not unscaled, would be
    off by 100% or more)."""
    single, mirrored, initial, names = one_step_each(name, two_cpu_strategy, mixed_precision="float16")
    for a, b, before in zip(single.weights, mirrored.weights, initial):
        update_single, update_mirrored = np.asarray(a) - before, np.asarray(b) - before
        scale = np.linalg.norm(update_single)
        assert np.linalg.norm(update_mirrored - update_single) <= 0.05 * scale + 1e-6, a.path
    for one in names:
        scales = [float(getattr(model, one).dynamic_scale.numpy()) for model in (single, mirrored)]
        assert scales[0] == scales[1], one


def test_noise_rows_are_the_global_batch_rows_on_every_replica(two_cpu_strategy):
    seed = tf.constant([3, 4], tf.int32)
    whole = noise.normal([8, 3], seed)
    shares = two_cpu_strategy.run(lambda: noise.normal([4, 3], seed))
    parts = two_cpu_strategy.experimental_local_results(shares)
    np.testing.assert_array_equal(np.concatenate([np.asarray(p) for p in parts]), np.asarray(whole))


def test_global_batch_norm_uses_the_whole_batch_and_is_keras_on_one_device(two_cpu_strategy):
    images = np.random.default_rng(0).normal(size=(8, 4, 4, 2)).astype("float32")
    images[4:] += 3.0  # the two halves' statistics differ
    ours, plain = networks.GlobalBatchNormalization(), keras.layers.BatchNormalization()
    np.testing.assert_array_equal(np.asarray(ours(images, training=True)), np.asarray(plain(images, training=True)))
    with two_cpu_strategy.scope():
        layer = networks.GlobalBatchNormalization()
        layer.build(images.shape)
    dataset = two_cpu_strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(images).batch(8))
    shares = two_cpu_strategy.run(tf.function(lambda x: layer(x, training=True)), args=(next(iter(dataset)),))
    together = np.concatenate([np.asarray(p) for p in two_cpu_strategy.experimental_local_results(shares)])
    np.testing.assert_allclose(together, np.asarray(plain(images, training=True)), rtol=1e-4, atol=1e-5)
