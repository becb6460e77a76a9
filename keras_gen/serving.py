"""What a TF Serving deployment needs beside the SavedModel: warm-up records, the model server's config
files and request bodies, all built from the signatures themselves.

- `write_warmup` puts `assets.extra/tf_serving_warmup_requests` into an export (`export_model` calls it
  before the version folder is renamed into place): `PredictionLog` records that TF Serving replays
  when it loads the version, so that the first real request does not pay for graph optimisation and
  memory allocation.
- `model_server_config` and `batching_parameters` are the text protos of `--model_config_file` and
  `--batching_parameters_file` (`keras-gen serving-config`); the batching sizes come from a latency
  curve measured on the export (`latency_curve`).
- `request_body` is a Predict request, REST (row or columnar JSON) or gRPC (`PredictRequest` text
  format), for one signature (`keras-gen request`); `signature_table` lists an export's signatures
  from its saved_model.pb (`keras-gen describe`).

Inputs are filled in by name, the same for warm-up and requests: `seed` counts up from the first seed,
`label` is a class id, `images` are seeded uniform values in [0, 1] (or PNG files), `t` runs from 0 to 1,
`fpr` is a small rate, and every other float input (codes) is seeded standard normal noise. All of them
pass the checks every signature makes (shape, batch size, finite values, ranges).
"""

import dataclasses
import os
import pathlib
import time
import zlib

import numpy as np
import tensorflow as tf
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import text_format
from google.protobuf import wrappers_pb2
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import tensor_shape_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from keras_gen import export

WARMUP_FILE = pathlib.Path("assets.extra") / "tf_serving_warmup_requests"
# TF Serving reads at most this many warm-up records and fails the load beyond it.
MAX_WARMUP_RECORDS = 1000
# A typical online request: a few images or seeds. Warm-up runs each signature at 1 and at this size.
DEFAULT_SERVING_BATCH = 8

MODELS_CONFIG = "models.config"
BATCHING_CONFIG = "batching_parameters.pbtxt"
MODEL_BASE = "/models"  # where the export root is mounted in the serving container
REQUEST_FORMATS = ("rest-row", "rest-columnar", "grpc")
# The batch sizes whose latency `keras-gen serving-config --batching` measures.
BATCHING_CURVE_SIZES = (1, 2, 4, 8, 16, 32, 64)

# What each signature of the zoo does, for `keras-gen describe`: the SavedModel stores names, dtypes and
# shapes but no documentation.
SIGNATURE_PURPOSES = {
    "reconstruct": "encode the images, then decode their codes",
    "encode": "the images' codes",
    "decode": "images decoded from codes",
    "sample": "one image per seed; the same seed gives the same image",
    "interpolate": "images decoded at (1 - t) * z_start + t * z_end, and that z",
    "generate": "images generated from latent vectors z",
    "score": "the discriminator's score of each image",
    "components": "each image's mixture component and p(k | z)",
    "classify": "class probabilities and the most likely label of each image",
    "anomaly_score": "how unlike the normal class each image is (higher: less normal)",
    "anomaly_threshold": "the calibrated score threshold at each false-positive rate",
    export.METADATA_SIGNATURE: "the export's settings: max_serving_batch (no inputs)",
}

_DTYPES = {"float32": tf.float32, "int64": tf.int64}


class ServingConfigError(ValueError):
    """A serving config that TF Serving would refuse or that would not load what it names."""


@dataclasses.dataclass(frozen=True)
class Tensor:
    """One input or output of a signature: name, dtype name ('float32') and shape (None: any size)."""

    name: str
    dtype: str
    shape: tuple

    @property
    def shape_text(self):
        return "[" + ", ".join("batch" if i == 0 and d is None else "?" if d is None else str(d) for i, d in enumerate(self.shape)) + "]"


