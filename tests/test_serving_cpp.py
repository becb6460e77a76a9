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
from keras_gen.models import CVAE
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
    "metadata": {"inputs": {}, "outputs": {"max_serving_batch": ("int64", [])}},
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


def test_the_warmup_records_run_through_the_loader_as_on_the_python_model(serving_check, vae_export):
    from keras_gen import serving

    model, path = vae_export
    requests = serving.read_warmup(path)
    arguments = []
    for signature, values in requests:
        arguments += ["--run", signature, *[argument for name, array in values.items() for argument in ("--input", input_arg(name, array))]]
    check = run_check(serving_check, path, *arguments)
    assert check.returncode == 0, check.stderr[-3000:]
    answers = parse_requests(check.stdout)
    assert [signature for signature, _ in answers] == [signature for signature, _ in requests]
    endpoints = {endpoint.name: endpoint for endpoint in model.serving_endpoints()}
    endpoints["serving_default"] = endpoints[model.default_endpoint]
    for (signature, values), (_, outputs) in zip(requests, answers):
        expected = endpoints[signature].fn(**values)
        assert set(outputs) == set(expected), signature
        for key, value in expected.items():
            np.testing.assert_allclose(outputs[key], np.asarray(value), atol=1e-5, err_msg=f"{signature}/{key}")


def test_an_unknown_signature_is_refused_and_the_real_ones_named(serving_check, vae_export):
    _, path = vae_export
    check = run_check(serving_check, path, "--run", "generate", "--input", "seed=int64:1:0")
    assert check.returncode == USAGE_ERROR
    assert "unknown signature 'generate'" in check.stderr
    assert "decode, encode, interpolate, metadata, reconstruct, sample, serving_default" in check.stderr


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


# === Bad requests get an error status from the loader's session, never a crash of the server ===
def parse_requests(stdout):
    """serving_check's answers to several --run requests, in order: [(signature, {output: array} or the
    error status as a string)]."""
    answers = []
    for line in stdout.splitlines():
        kind, signature, *fields = line.split("\t")
        if kind == "request":
            answers.append((signature, {}))
        elif kind == "result":
            name, dtype, shape, values = fields
            answers[-1][1][name] = np.array(values.split(",") if values else [], dtype=dtype).reshape(json.loads(shape))
        elif kind == "error":
            answers[-1] = (signature, fields[0])
    return answers


def run_requests(binary, path, requests, valid):
    """Sends `requests` and then the `valid` ones (each [(signature, [--input SPEC...])]) to one loaded
    model; returns (the completed process, the answers to `requests`, those to `valid`)."""
    arguments = []
    for signature, inputs in [*requests, *valid]:
        arguments += ["--run", signature, *[argument for spec in inputs for argument in ("--input", spec)]]
    check = run_check(binary, path, *arguments)
    answers = parse_requests(check.stdout)
    return check, answers[: len(requests)], answers[len(requests) :]


# (signature, inputs, the status must say); the model is the 8x8 VAE with latent 2 of `vae_export`.
VAE_BAD_REQUESTS = {
    # The request that aborted the process (SIGABRT in oneDNN's kernels) before the export checked shapes.
    "rank 3 images": ("reconstruct", ["images=float32:2,8,8:fill=0.5"], "reconstruct: input `images` must have shape [batch, 8, 8, 1] (float32), got [2, 8, 8]."),
    "rank 3 images to encode": ("encode", ["images=float32:2,8,8:fill=0.5"], "encode: input `images` must have shape [batch, 8, 8, 1] (float32), got [2, 8, 8]."),
    "rank 5 images": ("serving_default", ["images=float32:2,8,8,1,1:fill=0.5"], "got [2, 8, 8, 1, 1]."),
    "scalar images": ("reconstruct", ["images=float32::0.5"], "reconstruct: input `images` must have shape [batch, 8, 8, 1] (float32), got []."),
    "16x16 images": ("reconstruct", ["images=float32:2,16,16,1:fill=0.5"], "got [2, 16, 16, 1]."),
    "3 channels": ("encode", ["images=float32:2,8,8,3:fill=0.5"], "got [2, 8, 8, 3]."),
    "3-d codes": ("decode", ["z=float32:2,3:fill=0"], "decode: input `z` must have shape [batch, 2] (float32), got [2, 3]."),
    "rank 2 seeds": ("sample", ["seed=int64:2,1:fill=0"], "sample: input `seed` must have shape [batch] (int64), got [2, 1]."),
    # Batches: above the default bound (what died of OOM at a million seeds), empty, or disagreeing.
    "a million seeds": ("sample", ["seed=int64:1000000:fill=3"], "sample: input `seed` holds a batch of 1000000; a request holds 1 to 1024"),
    "1025 codes": ("decode", ["z=float32:1025,2:fill=0"], "decode: input `z` holds a batch of 1025"),
    "empty batch": ("reconstruct", ["images=float32:0,8,8,1:fill=0"], "reconstruct: input `images` holds a batch of 0"),
    "batches disagree": (
        "interpolate",
        ["z_start=float32:3,2:fill=0", "z_end=float32:3,2:fill=1", "t=float32:2:0.5,0.5"],
        "interpolate: inputs `z_start`, `z_end`, `t` are one batch and must have the same batch size, got 3, 3, 2.",
    ),
    # Values: NaN and infinities, and the declared ranges.
    "NaN images": ("reconstruct", ["images=float32:2,8,8,1:fill=nan"], "reconstruct: input `images` holds 128 NaN or infinite values"),
    "an infinite code": ("decode", ["z=float32:2,2:0,inf,0,0"], "decode: input `z` holds 1 NaN or infinite values"),
    "images above 1": ("reconstruct", ["images=float32:2,8,8,1:fill=1.5"], "reconstruct: input `images` must lie in [0, 1], got values from 1.5 to 1.5."),
    "images below 0": ("encode", ["images=float32:2,8,8,1:fill=-0.5"], "encode: input `images` must lie in [0, 1], got values from -0.5 to -0.5."),
    "t below 0": (
        "interpolate",
        ["z_start=float32:2,2:fill=0", "z_end=float32:2,2:fill=1", "t=float32:2:-0.5,0.5"],
        "interpolate: input `t` must lie in [0, 1], got values from -0.5 to 0.5.",
    ),
}


