"""The TF Serving kit (keras_gen.serving): warm-up records, `keras-gen serving-config`, `request`, `describe`."""

import json
import os
import pathlib
import re
import shlex
import shutil

import keras_gen  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from keras_gen import cli
from keras_gen import export
from keras_gen import serving
from tests import zoo_cases

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# The README's serving section is short and points here for the rest of the request examples and the client.
SERVING_DOC = ROOT / "docs" / "serving.md"
# A variety of inputs: images, codes, interpolation weights (vae); seeds with labels (cgan); rates (aae).
MODELS = ("vae", "cgan", "aae")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """{name: (live model, version folder, loaded SavedModel)} of untrained tiny models, one export root."""
    root = tmp_path_factory.mktemp("serving") / "exports"
    made = {}
    for name in MODELS:
        model, _ = zoo_cases.TINY_MODELS[name]()
        path = export.export_model(model, root)
        made[name] = (model, path, tf.saved_model.load(str(path)))
    return made


def live_outputs(model, signature, values):
    """What the live Keras model answers to `values` at `signature` (serving_default: its default)."""
    endpoints = {endpoint.name: endpoint for endpoint in model.serving_endpoints()}
    endpoint = endpoints[model.default_endpoint if signature == "serving_default" else signature]
    return {key: np.asarray(value) for key, value in endpoint.fn(**{k: tf.constant(v) for k, v in values.items()}).items()}


def assert_same_answers(loaded, model, signature, values):
    answer = loaded.signatures[signature](**{k: tf.constant(v) for k, v in values.items()})
    expected = live_outputs(model, signature, values)
    assert set(answer) == set(expected), signature
    for key, value in expected.items():
        np.testing.assert_allclose(answer[key].numpy(), value, atol=1e-5, err_msg=f"{signature}/{key}")


# === Warm-up ===
@pytest.mark.parametrize("name", MODELS)
def test_every_export_holds_warmup_records_that_the_saved_model_answers_as_the_live_model(exports, name):
    model, path, loaded = exports[name]
    records = list(tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests")))
    assert 0 < len(records) <= serving.MAX_WARMUP_RECORDS
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in records]
    assert {log.WhichOneof("log_type") for log in logs} == {"predict_log"}
    assert {log.predict_log.request.model_spec.name for log in logs} == {name}
    requests = serving.read_warmup(path)
    batches = {}
    for signature, values in requests:
        batches.setdefault(signature, set()).update(len(array) for array in values.values())
        assert_same_answers(loaded, model, signature, values)
    # Every signature with inputs, at batch 1 and the typical serving batch; metadata has no inputs to warm.
    assert set(batches) == set(loaded.signatures) - {export.METADATA_SIGNATURE}
    assert all(sizes == {1, serving.DEFAULT_SERVING_BATCH} for sizes in batches.values()), batches


def test_the_warmup_file_is_in_the_staging_folder_before_the_rename_and_bounded_by_the_batch_limit(tmp_path, monkeypatch):
    model, _ = zoo_cases.vae()
    seen = []
    rename = os.rename

    def checked_rename(source, target):
        seen.append((pathlib.Path(source).name, (pathlib.Path(source) / serving.WARMUP_FILE).is_file()))
        rename(source, target)

    monkeypatch.setattr(export.os, "rename", checked_rename)
    path = export.export_model(model, tmp_path, max_serving_batch=4, serving_batch=32)
    [(staging, had_warmup)] = seen
    assert staging.startswith(export.STAGING_PREFIX) and had_warmup
    assert {len(values["seed"]) for signature, values in serving.read_warmup(path) if signature == "sample"} == {1, 4}
    with pytest.raises(export.ExportError, match="serving_batch must be a positive integer"):
        export.export_model(model, tmp_path, serving_batch=0)


# === keras-gen serving-config ===
@pytest.fixture(scope="module")
def two_version_root(exports):
    """The module's export root, with a second version of vae (a copy of the first)."""
    _, path, _ = exports["vae"]
    shutil.copytree(path, path.parent / "2")
    return path.parents[1]


