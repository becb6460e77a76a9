"""SavedModel export for TF Serving, from each model's declared endpoints.

A model lists its endpoints once (`serving_endpoints()`), and `export_model` writes them as the
signatures of a SavedModel (`Archive`) in TF Serving's layout, `<export_dir>/<model_name>/<version>/`.
The version directory appears only when complete: the archive is written to a hidden sibling and
renamed into place, and an existing version is never replaced. The hidden folder's name records the
writer (host, PID, start time), so a later export removes those that a killed export left behind. A
model whose weights are not all finite is never published. Every version holds TF Serving's warm-up
records, `assets.extra/tf_serving_warmup_requests` (written by `keras_gen.serving` before the rename).

Every signature checks its request before the model sees it and answers INVALID_ARGUMENT, naming the
signature and the input, for:

- a shape that is not the declared one (rank or a fixed size), e.g. images of [2, 28, 28] where
  [batch, 28, 28, 1] is declared;
- a batch larger than `max_serving_batch` (1,024 unless set at export) or an empty one, or inputs of
  one request whose batch sizes differ (e.g. interpolate's `z_start`, `z_end` and `t`, or a label per
  seed);
- NaN or infinite values in a float input;
- values outside an input's declared range: images and interpolate's `t` must lie in [0, 1], an
  anomaly detector's `fpr` in [0, 1) (nothing is clipped); class labels outside [0, num_classes) are
  refused by the conditional models themselves.

The bound is recorded in the export as a `metadata` signature without inputs, whose int64 output
`max_serving_batch` returns it (a TF Serving Predict request to `metadata`, or
`tf.saved_model.load(path).signatures["metadata"]()`); `saved_model_cli show --dir <version> --all`
lists that signature and prints the value under "Function Name: 'metadata'" ("Value: 1024"). Every
refusal of a batch names the bound too.
"""

import collections
import os
import pathlib
import re
import shutil
import socket
import time
import uuid

import keras_gen  # noqa: F401
import numpy as np
import tensorflow as tf

Endpoint = collections.namedtuple("Endpoint", ["name", "fn", "input_signature", "value_ranges"], defaults=(None,))
Endpoint.__doc__ = """A serving signature: `fn(*inputs) -> {output_name: tensor}` with `input_signature`
a list of named `tf.TensorSpec`s (their names become the signature's input names), and `value_ranges`
an optional {input name: ValueRange} for the float inputs whose values are bounded. The export checks
every request against these declarations (see the module docstring); inputs whose first dimension is
None are one batch and must agree on its size."""

ValueRange = collections.namedtuple("ValueRange", ["low", "high", "high_exclusive"], defaults=(False,))
ValueRange.__doc__ = """The values a float input may take: [low, high], or [low, high) with `high_exclusive`."""

# Images in and out of every model, and interpolation weights.
UNIT_INTERVAL = ValueRange(0.0, 1.0)

DEFAULT_MAX_SERVING_BATCH = 1024
# The signature that reports the export's own settings; no model may declare an endpoint of this name.
METADATA_SIGNATURE = "metadata"

STAGING_PREFIX = ".incomplete-"
# A staging folder whose name records no writer (written before writers were recorded) counts as
# abandoned once it is this old; writing an export takes seconds to minutes.
UNOWNED_STAGING_MAX_AGE_S = 3600


class ExportError(ValueError):
    """An export that would overwrite, could not be written, or would publish a broken model."""


