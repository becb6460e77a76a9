"""The dataset record: which data a model was trained on, and how it was prepared, written beside every
checkpoint (`dataset.json`) and inside every export (`assets.extra/dataset.json`), so that evaluation
reopens the same source with the same image size, channels, held-out splits and preprocessing.

Example:
>>> record = read_record("checkpoints/vae/20250101-120000/model.keras")
>>> record["source"], record["image_shape"], record["preprocessing"]
('tfds:cifar10', [32, 32, 3], 'scale')
>>> images, labels = load_record_split(record, "test")
"""

import json
import pathlib

import numpy as np

from keras_gen.data.info import DataError

RECORD_NAME = "dataset.json"
# Inside a SavedModel version folder: TF Serving's folder for extra files, which it does not read.
EXPORT_RECORD = pathlib.Path("assets.extra") / RECORD_NAME
RECORD_VERSION = 1


def dataset_record(info, data_table, seed, source_dir=None, data_dir=None, classes=None):
    """The record of a prepared dataset.

    Args:
        info: the `DatasetInfo` the data layer returned (source, image shape, class names, split sizes).
        data_table: the recipe's checked [data] table (preprocessing, validation_size, test_size, ...).
        seed: the training seed, which carved the validation split of a source without one.
        source_dir: the Fashion-MNIST IDX folder used, if one was given.
        data_dir: the TFDS data folder used, if one was given (else the recipe's tfds_dir).
        classes: the class indices trained on (None: all).
    """
    tfds_dir = data_dir or data_table.get("tfds_dir") or None

    def absolute(path):
        return None if not path else str(pathlib.Path(path).expanduser().resolve())

    return {
        "version": RECORD_VERSION,
        **info.to_dict(),
        "source": info.name,
        "image_size": list(info.image_shape[:2]),
        "channels": int(info.image_shape[2]),
        "center_crop": list(data_table.get("center_crop") or []) or None,
        "preprocessing": data_table.get("preprocessing", "scale"),
        "validation_size": int(data_table.get("validation_size", 5000)),
        "test_size": data_table.get("test_size") or None,
        "seed": int(seed),
        "classes": None if not classes else [int(c) for c in classes],
        "label": data_table.get("label") or None,
        "skip_corrupt": bool(data_table.get("skip_corrupt", False)),
        "source_dir": absolute(source_dir),
        "tfds_dir": absolute(tfds_dir),
    }


def write_record(record, folder):
    """Writes `record` as `folder/dataset.json`; returns the path."""
    path = pathlib.Path(folder) / RECORD_NAME
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def record_path(path):
    """Where the record of a checkpoint (a .keras file) or an export (a version folder) lies."""
    path = pathlib.Path(path)
    return path.parent / RECORD_NAME if path.suffix == ".keras" else path / EXPORT_RECORD


def read_record(path):
    """The record of a checkpoint or an export version folder, or None when it has none (written before
    records were, or by `model.save()` outside `keras-gen train`)."""
    where = record_path(path)
    if not where.is_file():
        return None
    try:
        record = json.loads(where.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{where} is not a readable dataset record ({error}); pass the data with --data SOURCE.") from None
    if not isinstance(record, dict) or "source" not in record:
        raise DataError(f"{where} is not a dataset record (no `source`); pass the data with --data SOURCE.")
    return record


def record_for_source(source, image_shape=None, preprocessing="scale", source_dir=None, data_dir=None):
    """A record for data named on the command line (`--data SOURCE`), fitted to `image_shape` (None: the
    source's own shape). The source is opened to read its class names (and, without `image_shape`, its shape)."""
    from keras_gen.data import sources

    opened = sources.open_source(source, **{key: value for key, value in (("source_dir", source_dir), ("data_dir", data_dir)) if value})
    shape = list(image_shape) if image_shape is not None else list(sources.target_shape(opened))
    return {
        "version": RECORD_VERSION,
        "name": opened.name,
        "source": source,
        "image_shape": shape,
        "class_names": None if opened.class_names is None else list(opened.class_names),
        "split_sizes": {},
        "image_size": shape[:2],
        "channels": shape[2],
        "center_crop": None,
        "preprocessing": preprocessing,
        "validation_size": 5000,
        "test_size": None,
        "seed": 0,
        "classes": None,
        "label": None,
        "skip_corrupt": False,
        "source_dir": None if not source_dir else str(pathlib.Path(source_dir).expanduser().resolve()),
        "tfds_dir": None if not data_dir else str(pathlib.Path(data_dir).expanduser().resolve()),
    }


def load_record_split(record, split="test", source_dir=None, data_dir=None, limit=None, hold_out_validation=False):
    """(uint8 images [n, H, W, C], int64 labels [n]) of one split of a recorded dataset, in order, fitted
    as in training. "train" is the training split with every training image (none held out for
    validation); a source without a test split has the same test images carved as in training.

    Args:
        record: a dataset record.
        split: "test", "validation" or "train".
        source_dir, data_dir: the Fashion-MNIST IDX folder and the TFDS data folder (None: the record's).
        limit: at most this many images (the first).
        hold_out_validation: for "train", leave out the validation images carved from it in training.
    """
    from keras_gen.data import sources

    if split not in ("train", "validation", "test"):
        raise DataError(f"The reference split is train, validation or test, got {split!r}.")
    options = {
        "source_dir": source_dir or record.get("source_dir"),
        "data_dir": data_dir or record.get("tfds_dir"),
        "label": record.get("label"),
        "skip_corrupt": record.get("skip_corrupt", False),
    }
    opened = sources.open_source(record["source"], **{key: value for key, value in options.items() if value is not None})
    validation_size = 0 if split == "train" and not hold_out_validation else record.get("validation_size", 5000)
    if split == "validation" and not validation_size and "validation" not in opened.splits:
        raise DataError(f"{opened.name} has no validation split and the model was trained without one; use the test split.")
    images, labels = sources.load_split_arrays(
        opened, split, image_size=record.get("image_size"), channels=record.get("channels"), center_crop=record.get("center_crop"),
        seed=record.get("seed", 0), validation_size=validation_size, test_size=record.get("test_size"),
        limit=None if record.get("classes") else limit, file_order=True,
    )
    if record.get("classes"):
        keep = np.isin(labels, record["classes"])
        images, labels = images[keep][:limit], labels[keep][:limit]
    return images, labels
