"""The Fashion-MNIST source: IDX reading and a TFDS builder that works offline.

The data come from the four IDX files that Zalando publishes (Debian ships them in the
`dataset-fashion-mnist` package under `/usr/share/datasets/fashion-mnist`). They are turned into a TFDS
dataset (`fashion_mnist_idx`) once, then loaded whole into memory; each split is 60000 or 10000 images
of 28x28 bytes, so memory is no concern and `tf.data.Dataset.from_tensor_slices` is the fastest input.

Example:

>>> from keras_gen import data
>>> splits = data.load_datasets("fashion_mnist", batch_size=128, preprocessing="binarize")
>>> model.fit(splits["train"], validation_data=splits["validation"], epochs=10)
"""

import keras_gen  # noqa: F401  (sets KERAS_BACKEND before TensorFlow/Keras are imported)

import functools
import gzip
import hashlib
import json
import math
import os
import pathlib
import zlib

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core import constants as tfds_constants

from keras_gen.data.info import DataError
from keras_gen.data.info import quiet_absl

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

DEFAULT_SOURCE_DIR = "/usr/share/datasets/fashion-mnist"
SOURCE_DIR_ENV = "KERAS_GEN_FASHION_MNIST_DIR"
IMAGE_SIZE = 28
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)

# Split -> (images file, labels file), named as in the Fashion-MNIST repository and the Debian package.
SOURCE_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_IDX_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_REINSTALL_HINT = (
    "Reinstall it with `apt-get install --reinstall dataset-fashion-mnist`, "
    "or pass another folder holding the four IDX files via `--data-dir`."
)
_GET_DATA_HINT = (
    "Get the data in either of two ways: (1) on Debian/Ubuntu, `apt-get install -y dataset-fashion-mnist` "
    f"(installs them into {DEFAULT_SOURCE_DIR}); or (2) download the four IDX files "
    "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
    "t10k-labels-idx1-ubyte.gz) from the Fashion-MNIST GitHub repository "
    "(https://github.com/zalandoresearch/fashion-mnist, folder data/fashion) into a folder and pass it "
    f"as `--data-dir` on the command line, `source_dir=` in Python, or the {SOURCE_DIR_ENV} environment "
    "variable."
)


# === IDX files ===