@pytest.fixture(scope="module")
def vae_refusals(serving_check, vae_export):
    _, path = vae_export
    valid = [("decode", ["z=float32:1,2:fill=0"]), ("metadata", [])]
    return run_requests(serving_check, path, [case[:2] for case in VAE_BAD_REQUESTS.values()], valid)


def test_bad_requests_fail_cleanly_and_the_model_answers_the_next_one(vae_refusals):
    check, answers, valid = vae_refusals
    assert check.returncode == LOAD_OR_RUN_FAILED, f"exit status {check.returncode} after {len(answers)} requests: {check.stderr[-2000:]}"
    assert len(answers) == len(VAE_BAD_REQUESTS)
    [(_, decoded), (_, metadata)] = valid
    assert decoded["images"].shape == (1, *helpers.IMAGE_SHAPE)
    # The bound that refused a million seeds is the one the export records.
    assert metadata["max_serving_batch"].tolist() == export.DEFAULT_MAX_SERVING_BATCH == 1024


@pytest.mark.parametrize("case", VAE_BAD_REQUESTS)
def test_bad_requests_get_invalid_argument_naming_the_input(vae_refusals, case):
    _, answers, _ = vae_refusals
    signature, _, message = VAE_BAD_REQUESTS[case]
    answered, status = answers[list(VAE_BAD_REQUESTS).index(case)]
    assert answered == signature and isinstance(status, str), f"{case}: answered {status}"
    assert status.startswith("INVALID_ARGUMENT: assertion failed: [") and message in status, status


@pytest.fixture(scope="module")
def cvae_export(tmp_path_factory):
    model = CVAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, num_classes=10, seed=0)
    return export.export_model(model, tmp_path_factory.mktemp("serving_cpp_cvae") / "exports")


def test_conditional_requests_are_checked_too(serving_check, cvae_export):
    cases = [
        # Labels outside [0, num_classes) were refused before; one label per row is new.
        ("sample", ["seed=int64:2:1,2", "label=int64:2:0,10"], "labels must be class indices in [0, 10)"),
        ("decode", ["z=float32:2,2:fill=0", "label=int64:2:-1,0"], "labels must be class indices in [0, 10)"),
        ("sample", ["seed=int64:3:1,2,3", "label=int64:2:0,1"], "sample: inputs `seed`, `label` are one batch and must have the same batch size, got 3, 2."),
        ("reconstruct", ["images=float32:2,8,8,1:fill=0.5", "label=int64:1:0"], "inputs `images`, `label` are one batch and must have the same batch size, got 2, 1."),
        ("encode", ["images=float32:2,8,8:fill=0.5", "label=int64:2:0,1"], "encode: input `images` must have shape [batch, 8, 8, 1] (float32), got [2, 8, 8]."),
    ]
    valid = [("decode", ["z=float32:1,2:fill=0", "label=int64:1:3"])]
    check, answers, [answer] = run_requests(serving_check, cvae_export, [case[:2] for case in cases], valid)
    assert check.returncode == LOAD_OR_RUN_FAILED, f"exit status {check.returncode}: {check.stderr[-2000:]}"
    for (signature, _, message), (answered, status) in zip(cases, answers, strict=True):
        assert answered == signature and isinstance(status, str), (message, status)
        assert status.startswith("INVALID_ARGUMENT") and message in status, (message, status)
    assert answer[1]["images"].shape == (1, *helpers.IMAGE_SHAPE)
