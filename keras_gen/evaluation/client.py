"""One client for a model's serving endpoints, live or exported: what sample quality (`Sampler`) and the
anomaly scorer (`keras_gen.anomaly.AnomalyScorer`) call.

`ModelClient.from_model` compiles a zoo model's declared endpoints (`serving_endpoints()`);
`ModelClient.from_export` loads a SavedModel's signatures with TensorFlow alone; `ModelClient.load`
picks one from a path (a `.keras` checkpoint, an export folder) or a preset (`keras_gen.presets`: a shipped
name, a preset folder or a hub handle). Either way the client is called by endpoint name with numpy inputs
and answers numpy outputs, and carries the dataset record of the model (`keras_gen.data.read_record`)
when the checkpoint, export or preset has one.

Example:
>>> client = ModelClient.load("exports/vae")
>>> client("sample", seed=np.arange(4))["images"].shape
(4, 28, 28, 1)
"""

import pathlib

import keras_gen  # noqa: F401
import numpy as np
import tensorflow as tf


class ModelClient:
    """A model's endpoints by name: `client(endpoint, **inputs) -> {output: numpy}`.

    Args:
        endpoints: {name: (fn(*tensors in input order) -> {output: tensor}, [(input name, dtype)])}.
        name: what tables call the model.
        where: the model as messages name it (a class name or a path).
        dataset: the model's dataset record, or None.
        keep: an object to keep alive as long as the client (a loaded SavedModel owns its variables).
    """

    def __init__(self, endpoints, name="model", where=None, dataset=None, keep=None):
        self.endpoints = dict(endpoints)
        self.name = name
        self.where = where or name
        self.dataset = dataset
        self._keep = keep

    def input_names(self, endpoint):
        return [name for name, _ in self.endpoints[endpoint][1]]

    def require(self, wanted, why):
        """Raises a ValueError naming the endpoints of `wanted` that the model lacks, `why` they are needed,
        and the endpoints it has."""
        missing = [name for name in wanted if name not in self.endpoints]
        if missing:
            listed = ", ".join(sorted(name for name in self.endpoints if name != "metadata"))
            raise ValueError(f"{self.where} has no {' or '.join(missing)} endpoint, so {why}; its endpoints: {listed}.")

    def __call__(self, endpoint, **inputs):
        self.require([endpoint], "it cannot be called")
        fn, specs = self.endpoints[endpoint]
        unknown = sorted(set(inputs) - {name for name, _ in specs})
        if unknown:
            raise ValueError(f"{self.where}'s {endpoint} endpoint takes {', '.join(name for name, _ in specs)}, not {', '.join(unknown)}.")
        tensors = [tf.constant(np.asarray(inputs[name]), dtype) for name, dtype in specs if name in inputs]
        if len(tensors) != len(specs):
            needed = [name for name, _ in specs if name not in inputs]
            raise ValueError(f"{self.where}'s {endpoint} endpoint needs {', '.join(needed)} as well.")
        return {key: np.asarray(value) for key, value in fn(*tensors).items()}

    @classmethod
    def from_model(cls, model, name=None):
        """The declared endpoints of a live or loaded zoo model, each compiled once with its input signature."""
        endpoints = {}
        for endpoint in model.serving_endpoints():
            compiled = tf.function(endpoint.fn, input_signature=endpoint.input_signature)
            endpoints[endpoint.name] = (compiled, [(spec.name, spec.dtype) for spec in endpoint.input_signature])
        name = name or getattr(model, "zoo_name", None) or type(model).__name__
        return cls(endpoints, name=name, where=type(model).__name__)

    @classmethod
    def from_export(cls, path, name=None):
        """The signatures of an export (`<export_dir>/<model>` for its latest version, or a version folder)."""
        from keras_gen import data
        from keras_gen import export

        version_dir = export.latest_version_dir(path)
        loaded = tf.saved_model.load(str(version_dir))
        endpoints = {}
        for key, signature in loaded.signatures.items():
            specs = signature.structured_input_signature[1]
            order = sorted(specs)

            def call(*tensors, signature=signature, order=order):
                return signature(**dict(zip(order, tensors)))

            endpoints[key] = (call, [(spec_name, specs[spec_name].dtype) for spec_name in order])
        return cls(endpoints, name=name or pathlib.Path(version_dir).parent.name, where=str(version_dir), dataset=data.read_record(version_dir), keep=loaded)

    @classmethod
    def load(cls, path, name=None):
        """From an export folder (`<export_dir>/<model>[/<version>]`), a `.keras` checkpoint or a preset
        (a shipped name such as vae_fashion_mnist, a preset folder, or an hf:// or kaggle:// handle)."""
        from keras_gen import data
        from keras_gen import presets
        from keras_gen.checkpoints import load_checkpoint

        if presets.is_preset(path):
            model, preset = presets.load_zoo_model(path)
            client = cls.from_model(model, name=name or preset.name)
            client.where, client.dataset = f"preset {preset.name} ({preset.path})", preset.dataset
            return client
        path = pathlib.Path(path)
        if path.is_file() and path.suffix == ".keras":
            client = cls.from_model(load_checkpoint(path), name=name)
            client.where, client.dataset = str(path), data.read_record(path)
            return client
        if path.is_dir():
            return cls.from_export(path, name=name)
        raise FileNotFoundError(
            f"{path} is neither a .keras checkpoint, an export folder (<export_dir>/<model>[/<version>]) nor a preset (`keras-gen list` names the shipped ones)."
        )


