"""Fashion-MNIST for keras_gen: IDX reading, a TFDS builder that works offline, and tf.data pipelines.

The data come from the four IDX files that Zalando publishes (Debian ships them in the
`dataset-fashion-mnist` package under `/usr/share/datasets/fashion-mnist`). They are turned into a TFDS
dataset (`fashion_mnist_idx`) once, then loaded whole into memory; each split is 60000 or 10000 images
of 28x28 bytes, so memory is no concern and `tf.data.Dataset.from_tensor_slices` is the fastest input.

Example:

>>> from keras_gen import data
>>> splits = data.fashion_mnist_datasets(batch_size=128, preprocessing="binarize")
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
PREPROCESSING = ("scale", "binarize", "tanh")

IMAGE_SIZE = 28
NUM_PREVIEW_IMAGES = 64

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


class DataError(ValueError):
    """A problem with the training data: missing or corrupt files, or arrays of the wrong shape."""


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
    return pathlib.Path(data_dir if data_dir is not None else tfds_constants.DATA_DIR).expanduser().resolve()


def _stock_is_prepared(data_dir):
    if data_dir is not None and not (pathlib.Path(data_dir) / "fashion_mnist").is_dir():
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
    builder = tfds.builder("fashion_mnist_idx", data_dir=str(prepared_dir))
    if not builder.is_prepared():
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


def split_train_validation(images, labels, validation_size, seed):
    """Carves a validation set out of the training set with a seeded permutation.

    Args:
        images: array [N, ...].
        labels: array [N] or None.
        validation_size: number of validation examples, 0 <= validation_size < N.
        seed: integer seed of the permutation; the same seed gives the same split.

    Returns:
        `((train_images, train_labels), (validation_images, validation_labels))`; labels are None when
        `labels` is None.

    Raises:
        DataError: if the sizes do not fit.
    """
    count = len(images)
    if labels is not None and len(labels) != count:
        raise DataError(f"Got {count} images but {len(labels)} labels; they must match.")
    if isinstance(validation_size, bool) or not isinstance(validation_size, (int, np.integer)):
        raise DataError(f"validation_size must be an integer, got {validation_size!r}.")
    if not 0 <= validation_size < count:
        raise DataError(
            f"validation_size must be in [0, {count}) so that some training data remain, got {validation_size}."
        )
    order = np.random.default_rng(seed).permutation(count)
    validation_index, train_index = order[:validation_size], order[validation_size:]

    def take(array, index):
        return None if array is None else array[index]

    return (
        (take(images, train_index), take(labels, train_index)),
        (take(images, validation_index), take(labels, validation_index)),
    )


def check_classes(classes):
    """`classes` as a sorted tuple of distinct class indices; a DataError if any is not in 0..9."""
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        classes = [classes]
    try:
        values = list(classes)
    except TypeError:
        values = None
    valid = values and all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in values)
    if not valid or not all(0 <= c < len(CLASS_NAMES) for c in values):
        raise DataError(
            f"classes must be a non-empty list of class indices 0..{len(CLASS_NAMES) - 1} "
            f"({', '.join(f'{i} {name}' for i, name in enumerate(CLASS_NAMES))}), got {classes!r}."
        )
    return tuple(sorted(set(int(c) for c in values)))


def keep_classes(images, labels, classes):
    """The images (and labels) whose label is one of `classes`, in their original order."""
    mask = np.isin(labels, check_classes(classes))
    return images[mask], labels[mask]


# === Preprocessing and tf.data ===


def preprocess(images, mode, seed=None):
    """Maps pixel values in [0, 255] (uint8 or float) to the model's input range.

    Args:
        images: a tensor or array of any shape, in pixel units.
        mode: "scale" (float32 in [0, 1]), "tanh" (float32 in [-1, 1]) or "binarize" (float32 0/1 drawn
            from Bernoulli(pixel / 255)).
        seed: shape-[2] integer tensor seeding the stateless Bernoulli draws; required for "binarize".

    Returns:
        A float32 tensor of the same shape.

    Raises:
        DataError: for an unknown mode or "binarize" without a seed.
    """
    if mode not in PREPROCESSING:
        raise DataError(f"Unknown preprocessing {mode!r}; valid modes are {', '.join(PREPROCESSING)}.")
    probabilities = tf.cast(images, tf.float32) / 255.0
    if mode == "scale":
        return probabilities
    if mode == "tanh":
        return probabilities * 2.0 - 1.0
    if seed is None:
        raise DataError("preprocess(..., 'binarize') needs a seed (a shape-[2] integer tensor).")
    noise = tf.random.stateless_uniform(tf.shape(probabilities), seed=seed, dtype=tf.float32)
    return tf.cast(noise < probabilities, tf.float32)


def _check_arrays(images, labels):
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise DataError(
            f"images must be a uint8 numpy array, got {type(images).__name__} of dtype "
            f"{getattr(images, 'dtype', None)}; pass the raw pixels and choose `preprocessing` instead."
        )
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4:
        raise DataError(f"images must have shape [N, H, W, C] or [N, H, W], got {images.shape}.")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(f"labels must have shape [{len(images)}] to match the images, got {labels.shape}.")
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"labels must be integers, got dtype {labels.dtype}.")
        labels = labels.astype(np.int64)
    return images, labels


def make_dataset(
    images,
    labels=None,
    *,
    batch_size,
    preprocessing="scale",
    shuffle=False,
    seed=0,
    with_labels=False,
    drop_remainder=False,
    dynamic_binarization=True,
):
    """Builds a batched `tf.data.Dataset` from in-memory uint8 images.

    Args:
        images: uint8 array [N, H, W, C] or [N, H, W] (a channel axis is added).
        labels: integer array [N]; required when `with_labels` is True.
        batch_size: positive batch size.
        preprocessing: one of `PREPROCESSING`.
        shuffle: reshuffle the whole set every epoch, in an order fixed by `seed`.
        seed: integer seed of the shuffle and the binarisation.
        with_labels: yield `(images, labels)` instead of images.
        drop_remainder: drop a last, smaller batch (keeps batch shapes static for tf.distribute).
        dynamic_binarization: with "binarize", draw new binary images each epoch (a regulariser for
            training); when False each image is binarised the same way every epoch, so that validation
            and test losses are comparable across epochs.

    Returns:
        A dataset of float32 image batches, or of `(images, int64 labels)` pairs.

    Raises:
        DataError: for arrays of the wrong dtype or shape, or a bad batch size or mode.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if preprocessing not in PREPROCESSING:
        raise DataError(f"Unknown preprocessing {preprocessing!r}; valid modes are {', '.join(PREPROCESSING)}.")
    if with_labels and labels is None:
        raise DataError("with_labels=True needs `labels`.")
    images, labels = _check_arrays(images, labels)
    if not with_labels:
        labels = None
    count = len(images)

    # The example index travels with each image so that fixed binarisation can seed on it.
    index = np.arange(count, dtype=np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((index, images) if labels is None else (index, images, labels))
    if shuffle and count:
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)

    binarize = preprocessing == "binarize"
    if binarize and not dynamic_binarization:
        # Seed each example by (seed, its index): the same draws every epoch, whatever the order.
        def fixed(index, image, *label):
            image = preprocess(image, "binarize", seed=tf.stack([tf.cast(seed, tf.int64), index]))
            return (index, image, *label)

        dataset = dataset.map(fixed, num_parallel_calls=tf.data.AUTOTUNE)

    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)

    if binarize and dynamic_binarization:
        # One stateless seed per batch from a stream that is re-drawn each epoch but fixed by `seed`;
        # a whole batch per op is much cheaper than per-example maps on the large training set.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds)

        def dynamic(batch, batch_seed):
            index, image, *label = batch
            return (index, preprocess(image, "binarize", seed=batch_seed), *label)

        dataset = dataset.map(dynamic, num_parallel_calls=tf.data.AUTOTUNE)
    elif not binarize:
        dataset = dataset.map(
            lambda index, image, *label: (index, preprocess(image, preprocessing), *label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    if with_labels:
        dataset = dataset.map(lambda index, image, label: (image, label))
    else:
        dataset = dataset.map(lambda index, image: image)
    return dataset.prefetch(tf.data.AUTOTUNE)


def fashion_mnist_datasets(
    *,
    batch_size,
    preprocessing="scale",
    validation_size=5000,
    seed=0,
    with_labels=False,
    source_dir=None,
    data_dir=None,
    classes=None,
):
    """Fashion-MNIST as ready-to-fit train, validation and test datasets.

    The validation set is carved from the training split with `seed`; the test split is left untouched
    for final reporting and never used for model selection.

    Args:
        batch_size: batch size of every dataset.
        preprocessing: one of `PREPROCESSING`.
        validation_size: number of training images held out for validation (0 for none).
        seed: seed of the split, the shuffle and the binarisation.
        with_labels: yield `(images, labels)` (for conditional models) instead of images.
        source_dir: folder holding the IDX files; see `find_source_dir`.
        data_dir: TFDS data folder; see `load_fashion_mnist`.
        classes: class indices (0..9, see `CLASS_NAMES`) to keep in every split, e.g. `[3]` for a one-class
            model; None keeps all. The validation images are carved out before the other classes are
            dropped, so `validation_size` counts all classes and a class's held-out images are the same
            whatever else is kept.

    Returns:
        A dict with "train" (shuffled, re-binarised each epoch, full batches only), "validation" (None when
        `validation_size` is 0, or when it holds no image of `classes`) and "test" (in order, fixed
        binarisation, last batch kept),
        "validation_images" (up to 64 validation images, or training images when there is no validation
        set, as float32 numpy in the model's range: [0, 1] for scale/binarize, [-1, 1] for tanh) and
        "num_train" (number of training examples).
    """
    if preprocessing not in PREPROCESSING:
        raise DataError(f"Unknown preprocessing {preprocessing!r}; valid modes are {', '.join(PREPROCESSING)}.")
    splits = load_fashion_mnist(source_dir=source_dir, data_dir=data_dir)
    train_images, train_labels = splits["train"]
    test_images, test_labels = splits["test"]
    (train_images, train_labels), (validation_images, validation_labels) = split_train_validation(
        train_images, train_labels, validation_size, seed
    )
    if classes is not None:
        keep = check_classes(classes)
        train_images, train_labels = keep_classes(train_images, train_labels, keep)
        validation_images, validation_labels = keep_classes(validation_images, validation_labels, keep)
        test_images, test_labels = keep_classes(test_images, test_labels, keep)
        if not len(train_images):
            raise DataError(f"No training image is of the classes {list(keep)}; check `classes`.")
        validation_size = len(validation_images)
    common = dict(batch_size=batch_size, preprocessing=preprocessing, with_labels=with_labels)
    # Distinct seeds per set so that validation draws are not a copy of the first training draws.
    train = make_dataset(
        train_images, train_labels, shuffle=True, seed=seed, drop_remainder=True, dynamic_binarization=True, **common
    )
    evaluation = dict(shuffle=False, drop_remainder=False, dynamic_binarization=False, **common)
    validation = None
    if validation_size:
        validation = make_dataset(validation_images, validation_labels, seed=seed + 1, **evaluation)
    test = make_dataset(test_images, test_labels, seed=seed + 2, **evaluation)

    preview_source = validation_images if validation_size else train_images
    # Binary samples are shown as probabilities in [0, 1], like the grey-level originals.
    preview_mode = "tanh" if preprocessing == "tanh" else "scale"
    preview = preprocess(preview_source[:NUM_PREVIEW_IMAGES], preview_mode).numpy()
    return {
        "train": train,
        "validation": validation,
        "test": test,
        "validation_images": preview,
        "num_train": int(len(train_images)),
    }
