"""Exports load and answer through TF Serving's own C++ loader (`tensorflow::LoadSavedModel`).

No TF Serving binary is installed here, so `tools/serving_check` calls the loader and runs a
signature the way TF Serving's Predict does; these tests compile it against the TensorFlow wheel.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras_gen  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import export
from keras_gen.models import VAE
from tests import helpers

BUILD_SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "tools" / "serving_check" / "build.sh"
CANNOT_BUILD = 77  # build.sh's status when the compiler, headers or libraries are missing.
LOAD_OR_RUN_FAILED = 1
USAGE_ERROR = 2

IMAGES = [-1, *helpers.IMAGE_SHAPE]
CODES = [-1, 2]
EXPECTED_VAE_SIGNATURES = {
    "serving_default": {"inputs": {"images": ("float32", IMAGES)}, "outputs": {"reconstruction": ("float32", IMAGES)}},
    "reconstruct": {"inputs": {"images": ("float32", IMAGES)}, "outputs": {"reconstruction": ("float32", IMAGES)}},
    "encode": {
        "inputs": {"images": ("float32", IMAGES)},
        "outputs": {"mean": ("float32", CODES), "log_variance": ("float32", CODES)},
    },
    "decode": {"inputs": {"z": ("float32", CODES)}, "outputs": {"images": ("float32", IMAGES)}},
    "sample": {"inputs": {"seed": ("int64", [-1])}, "outputs": {"images": ("float32", IMAGES)}},
    "interpolate": {
        "inputs": {"z_start": ("float32", CODES), "z_end": ("float32", CODES), "t": ("float32", [-1])},
        "outputs": {"images": ("float32", IMAGES), "z": ("float32", CODES)},
    },
}


@pytest.fixture(scope="module")
def serving_check(tmp_path_factory):
    binary = tmp_path_factory.mktemp("serving_check") / "serving_check"
    build = subprocess.run(
        ["bash", str(BUILD_SCRIPT), str(binary)],
        env=dict(os.environ, PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if build.returncode == CANNOT_BUILD:
        pytest.skip(build.stderr.strip())
    assert build.returncode == 0, build.stderr[-5000:]
    return binary


@pytest.fixture(scope="module")
def vae_export(tmp_path_factory):
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    model.compile(optimizer="adam")
    helpers.fit_steps(model, helpers.tiny_images(32), steps=2)
    path = export.export_model(model, tmp_path_factory.mktemp("serving_cpp") / "exports")
    return model, path


def run_check(binary, *args):
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=300)


def input_arg(name, array):
    """`--input`'s NAME=DTYPE:SHAPE:VALUES for `array`; repr keeps every float32 exact."""
    array = np.asarray(array)
    values = [repr(float(v)) if array.dtype.kind == "f" else str(int(v)) for v in array.ravel()]
    return f"{name}={array.dtype}:{','.join(map(str, array.shape))}:{','.join(values)}"


def parse_output(stdout):
    """serving_check's records as ({signature: {"method", "inputs", "outputs"}}, {output: array})."""
    signatures, results = {}, {}
    for line in stdout.splitlines():
        kind, signature, *fields = line.split("\t")
        if kind == "signature":
            signatures[signature] = {"method": fields[0], "inputs": {}, "outputs": {}}
        elif kind in ("input", "output"):
            name, dtype, shape = fields
            signatures[signature][kind + "s"][name] = (dtype, json.loads(shape))
        elif kind == "result":
            name, dtype, shape, values = fields
            results[name] = np.array(values.split(",") if values else [], dtype=dtype).reshape(json.loads(shape))
    return signatures, results


def test_the_loader_lists_every_endpoint_with_its_inputs_and_outputs(serving_check, vae_export):
    _, path = vae_export
    check = run_check(serving_check, path)
    assert check.returncode == 0, check.stderr
    signatures, results = parse_output(check.stdout)
    assert not results
    assert {s.pop("method") for s in signatures.values()} == {"tensorflow/serving/predict"}
    assert signatures == EXPECTED_VAE_SIGNATURES


def test_signatures_run_by_tensor_name_match_the_python_model(serving_check, vae_export):
    model, path = vae_export
    seeds = np.array([0, 1, 2, 3], np.int64)
    z = np.random.default_rng(0).normal(size=(3, 2)).astype("float32")
    images = helpers.tiny_images(2, seed=5)
    cases = [
        ("sample", input_arg("seed", seeds), "images", model.sample(tf.constant(seeds))["images"]),
        ("decode", input_arg("z", z), "images", model.decode(z)["images"]),
        ("serving_default", input_arg("images", images), "reconstruction", model.reconstruct(images)["reconstruction"]),
    ]
    for signature, argument, output, expected in cases:
        check = run_check(serving_check, path, "--run", signature, "--input", argument)
        assert check.returncode == 0, f"{signature}: {check.stderr}"
        _, results = parse_output(check.stdout)
        assert set(results) == set(EXPECTED_VAE_SIGNATURES[signature]["outputs"])
        assert results[output].dtype == np.float32
        np.testing.assert_allclose(results[output], np.asarray(expected), atol=1e-5, err_msg=signature)


def test_an_unknown_signature_is_refused_and_the_real_ones_named(serving_check, vae_export):
    _, path = vae_export
    check = run_check(serving_check, path, "--run", "generate", "--input", "seed=int64:1:0")
    assert check.returncode == USAGE_ERROR
    assert "unknown signature 'generate'" in check.stderr
    assert "decode, encode, interpolate, reconstruct, sample, serving_default" in check.stderr


def test_a_missing_version_directory_fails_to_load(serving_check, tmp_path):
    check = run_check(serving_check, tmp_path / "exports" / "vae" / "7")
    assert check.returncode == LOAD_OR_RUN_FAILED
    assert "could not load the SavedModel" in check.stderr
    assert check.stdout == ""


@pytest.mark.parametrize(
    "inputs, message",
    [
        (["z=float32:2,2:1,2,3"], "holds 4 values but 3 were given"),
        (["z=int64:1,2:fill=1"], "input 'z' of signature 'decode' is float32, not int64"),
        (["z=float16:1,2:fill=1"], "unsupported dtype 'float16'"),
        (["z=float32:1,2:0,zero"], "'zero' is not a valid float32 value"),
        (["z=float32:1,2"], "expected NAME=DTYPE:SHAPE:VALUES"),
        ([], "signature 'decode' needs input 'z' (float32, shape [-1,2])"),
        (["z=float32:1,2:fill=0", "seed=int64:1:0"], "signature 'decode' has no input 'seed'"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(serving_check, vae_export, inputs, message):
    _, path = vae_export
    arguments = [argument for spec in inputs for argument in ("--input", spec)]
    check = run_check(serving_check, path, "--run", "decode", *arguments)
    assert check.returncode == USAGE_ERROR
    assert message in check.stderr
    assert "result\t" not in check.stdout
