"""Mixed precision in every model: `mixed_precision="bfloat16" | "float16" | False`.

Every registered model trains under both policies; under float16 its optimizers scale the loss, skip a
step whose gradients overflow and keep their loss-scale state in a `.keras` file; the WGAN-GP penalty
is loss-scaled too and matches float32's.
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import checkpoints
from keras_gen import losses
from keras_gen import recipes
from keras_gen.models import GAN
from keras_gen.models import VAE
from keras_gen.models import WGANGP
from keras_gen.models.base import GenerativeModel
from tests import helpers
from tests.test_zoo import example_inputs
from tests.zoo_cases import TINY_MODELS

DTYPES = ("float16", "bfloat16")


def optimizers_of(model):
    names = model.optimizer_names or ("optimizer",)
    return {name: getattr(model, name) for name in names}


def networks_of(model):
    """Every network of `model` (lists flattened; the classifier's head is built, not given, so not nested)."""
    found = []
    for name in model.nested_models + ("head",):
        value = getattr(model, name, None)
        found.extend(value if isinstance(value, (list, tuple)) else [value] if isinstance(value, keras.Model) else [])
    return found


def assert_trains_in(model, data, dtype):
    history = model.fit(data, epochs=1, steps_per_epoch=2, verbose=0).history
    # A step that overflows is skipped and reports an infinite gradient norm; the losses stay finite.
    for key in model.metric_names:
        if not key.endswith("grad_norm"):
            assert np.isfinite(history[key][0]), (key, history[key])
    policies = {layer.dtype_policy.name for network in networks_of(model) for layer in network.layers}
    assert f"mixed_{dtype}" in policies, policies
    for network in networks_of(model):
        assert all(output.dtype == "float32" for output in network.outputs), (network.name, [o.dtype for o in network.outputs])
    scaled = {name: isinstance(optimizer, keras.optimizers.LossScaleOptimizer) for name, optimizer in optimizers_of(model).items()}
    assert all(scaled.values()) if dtype == "float16" else not any(scaled.values()), scaled
    endpoint = model.serving_endpoints()[0]
    for key, value in endpoint.fn(**example_inputs(endpoint)).items():
        if value.dtype.is_floating:
            assert value.dtype == tf.float32 and np.all(np.isfinite(value)), (endpoint.name, key, value.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_every_model_trains_with_mixed_precision(name, dtype):
    """Two steps, run eagerly (no tracing: ~1 s a model); the compiled steps are the next tests'."""
    model, data = TINY_MODELS[name](mixed_precision=dtype)
    assert model.mixed_precision == dtype and model.get_config()["mixed_precision"] == dtype
    model.run_eagerly = True
    assert_trains_in(model, data, dtype)


def test_compiled_float16_wgan_gp_step():
    """Two optimizers and the loss-scaled gradient penalty in the compiled step `fit` runs (the overflow
    test below runs vae and gan compiled too)."""
    model, data = TINY_MODELS["wgan_gp"](mixed_precision="float16")
    assert_trains_in(model, data, "float16")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_every_model_trains_with_mixed_precision_compiled(name, dtype):
    model, data = TINY_MODELS[name](mixed_precision=dtype)
    assert_trains_in(model, data, dtype)


def test_the_option_parses_validates_and_round_trips():
    old_switch = GAN(image_shape=(8, 8, 1), latent_dim=2, generator_widths=(4,), discriminator_widths=(4,), mixed_precision=True)
    assert old_switch.mixed_precision == "bfloat16" and old_switch.get_config()["mixed_precision"] == "bfloat16"
    for given, stored in ((False, False), (None, False), ("float16", "float16"), ("bfloat16", "bfloat16")):
        model = VAE(image_shape=(8, 8, 1), latent_dim=2, filters=(4,), mixed_precision=given)
        assert model.mixed_precision == stored
        assert helpers.assert_config_round_trip(model).mixed_precision == stored
    with pytest.raises(ValueError, match='"bfloat16", "float16" or False'):
        VAE(image_shape=(8, 8, 1), latent_dim=2, filters=(4,), mixed_precision="float8")
    # Recipes take the new values, keep true meaning bfloat16, and refuse the rest before anything runs.
    base = {"model": "vae"}
    for value in ("float16", "bfloat16", False, True):
        assert recipes.validate({**base, "model_options": {"mixed_precision": value}}, "mp").model_options["mixed_precision"] == value
    with pytest.raises(recipes.RecipeError, match="mixed_precision must be"):
        recipes.validate({**base, "model_options": {"mixed_precision": "half"}}, "mp")
    assert all(recipes.load_recipe(path).model_options.get("mixed_precision") in (None, False, True) for path in recipes.recipe_paths())


def overflowing(optimizer):
    """`optimizer` wrapped with a loss scale that turns any loss into inf (float32 overflow)."""
    return keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=1e38)


@pytest.mark.parametrize("name", ["vae", "gan"])
def test_a_step_that_overflows_is_skipped_and_lowers_the_scale(name):
    model, data = TINY_MODELS[name](mixed_precision="float16")
    if name == "vae":
        model.compile(optimizer=overflowing(keras.optimizers.Adam(1e-3)))
    else:
        model.compile(d_optimizer=overflowing(keras.optimizers.Adam(1e-3)), g_optimizer=overflowing(keras.optimizers.Adam(1e-3)))
    before = [np.array(w) for w in model.trainable_weights]
    history = model.fit(data, epochs=1, steps_per_epoch=1, verbose=0).history
    for a, b in zip(before, model.trainable_weights):
        np.testing.assert_array_equal(a, np.asarray(b))
    for name_, optimizer in optimizers_of(model).items():
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer), name_
        assert float(optimizer.dynamic_scale.numpy()) == pytest.approx(0.5e38), name_
        assert int(optimizer.iterations.numpy()) == 0 and int(optimizer.step_counter.numpy()) == 0, name_
    # The norm is unscaled and taken before the step, so an overflowing step reports inf or NaN, never a number.
    norms = [value[0] for key, value in history.items() if key.endswith("grad_norm")]
    assert not any(np.isfinite(norms)), history