class ClientBuilt:
    """`from_model`, `from_export` and `load` for a class built from a `ModelClient` by `from_client(client, name)`."""

    @classmethod
    def from_client(cls, client, name=None):
        raise NotImplementedError

    @classmethod
    def from_model(cls, model, name=None):
        return cls.from_client(ModelClient.from_model(model), name)

    @classmethod
    def from_export(cls, path, name=None):
        return cls.from_client(ModelClient.from_export(path), name)

    @classmethod
    def load(cls, path, name=None):
        """From an export folder (`<export_dir>/<model>[/<version>]`), a `.keras` checkpoint or a preset."""
        return cls.from_client(ModelClient.load(path), name)


class Sampler(ClientBuilt):
    """Generated images on demand: `sampler(seeds, labels=None) -> float32 [n, h, w, c]` in [0, 1].

    Build one with `Sampler.from_model` (a live or loaded zoo model: its `sample` endpoint),
    `Sampler.from_export` (a SavedModel's `sample` signature, with TensorFlow alone) or `Sampler.load`.

    Args:
        fn: a function (seed int64 [n], label int64 [n] or None) -> images.
        conditional: whether `fn` needs labels.
        name: what the tables call it.
        dataset: the dataset record of the model, or None.
    """

    def __init__(self, fn, conditional=False, name="model", dataset=None):
        self.fn = fn
        self.conditional = bool(conditional)
        self.name = name
        self.dataset = dataset

    def __call__(self, seeds, labels=None):
        seeds = np.asarray(seeds, np.int64)
        if self.conditional:
            if labels is None:
                raise ValueError(f"{self.name} is class-conditional: pass labels.")
            return np.asarray(self.fn(seeds, np.asarray(labels, np.int64)))
        return np.asarray(self.fn(seeds, None))

    @classmethod
    def from_client(cls, client, name=None):
        client.require(["sample"], "there is nothing to generate (sample-quality metrics apply to generative models)")
        conditional = "label" in client.input_names("sample")

        def fn(seeds, labels):
            inputs = {"seed": seeds} if labels is None else {"seed": seeds, "label": labels}
            return client("sample", **inputs)["images"]

        fn.client = client  # keeps a SavedModel's variables alive as long as the sampler
        return cls(fn, conditional=conditional, name=name or client.name, dataset=client.dataset)
