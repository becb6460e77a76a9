"""One helper per concern, shared by the tests of every model in the zoo."""

import atexit
import gzip
import json
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading

import keras_gen  # noqa: F401
import keras
import numpy as np

from keras_gen import data
from keras_gen import export

IMAGE_SHAPE = (8, 8, 1)
NUM_TRAIN = 40
NUM_TEST = 20


def write_idx(path, array, compress):
    """Writes `array` (uint8) as an IDX file, gzipped when `compress`; returns the path written."""
    array = np.asarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path = pathlib.Path(f"{path}.gz" if compress else path)
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def make_fake_source(folder, seed, compress=True, num_train=NUM_TRAIN, num_test=NUM_TEST):
    """Writes the four Fashion-MNIST files with random content; returns {split: (images, labels)}."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in (("train", num_train), ("test", num_test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=(count,), dtype=np.uint8)
        images_name, labels_name = data.SOURCE_FILES[split]
        write_idx(folder / images_name, images, compress)
        write_idx(folder / labels_name, labels, compress)
        arrays[split] = (images, labels)
    return arrays


def tiny_images(count=32, seed=0, binary=True, shape=IMAGE_SHAPE):
    """Float32 images in [0, 1] of the tiny test shape; a bright square on noise so there is structure."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.3, size=(count, *shape)).astype("float32")
    images[:, 2:6, 2:6, :] += 0.6
    images = np.clip(images, 0.0, 1.0)
    return (rng.uniform(size=images.shape) < images).astype("float32") if binary else images


def fit_steps(model, data, steps=3, batch_size=8, **kwargs):
    """Runs `fit` for `steps` batches and returns the history dict."""
    history = model.fit(data, batch_size=batch_size, epochs=1, steps_per_epoch=steps, verbose=0, **kwargs)
    return history.history


def weights_of(network):
    """Copies of `network`'s trainable weights as they are now, to compare after a step (`changed`)."""
    return [np.array(w) for w in network.trainable_weights]


def changed(before, after, atol=1e-7):
    """One bool per weight: did it move by more than `atol` between two `weights_of` lists? An optimizer
    step moves a weight by about its learning rate (1e-4 and up here); the same step taken twice, or on
    two replicas, differs by float rounding, which `atol` absorbs."""
    return [not np.allclose(np.asarray(a), np.asarray(b), rtol=0.0, atol=atol) for a, b in zip(before, after)]


def snapshot(model, networks):
    """{name: weights_of(model.<name>)} for the networks of `model` named in `networks`."""
    return {name: weights_of(getattr(model, name)) for name in networks}


def moved(before, after, atol=1e-7):
    """The names of the networks, keys of two `snapshot`s, any of whose weights `changed`."""
    return {name for name in before if any(changed(before[name], after[name], atol))}


def assert_config_round_trip(model):
    """from_config(get_config()) rebuilds a model with the same config and variable shapes."""
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert [tuple(v.shape) for v in clone.weights] == [tuple(v.shape) for v in model.weights]
    return clone


def assert_keras_reload(model, inputs, path):
    """Saves to `.keras` and loads it back: same outputs, optimizer state restored. Returns the copy."""
    path = pathlib.Path(path)
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(inputs)), np.asarray(model(inputs)), atol=1e-6)
    assert_optimizers_restored(model, loaded)
    return loaded


def assert_optimizers_restored(model, loaded):
    """Every optimizer of the trained `model` (Keras' `optimizer` or each of `optimizer_names`) came back
    in `loaded` with its step count and every state variable (Adam's moments, loss scales) equal."""
    names = tuple(getattr(model, "optimizer_names", ())) or ("optimizer",)
    for name in names:
        original, restored = getattr(model, name), getattr(loaded, name, None)
        assert restored is not None, f"{name} was not restored"
        assert int(restored.iterations.numpy()) == int(original.iterations.numpy()) > 0, name
        assert len(restored.variables) == len(original.variables), name
        for a, b in zip(original.variables, restored.variables):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), err_msg=f"{name}/{a.path}")