# === Example inputs, shared by warm-up records and requests ===
def example_inputs(inputs, batch_size, seed=0, label=0, num_classes=None, images=None):
    """{input name: array} for a signature's `inputs` (a list of `Tensor`) that passes its checks.

    Args:
        inputs: the signature's inputs.
        batch_size: rows of every batched input (ignored where `images` are given: one row per image).
        seed: the first seed; `seed` inputs count up from it, and float inputs are drawn from it.
        label: the class of every row of a `label` input, unless `num_classes` is given.
        num_classes: labels cycle through 0..num_classes - 1 instead.
        images: float32 [batch, ...] images in [0, 1] for an `images` input; None: seeded noise.
    """
    if images is not None:
        batch_size = len(images)
    rows = np.arange(batch_size)
    values = {}
    for tensor in inputs:
        # One stream per input name: the values do not depend on the order the inputs are listed in.
        rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(tensor.name.encode())])
        shape = [batch_size if d is None else d for d in tensor.shape]
        if tensor.dtype == "int64":
            if tensor.name == "label":
                column = rows % num_classes if num_classes else np.full(batch_size, label)
            else:
                column = seed + rows
            values[tensor.name] = column.astype(np.int64).reshape(shape)
        elif tensor.name == "images" and images is not None:
            values[tensor.name] = np.asarray(images, np.float32)
        elif tensor.name == "images":
            # Four decimals: the REST body's text is then short and reads back to the same float32.
            values[tensor.name] = np.round(rng.uniform(size=shape), 4).astype(np.float32)
        elif tensor.name == "t":
            values[tensor.name] = np.round(np.linspace(0.0, 1.0, batch_size) if batch_size > 1 else np.full(1, 0.5), 4).astype(np.float32)
        elif tensor.name == "fpr":
            values[tensor.name] = np.full(shape, 0.05, np.float32)
        else:
            values[tensor.name] = np.round(rng.standard_normal(size=shape), 4).astype(np.float32)
    return values


def endpoint_inputs(endpoint):
    """The `Tensor`s of an `export.Endpoint`'s input signature."""
    return [Tensor(spec.name, spec.dtype.name, tuple(spec.shape.as_list())) for spec in endpoint.input_signature]


def tensor_proto(array):
    """A TensorProto of `array` with its values listed (float_val / int64_val), readable as text."""
    array = np.asarray(array)
    proto = tensor_pb2.TensorProto(dtype=tf.as_dtype(array.dtype).as_datatype_enum)
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape)
    if array.dtype == np.float32:
        proto.float_val.extend(array.ravel().tolist())
    elif array.dtype == np.int64:
        proto.int64_val.extend(array.ravel().tolist())
    else:
        raise ValueError(f"only float32 and int64 inputs are supported, got {array.dtype}")
    return proto