def existing_versions(model_dir):
    """The integer version directories under `model_dir`, sorted (other entries are ignored, as TF Serving does)."""
    model_dir = pathlib.Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def latest_version_dir(path):
    """`path` itself if it holds a saved_model.pb, else its highest integer version directory."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").exists():
        return path
    versions = existing_versions(path)
    if not versions:
        raise FileNotFoundError(
            f"{path} holds neither a saved_model.pb nor integer version folders; "
            "pass <export_dir>/<model_name> or <export_dir>/<model_name>/<version>."
        )
    return path / str(versions[-1])


# === Request checks, put in front of every endpoint ===
def _shape_text(spec):
    """'[batch, 28, 28, 1]' for a spec of shape [None, 28, 28, 1]."""
    dims = ["batch" if i == 0 and d is None else "?" if d is None else str(d) for i, d in enumerate(spec.shape.as_list())]
    return f"[{', '.join(dims)}]"


def _joined(values, separator=", "):
    """A string tensor of `values` (a 1-d integer tensor) joined by `separator`."""
    return tf.strings.reduce_join(tf.strings.as_string(values), separator=separator)


def _runtime_shape(tensor):
    """The shape a request's tensor really has, int64 [rank].

    The signature's placeholder carries the declared shape, so `tf.shape` or `tf.rank` of it would be
    folded into constants (by tracing, or by grappler in TF Serving) and a request of another shape
    would pass the check unseen. PlaceholderWithDefault of unknown shape passes the value through
    while hiding the declared shape from both.
    """
    hidden = tf.raw_ops.PlaceholderWithDefault(input=tensor, shape=tf.TensorShape(None))
    return tf.shape(hidden, out_type=tf.int64)


def _refuse_unless(condition, message):
    """An op failing with INVALID_ARGUMENT and `message` (a string or string tensor) unless `condition`."""
    return tf.debugging.Assert(condition, [message], summarize=1)


def _after(checks, tensors):
    """`tensors`, each behind `checks`: ops reading them run only once every check has passed."""
    with tf.control_dependencies(checks):
        return [tf.identity(tensor) for tensor in tensors]


def _shape_checks(endpoint_name, specs, shapes):
    checks = []
    for spec, shape in zip(specs, shapes):
        if spec.shape.rank is None:
            continue  # declared as any shape
        declared = spec.shape.as_list()
        expected = tf.constant([-1 if d is None else d for d in declared], tf.int64)
        rank = len(declared)
        # Padded so that the comparison never indexes past a shorter shape.
        padded = tf.concat([shape, tf.fill([rank], tf.constant(-1, tf.int64))], axis=0)[:rank]
        matches = tf.logical_and(
            tf.equal(tf.size(shape), rank),
            tf.reduce_all(tf.logical_or(tf.less(expected, 0), tf.equal(padded, expected))),
        )
        message = tf.strings.join(
            [f"{endpoint_name}: input `{spec.name}` must have shape {_shape_text(spec)} ({spec.dtype.name}), got [", _joined(shape), "]."]
        )
        checks.append(_refuse_unless(matches, message))
    return checks


def _batch_checks(endpoint_name, specs, shapes, max_serving_batch):
    batched = [(spec, shape[0]) for spec, shape in zip(specs, shapes) if spec.shape.rank and spec.shape[0] is None]
    checks = []
    for spec, size in batched:
        # An empty batch has nothing to answer (and oneDNN's convolutions fail on it with a message about depths).
        message = tf.strings.join(
            [
                f"{endpoint_name}: input `{spec.name}` holds a batch of ",
                tf.strings.as_string(size),
                f"; a request holds 1 to {max_serving_batch} (the max_serving_batch set at export, which the "
                f"`{METADATA_SIGNATURE}` signature returns): split larger ones.",
            ]
        )
        checks.append(_refuse_unless(tf.logical_and(tf.greater_equal(size, 1), tf.less_equal(size, max_serving_batch)), message))
    if len(batched) > 1:
        names = [f"`{spec.name}`" for spec, _ in batched]
        sizes = tf.stack([size for _, size in batched])
        message = tf.strings.join(
            [f"{endpoint_name}: inputs {', '.join(names)} are one batch and must have the same batch size, got ", _joined(sizes), "."]
        )
        checks.append(_refuse_unless(tf.reduce_all(tf.equal(sizes, sizes[0])), message))
    return checks


def _value_checks(endpoint_name, specs, tensors, value_ranges):
    finite_checks, range_checks = [], []
    for spec, tensor in zip(specs, tensors):
        if not spec.dtype.is_floating:
            continue
        bad = tf.logical_not(tf.math.is_finite(tensor))
        message = tf.strings.join(
            [
                f"{endpoint_name}: input `{spec.name}` holds ",
                tf.strings.as_string(tf.reduce_sum(tf.cast(bad, tf.int64))),
                " NaN or infinite values; every value must be finite.",
            ]
        )
        finite_checks.append(_refuse_unless(tf.logical_not(tf.reduce_any(bad)), message))
        value_range = value_ranges.get(spec.name)
        if value_range is None:
            continue
        # After the finite check (and the batch checks: no empty batch), so that min and max are numbers.
        with tf.control_dependencies(finite_checks[-1:]):
            low, high = tf.reduce_min(tensor), tf.reduce_max(tensor)
            above = tf.greater_equal(high, value_range.high) if value_range.high_exclusive else tf.greater(high, value_range.high)
            inside = tf.logical_not(tf.logical_or(tf.less(low, value_range.low), above))
            interval = f"[{value_range.low:g}, {value_range.high:g}{')' if value_range.high_exclusive else ']'}"
            message = tf.strings.join(
                [
                    f"{endpoint_name}: input `{spec.name}` must lie in {interval}, got values from ",
                    tf.strings.as_string(low, shortest=True),
                    " to ",
                    tf.strings.as_string(high, shortest=True),
                    ".",
                ]
            )
            range_checks.append(_refuse_unless(inside, message))
    return finite_checks + range_checks


def checked_inputs(endpoint_name, specs, tensors, value_ranges=None, max_serving_batch=DEFAULT_MAX_SERVING_BATCH):
    """`tensors` (a request for `specs`) behind the checks of the module docstring, run in turn: shapes,
    then batch sizes, then values, so a request gets the first error it has and the model (whose
    oneDNN kernels abort the process on some shapes) only ever sees requests that pass them all."""
    value_ranges = dict(value_ranges or {})
    shapes = [_runtime_shape(tensor) for tensor in tensors]
    shape_checks = _shape_checks(endpoint_name, specs, shapes)
    with tf.control_dependencies(shape_checks):
        batch_checks = _batch_checks(endpoint_name, specs, shapes, max_serving_batch)
    with tf.control_dependencies(shape_checks + batch_checks):
        value_checks = _value_checks(endpoint_name, specs, tensors, value_ranges)
    return _after(shape_checks + batch_checks + value_checks, tensors)


def checked_endpoint(endpoint, max_serving_batch=DEFAULT_MAX_SERVING_BATCH):
    """`endpoint.fn` with its requests checked first (see `checked_inputs`)."""
    specs = list(endpoint.input_signature)
    value_ranges = dict(endpoint.value_ranges or {})
    names = [spec.name for spec in specs]
    unknown = sorted(set(value_ranges) - set(names))
    if unknown:
        raise ValueError(f"Endpoint {endpoint.name!r} declares value ranges for {', '.join(unknown)}, which are not among its inputs {names}.")
    for name in value_ranges:
        if not specs[names.index(name)].dtype.is_floating:
            raise ValueError(f"Endpoint {endpoint.name!r} declares a value range for {name!r}, which is not a float input.")

    def checked(*tensors):
        return endpoint.fn(*checked_inputs(endpoint.name, specs, tensors, value_ranges, max_serving_batch))

    # The traced function's name, which saved_model_cli and TF's error messages show.
    checked.__name__ = endpoint.name
    return checked


class Archive:
    """What a version folder holds before it is written: each signature's concrete function (each
    endpoint traced once) and a trackable root that holds them by name (`tf.saved_model.load(path).sample`
    as well as `.signatures["sample"]`), the variables they read, and the `metadata` tf.function
    (`saved_model_cli show --all` prints its Python argument, the bound).

    The endpoints sit on the root as concrete functions, not tf.functions: `tf.saved_model.save`
    retraces every tf.function it finds inside its save context, so keras.export.ExportArchive (which
    holds tf.functions) traced each endpoint twice, doubling the export's time.
    """

    def __init__(self, root, signatures):
        self.root = root
        self.signatures = signatures

    def write_out(self, path):
        tf.saved_model.save(self.root, str(path), signatures=self.signatures)


def build_archive(model, max_serving_batch=DEFAULT_MAX_SERVING_BATCH):
    """The `Archive` of `model`: its checked endpoints, `serving_default` and `metadata`."""
    endpoints = model.serving_endpoints()
    names = [endpoint.name for endpoint in endpoints]
    if model.default_endpoint not in names:
        raise ValueError(f"{type(model).__name__}.default_endpoint {model.default_endpoint!r} is not one of {names}.")
    if METADATA_SIGNATURE in names:
        raise ValueError(f"{type(model).__name__} declares an endpoint {METADATA_SIGNATURE!r}; that name is the export's own.")
    signatures = {}
    for endpoint in endpoints:
        traced = tf.function(checked_endpoint(endpoint, max_serving_batch), autograph=False)
        signatures[endpoint.name] = traced.get_concrete_function(*endpoint.input_signature)
    signatures["serving_default"] = signatures[model.default_endpoint]
    root = tf.Module()
    for name, function in signatures.items():
        setattr(root, name, function)

    # The bound is a Python argument of the traced function, so that `saved_model_cli show --all` prints
    # its value (under "Function Name: 'metadata'"), as well as the signature that returns it.
    @tf.function(autograph=False)
    def metadata(max_serving_batch=max_serving_batch):
        return {"max_serving_batch": tf.constant(max_serving_batch, tf.int64)}

    signatures[METADATA_SIGNATURE] = metadata.get_concrete_function()
    root.metadata = metadata
    # Every variable a signature reads (weights, BatchNorm statistics, seed generators' states), once.
    used = {id(variable): variable for function in signatures.values() for variable in function.variables}
    root.endpoint_variables = list(used.values())
    return Archive(root, signatures)


# === What export_model refuses to publish ===
def check_finite_weights(model, refused="was not exported", instead="export an earlier checkpoint (an epoch-*.keras file of the run) instead"):
    """Raises an ExportError naming the first weight of `model` that holds a NaN or an infinity.

    A model's `nan_sentinel_weights` (e.g. an anomaly detector's thresholds before calibration) may
    instead be all NaN, meaning "not set"; a mix of NaN and numbers is refused there too. `refused` and
    `instead` word the error for the caller (an export, a preset).
    """
    sentinels = {id(getattr(model, name)) for name in getattr(model, "nan_sentinel_weights", ())}
    seen = set()
    for variable in model.weights:
        if id(variable) in seen or not variable.dtype.startswith(("float", "bfloat")):
            continue
        seen.add(id(variable))
        values = tf.convert_to_tensor(variable)
        bad = int(tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(values)), tf.int64)))
        if not bad or (id(variable) in sentinels and bool(tf.reduce_all(tf.math.is_nan(values)))):
            continue
        raise ExportError(
            f"{getattr(model, 'zoo_name', None) or model.name} {refused}: its weight {variable.path} holds "
            f"{bad} NaN or infinite values (of {int(tf.size(values))}), so every answer would be NaN. "
            f"Training diverged; {instead}."
        )


# === Staging folders: written beside the versions, renamed into place ===
_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"


def _process_start(pid):
    """When process `pid` started, in clock ticks since boot (Linux; 0 where unknown). With the PID it
    tells a writer from a later process that reused its PID (e.g. PID 1 of a restarted container)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        # The command name in parentheses may hold spaces; the 22nd field is the 20th after it.
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def staging_name(version, pid=None):
    """`.incomplete-<version>-<token>.<pid>.<start>.<host>`: the writer's identity is in the name, so a
    later export can tell an abandoned folder (its writer is dead) from one being written."""
    pid = os.getpid() if pid is None else pid
    return f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:8]}.{pid}.{_process_start(pid)}.{_HOST}"


