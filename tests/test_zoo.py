"""What every model in the zoo must do, run for each entry of tests/zoo_cases.py."""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import registry
from tests import helpers
from tests.zoo_cases import TINY_MODELS


def example_inputs(endpoint, batch=4):
    """Deterministic inputs matching an endpoint's input signature: floats in [0, 1), int64 0..9."""
    rng = np.random.default_rng(1)
    inputs = {}
    for spec in endpoint.input_signature:
        shape = [batch if d is None else d for d in spec.shape]
        if spec.dtype == tf.int64:
            inputs[spec.name] = (np.arange(batch) % 10).astype("int64").reshape(shape)
        else:
            inputs[spec.name] = rng.uniform(size=shape).astype(spec.dtype.as_numpy_dtype)
    return inputs


def wrong_shape_requests(endpoint, batch=4):
    """{label: (endpoint name, inputs, message, got)}: for each input, a request with it one rank short
    (or one long, for a vector) and one with a fixed size off by one, the other inputs valid; the
    export's refusal must hold `message` (naming the input) and `got` (the shape received)."""
    requests = {}
    for spec in endpoint.input_signature:
        valid = example_inputs(endpoint, batch)
        shape = list(valid[spec.name].shape)
        wrong = {"rank": shape[:-1] if len(shape) > 1 else [*shape, 1]}
        if len(shape) > 1:
            wrong["size"] = [*shape[:-1], shape[-1] + 1]
        for kind, bad_shape in wrong.items():
            inputs = dict(valid, **{spec.name: np.zeros(bad_shape, spec.dtype.as_numpy_dtype)})
            got = f"got [{', '.join(map(str, bad_shape))}]"
            requests[f"{endpoint.name}/{spec.name}/{kind}"] = (endpoint.name, inputs, f"{endpoint.name}: input `{spec.name}` must have shape", got)
    return requests


_TRAINED = {}


def trained(name, steps=2):
    """(model, data, history): the tiny model `name` after `steps` steps of `fit`, trained once per test
    process: the `.keras` and export tests share it (they save, load and export it and call its
    endpoints, which take their seeds as inputs; neither trains it). The steps run eagerly: they only
    give the optimizers state to save, and tracing them would cost seconds per model (every model's
    traced step is run by tests/test_distributed_zoo.py)."""
    if (name, steps) not in _TRAINED:
        model, data = TINY_MODELS[name]()
        model.run_eagerly = True
        history = model.fit(data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0).history
        model.run_eagerly = False
        _TRAINED[name, steps] = model, data, history
    return _TRAINED[name, steps]


def test_every_registered_model_has_a_tiny_case():
    assert set(registry.model_names()) == set(TINY_MODELS)


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_config_round_trip(name):
    model, _ = TINY_MODELS[name]()
    helpers.assert_config_round_trip(model)


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_keras_file_round_trip(name, tmp_path):
    model, data, _ = trained(name)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded) is type(model)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # A reloaded model resumes training where it stopped: each optimizer's steps and moments come back.
    helpers.assert_optimizers_restored(model, loaded)
    endpoint = model.serving_endpoints()[0]
    inputs = example_inputs(endpoint)
    for key, value in endpoint.fn(**inputs).items():
        np.testing.assert_allclose(np.asarray(loaded.serving_endpoints()[0].fn(**inputs)[key]), np.asarray(value), atol=1e-6)


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_export_reloads_in_a_tensorflow_only_process_with_matching_outputs(name, tmp_path):
    model, _, _ = trained(name)
    endpoints = model.serving_endpoints()
    calls = {endpoint.name: example_inputs(endpoint) for endpoint in endpoints}
    calls["serving_default"] = calls[model.default_endpoint]
    # Wrong shapes must come back as INVALID_ARGUMENT, not reach the kernels (oneDNN aborts on some).
    wrong = {label: case for endpoint in endpoints for label, case in wrong_shape_requests(endpoint).items()}
    _, result = helpers.export_and_call(model, calls, tmp_path, refusals={label: case[:2] for label, case in wrong.items()})
    for label, (_, _, message, got) in wrong.items():
        refusal = result["refusals"][label]
        assert refusal["error"] == "InvalidArgumentError" and message in refusal["message"] and got in refusal["message"], (label, refusal)
    for endpoint in endpoints:
        expected = endpoint.fn(**calls[endpoint.name])
        assert set(result[endpoint.name]) == set(expected), endpoint.name
        for key, value in expected.items():
            np.testing.assert_allclose(result[endpoint.name][key], np.asarray(value), atol=1e-5, err_msg=f"{endpoint.name}/{key}")
    for key, value in result[model.default_endpoint].items():
        np.testing.assert_array_equal(result["serving_default"][key], value)
    if "sample" in calls:
        images = result["sample"]["images"]
        assert images.min() >= 0.0 and images.max() <= 1.0, "exported images are in [0, 1]"
    # The warm-up records TF Serving replays at load: every signature with inputs, answered as the live model does.
    by_name = {endpoint.name: endpoint for endpoint in endpoints}
    by_name["serving_default"] = by_name[model.default_endpoint]
    assert {entry["signature"] for entry in result["warmup"]} == set(by_name)
    for entry in result["warmup"]:
        endpoint = by_name[entry["signature"]]
        inputs = {spec.name: np.asarray(entry["inputs"][spec.name], spec.dtype.as_numpy_dtype) for spec in endpoint.input_signature}
        for key, value in endpoint.fn(**inputs).items():
            np.testing.assert_allclose(entry["outputs"][key], np.asarray(value), atol=1e-5, err_msg=f"warm-up {entry['signature']}/{key}")


@pytest.fixture(scope="module")
def colour_folder(tmp_path_factory):
    """splits(preprocessing, labeled): `data.load_datasets` of a labeled 32x32x3 source (real Fashion-MNIST
    images, tinted and padded, as PNG class folders), read once per kind of pipeline the models ask for."""
    from keras_gen import data

    root = tmp_path_factory.mktemp("colour")
    helpers.write_image_folder(root, per_class=2, rgb=True, pad=32)
    made = {}

    def splits(preprocessing, labeled):
        if (preprocessing, labeled) not in made:
            made[preprocessing, labeled] = data.load_datasets(f"folder:{root}", batch_size=4, validation_size=4, preprocessing=preprocessing, with_labels=labeled)
        return made[preprocessing, labeled]

    return splits


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_fit_on_a_labeled_32x32_colour_folder_reports_finite_metrics(name, colour_folder):
    """Every model trains on colour images of another size than Fashion-MNIST's, read from image files."""
    from keras_gen import recipes

    model, tiny = TINY_MODELS[name](image_shape=(32, 32, 3))
    # Eager: shapes and data are what this checks; every model's traced step is checked in
    # tests/test_distributed_zoo.py (two replicas), and tracing here would cost seconds per model.
    model.run_eagerly = True
    recipe = recipes.load_recipe(name)
    labeled = isinstance(tiny.element_spec, tuple)
    splits = colour_folder(recipe.data["preprocessing"], labeled)
    assert splits["info"].image_shape == (32, 32, 3)
    history = model.fit(splits["train"], epochs=1, steps_per_epoch=2, verbose=0).history
    assert set(model.metric_names) <= set(history)
    for key in model.metric_names:
        assert np.isfinite(history[key][0]), (key, history[key])
    images = {name: images for name, (images, _) in model.summary_images(model.summary_inputs(splits["validation_images"], 4)).items()}
    assert all(tuple(grid.shape[1:]) == (32, 32, 3) for grid in images.values()), {k: v.shape for k, v in images.items()}
