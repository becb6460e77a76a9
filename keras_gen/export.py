"""SavedModel export for TF Serving, from each model's declared endpoints.

A model lists its endpoints once (`serving_endpoints()`), and `export_model` writes them with
`keras.export.ExportArchive` into TF Serving's layout, `<export_dir>/<model_name>/<version>/`.
The version directory appears only when complete: the archive is written to a hidden sibling and
renamed into place, and an existing version is never replaced.
"""

import collections
import os
import pathlib
import shutil
import uuid

import keras_gen  # noqa: F401
import keras
import tensorflow as tf

Endpoint = collections.namedtuple("Endpoint", ["name", "fn", "input_signature"])
Endpoint.__doc__ = """A serving signature: `fn(*inputs) -> {output_name: tensor}` with `input_signature`
a list of named `tf.TensorSpec`s (their names become the signature's input names)."""


class ExportError(ValueError):
    """An export that would overwrite or could not be written."""


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


def build_archive(model):
    """An `ExportArchive` tracking `model` with its endpoints and `serving_default`."""
    endpoints = model.serving_endpoints()
    names = [endpoint.name for endpoint in endpoints]
    if model.default_endpoint not in names:
        raise ValueError(f"{type(model).__name__}.default_endpoint {model.default_endpoint!r} is not one of {names}.")
    archive = keras.export.ExportArchive()
    archive.track(model)
    for endpoint in endpoints:
        archive.add_endpoint(endpoint.name, endpoint.fn, input_signature=endpoint.input_signature)
    default = endpoints[names.index(model.default_endpoint)]
    archive.add_endpoint("serving_default", default.fn, input_signature=default.input_signature)
    return archive


def export_model(model, export_dir="exports", model_name=None, version=None):
    """Writes `model`'s endpoints as a SavedModel at `<export_dir>/<model_name>/<version>/`.

    Args:
        model: a zoo model (it declares `serving_endpoints()`).
        export_dir: the TF Serving model base path's parent.
        model_name: folder name of the model; defaults to the model's zoo name.
        version: a positive integer; defaults to one more than the highest existing version.

    Returns:
        The `pathlib.Path` of the new version directory.

    Raises:
        ExportError: the version exists already (nothing is touched), or is not a positive integer.
    """
    model_name = model_name or getattr(model, "zoo_name", None) or model.name
    model_dir = pathlib.Path(export_dir) / model_name
    if version is None:
        versions = existing_versions(model_dir)
        version = versions[-1] + 1 if versions else 1
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(f"The export version must be a positive integer, got {version!r}.")
    final = model_dir / str(version)
    if final.exists():
        raise ExportError(
            f"{final} exists already and is never overwritten. Choose another version "
            f"(the next free one is {existing_versions(model_dir)[-1] + 1}) or leave --version out."
        )
    model_dir.mkdir(parents=True, exist_ok=True)
    # TF Serving only looks at integer-named folders, so it never sees the partial export.
    staging = model_dir / f".incomplete-{version}-{uuid.uuid4().hex[:8]}"
    try:
        build_archive(model).write_out(str(staging), verbose=False)
        if final.exists():
            raise ExportError(f"{final} appeared while exporting; it was left as it is.")
        os.rename(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def load_export(path):
    """Loads an export (a version folder, or a model folder whose latest version is taken) with TF alone."""
    return tf.saved_model.load(str(latest_version_dir(path)))