def test_gradient_norm_is_of_the_unscaled_loss_before_the_scale_changes():
    """`minimise` reports the norm of the unscaled gradient, taken before `apply`, which here (growth
    every step) doubles the scale: a norm taken after it would be half the true one."""
    model, data = TINY_MODELS["vae"](mixed_precision="float16")
    model.compile(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.0), initial_scale=2.0**10, dynamic_growth_steps=1))
    images = next(iter(data))
    weights = model.trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        loss = losses.global_batch_mean(model.compute_losses(images, training=True)["objective"])
        scaled = model.optimizer.scale_loss(loss)
    unscaled_norm = tf.linalg.global_norm([g for g in tape.gradient(loss, weights) if g is not None])
    norm = model.minimise(model.optimizer, tape.gradient(scaled, weights), weights)
    assert float(model.optimizer.dynamic_scale.numpy()) == 2.0**11
    np.testing.assert_allclose(float(norm), float(unscaled_norm), rtol=1e-2)


def test_float16_gradient_penalty_matches_float32():
    """The same critic weights, real and generated images and interpolation seed: the float16 critic's
    penalty, with the inner gradient scaled by the optimizer's loss scale (2^15) and unscaled in float32,
    is float32's within rtol 1e-2 (float16 keeps ~3 significant digits; measured: 1.4e-4), and so is
    its gradient with respect to the critic's weights (rtol 5e-2, atol 1e-3)."""
    options = dict(image_shape=(8, 8, 1), latent_dim=2, generator_widths=(8, 4), discriminator_widths=(4, 8), seed=0)
    full, half = WGANGP(**options), WGANGP(mixed_precision="float16", **options)
    half.compile()
    half.discriminator.set_weights(full.discriminator.get_weights())
    real, fake = helpers.tiny_images(16, seed=1) * 2 - 1, helpers.tiny_images(16, seed=2) * 2 - 1
    seed = tf.constant([3, 4])
    scale = GenerativeModel.loss_scale(half.d_optimizer)
    assert float(scale) == 2.0**15

    def penalty_and_gradient(model, loss_scale):
        weights = model.discriminator.trainable_weights
        with tf.GradientTape() as tape:
            penalty = losses.gradient_penalty(model.discriminate, real, fake, seed, loss_scale=loss_scale)
            scaled = tf.reduce_mean(penalty) * loss_scale
        # The output layer's bias has no part in the inner gradient: its gradient is None.
        return penalty.numpy(), [None if g is None else (g / loss_scale).numpy() for g in tape.gradient(scaled, weights)]

    expected, expected_gradients = penalty_and_gradient(full, 1.0)
    penalty, gradients = penalty_and_gradient(half, scale)
    np.testing.assert_allclose(penalty, expected, rtol=1e-2)
    assert [g is None for g in gradients] == [g is None for g in expected_gradients]
    for got, want in zip(gradients, expected_gradients):
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=5e-2, atol=1e-3)


def test_keras_file_keeps_the_loss_scale_state(tmp_path):
    """dynamic_scale and step_counter of every LossScaleOptimizer come back from a .keras file, through
    keras.models.load_model (one optimizer) and checkpoints.load_checkpoint (several)."""
    for name, load in (("vae", keras.models.load_model), ("gan", checkpoints.load_checkpoint)):
        model, data = TINY_MODELS[name](mixed_precision="float16")
        model.run_eagerly = True  # the overflow test runs both compiled
        model.fit(data, epochs=1, steps_per_epoch=2, verbose=0)
        for index, optimizer in enumerate(optimizers_of(model).values()):
            # Values a fresh optimizer would not have: a lowered scale, part way to the next growth.
            optimizer.dynamic_scale.assign(2.0 ** (9 + index))
            optimizer.step_counter.assign(5 + index)
        path = tmp_path / f"{name}.keras"
        model.save(path)
        loaded = load(path)
        assert loaded.mixed_precision == "float16"
        for key, optimizer in optimizers_of(model).items():
            restored = getattr(loaded, key)
            assert isinstance(restored, keras.optimizers.LossScaleOptimizer), key
            assert float(restored.dynamic_scale.numpy()) == float(optimizer.dynamic_scale.numpy()), key
            assert int(restored.step_counter.numpy()) == int(optimizer.step_counter.numpy()), key
            assert int(restored.iterations.numpy()) == int(optimizer.iterations.numpy()), key
