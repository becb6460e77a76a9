"""The input pipeline, whatever the source: fitting images to a shape, seeded splits, class filtering,
preprocessing, (dynamic) binarisation, batching and prefetch.

It reads uint8 images two ways. In-memory arrays (`make_dataset`), the fastest input for small datasets
such as Fashion-MNIST. Or a stream (`stream_dataset`) of `Examples`: (key, label) pairs and a function
that loads a key's image, where a key is a file path (folders: decoded in parallel after a full shuffle
of the paths) or the image itself (TFDS). A stream holds at most a shuffle buffer of images in memory,
unless caching is asked for (`cache=True`) or the decoded split is small (`cache="auto"`, up to
`CACHE_AUTO_BYTES`).

Fitting an image to `image_size` (H, W): an optional centre crop first (`center_crop`, e.g. CelebA's
usual 108x108 face crop), then a resize that keeps the aspect ratio (bilinear, antialiased) until the
image covers H x W, then a centre crop to H x W. An image already of size H x W is left untouched.
`channels` 1 or 3 converts grey and colour images (an alpha channel is dropped; colour to grey uses
ITU-R 601 luma weights, `tf.image.rgb_to_grayscale`).
"""

import keras_gen  # noqa: F401  (sets KERAS_BACKEND before TensorFlow/Keras are imported)

import dataclasses
import math
import typing

import numpy as np
import tensorflow as tf

from keras_gen.data.info import DataError

PREPROCESSING = ("scale", "binarize", "tanh")
NUM_PREVIEW_IMAGES = 64
# `cache="auto"` keeps a decoded split in memory when it is at most this large.
CACHE_AUTO_BYTES = 256 * 2**20
# Images held for shuffling a stream that is neither cached nor shuffled by its keys: at most this many,
# and at most `CACHE_AUTO_BYTES` of them.
SHUFFLE_BUFFER = 10_000


# === Preprocessing ===


def check_preprocessing(mode):
    if mode not in PREPROCESSING:
        raise DataError(f"Unknown preprocessing {mode!r}; valid modes are {', '.join(PREPROCESSING)}.")


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
    check_preprocessing(mode)
    probabilities = tf.cast(images, tf.float32) / 255.0
    if mode == "scale":
        return probabilities
    if mode == "tanh":
        return probabilities * 2.0 - 1.0
    if seed is None:
        raise DataError("preprocess(..., 'binarize') needs a seed (a shape-[2] integer tensor).")
    noise = tf.random.stateless_uniform(tf.shape(probabilities), seed=seed, dtype=tf.float32)
    return tf.cast(noise < probabilities, tf.float32)


def preview_range(preprocessing):
    """The mode in which grids show images: binary samples are shown as grey levels in [0, 1]."""
    return "tanh" if preprocessing == "tanh" else "scale"


# === Image shape ===


def check_image_size(image_size, where="image_size"):
    """`image_size` as (height, width) of positive ints, or None."""
    if image_size is None or (isinstance(image_size, (list, tuple)) and not image_size):
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    ok = isinstance(image_size, (list, tuple)) and len(image_size) == 2
    ok = ok and all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in image_size)
    if not ok:
        raise DataError(f"{where} must be [height, width] (or one side for a square) of positive integers, got {image_size!r}.")
    return (int(image_size[0]), int(image_size[1]))


def check_channels(channels):
    if channels is None or channels == 0:
        return None
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels!r}.")
    return int(channels)


def _convert_channels(image, channels):
    """uint8 [h, w, c] with c in 1..4 (grey, grey+alpha, RGB, RGBA) -> [h, w, channels]."""

    def grey():
        return image[..., :1]

    def colour():
        return image[..., :3]

    if channels == 1:
        to_grey, to_colour = grey, lambda: tf.image.rgb_to_grayscale(colour())
    else:
        to_grey, to_colour = lambda: tf.image.grayscale_to_rgb(grey()), colour
    have = image.shape[-1]
    if have is not None:  # known when the image was traced: pick the branch now (the other would not trace)
        image = to_grey() if have < 3 else to_colour()
    else:
        image = tf.cond(tf.shape(image)[-1] < 3, to_grey, to_colour)
    return tf.ensure_shape(image, [None, None, channels])


def _resize_covering(image, size):
    """Resizes (keeping the aspect ratio) until the image covers `size`, then crops its centre to `size`."""
    height, width = size
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.maximum(height / shape[0], width / shape[1])
    covering = tf.cast(tf.math.ceil(shape * scale - 1e-3), tf.int32)
    covering = tf.maximum(covering, [height, width])
    resized = tf.image.resize(image, covering, method="bilinear", antialias=True)
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)
    return tf.image.resize_with_crop_or_pad(resized, height, width)


