"""Presets: trained zoo models as folders that load without training, after KerasHub's `from_preset`.

A preset is a folder of four files:

- `config.json`: the model's Keras serialisation (`keras.saving.serialize_keras_object`), without its
  compile state;
- `model.weights.h5`: its weights (networks, BatchNorm statistics, the noise generator's state), without
  optimizer state, so a fine-tuning run starts with fresh optimizers;
- `metadata.json`: the keras_gen, Keras and TensorFlow versions that wrote it, the parameter count, the
  date, the recipe, the dataset (its record, with image shape and class names), the headline figures
  with the command that produced them (and, where measured, their spread over seed blocks of fewer
  samples, which `keras-gen evaluate samples` reproduces), the preset it was fine-tuned from, and the
  weights' sha256;
- `README.md`: its card; other files (e.g. the card's sample grid) may sit beside them.

`save_to_preset(model, folder)` (also `model.save_to_preset(folder)`) writes one atomically and never
over an existing folder; `load_preset(handle)` (also `keras_gen.from_preset`, `VAE.from_preset`) reads
one. A preset holds a zoo model, or a plain Keras model (e.g. the feature classifier of
`keras_gen.feature_extractor`, `feature_classifier_fashion_mnist`): `keras_gen.from_preset` loads either,
and the commands that sample, export, evaluate or fine-tune take only zoo models' presets. A handle is the name of a preset shipped in the package (`keras-gen list` shows them), a path to a
preset folder, `hf://owner/name` (Hugging Face Hub, with `huggingface_hub` installed) or
`kaggle://owner/model/keras/variation` (Kaggle Models, with `kagglehub` installed).

Loading checks the weights' sha256 against the metadata and warns (`PresetVersionWarning`) when the
preset was written by another keras_gen, Keras or TensorFlow version.

Example:
>>> vae.save_to_preset("presets/my_vae")  # doctest: +SKIP
>>> model = keras_gen.from_preset("presets/my_vae")  # doctest: +SKIP
>>> model.serving_endpoints()[0].fn(seed=np.arange(4))["images"].shape  # doctest: +SKIP
TensorShape([4, 28, 28, 1])
"""

import dataclasses
import datetime
import importlib
import json
import pathlib
import shutil
import warnings

import keras_gen
import keras
import tensorflow as tf

from keras_gen import export
from keras_gen import registry
from keras_gen.feature_extractor import sha256_of

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
PRESET_FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE, CARD_FILE)
FORMAT_VERSION = 1

# The presets that ship inside the package (setup.cfg's package data), one folder each.
SHIPPED_DIR = pathlib.Path(__file__).resolve().parent / "assets" / "presets"

HUB_SCHEMES = {"hf://": "huggingface_hub", "kaggle://": "kagglehub"}


class PresetError(ValueError):
    """A preset that cannot be found, read or written (`keras-gen` reports it and exits with 2)."""


class PresetVersionWarning(UserWarning):
    """A preset written by another keras_gen, Keras or TensorFlow version than the one loading it."""


# === Writing ===
def versions():
    """{package: version} of what writes and reads presets."""
    return {"keras_gen": keras_gen.__version__, "keras": keras.__version__, "tensorflow": tf.__version__}


def _optimizers(model):
    """The model's optimizers (Keras' `optimizer` and each of `optimizer_names`) that are set."""
    names = ("optimizer", *getattr(model, "optimizer_names", ()))
    return [optimizer for optimizer in (getattr(model, name, None) for name in names) if optimizer is not None]


def save_weights(model, path):
    """Writes `model`'s weights to `path` (a `.weights.h5` file) without its optimizers' state."""
    # `Model.save_weights` writes the optimizers' variables too (Keras 3.15); the function it calls skips
    # the objects it is given, and there is no public spelling of that.
    from keras.src.saving import saving_lib

    saving_lib.save_weights_only(model, str(path), objects_to_skip=_optimizers(model))


def default_card(name, metadata):
    """A card for a preset written without one: what it is, its data and figures, and how to use it."""
    dataset = metadata.get("dataset") or {}
    what = f"zoo model `{metadata['model']}`" if metadata.get("model") else "a plain Keras model, not a zoo model"
    lines = [
        f"# {name}",
        "",
        f"A `{metadata['class_name']}` ({what}) saved as a keras_gen preset"
        + (f", trained by the recipe `{metadata['recipe']}`." if metadata.get("recipe") else "."),
        "",
        f"- **Data:** {dataset.get('name') or 'not recorded'}, images {'x'.join(map(str, dataset.get('image_shape') or []))}",
        f"- **Parameters:** {metadata['parameter_count']:,}",
        f"- **Written:** {metadata['date']} by keras_gen {metadata['versions']['keras_gen']}, Keras {metadata['versions']['keras']}",
    ]
    if metadata.get("figures"):
        lines.append("- **Figures:** " + format_figures(metadata["figures"]) + (f" (`{metadata['command']}`)" if metadata.get("command") else ""))
    if metadata.get("fine_tuned_from"):
        lines.append(f"- **Fine-tuned from:** {metadata['fine_tuned_from']['name']}")
    lines += ["", "```python", "import keras_gen", "", f'model = keras_gen.from_preset("{name}")', "```", ""]
    return "\n".join(lines)