_RELOAD_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import tensorflow as tf

    def answer(request_path, response_path):
        request = json.load(open(request_path))
        loaded = tf.saved_model.load(request["path"])
        results = {"signatures": sorted(loaded.signatures)}
        for name, inputs in request["calls"].items():
            fn = loaded.signatures[name]
            specs = fn.structured_input_signature[1]
            outputs = fn(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()})
            results[name] = {k: v.numpy().tolist() for k, v in outputs.items()}
        results["refusals"] = {}
        for label, (name, inputs) in request["refusals"].items():
            print("refusal", label, file=sys.stderr, flush=True)  # the last one named is the case that killed the process
            fn = loaded.signatures[name]
            specs = fn.structured_input_signature[1]
            try:
                fn(**{k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()})
                results["refusals"][label] = {"error": None, "message": ""}
            except Exception as error:
                results["refusals"][label] = {"error": type(error).__name__, "message": getattr(error, "message", str(error))}
        # TF Serving's warm-up records, replayed as it does when it loads the version.
        results["warmup"] = []
        warmup = os.path.join(request["path"], "assets.extra", "tf_serving_warmup_requests")
        if os.path.exists(warmup):
            from tensorflow_serving.apis import prediction_log_pb2
            for record in tf.data.TFRecordDataset(warmup):
                predict = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
                inputs = {k: tf.make_ndarray(v) for k, v in predict.inputs.items()}
                outputs = loaded.signatures[predict.model_spec.signature_name](**{k: tf.constant(v) for k, v in inputs.items()})
                results["warmup"].append({"signature": predict.model_spec.signature_name, "inputs": {k: v.tolist() for k, v in inputs.items()},
                                          "outputs": {k: v.numpy().tolist() for k, v in outputs.items()}})
        results["imported"] = sorted(m for m in ("keras_gen", "tensorflow_probability", "keras") if m in sys.modules)
        json.dump(results, open(response_path, "w"))

    # One request a line on stdin, [request.json, response.json]; "answered" on stdout after each.
    for line in sys.stdin:
        print("request", line.strip(), file=sys.stderr, flush=True)
        answer(*json.loads(line))
        print("answered", flush=True)
    """
)

# The TensorFlow-only process, kept between calls: importing TensorFlow takes ~6 s on this machine
# and a dozen tests load an export. It loads each request's SavedModel afresh, as TF Serving loads many
# models in one process, and is replaced after any request it does not answer.
_tf_only = {}


def _stop_tensorflow_only_process():
    process = _tf_only.pop("process", None)
    if process is not None and process.poll() is None:
        process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    if "folder" in _tf_only:
        shutil.rmtree(_tf_only.pop("folder"), ignore_errors=True)


atexit.register(_stop_tensorflow_only_process)


def _tensorflow_only_process():
    process = _tf_only.get("process")
    if process is None or process.poll() is not None:
        _stop_tensorflow_only_process()
        folder = pathlib.Path(tempfile.mkdtemp(prefix="keras_gen_tf_only_"))
        (folder / "reload.py").write_text(_RELOAD_SCRIPT)
        stderr = open(folder / "stderr.txt", "w")
        process = subprocess.Popen(
            [sys.executable, str(folder / "reload.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
        stderr.close()  # the child holds its own copy
        _tf_only.update(process=process, folder=folder)
    return process


def call_export_in_fresh_process(path, calls, tmp_path, refusals=None, timeout=300):
    """Loads the SavedModel at `path` in a Python that imports only tensorflow (started on the first
    call and kept, see `_tf_only`) and calls `calls = {signature: {input: array}}`, then sends the bad
    requests `refusals = {label: (signature, {input: array})}`. Returns {signatures, imported, refusals:
    {label: {error, message}} (error: the exception's class name, None if the request was answered),
    <signature>: {output: array}, warmup: [{signature, inputs, outputs}] of the export's warm-up records
    replayed in order}; a request that kills the process fails the calling test with the label of the
    case, and the next call starts a new process."""
    tmp_path = pathlib.Path(tmp_path)
    request = tmp_path / "request.json"
    response = tmp_path / "response.json"

    def listed(inputs):
        return {n: np.asarray(v).tolist() for n, v in inputs.items()}

    bad = {label: (name, listed(inputs)) for label, (name, inputs) in (refusals or {}).items()}
    request.write_text(json.dumps({"path": str(path), "calls": {k: listed(c) for k, c in calls.items()}, "refusals": bad}))
    process = _tensorflow_only_process()
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.start()
    try:
        process.stdin.write(json.dumps([str(request), str(response)]) + "\n")
        process.stdin.flush()
        line = "(none)"
        while line and line != "answered\n":
            line = process.stdout.readline()
    except BrokenPipeError:
        line = ""
    finally:
        watchdog.cancel()
    if not line:
        process.kill()
        returncode = process.wait()
        stderr = (_tf_only["folder"] / "stderr.txt").read_text()
        # Only this request's part of the log: from the line that named it.
        stderr = stderr[max(stderr.rfind(f"request {json.dumps([str(request), str(response)])}"), 0) :]
        raise AssertionError(f"the TensorFlow-only process exited with {returncode}:\n{stderr[-3000:]}")
    result = json.loads(response.read_text())
    for name in calls:
        result[name] = {k: np.asarray(v) for k, v in result[name].items()}
    for entry in result["warmup"]:
        entry["outputs"] = {k: np.asarray(v) for k, v in entry["outputs"].items()}
    return result


def export_and_call(model, calls, tmp_path, refusals=None):
    """Exports `model` under tmp_path and calls the export in a fresh TensorFlow-only process (see
    `call_export_in_fresh_process`)."""
    path = export.export_model(model, pathlib.Path(tmp_path) / "exports")
    result = call_export_in_fresh_process(path, calls, tmp_path, refusals)
    assert "keras_gen" not in result["imported"] and "tensorflow_probability" not in result["imported"]
    return path, result


def real_images(per_class=4, offset=0):
    """Uint8 images [10 * per_class, 28, 28, 1] and int64 labels, `per_class` of each class: real
    Fashion-MNIST test images when Debian's dataset-fashion-mnist is installed (`make test` installs it),
    otherwise seeded noise of the same shape, so that the folder tests run anywhere."""
    folder = pathlib.Path(data.DEFAULT_SOURCE_DIR)
    files = [folder / f"{name}.gz" for name in data.SOURCE_FILES["test"]]
    if all(path.is_file() for path in files):
        images, labels = (data.read_idx(path) for path in files)
    else:
        rng = np.random.default_rng(0)
        images, labels = rng.integers(0, 256, (1000, 28, 28), np.uint8), np.arange(1000) % 10
    chosen = np.concatenate([np.flatnonzero(labels == label)[offset : offset + per_class] for label in range(10)])
    return images[chosen][..., np.newaxis], labels[chosen].astype(np.int64)


def write_image_folder(root, per_class=4, rgb=False, pad=None, splits=("train", "test")):
    """Writes real images (see `real_images`) as PNG class folders, root/<split>/<class>/<n>.png (or
    root/<class>/... for one split named ""); `rgb` tints each with a seeded colour, `pad` pads them to a
    square size. Returns {split: (images, labels)} as written."""
    from keras_gen.data import write_folder

    written = {}
    for offset, split in enumerate(splits):
        images, labels = real_images(per_class, offset=offset * per_class)
        if rgb:
            images = write_folder.tint(images, seed=offset)
        if pad:
            images = write_folder.pad_to(images, pad)
        write_folder.write_split(pathlib.Path(root) / split, images, labels, data.CLASS_NAMES)
        written[split] = (images, labels)
    return written