def fit_image(image, image_size, channels, center_crop=None):
    """One uint8 image [h, w, c] -> [image_size..., channels] by the policy in this module's docstring."""
    image = _convert_channels(image, channels)
    if center_crop is not None:
        image = tf.image.resize_with_crop_or_pad(image, *center_crop)
    height, width = image_size
    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], [height, width]))
    image = tf.cond(same, lambda: image, lambda: _resize_covering(image, (height, width)))
    return tf.ensure_shape(image, [height, width, channels])


def fit_images(images, image_size, channels, center_crop=None, batch_size=1024):
    """`fit_image` over an in-memory uint8 array [n, h, w, c]; returns a new uint8 array."""
    dataset = tf.data.Dataset.from_tensor_slices(images).map(
        lambda image: fit_image(image, image_size, channels, center_crop), num_parallel_calls=tf.data.AUTOTUNE
    )
    parts = [batch.numpy() for batch in dataset.batch(batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, *image_size, channels), np.uint8)


# === Splits and classes ===


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
    validation_index, train_index = _split_indices(count, validation_size, seed)

    def take(array, index):
        return None if array is None else array[index]

    return (
        (take(images, train_index), take(labels, train_index)),
        (take(images, validation_index), take(labels, validation_index)),
    )


def _split_indices(count, held_out, seed, what="validation_size"):
    if isinstance(held_out, bool) or not isinstance(held_out, (int, np.integer)):
        raise DataError(f"{what} must be an integer, got {held_out!r}.")
    if not 0 <= held_out < count:
        raise DataError(
            f"{what} must be in [0, {count}) so that some training data remain, got {held_out}. Set [data] {what} "
            f"(--{what.replace('_', '-')} on the command line) to fewer images, e.g. {count // 10}."
        )
    order = np.random.default_rng(seed).permutation(count)
    return order[:held_out], order[held_out:]


def held_out_mask(pool, held_out, seed, what="validation_size"):
    """Splits the example indices `pool` (int array) into (held out, kept) index arrays with the
    permutation `split_train_validation` uses, so a stream and an array of the same examples split alike."""
    held, kept = _split_indices(len(pool), held_out, seed, what)
    return np.sort(pool[held]), np.sort(pool[kept])


def keep_classes(images, labels, classes):
    """The images (and labels) whose label is one of `classes` (checked indices), in their original order."""
    mask = np.isin(labels, classes)
    return images[mask], labels[mask]


# === Batches ===


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}.")


def _batches(dataset, *, batch_size, preprocessing, seed, with_labels, drop_remainder, dynamic_binarization):
    """(index, uint8 image[, label]) examples, already shuffled -> batches of float images[, labels]."""
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
        dataset = dataset.map(lambda index, image, *label: image)
    return dataset.prefetch(tf.data.AUTOTUNE)


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
    _check_batch_size(batch_size)
    check_preprocessing(preprocessing)
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
    return _batches(
        dataset,
        batch_size=batch_size,
        preprocessing=preprocessing,
        seed=seed,
        with_labels=with_labels,
        drop_remainder=drop_remainder,
        dynamic_binarization=dynamic_binarization,
    )


# === Streams ===


@dataclasses.dataclass
class Examples:
    """One split of a streamed source, before anything is decoded.

    Args:
        keys: a dataset of `(key, label)`, label int64 (-1 when unlabeled); a key is what `load` reads.
        count: the number of examples in `keys`.
        load: key -> uint8 image [h, w, c] (traced inside a `Dataset.map`); None when the key is the image.
        labels: every example's label as an int64 array, when known without reading the images (a
            folder's listing); None otherwise.
        small_keys: the keys are small (file paths), so a full shuffle of them costs little memory.
        source: the source's name, for error messages.
    """

    keys: tf.data.Dataset
    count: int
    load: typing.Callable = None
    labels: np.ndarray = None
    small_keys: bool = False
    source: str = "the data source"


# Starts the message of the error a stream raises for a float image with NaN, infinite or out-of-range
# pixels (`training.naming_unreadable_files` turns it into a DataError).
NON_FINITE_PIXELS = "keras_gen: bad pixels:"


def _checked_pixels(image, source):
    """`image` itself if uint8; a float image must hold finite pixels in [0, 255] (or reading it fails),
    and is rounded to uint8 like every other source's."""
    if image.dtype == tf.uint8:
        return image
    finite = tf.reduce_all(tf.math.is_finite(image) & (image >= 0) & (image <= 255))
    message = (
        f"{NON_FINITE_PIXELS} {source} has an image with NaN, infinite or out-of-range pixels (outside [0, 255]); "
        "fix or remove it (keras_gen never trains on non-finite pixels)"
    )
    with tf.control_dependencies([tf.debugging.Assert(finite, [message])]):
        return tf.cast(tf.round(tf.cast(image, tf.float32)), tf.uint8)