def read_models_config(path):
    return text_format.Parse(pathlib.Path(path).read_text(), model_server_config_pb2.ModelServerConfig())


def test_serving_config_lists_every_model_with_its_policy_and_labels(two_version_root, tmp_path, capsys):
    out = tmp_path / "config"
    assert cli.main(["serving-config", str(two_version_root), "--policy", "all", "--label", "stable=1", "--label", "vae:canary=2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    config = read_models_config(out / "models.config")
    entries = {entry.name: entry for entry in config.model_config_list.config}
    assert sorted(entries) == sorted(MODELS)
    for name, entry in entries.items():
        assert entry.base_path == f"/models/{name}" and entry.model_platform == "tensorflow"
        assert entry.model_version_policy.WhichOneof("policy_choice") == "all"
    assert dict(entries["vae"].version_labels) == {"stable": 1, "canary": 2}
    assert dict(entries["cgan"].version_labels) == {"stable": 1}
    assert f'-v "{two_version_root.resolve()}:/models" tensorflow/serving --model_config_file=/models/models.config' in printed
    assert "--enable_batching" not in printed and not (out / "batching_parameters.pbtxt").exists()

    assert cli.main(["serving-config", str(two_version_root), "--policy", "specific:1", "--out", str(out)]) == 0
    policies = {entry.name: list(entry.model_version_policy.specific.versions) for entry in read_models_config(out / "models.config").model_config_list.config}
    assert policies == {name: [1] for name in MODELS}


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--label", "stable=3"], "label stable=3: aae has no version 3 (it has 1)"),
        (["--label", "vae:stable=1"], "the latest policy does not load version 1 of vae (it loads 2)"),
        (["--policy", "specific:1,2"], "aae has no version 2 (it has 1)"),
        (["--label", "gan:stable=1"], "label for model 'gan', which is not under"),
        (["--policy", "newest"], "bad version policy 'newest'"),
        (["--label", "stable"], "bad label 'stable'"),
    ],
)
def test_serving_config_refuses_labels_and_versions_that_would_not_load(two_version_root, tmp_path, capsys, arguments, message):
    assert cli.main(["serving-config", str(two_version_root), "--out", str(tmp_path), *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "models.config").exists()


def parse_batching(text):
    return text_format.Parse(text, serving.BatchingParameters())


def test_serving_config_batching_writes_parameters_sized_from_the_latency_curve(two_version_root, tmp_path, capsys):
    assert cli.main(["serving-config", str(two_version_root), "--batching", "--repeats", "2", "--batch-threads", "3", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    parameters = parse_batching((tmp_path / "batching_parameters.pbtxt").read_text())
    sizes = list(parameters.allowed_batch_sizes)
    assert sizes == sorted(sizes) and sizes[0] == 1 and sizes[-1] == parameters.max_batch_size.value
    assert set(sizes) <= set(serving.BATCHING_CURVE_SIZES)
    assert parameters.num_batch_threads.value == 3 and parameters.max_enqueued_batches.value == 12
    assert parameters.batch_timeout_micros.value >= 100
    assert "vae (version 2) serving_default median ms by batch size: 1: " in printed
    assert "--enable_batching --batching_parameters_file=/models/batching_parameters.pbtxt" in printed


def test_batch_sizes_stop_where_throughput_stops_growing_or_latency_exceeds_the_budget():
    # Seconds per call: flat up to 8 rows (throughput doubles), then linear (no gain from 16 on).
    curve = {size: [0.001 * max(1, size / 8)] * 3 for size in (1, 2, 4, 8, 16, 32)}
    parameters = serving.batching_parameters({"a": curve}, num_batch_threads=2)
    assert parameters.max_batch_size.value == 8 and list(parameters.allowed_batch_sizes) == [1, 2, 4, 8]
    assert parameters.batch_timeout_micros.value == 1000
    slow = {size: [0.02 * size] for size in (1, 2, 4)}  # a second model bounds the shared file
    assert serving.batching_parameters({"a": curve, "b": slow}).max_batch_size.value == 1
    budget = {size: [0.03] for size in (1, 2, 4)} | {8: [0.06]}
    assert serving.batching_parameters({"a": budget}).max_batch_size.value == 4


# === keras-gen request and describe ===
def decode_body(body, request_format, inputs):
    """{input: array} of a request body, read back the way TF Serving reads each format."""
    dtypes = {tensor.name: tensor.dtype for tensor in inputs}
    if request_format == "grpc":
        request = text_format.Parse(body, predict_pb2.PredictRequest())
        return request.model_spec.signature_name, {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
    parsed = json.loads(body)
    if request_format == "rest-columnar":
        columns = parsed["inputs"]
    else:
        columns = {name: [row[name] for row in parsed["instances"]] for name in parsed["instances"][0]}
    return parsed["signature_name"], {name: np.asarray(value, dtype=dtypes[name]) for name, value in columns.items()}


def request_values(path, signature, request_format, *options, capsys):
    assert cli.main(["request", str(path), "--signature", signature, "--format", request_format, *options]) == 0
    body = capsys.readouterr().out
    decoded_signature, values = decode_body(body, request_format, serving.read_signatures(path)[signature]["inputs"])
    assert decoded_signature == signature
    return values


@pytest.mark.parametrize("name", MODELS)
def test_requests_of_every_signature_and_format_run_on_the_saved_model_as_on_the_live_model(exports, name, capsys):
    model, path, loaded = exports[name]
    for signature in loaded.signatures:
        if signature == export.METADATA_SIGNATURE:
            continue
        decoded = [request_values(path, signature, request_format, "--seed", "3", "--batch", "2", capsys=capsys) for request_format in serving.REQUEST_FORMATS]
        for values in decoded[1:]:
            assert values.keys() == decoded[0].keys()
            for key in values:
                np.testing.assert_array_equal(values[key], decoded[0][key], err_msg=f"{signature}/{key}")
        assert all(len(array) == 2 for array in decoded[0].values())
        assert_same_answers(loaded, model, signature, decoded[0])


def test_request_takes_png_images_and_labels(exports, tmp_path, capsys):
    model, path, loaded = exports["cgan"]
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8, 1) * 4
    files = []
    for index in range(2):
        files.append(tmp_path / f"{index}.png")
        tf.io.write_file(str(files[-1]), tf.io.encode_png(pixels + index))
    values = request_values(path, "score", "grpc", "--label", "7", "--image", *map(str, files), capsys=capsys)
    np.testing.assert_array_equal(values["images"], np.stack([pixels, pixels + 1]).astype(np.float32) / 255.0)
    assert values["label"].tolist() == [7, 7]
    assert_same_answers(loaded, model, "score", values)
    big = tmp_path / "big.png"
    tf.io.write_file(str(big), tf.io.encode_png(np.zeros([16, 16, 1], np.uint8)))
    assert cli.main(["request", str(path), "--signature", "score", "--image", str(big)]) == 2
    assert "big.png is 16x16; the model takes 8x8 images." in capsys.readouterr().err
    assert cli.main(["request", str(path), "--signature", "sample", "--image", str(big)]) == 2
    assert "--image is for signatures with an `images` input" in capsys.readouterr().err
    assert cli.main(["request", str(path), "--signature", "reconstruct"]) == 2
    assert "has no signature 'reconstruct'; it has: generate, metadata, sample, score, serving_default." in capsys.readouterr().err
    assert cli.main(["request", str(path), "--signature", "metadata"]) == 2
    assert "metadata has no inputs, so it has no rows; use --format rest-columnar or grpc." in capsys.readouterr().err
    assert request_values(path, "metadata", "rest-columnar", capsys=capsys) == {}


def test_describe_prints_the_signature_table_from_the_saved_model(exports, capsys):
    _, path, _ = exports["vae"]
    assert cli.main(["describe", str(path.parent)]) == 0
    lines = capsys.readouterr().out.splitlines()
    table = {line.split()[0]: line for line in lines[2:] if line.strip() and not line.startswith(str(path.parent))}
    assert set(table) == {"decode", "encode", "interpolate", "metadata", "reconstruct", "sample", "serving_default"}
    assert re.search(r"^sample +seed int64 \[batch\] +images float32 \[batch, 8, 8, 1\] +one image per seed", table["sample"])
    assert "log_variance float32 [batch, 2], mean float32 [batch, 2]" in table["encode"]
    assert table["serving_default"].endswith("the default: reconstruct")
    assert table["metadata"].split()[1] == "-"
    assert lines[-1].endswith(f"{2 * 6} warm-up records")


# === The README's and docs/serving.md's serving examples are this command's output ===
def section(path, heading):
    text = path.read_text()
    return text[text.index(heading) :].split("\n## ", 1)[0]


def readme_serving_section():
    """The README's serving section, then docs/serving.md's "Sending requests" (the examples it links to)."""
    return section(README, "## Serve it with TF Serving") + "\n" + section(SERVING_DOC, "## Sending requests")


def readme_request_commands():
    """(argv after `keras-gen`, the output the page shows or None) of each `keras-gen request` line."""
    commands = []
    lines = readme_serving_section().splitlines()
    for index, line in enumerate(lines):
        match = re.search(r"(?:^\$ |^)keras-gen (request [^|>#]*)", line)
        if match:
            shown = lines[index + 1] if line.startswith("$ ") else None
            commands.append((shlex.split(match.group(1)), shown))
    return commands


def test_readme_request_examples_are_what_keras_gen_request_prints_and_they_run(exports, tmp_path, capsys, monkeypatch):
    model, path, loaded = exports["vae"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exports").symlink_to(path.parents[1])
    tf.io.write_file("shirt.png", tf.io.encode_png(np.full([8, 8, 1], 200, np.uint8)))
    commands = readme_request_commands()
    assert len(commands) >= 3 and any(shown for _, shown in commands)
    assert "keras-gen request" in section(README, "## Serve it with TF Serving"), "the README shows a request example itself"
    bodies = {}
    for argv, shown in commands:
        argv = ["shirt.png" if arg.endswith(".png") else arg for arg in argv]
        assert cli.main(argv) == 0, argv
        body = capsys.readouterr().out.strip()
        if shown is not None:
            assert body == shown, f"The docs show for `keras-gen {' '.join(argv)}`:\n{shown}\nthe command prints:\n{body}"
        request_format = argv[argv.index("--format") + 1] if "--format" in argv else "rest-row"
        signature = argv[argv.index("--signature") + 1]
        _, values = decode_body(body, request_format, serving.read_signatures(path)[signature]["inputs"])
        assert_same_answers(loaded, model, signature, values)
        bodies[request_format] = body
    assert "grpc" in bodies
    (tmp_path / "sample.pbtxt").write_text(bodies["grpc"])

    # docs/serving.md's gRPC client, with a stub that answers from the loaded SavedModel instead of a server.
    [client] = re.findall(r"```python\n(.*?)```", readme_serving_section(), re.S)
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    class Stub:
        def __init__(self, channel):
            pass

        def Predict(self, request, timeout):
            inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
            response = predict_pb2.PredictResponse()
            for name, value in loaded.signatures[request.model_spec.signature_name](**inputs).items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    monkeypatch.setattr(grpc, "insecure_channel", lambda target: None)
    monkeypatch.setattr(prediction_service_pb2_grpc, "PredictionServiceStub", Stub)
    scope = {}
    exec(compile(client, "docs/serving.md", "exec"), scope)
    assert scope["images"].shape[1:] == model.image_shape


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(zoo_cases.TINY_MODELS))
def test_requests_of_every_zoo_model_run_on_its_saved_model_as_on_the_live_model(name, tmp_path, capsys):
    model, _ = zoo_cases.TINY_MODELS[name]()
    path = export.export_model(model, tmp_path)
    loaded = tf.saved_model.load(str(path))
    for signature in set(loaded.signatures) - {export.METADATA_SIGNATURE}:
        for request_format in serving.REQUEST_FORMATS:
            assert_same_answers(loaded, model, signature, request_values(path, signature, request_format, "--batch", "3", capsys=capsys))