def predict_request(model_name, signature, values):
    """A `PredictRequest` for `signature` of `model_name` with `values` ({input name: array})."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    for name, array in values.items():
        request.inputs[name].CopyFrom(tensor_proto(array))
    return request


# === Warm-up ===
def warmup_requests(model, model_name, batch_sizes=(1, DEFAULT_SERVING_BATCH)):
    """[PredictionLog]: each of `model`'s signatures (and serving_default) at each of `batch_sizes`.

    The `metadata` signature is left out: it has no inputs, so there is nothing to warm, and TF Serving's
    batching session refuses a run without input tensors, while a failed warm-up record fails the load.
    """
    num_classes = getattr(model, "num_classes", None) or None
    endpoints = {endpoint.name: endpoint for endpoint in model.serving_endpoints()}
    endpoints["serving_default"] = endpoints[model.default_endpoint]
    logs = []
    for name, endpoint in endpoints.items():
        for batch_size in batch_sizes:
            values = example_inputs(endpoint_inputs(endpoint), batch_size, seed=batch_size, num_classes=num_classes)
            log = prediction_log_pb2.PredictionLog()
            log.predict_log.request.CopyFrom(predict_request(model_name, name, values))
            logs.append(log)
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(f"{len(logs)} warm-up records; TF Serving reads at most {MAX_WARMUP_RECORDS}. Pass fewer batch sizes.")
    return logs


def write_warmup(version_dir, model, model_name, serving_batch=DEFAULT_SERVING_BATCH, max_serving_batch=export.DEFAULT_MAX_SERVING_BATCH):
    """Writes `model`'s warm-up records (batch sizes 1 and `serving_batch`, at most `max_serving_batch`)
    to `<version_dir>/assets.extra/tf_serving_warmup_requests`; returns the path."""
    batch_sizes = sorted({1, min(int(serving_batch), int(max_serving_batch))})
    path = pathlib.Path(version_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in warmup_requests(model, model_name, batch_sizes):
            writer.write(log.SerializeToString())
    return path


def read_warmup(version_dir):
    """[(signature name, {input name: array})] of an export's warm-up records, in order."""
    requests = []
    for record in tf.data.TFRecordDataset(str(pathlib.Path(version_dir) / WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        requests.append((request.model_spec.signature_name, {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}))
    return requests


# === Signatures, read from saved_model.pb without loading the model ===
def _shape(proto):
    return tuple(None if d.size < 0 else d.size for d in proto.dim)


def read_signatures(path):
    """{signature name: {"inputs": [Tensor], "outputs": [Tensor]}} of an export (a version folder, or the
    model folder's latest version), sorted by name, from its saved_model.pb."""
    version_dir = export.latest_version_dir(path)
    saved_model = saved_model_pb2.SavedModel.FromString((version_dir / "saved_model.pb").read_bytes())
    signatures = {}
    for name, signature in sorted(saved_model.meta_graphs[0].signature_def.items()):
        if name.startswith("__"):  # the loader's own (__saved_model_init_op)
            continue
        signatures[name] = {
            kind: [Tensor(key, tf.as_dtype(info.dtype).name, _shape(info.tensor_shape)) for key, info in sorted(getattr(signature, kind).items())]
            for kind in ("inputs", "outputs")
        }
    return signatures


def purpose(name, signatures):
    """What signature `name` does; serving_default says which signature it is."""
    if name == "serving_default":
        same = [other for other, entry in signatures.items() if other != name and entry == signatures[name]]
        return f"the default: {same[0]}" if len(same) == 1 else "the default signature"
    return SIGNATURE_PURPOSES.get(name, "")


def signature_table(path):
    """The signature table of an export, as text (`keras-gen describe`)."""
    signatures = read_signatures(path)

    def listed(tensors):
        return ", ".join(f"{t.name} {t.dtype} {t.shape_text}" for t in tensors) or "-"

    rows = [("signature", "inputs", "outputs", "what it does")]
    rows += [(name, listed(entry["inputs"]), listed(entry["outputs"]), purpose(name, signatures)) for name, entry in signatures.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3] for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths) + "  " + "-" * len(rows[0][3]))
    version_dir = export.latest_version_dir(path)
    warmup = version_dir / WARMUP_FILE
    count = sum(1 for _ in tf.data.TFRecordDataset(str(warmup))) if warmup.exists() else 0
    lines.append("")
    lines.append(f"{version_dir}: {count} warm-up records" if count else f"{version_dir}: no warm-up records (exported before keras-gen wrote them)")
    return "\n".join(line.rstrip() for line in lines)


# === Request bodies ===
def _json_number(value):
    """The shortest text that reads back to the same float32 (or the integer)."""
    if isinstance(value, (np.floating, float)):
        return np.format_float_positional(np.float32(value), unique=True, trim="-")
    return str(int(value))


def _json_array(array):
    if array.ndim == 0:
        return _json_number(array[()])
    return "[" + ", ".join(_json_array(row) for row in array) + "]"


def request_body(signature, values, request_format="rest-row", model_name="model"):
    """The body of a Predict request for `signature` with `values` ({input name: array}).

    Args:
        request_format: "rest-row" (`{"signature_name", "instances": [{input: row}, ...]}`),
            "rest-columnar" (`{"signature_name", "inputs": {input: batch}}`), both for
            `POST /v1/models/<model>:predict`, or "grpc" (a `PredictRequest` in text format).
        model_name: the model_spec name of a gRPC request.
    """
    if request_format == "grpc":
        return text_format.MessageToString(predict_request(model_name, signature, values))
    if request_format == "rest-columnar":
        inputs = ", ".join(f'"{name}": {_json_array(np.asarray(array))}' for name, array in values.items())
        return f'{{"signature_name": "{signature}", "inputs": {{{inputs}}}}}'
    if request_format == "rest-row":
        arrays = [(name, np.asarray(array)) for name, array in values.items()]
        if not arrays:
            raise ValueError(f"{signature} has no inputs, so it has no rows; use --format rest-columnar or grpc.")
        rows = ", ".join("{" + ", ".join(f'"{name}": {_json_array(array[i])}' for name, array in arrays) + "}" for i in range(len(arrays[0][1])))
        return f'{{"signature_name": "{signature}", "instances": [{rows}]}}'
    raise ValueError(f"unknown request format {request_format!r}; use one of {', '.join(REQUEST_FORMATS)}")