def format_figures(figures):
    """'FD 30.46, KID 0.571' from {"FD": 30.464, "KID": 0.5712}."""
    return ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}" for key, value in figures.items())


def image_shape(model):
    """The images a model takes: a zoo model's `image_shape`, else its first input's shape."""
    return tuple(getattr(model, "image_shape", None) or model.inputs[0].shape[1:])


def save_to_preset(model, preset_dir, *, recipe=None, dataset=None, figures=None, spread=None, command=None, card=None, fine_tuned_from=None, files=None):
    """Writes `model` as a preset folder at `preset_dir`, which must not exist yet.

    The folder appears complete or not at all (`export.publish_folder`). A model with a NaN or infinite
    weight is refused.

    Args:
        model: a zoo model (a `GenerativeModel`), built; or a plain built Keras model (its preset loads with
            `keras_gen.from_preset` only: it has no endpoints to sample, export or fine-tune).
        preset_dir: the folder to write; its name is the preset's name.
        recipe: the recipe that trained it (a name), or None.
        dataset: the dataset record of its training data (`keras_gen.data.dataset_record`) or any dict
            with `image_shape` and `class_names`; None: the model's image shape, no class names.
        figures: its headline figures, {name: value} (e.g. {"FD": 30.5}), shown by `keras-gen list`.
        spread: the sample-quality figures on fewer samples with their spread over seed blocks
            (`evaluation.SampleQuality.spread`), what `keras-gen evaluate samples` should reproduce; or None.
        command: the command that produced the model and its figures.
        card: the card's text (`README.md`); None writes a short one (`default_card`).
        fine_tuned_from: the metadata summary of the preset it started from (`Preset.summary()`), or None.
        files: {file name: path} of extra files to copy into the folder (e.g. the card's sample grid).

    Returns:
        The preset folder's `pathlib.Path`.

    Raises:
        PresetError: the folder exists, the model is not built, or a weight is not finite.
    """
    final = pathlib.Path(preset_dir).expanduser()
    if final.exists():
        raise PresetError(f"{final} exists already and a preset is never written over another; choose a new folder or remove it first.")
    zoo_name = getattr(type(model), "zoo_name", None)  # None: a plain Keras model
    if not model.built:
        raise PresetError(f"{type(model).__name__} is not built; build it (call it on a batch, or train it) before saving it as a preset.")
    try:
        export.check_finite_weights(model, refused="was not saved as a preset", instead="save an earlier checkpoint (an epoch-*.keras file of the run) instead")
    except export.ExportError as error:
        raise PresetError(str(error)) from None
    extra = {name: pathlib.Path(path) for name, path in (files or {}).items()}
    clashing = sorted(set(extra) & set(PRESET_FILES))
    if clashing:
        raise PresetError(f"Extra preset files may not be named {', '.join(clashing)}: the preset writes those itself.")
    config = keras.saving.serialize_keras_object(model)
    config.pop("compile_config", None)
    metadata = {
        "format_version": FORMAT_VERSION,
        "name": final.name,
        "model": zoo_name,
        "class_name": type(model).__name__,
        "versions": versions(),
        "parameter_count": model.count_params(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "recipe": recipe,
        "dataset": dict(dataset) if dataset is not None else {"image_shape": list(image_shape(model)), "class_names": None},
        "figures": dict(figures or {}),
        "figure_spread": spread,
        "command": command,
        "fine_tuned_from": fine_tuned_from,
        "weights_sha256": None,
    }

    def write(staging):
        staging.mkdir()
        save_weights(model, staging / WEIGHTS_FILE)
        metadata["weights_sha256"] = sha256_of(staging / WEIGHTS_FILE)
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        (staging / CARD_FILE).write_text(card if card is not None else default_card(final.name, metadata))
        for name, path in extra.items():
            shutil.copyfile(path, staging / name)

    try:
        return export.publish_folder(final, write)
    except export.ExportError as error:
        raise PresetError(str(error)) from None


# === Finding ===
def shipped_presets():
    """{name: folder} of the presets shipped in the package, sorted."""
    if not SHIPPED_DIR.is_dir():
        return {}
    return {path.name: path for path in sorted(SHIPPED_DIR.iterdir()) if (path / METADATA_FILE).is_file()}


def is_preset(handle):
    """Whether `handle` names a preset rather than something else (e.g. an export folder): a hub handle,
    a folder holding a preset's metadata.json, or a bare name (no folder of that name exists)."""
    text = str(handle)
    if text.startswith(tuple(HUB_SCHEMES)):
        return True
    path = pathlib.Path(text).expanduser()
    if path.exists():
        return path.is_dir() and (path / METADATA_FILE).is_file()
    return "/" not in text and not text.endswith(".keras")


def _from_hub(handle):
    scheme = next(prefix for prefix in HUB_SCHEMES if handle.startswith(prefix))
    package, target = HUB_SCHEMES[scheme], handle[len(scheme) :]
    where = "Download the preset folder and pass its path instead."
    if not target:
        raise PresetError(f"{handle!r} names no preset: write {scheme}owner/name.")
    try:
        hub = importlib.import_module(package)
    except ImportError:
        raise PresetError(f"{handle} is on {'the Hugging Face Hub' if package == 'huggingface_hub' else 'Kaggle'}: install {package} (pip install {package}) to download it. {where}") from None
    try:
        folder = hub.snapshot_download(repo_id=target) if package == "huggingface_hub" else hub.model_download(target)
    except Exception as error:  # each hub library raises its own errors (offline, not found, no access)
        raise PresetError(f"{handle} could not be downloaded ({type(error).__name__}: {error}). If this machine is offline, {where[0].lower()}{where[1:]}") from None
    return pathlib.Path(folder)


def resolve(handle):
    """The local folder of the preset `handle` (see the module docstring); a PresetError saying what to do otherwise."""
    text = str(handle)
    if text.startswith(tuple(HUB_SCHEMES)):
        return _from_hub(text)
    path = pathlib.Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise PresetError(f"{path} is a file; a preset is a folder ({', '.join(PRESET_FILES)}).")
    shipped = shipped_presets()
    if text in shipped:
        return shipped[text]
    listed = ", ".join(shipped) or "none yet"
    raise PresetError(
        f"No preset {text!r}: it is neither a shipped preset (the package ships: {listed}) nor a folder. "
        "Pass a shipped name, the path of a preset folder, or an hf:// or kaggle:// handle."
    )


# === Reading ===
def _read_json(path):
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PresetError(f"{path} is not readable JSON ({error}); the preset is damaged: fetch it again.") from None
    if not isinstance(value, dict):
        raise PresetError(f"{path} does not hold a JSON object; the preset is damaged: fetch it again.")
    return value


@dataclasses.dataclass
class Preset:
    """An opened preset folder: its metadata and config read, nothing built yet (see `open_preset`)."""

    path: pathlib.Path
    handle: str
    metadata: dict
    config: dict

    @property
    def name(self):
        return self.metadata.get("name") or self.path.name

    def summary(self):
        """What a model fine-tuned from this preset records of it."""
        return {"name": self.name, "handle": self.handle, "model": self.metadata.get("model"), "weights_sha256": self.metadata.get("weights_sha256")}

    @property
    def is_zoo_model(self):
        """Whether the preset holds a zoo model (else a plain Keras model, e.g. the feature classifier)."""
        return self.metadata.get("model") is not None

    def require_zoo_model(self):
        """Raises a PresetError saying what a plain Keras model's preset is for, where it holds one."""
        if not self.is_zoo_model:
            raise PresetError(
                f"Preset {self.name} holds a plain Keras model ({self.metadata.get('class_name')}), not a zoo model: it has no endpoints "
                f"to sample, export, evaluate or fine-tune. Load it in Python with keras_gen.from_preset({self.name!r})."
            )

    def model_class(self):
        """The zoo class of the preset, from its metadata through the registry, checked against its config;
        `keras.Model` for a plain Keras model."""
        zoo_name = self.metadata.get("model")
        if zoo_name is None:
            return keras.Model
        try:
            cls = registry.get_model_class(zoo_name)
        except KeyError as error:
            raise PresetError(f"Preset {self.path} holds a model keras_gen does not have: {error.args[0]}") from None
        if self.config.get("class_name") != cls.__name__:
            raise PresetError(
                f"Preset {self.path} is inconsistent: metadata.json says {cls.__name__} ({zoo_name}), config.json holds "
                f"{self.config.get('class_name')!r}; the preset is damaged: fetch it again."
            )
        return cls

    def check_weights(self):
        """Raises a PresetError when the weights file's sha256 is not the metadata's."""
        weights = self.path / WEIGHTS_FILE
        expected, found = self.metadata.get("weights_sha256"), sha256_of(weights)
        if found != expected:
            raise PresetError(
                f"{weights} does not match its preset: its sha256 is {found}, metadata.json records {expected}. "
                "The file is damaged, cut short or replaced: fetch the preset again."
            )

    def warn_on_versions(self):
        """A PresetVersionWarning naming each package whose version differs from the writer's."""
        written = self.metadata.get("versions") or {}
        differ = [f"{package} {written.get(package, 'unknown')} (now {version})" for package, version in versions().items() if written.get(package) != version]
        if differ:
            warnings.warn(
                f"Preset {self.name} was written by {', '.join(differ)}; it loads, but check its outputs (the figures in its card "
                "were measured with the versions that wrote it).",
                PresetVersionWarning,
                stacklevel=3,
            )

    def load(self, expected_class=None):
        """The preset's model, built and with its weights, not compiled.

        Args:
            expected_class: a zoo class the model must be (or subclass); None accepts any, a plain Keras
                model too.
        """
        cls = self.model_class()
        if expected_class is not None:
            self.require_zoo_model()
        if expected_class is not None and not issubclass(cls, expected_class):
            raise PresetError(
                f"Preset {self.name} holds a {cls.__name__} (zoo model {cls.zoo_name}), not a {expected_class.__name__}: load it with "
                f"{cls.__name__}.from_preset(...) or keras_gen.from_preset(...), which picks the class from the preset."
            )
        self.check_weights()
        self.warn_on_versions()
        # A plain model's config names its own class (e.g. Functional), which Keras deserialises.
        model = cls.from_config(self.config["config"]) if self.is_zoo_model else keras.saving.deserialize_keras_object(self.config)
        if self.config.get("build_config") and not model.built:
            model.build_from_config(self.config["build_config"])
        weights = self.path / WEIGHTS_FILE
        try:
            model.load_weights(weights)
        except (OSError, ValueError, KeyError) as error:  # h5py's errors for a damaged file; Keras' for weights that do not fit
            raise PresetError(f"{weights} could not be loaded into its {cls.__name__} (truncated or corrupt, or not this config's weights: {error}).") from None
        return model

    @property
    def dataset(self):
        """The dataset record of the model's training data, or None where the preset has no full record."""
        dataset = self.metadata.get("dataset") or {}
        return dataset if "source" in dataset else None


def open_preset(handle):
    """The `Preset` at `handle` (a shipped name, a folder, or an hf:// or kaggle:// handle), its files checked."""
    path = resolve(handle)
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE) if not (path / name).is_file()]
    if missing:
        raise PresetError(f"{path} is not a preset folder: it lacks {', '.join(missing)} (a preset holds {', '.join(PRESET_FILES)}).")
    metadata = _read_json(path / METADATA_FILE)
    config = _read_json(path / CONFIG_FILE)
    if "config" not in config:
        raise PresetError(f"{path / CONFIG_FILE} is not a Keras model config (no `config` key); the preset is damaged: fetch it again.")
    return Preset(path=path, handle=str(handle), metadata=metadata, config=config)


