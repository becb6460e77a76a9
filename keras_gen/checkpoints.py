"""Loading `.keras` checkpoints: the one function every command and pipeline that reads a user's file uses.

Keras reports a truncated or garbage `.keras` file as "File not found" (it only opens files it
recognises as zip archives) and damaged bytes inside an intact archive as a `zipfile.BadZipFile`
traceback, or not at all when it never reads them. `load_checkpoint` checks the archive first and says
what is wrong with the file instead.
"""

import json
import pathlib
import zipfile
import zlib

import keras_gen  # noqa: F401
import keras

from keras_gen import registry

# What reading a damaged archive raises: zipfile's own errors, zlib's for a broken compressed stream,
# EOFError for one cut short, OSError for an unreadable file (and h5py's for a damaged weights file).
ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError)


class CheckpointError(ValueError):
    """A file that should be a `.keras` checkpoint and is not a valid one (`keras-gen` exits with 2)."""


def check_archive(path):
    """Checks that the file at `path` is a complete `.keras` archive: a zip whose every entry passes its
    CRC check and that holds a model's config.json. Reads the whole file once.

    Raises:
        CheckpointError: what is wrong with the file.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            damaged = archive.testzip()
    except ARCHIVE_ERRORS as error:
        raise CheckpointError(f"{path} is not a valid .keras file (truncated or corrupt: {error}).") from error
    if damaged is not None:
        raise CheckpointError(f"{path} is not a valid .keras file (truncated or corrupt: its entry {damaged} fails its CRC check).")
    if "config.json" not in names:
        raise CheckpointError(f"{path} is not a valid .keras file (a zip archive without the config.json of a Keras model).")


def load_checkpoint(path, compile=True):
    """The model saved in the `.keras` file at `path`, with the zoo's classes registered to rebuild it.

    Args:
        path: a `.keras` file written by `keras-gen train` or `model.save()`.
        compile: as in `keras.models.load_model` (True restores the optimizers and their state).

    Raises:
        FileNotFoundError: there is no file at `path`.
        CheckpointError: the file is not a valid `.keras` archive (a ValueError, which `keras-gen`
            reports without a traceback).

    Example:
    >>> model = load_checkpoint("checkpoints/vae/20250101-120000/model.keras")  # doctest: +SKIP
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}; pass a .keras file written by `keras-gen train` or model.save().")
    if path.suffix != ".keras":
        raise CheckpointError(
            f"{path} is not a .keras file (its name must end in .keras); pass a checkpoint written by `keras-gen train` or model.save()."
        )
    check_archive(path)
    registry.import_zoo()  # so that Keras can rebuild the zoo's classes from the file
    try:
        return keras.models.load_model(path, compile=compile)
    except (*ARCHIVE_ERRORS, json.JSONDecodeError) as error:
        # An archive whose entries pass their CRC checks but hold damaged content.
        raise CheckpointError(f"{path} is not a valid .keras file (truncated or corrupt: {type(error).__name__}: {error}).") from error