def _selected(examples, select, classes):
    """(index, key, label) of the chosen examples and how many there are (None if not known up front)."""
    dataset = examples.keys.enumerate().map(lambda index, pair: (index, pair[0], pair[1]))
    count = examples.count
    if select is not None:
        mask = np.zeros(examples.count, bool)
        mask[select] = True
        mask_tensor = tf.constant(mask)
        dataset = dataset.filter(lambda index, key, label: tf.gather(mask_tensor, index))
        count = len(select)
    if classes is not None:
        wanted = tf.constant(list(classes), tf.int64)
        dataset = dataset.filter(lambda index, key, label: tf.reduce_any(tf.equal(label, wanted)))
        count = None
        if examples.labels is not None:
            kept = np.isin(examples.labels, list(classes))
            count = int(kept[select].sum()) if select is not None else int(kept.sum())
    return dataset, count


def _fitted(dataset, examples, image_size, channels, center_crop):
    load = examples.load or (lambda key: key)

    def fit(index, key, label):
        return index, fit_image(_checked_pixels(load(key), examples.source), image_size, channels, center_crop), label

    return dataset.map(fit, num_parallel_calls=tf.data.AUTOTUNE)


def stream_dataset(
    examples,
    *,
    batch_size,
    image_size,
    channels,
    center_crop=None,
    preprocessing="scale",
    select=None,
    classes=None,
    shuffle=False,
    seed=0,
    with_labels=False,
    drop_remainder=False,
    dynamic_binarization=True,
    cache="auto",
):
    """Builds a batched dataset from a stream of `Examples`, decoding and fitting images in parallel.

    Args:
        examples: the split's `Examples`.
        batch_size, preprocessing, shuffle, seed, with_labels, drop_remainder, dynamic_binarization: as
            in `make_dataset`.
        image_size: (height, width) every image is fitted to (see the module docstring).
        channels: 1 or 3.
        center_crop: (height, width) cropped from each image's centre before resizing, or None.
        select: sorted int array of the example indices to keep (a seeded split), or None for all.
        classes: class indices to keep, or None for all.
        cache: True keeps the decoded images in memory after the first epoch; "auto" does when they take
            at most `CACHE_AUTO_BYTES`; False streams every epoch from the source.

    Returns:
        `(dataset, count)`: the batches, and how many examples they hold (None if not known up front).
    """
    _check_batch_size(batch_size)
    check_preprocessing(preprocessing)
    dataset, count = _selected(examples, select, classes)
    image_bytes = math.prod(image_size) * channels
    if cache == "auto":
        cache = count is not None and count * image_bytes <= CACHE_AUTO_BYTES
    shuffle_keys = shuffle and examples.small_keys and not cache
    if shuffle_keys and count:
        dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    dataset = _fitted(dataset, examples, image_size, channels, center_crop)
    if cache:
        dataset = dataset.cache()
    if shuffle and not shuffle_keys:
        buffer = count if cache and count else max(1, min(SHUFFLE_BUFFER, CACHE_AUTO_BYTES // image_bytes))
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if not with_labels:
        dataset = dataset.map(lambda index, image, label: (index, image))
    batches = _batches(
        dataset,
        batch_size=batch_size,
        preprocessing=preprocessing,
        seed=seed,
        with_labels=with_labels,
        drop_remainder=drop_remainder,
        dynamic_binarization=dynamic_binarization,
    )
    if count is not None:
        # Filters hide the size from tf.data; Keras needs it for progress bars and `steps_per_epoch`.
        batches = batches.apply(tf.data.experimental.assert_cardinality(count // batch_size if drop_remainder else math.ceil(count / batch_size)))
    return batches, count


def stream_images(examples, *, image_size, channels, center_crop=None, select=None, classes=None, limit=None):
    """The fitted uint8 images [n, H, W, C] and int64 labels [n] of a stream, in order (at most `limit`)."""
    dataset, _ = _selected(examples, select, classes)
    if limit is not None:
        dataset = dataset.take(limit)
    dataset = _fitted(dataset, examples, image_size, channels, center_crop)
    images, labels = [], []
    for _, batch_images, batch_labels in dataset.batch(1024):
        images.append(batch_images.numpy())
        labels.append(batch_labels.numpy())
    if not images:
        return np.zeros((0, *image_size, channels), np.uint8), np.zeros((0,), np.int64)
    return np.concatenate(images), np.concatenate(labels)