def staging_owner(name):
    """(host, pid, start) of the writer named in a staging folder's name, or None where none is named."""
    fields = name[len(STAGING_PREFIX) :].split(".", 3)
    if not name.startswith(STAGING_PREFIX) or len(fields) != 4 or not (fields[1].isdigit() and fields[2].isdigit()):
        return None
    return fields[3], int(fields[1]), int(fields[2])


def _writer_alive(pid, start):
    """Whether process `pid`, started at `start` (0: unknown), still runs; this process counts too, so an
    export in another thread of it is left alone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return not start or _process_start(pid) in (0, start)


def is_abandoned(path):
    """Whether the staging folder `path` is left from an export that no live process is writing: its
    writer was on this host and is gone, or (for a name that records no writer) it is over an hour old.
    A folder written from another host is never judged abandoned (its writer cannot be seen from here)."""
    path = pathlib.Path(path)
    owner = staging_owner(path.name)
    if owner is None:
        try:
            return time.time() - path.stat().st_mtime > UNOWNED_STAGING_MAX_AGE_S
        except FileNotFoundError:
            return False
    host, pid, start = owner
    return host == _HOST and not _writer_alive(pid, start)


def remove_abandoned_staging(model_dir):
    """Removes the abandoned staging folders (see `is_abandoned`) under `model_dir`; returns their paths."""
    model_dir = pathlib.Path(model_dir)
    removed = []
    if not model_dir.is_dir():
        return removed
    for path in sorted(model_dir.glob(STAGING_PREFIX + "*")):
        if path.is_dir() and is_abandoned(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def export_model(
    model, export_dir="exports", model_name=None, version=None, max_serving_batch=DEFAULT_MAX_SERVING_BATCH, dataset=None, serving_batch=None
):
    """Writes `model`'s endpoints as a SavedModel at `<export_dir>/<model_name>/<version>/`.

    Staging folders that earlier exports left behind when they were killed are removed first (see
    `is_abandoned`).

    Args:
        model: a zoo model (it declares `serving_endpoints()`).
        export_dir: the TF Serving model base path's parent.
        model_name: folder name of the model; defaults to the model's zoo name.
        version: a positive integer; defaults to one more than the highest existing version.
        max_serving_batch: the largest batch a request may hold (a positive integer); larger ones get
            INVALID_ARGUMENT instead of the memory they would take. Recorded in the `metadata` signature.
        dataset: the dataset record of the model's training data (`keras_gen.data.dataset_record`), written
            to `assets.extra/dataset.json` in the version folder so that evaluation finds the data; None: none.
        serving_batch: the typical batch of a request; TF Serving's warm-up records
            (`assets.extra/tf_serving_warmup_requests`, see `keras_gen.serving`) run every signature at
            batch 1 and at this size (None: `serving.DEFAULT_SERVING_BATCH`, 8; at most max_serving_batch).

    Returns:
        The `pathlib.Path` of the new version directory.

    Raises:
        ExportError: the version exists already (nothing is touched), or is not a positive integer;
            `max_serving_batch` is not a positive integer; or a weight of the model is NaN or infinite.
    """
    model_name = model_name or getattr(model, "zoo_name", None) or model.name
    model_dir = pathlib.Path(export_dir) / model_name
    if version is None:
        versions = existing_versions(model_dir)
        version = versions[-1] + 1 if versions else 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(f"The export version must be a positive integer, got {version!r}.")
    if isinstance(max_serving_batch, bool) or not isinstance(max_serving_batch, (int, np.integer)) or max_serving_batch < 1:
        raise ExportError(f"max_serving_batch must be a positive integer, got {max_serving_batch!r}.")
    if serving_batch is not None and (isinstance(serving_batch, bool) or not isinstance(serving_batch, (int, np.integer)) or serving_batch < 1):
        raise ExportError(f"serving_batch must be a positive integer, got {serving_batch!r}.")
    final = model_dir / str(version)
    if final.exists():
        raise ExportError(
            f"{final} exists already and is never overwritten. Choose another version "
            f"(the next free one is {existing_versions(model_dir)[-1] + 1}) or leave --version out."
        )
    check_finite_weights(model)

    def write(staging):
        build_archive(model, int(max_serving_batch)).write_out(str(staging))
        from keras_gen import serving

        serving.write_warmup(staging, model, model_name, serving_batch or serving.DEFAULT_SERVING_BATCH, max_serving_batch)
        if dataset is not None:
            from keras_gen.data import record

            (staging / record.EXPORT_RECORD.parent).mkdir(exist_ok=True)
            record.write_record(dataset, staging / record.EXPORT_RECORD.parent)

    # TF Serving only looks at integer-named folders, so it never sees the partial export.
    return publish_folder(final, write)


def publish_folder(final, write):
    """Makes the folder `final` appear complete or not at all: `write(staging)` fills a hidden sibling
    (`staging_name`, which does not exist yet), which is then renamed to `final`. Abandoned staging
    folders beside it are removed first (`remove_abandoned_staging`); an existing `final` is never
    replaced, and a failed `write` leaves nothing behind. What exports and presets are written with.

    Returns:
        `final` (a `pathlib.Path`).

    Raises:
        ExportError: `final` appeared while `write` ran (it is left as it is).
    """
    final = pathlib.Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(final.parent)
    # Dots separate the writer's fields in a staging name (`staging_owner`), so none come from the folder's name.
    staging = final.parent / staging_name(final.name.replace(".", "_"))
    try:
        write(staging)
        if final.exists():
            raise ExportError(f"{final} appeared while it was being written; it was left as it is.")
        os.rename(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def load_export(path):
    """Loads an export (a version folder, or a model folder whose latest version is taken) with TF alone."""
    return tf.saved_model.load(str(latest_version_dir(path)))