def load_preset(handle, expected_class=None):
    """The model of the preset `handle`, built with its weights and not compiled (see `Preset.load`)."""
    return open_preset(handle).load(expected_class)


def load_zoo_model(handle):
    """(zoo model, `Preset`) of the preset `handle`, for the commands that sample, export, evaluate or
    fine-tune: a PresetError says so where it holds a plain Keras model."""
    from keras_gen.models.base import GenerativeModel

    preset = open_preset(handle)
    return preset.load(GenerativeModel), preset


def fine_tuning_start(handle, model_class, model_options, where):
    """(model, preset) for a run of `model_class` that starts from the preset `handle`: the preset's model
    (its own architecture; the recipe's other options do not apply), checked to be exactly `model_class`
    and to fit the data the run decided (`model_options`' image_shape and num_classes)."""
    preset = open_preset(handle)
    preset.require_zoo_model()
    cls = preset.model_class()
    if cls is not model_class:
        raise PresetError(
            f"{where} trains a {model_class.__name__} ({model_class.zoo_name}), but preset {preset.name} holds a {cls.__name__} "
            f"({cls.zoo_name}); fine-tune it with a {cls.zoo_name} recipe."
        )
    model = preset.load(model_class)
    shape = list(model.image_shape)
    if list(model_options["image_shape"]) != shape:
        raise PresetError(
            f"Preset {preset.name} takes {'x'.join(map(str, shape))} images, but {where}'s data gives "
            f"{'x'.join(map(str, model_options['image_shape']))}: fit the data to it with --image-size {shape[0]}x{shape[1]} --channels {shape[2]}."
        )
    if "num_classes" in model_options and model_options["num_classes"] != model.num_classes:
        raise PresetError(f"Preset {preset.name} has {model.num_classes} classes, but {where}'s data has {model_options['num_classes']}.")
    return model, preset