def read_idx(path):
    """Reads an IDX file of unsigned bytes, gzipped or plain.

    Args:
        path: the file; it is decompressed when its name ends in `.gz` or it starts with the gzip magic.

    Returns:
        A uint8 array shaped by the dimensions in the header.

    Raises:
        DataError: if the file is missing, is not an IDX file of unsigned bytes, or is truncated or corrupt.
    """
    path = pathlib.Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"Cannot read IDX file {path}: {error}. {_REINSTALL_HINT}") from error
    if path.suffix == ".gz" or raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(
                f"IDX file {path} is truncated or corrupt (bad gzip stream: {error}). {_REINSTALL_HINT}"
            ) from error

    if len(raw) < 4:
        raise DataError(f"IDX file {path} is truncated or corrupt: only {len(raw)} bytes. {_REINSTALL_HINT}")
    zero1, zero2, dtype_code, ndim = raw[:4]
    if zero1 != 0 or zero2 != 0 or ndim == 0:
        raise DataError(
            f"{path} is not an IDX file: bad magic number {raw[:4].hex()} (expected 0000 then dtype and "
            f"rank bytes). {_REINSTALL_HINT}"
        )
    if dtype_code != _IDX_UBYTE:
        raise DataError(
            f"IDX file {path} holds dtype code 0x{dtype_code:02x}; only unsigned bytes (0x08) are supported. "
            f"{_REINSTALL_HINT}"
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(
            f"IDX file {path} is truncated or corrupt: the header needs {header_size} bytes but the file "
            f"has {len(raw)}. {_REINSTALL_HINT}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = math.prod(shape)
    actual = len(raw) - header_size
    if actual != expected:
        raise DataError(
            f"IDX file {path} is truncated or corrupt: the header declares shape {shape} "
            f"({expected} bytes of data) but the file holds {actual}. {_REINSTALL_HINT}"
        )
    # Copy so that the array owns writable memory rather than viewing the bytes object.
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def _locate_files(folder):
    """Maps each expected file name to its path in `folder` (`.gz` preferred) or None when absent."""
    found = {}
    for names in SOURCE_FILES.values():
        for name in names:
            found[name] = None
            for candidate in (folder / f"{name}.gz", folder / name):
                if candidate.is_file():
                    found[name] = candidate
                    break
    return found


def find_source_dir(source_dir=None):
    """Returns the folder that holds the four Fashion-MNIST IDX files.

    Args:
        source_dir: the folder to use; when None, the `KERAS_GEN_FASHION_MNIST_DIR` environment variable,
            else `DEFAULT_SOURCE_DIR`. Files may be gzipped (`.gz`) or plain.

    Returns:
        The resolved folder as a `pathlib.Path`.

    Raises:
        DataError: naming the missing files and how to get them.
    """
    if source_dir is not None:
        folder, origin = source_dir, "source_dir / --data-dir"
    elif os.environ.get(SOURCE_DIR_ENV):
        folder, origin = os.environ[SOURCE_DIR_ENV], f"the {SOURCE_DIR_ENV} environment variable"
    else:
        folder, origin = DEFAULT_SOURCE_DIR, "the default location"
    folder = pathlib.Path(folder).expanduser()
    missing = [f"{name}[.gz]" for name, path in _locate_files(folder).items() if path is None]
    if missing:
        raise DataError(
            f"Fashion-MNIST files not found in {folder} (from {origin}); missing: {', '.join(missing)}. "
            f"{_GET_DATA_HINT}"
        )
    return folder.resolve()


def _read_split(folder, split):
    """Reads and checks one split's images and labels from the IDX files in `folder`."""
    files = _locate_files(pathlib.Path(folder))
    images_name, labels_name = SOURCE_FILES[split]
    missing = [name for name in (images_name, labels_name) if files[name] is None]
    if missing:
        raise DataError(f"Fashion-MNIST files not found in {folder}; missing: {', '.join(missing)}. {_GET_DATA_HINT}")
    images = read_idx(files[images_name])
    labels = read_idx(files[labels_name])
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(
            f"{files[images_name]} holds images of shape {images.shape[1:]} (rank {images.ndim}); "
            f"Fashion-MNIST images are {IMAGE_SIZE}x{IMAGE_SIZE}. {_REINSTALL_HINT}"
        )
    if labels.ndim != 1:
        raise DataError(f"{files[labels_name]} has rank {labels.ndim}; labels must be a vector. {_REINSTALL_HINT}")
    if len(images) != len(labels):
        raise DataError(
            f"{files[images_name]} holds {len(images)} images but {files[labels_name]} holds {len(labels)} "
            f"labels; the two files do not belong together. {_REINSTALL_HINT}"
        )
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise DataError(
            f"{files[labels_name]} holds label {int(labels.max())}; Fashion-MNIST labels are 0..9. "
            f"{_REINSTALL_HINT}"
        )
    return images, labels


# === TFDS builder ===


class FashionMnistIdx(tfds.core.GeneratorBasedBuilder):
    """Fashion-MNIST built from local IDX files, so that preparing it needs no network.

    Example:

    >>> builder = tfds.builder("fashion_mnist_idx", data_dir="/tmp/tfds")
    >>> builder.download_and_prepare(
    ...     download_config=tfds.download.DownloadConfig(manual_dir="/usr/share/datasets/fashion-mnist"))
    >>> train = builder.as_dataset(split="train", as_supervised=True)
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Fashion-MNIST read from the IDX files in the manual folder."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put the four Fashion-MNIST IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; gzipped or not) in the manual folder. "
        f"On Debian/Ubuntu, `apt-get install -y dataset-fashion-mnist` puts them in {DEFAULT_SOURCE_DIR}; "
        "elsewhere download them from https://github.com/zalandoresearch/fashion-mnist (data/fashion)."
    )

    def _info(self):
        return self.dataset_info_from_configs(
            description="Fashion-MNIST: 28x28 grayscale images of Zalando articles in 10 classes.",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(IMAGE_SIZE, IMAGE_SIZE, 1)),
                    "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                }
            ),
            supervised_keys=("image", "label"),
            # Keep the IDX file order so that a seeded split picks the same examples as the files do.
            disable_shuffling=True,
            homepage="https://github.com/zalandoresearch/fashion-mnist",
            license="MIT",
        )

    def _split_generators(self, dl_manager):
        # Read and check every split before returning, so that bad files fail before anything is written.
        arrays = {split: _read_split(dl_manager.manual_dir, split) for split in SOURCE_FILES}
        return {split: self._generate_examples(images, labels) for split, (images, labels) in arrays.items()}

    def _generate_examples(self, images, labels):
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image[..., np.newaxis], "label": int(label)}


# === Loading ===


def _source_signature(folder):
    """Name, size and mtime of each source file: changes whenever the data in the folder may have."""
    signature = []
    for _, path in sorted(_locate_files(folder).items()):
        stat = path.stat()
        signature.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(signature)


def _data_root(data_dir):
    default = os.environ.get("TFDS_DATA_DIR") or tfds_constants.DATA_DIR
    return pathlib.Path(data_dir if data_dir is not None else default).expanduser().resolve()


def _stock_is_prepared(data_dir):
    if not (_data_root(data_dir) / "fashion_mnist").is_dir():
        return False  # skips building the stock builder, which logs a warning for a missing folder
    try:
        return tfds.builder("fashion_mnist", data_dir=data_dir).is_prepared()
    except Exception:  # noqa: BLE001  (any failure only means we build from the IDX files instead)
        return False


def _split_to_numpy(builder, split):
    batch = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    images = np.asarray(batch["image"], dtype=np.uint8)
    labels = np.asarray(batch["label"], dtype=np.int64)
    # Arrays are shared by every caller through the cache below, so make accidental edits fail loudly.
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


@functools.lru_cache(maxsize=4)
def _load_stock(data_dir):
    builder = tfds.builder("fashion_mnist", data_dir=data_dir)
    return {split: _split_to_numpy(builder, split) for split in SOURCE_FILES}


@functools.lru_cache(maxsize=4)
def _load_idx(source_dir, signature, data_root):
    # One TFDS data_dir per source folder and file state, so a prepared copy never stands in for other files.
    key = hashlib.sha256(json.dumps([source_dir, signature]).encode()).hexdigest()[:12]
    prepared_dir = pathlib.Path(data_root) / "keras_gen_fashion_mnist_idx" / key
    prepared_dir.mkdir(parents=True, exist_ok=True)
    marker_path = prepared_dir / "source.json"
    if not marker_path.exists():
        # For people browsing the data folder: which files this hash stands for.
        marker = {"source_dir": source_dir, "files": [list(entry) for entry in signature]}
        marker_path.write_text(json.dumps(marker, indent=2) + "\n")
    with quiet_absl():  # an unprepared builder warns that its version folder is absent
        builder = tfds.builder("fashion_mnist_idx", data_dir=str(prepared_dir))
        prepared = builder.is_prepared()
    if not prepared:
        builder.download_and_prepare(
            download_dir=str(prepared_dir / "downloads"),
            download_config=tfds.download.DownloadConfig(manual_dir=source_dir),
        )
    return {split: _split_to_numpy(builder, split) for split in SOURCE_FILES}


def load_fashion_mnist(source_dir=None, data_dir=None):
    """Loads both Fashion-MNIST splits into memory.

    A stock TFDS `fashion_mnist` already prepared in `data_dir` is used when no source folder was chosen
    (neither `source_dir` nor `KERAS_GEN_FASHION_MNIST_DIR`). Otherwise the IDX files are prepared once as
    `fashion_mnist_idx` under `<data_dir>/keras_gen_fashion_mnist_idx/<hash>`, where the hash covers the
    source folder and its files' sizes and mtimes, so that changed files are prepared afresh.

    Args:
        source_dir: folder holding the IDX files; see `find_source_dir`.
        data_dir: TFDS data folder; None means the TFDS default (`TFDS_DATA_DIR` or ~/tensorflow_datasets).

    Returns:
        `{"train": (images, labels), "test": (images, labels)}` with read-only uint8 images [N, 28, 28, 1]
        and int64 labels [N].

    Raises:
        DataError: if the IDX files are missing or bad.
    """
    source_chosen = source_dir is not None or bool(os.environ.get(SOURCE_DIR_ENV))
    data_dir = None if data_dir is None else str(_data_root(data_dir))
    if not source_chosen and _stock_is_prepared(data_dir):
        splits = _load_stock(data_dir)
    else:
        folder = find_source_dir(source_dir)
        splits = _load_idx(str(folder), _source_signature(folder), str(_data_root(data_dir)))
    # A fresh dict so that callers cannot replace entries in the cached one.
    return dict(splits)


class FashionMnistSource:
    """Fashion-MNIST as a source of the pipeline: both splits in memory, 28x28x1, ten classes.

    Args:
        source_dir: folder holding the IDX files; see `find_source_dir`.
        data_dir: TFDS data folder; see `load_fashion_mnist`.
    """

    name = "fashion_mnist"
    splits = ("train", "test")
    image_shape = IMAGE_SHAPE
    class_names = CLASS_NAMES

    def __init__(self, source_dir=None, data_dir=None):
        self._splits = load_fashion_mnist(source_dir=source_dir, data_dir=data_dir)

    def arrays(self, split):
        return self._splits[split]

    def notes(self):
        return []