def read_png_images(paths, shape):
    """float32 [len(paths), *shape] in [0, 1] from PNG files, which must have `shape`'s height and width
    (grey and RGB files are converted to `shape`'s channels)."""
    height, width, channels = shape
    images = []
    for path in paths:
        image = tf.io.decode_png(tf.io.read_file(str(path)), channels=channels)
        if tuple(image.shape[:2]) != (height, width):
            raise ValueError(f"{path} is {image.shape[0]}x{image.shape[1]}; the model takes {height}x{width} images.")
        images.append(image.numpy().astype(np.float32) / 255.0)
    return np.stack(images)


# === The model server's config files ===
def model_dirs(export_root):
    """{model name: [versions]} of the model folders under `export_root` that hold integer versions."""
    root = pathlib.Path(export_root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; pass the export root (the folder holding <model>/<version>/).")
    models = {path.name: export.existing_versions(path) for path in sorted(root.iterdir()) if path.is_dir() and not path.name.startswith(".")}
    models = {name: versions for name, versions in models.items() if versions}
    if not models:
        raise FileNotFoundError(f"{root} holds no model folders with integer versions (<model>/<version>/saved_model.pb).")
    return models


def parse_policy(text):
    """'latest', 'all' or 'specific:1,2' -> ("latest", []) / ("all", []) / ("specific", [1, 2])."""
    kind, _, versions = text.partition(":")
    if kind in ("latest", "all") and not versions:
        return kind, []
    if kind == "specific":
        try:
            numbers = sorted({int(v) for v in versions.split(",")})
        except ValueError:
            numbers = []
        if numbers and min(numbers) >= 1:
            return kind, numbers
    raise ServingConfigError(f"bad version policy {text!r}: use latest, all, or specific:1,2")


def parse_label(text):
    """'stable=2' (every model) or 'vae:stable=2' (one model) -> (model or None, label, version)."""
    target, _, version = text.partition("=")
    model, _, label = target.rpartition(":")
    if not label or not version.isdigit() or int(version) < 1:
        raise ServingConfigError(f"bad label {text!r}: use LABEL=VERSION (e.g. stable=2) or MODEL:LABEL=VERSION")
    return model or None, label, int(version)


def model_server_config(export_root, policy="latest", labels=(), model_base=MODEL_BASE):
    """A `ModelServerConfig` serving every model under `export_root` from `<model_base>/<model>`.

    Args:
        policy: "latest", "all" or "specific:1,2" (see `parse_policy`), for every model.
        labels: "LABEL=VERSION" or "MODEL:LABEL=VERSION" strings.

    Raises:
        ServingConfigError: a label or a specific version names a version that does not exist, or one
            the policy does not load (TF Serving refuses labels of versions it has not loaded).
    """
    models = model_dirs(export_root)
    kind, specific = parse_policy(policy)
    config = model_server_config_pb2.ModelServerConfig()
    parsed = [parse_label(text) for text in labels]
    for model, _, _ in parsed:
        if model is not None and model not in models:
            raise ServingConfigError(f"label for model {model!r}, which is not under {export_root} (it holds {', '.join(models)})")
    for name, versions in models.items():
        missing = sorted(set(specific) - set(versions))
        if missing:
            raise ServingConfigError(f"{name} has no version {', '.join(map(str, missing))} (it has {', '.join(map(str, versions))})")
        loaded = {"latest": versions[-1:], "all": versions, "specific": specific}[kind]
        entry = config.model_config_list.config.add(name=name, base_path=f"{model_base.rstrip('/')}/{name}", model_platform="tensorflow")
        if kind == "latest":
            entry.model_version_policy.latest.num_versions = 1
        elif kind == "all":
            entry.model_version_policy.all.SetInParent()
        else:
            entry.model_version_policy.specific.versions.extend(specific)
        for model, label, version in parsed:
            if model not in (None, name):
                continue
            if version not in versions:
                raise ServingConfigError(f"label {label}={version}: {name} has no version {version} (it has {', '.join(map(str, versions))})")
            if version not in loaded:
                raise ServingConfigError(
                    f"label {label}={version}: the {policy} policy does not load version {version} of {name} (it loads "
                    f"{', '.join(map(str, loaded))}), and TF Serving refuses labels of unloaded versions; use --policy specific:"
                    f"{','.join(map(str, sorted({*loaded, version})))}"
                )
            entry.version_labels[label] = version
    return config


def _batching_parameters_class():
    """TF Serving's `BatchingParameters` message (session_bundle_config.proto), which the
    tensorflow-serving-api package does not ship: declared here with the same names and numbers."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(wrappers_pb2.DESCRIPTOR.serialized_pb))
    file = descriptor_pb2.FileDescriptorProto(name="keras_gen/session_bundle_config.proto", package="tensorflow.serving", syntax="proto3")
    file.dependency.append("google/protobuf/wrappers.proto")
    message = file.message_type.add(name="BatchingParameters")
    optional = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
    wrapped = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
    fields = [
        ("max_batch_size", ".google.protobuf.Int64Value"),
        ("batch_timeout_micros", ".google.protobuf.Int64Value"),
        ("max_enqueued_batches", ".google.protobuf.Int64Value"),
        ("num_batch_threads", ".google.protobuf.Int64Value"),
        ("thread_pool_name", ".google.protobuf.StringValue"),
    ]
    for number, (name, type_name) in enumerate(fields, start=1):
        message.field.add(name=name, number=number, label=optional, type=wrapped, type_name=type_name)
    message.field.add(name="allowed_batch_sizes", number=6, label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64)
    message.field.add(name="pad_variable_length_inputs", number=7, label=optional, type=descriptor_pb2.FieldDescriptorProto.TYPE_BOOL)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


BatchingParameters = _batching_parameters_class()


def latency_curve(version_dir, signature="serving_default", batch_sizes=BATCHING_CURVE_SIZES, repeats=20, seed=0):
    """{batch size: [seconds per call]} of `signature` of the export, loaded with TensorFlow alone (a
    first call per size is not counted: it traces and allocates, what warm-up does in TF Serving).
    Sizes above the export's max_serving_batch, which it refuses, are left out."""
    loaded = tf.saved_model.load(str(export.latest_version_dir(version_dir)))
    entry = read_signatures(version_dir)[signature]
    function = loaded.signatures[signature]
    bound = int(loaded.signatures[export.METADATA_SIGNATURE]()["max_serving_batch"])
    curve = {}
    for batch_size in [size for size in batch_sizes if size <= bound] or [1]:
        values = {name: tf.constant(array) for name, array in example_inputs(entry["inputs"], batch_size, seed=seed).items()}
        function(**values)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            function(**values)
            times.append(time.perf_counter() - started)
        curve[batch_size] = times
    return curve


def batching_parameters(curves, num_batch_threads=None, min_gain=1.1, max_latency_s=0.05):
    """`BatchingParameters` sized from measured latency curves ({model: {batch size: [seconds]}}).

    A batch size is worth waiting for while it still raises throughput: `max_batch_size` is the largest
    measured size whose rows per second are at least `min_gain` times the next smaller size's and whose
    median latency stays under `max_latency_s`, for every model (TF Serving uses one file for all).
    `allowed_batch_sizes` are the measured sizes up to it (a batch is padded to the next one, at most
    doubling it); `batch_timeout_micros` is the median latency of one row, so that a request waits for
    company no longer than it takes to answer it alone.
    """
    chosen, timeout = [], []
    for curve in curves.values():
        median = {size: float(np.median(times)) for size, times in sorted(curve.items())}
        sizes = list(median)
        best = sizes[0]
        for smaller, size in zip(sizes, sizes[1:]):
            if median[size] > max_latency_s or (size / median[size]) < min_gain * (smaller / median[smaller]):
                break
            best = size
        chosen.append(best)
        timeout.append(median[sizes[0]])
    max_batch_size = min(chosen)
    sizes = sorted({size for curve in curves.values() for size in curve if size <= max_batch_size})
    threads = num_batch_threads or os.cpu_count() or 1
    parameters = BatchingParameters()
    parameters.max_batch_size.value = max_batch_size
    parameters.batch_timeout_micros.value = max(100, int(round(min(timeout) * 1e6)))
    parameters.num_batch_threads.value = threads
    # A short queue: requests beyond it are refused at once (UNAVAILABLE) rather than waiting for seconds.
    parameters.max_enqueued_batches.value = 4 * threads
    parameters.allowed_batch_sizes.extend(sizes)
    return parameters


def docker_command(export_root, batching=False, model_base=MODEL_BASE):
    """The `docker run` line that serves `export_root` with the config files `serving-config` wrote there."""
    root = pathlib.Path(export_root).resolve()
    line = f'docker run -p 8501:8501 -p 8500:8500 -v "{root}:{model_base}" tensorflow/serving --model_config_file={model_base}/{MODELS_CONFIG}'
    if batching:
        line += f" --enable_batching --batching_parameters_file={model_base}/{BATCHING_CONFIG}"
    return line
