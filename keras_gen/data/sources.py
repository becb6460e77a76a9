"""Sources by name, and the one function that turns a source into ready-to-fit datasets.

A source is spelled `fashion_mnist` (the default), `tfds:NAME` (any TensorFlow Datasets image dataset)
or `folder:PATH` (a folder of image files). Each is a small class (`FashionMnistSource`, `TfdsSource`,
`FolderSource`) with `name`, `splits`, `image_shape` (native; height and width None when they vary),
`class_names` (None: unlabeled), and either `arrays(split)` (in memory) or `examples(split)` (streamed).
"""

import keras_gen  # noqa: F401

import numpy as np

from keras_gen.data import pipeline
from keras_gen.data.fashion_mnist import FashionMnistSource
from keras_gen.data.folder import FolderSource
from keras_gen.data.info import DataError
from keras_gen.data.info import DatasetInfo
from keras_gen.data.info import check_classes
from keras_gen.data.tfds_source import TfdsSource

# The test images of a source without a test split are carved with this seed, whatever the training
# seed, so that every run of a folder is scored on the same images.
TEST_SPLIT_SEED = 0x7E57
# ... and are this share of its images unless `test_size` says how many.
TEST_FRACTION = 0.1


def _fashion_mnist(argument, options):
    if argument:
        raise DataError(f"fashion_mnist takes no argument, got fashion_mnist:{argument}; use --data-dir for the folder of its IDX files.")
    return FashionMnistSource(source_dir=options.get("source_dir"), data_dir=options.get("data_dir"))


def _tfds(argument, options):
    if not argument:
        raise DataError("tfds: needs a dataset name, e.g. tfds:cifar10.")
    return TfdsSource(argument, data_dir=options.get("data_dir"), label=options.get("label"), download=options.get("download", False))


def _folder(argument, options):
    if not argument:
        raise DataError("folder: needs a path, e.g. folder:~/faces.")
    return FolderSource(argument, skip_corrupt=options.get("skip_corrupt", False))


# Source kind -> function(argument after the colon, options) -> source.
SOURCES = {"fashion_mnist": _fashion_mnist, "tfds": _tfds, "folder": _folder}


def check_source_name(spec):
    """Splits `kind:argument` and checks the kind; returns (kind, argument)."""
    if not isinstance(spec, str) or not spec:
        raise DataError(f"A data source is a string such as fashion_mnist, tfds:cifar10 or folder:PATH, got {spec!r}.")
    kind, _, argument = spec.partition(":")
    if kind not in SOURCES:
        raise DataError(f"Unknown data source {spec!r}; use fashion_mnist, tfds:NAME (e.g. tfds:cifar10) or folder:PATH.")
    return kind, argument


def open_source(spec, **options):
    """The source named by `spec` (see the module docstring). Options: source_dir and data_dir
    (Fashion-MNIST's IDX folder and the TFDS data folder), label and download (TFDS), skip_corrupt (folders)."""
    kind, argument = check_source_name(spec)
    return SOURCES[kind](argument, options)


def target_shape(source, image_size=None, channels=None, center_crop=None):
    """(height, width, channels) that `load_datasets` fits the images of `source` to with these options."""
    center_crop = pipeline.check_image_size(center_crop, "center_crop")
    native = source.image_shape
    size = pipeline.check_image_size(image_size) or (native[0], native[1])
    if center_crop is not None and image_size is None:
        size = center_crop
    if None in size:
        raise DataError(f"The images of {source.name} vary in size; set image_size (e.g. [64, 64]; --image-size 64).")
    return (*size, pipeline.check_channels(channels) or native[2] or 3)


def load_datasets(
    source="fashion_mnist",
    *,
    batch_size,
    preprocessing="scale",
    validation_size=5000,
    test_size=None,
    seed=0,
    with_labels=False,
    classes=None,
    image_size=None,
    channels=None,
    center_crop=None,
    cache="auto",
    **source_options,
):
    """A source as ready-to-fit train, validation and test datasets.

    The validation set is the source's own validation split or, without one, carved from the training
    split with `seed`; a source without a test split has its test set carved first, with a fixed seed.
    The test set is left for final reporting and never used for model selection.

    Args:
        source: a source name (`fashion_mnist`, `tfds:NAME`, `folder:PATH`) or an opened source.
        batch_size: batch size of every dataset.
        preprocessing: one of `pipeline.PREPROCESSING`.
        validation_size: training images held out for validation when the source has no validation split
            (0: no validation set).
        test_size: images held out for testing when the source has no test split (None: a tenth).
        seed: seed of the split, the shuffle and the binarisation.
        with_labels: yield `(images, labels)` (for conditional models) instead of images.
        classes: class indices to keep in every split, e.g. `[3]` for a one-class model; None keeps all.
            Held-out images are carved before the other classes are dropped, so `validation_size` counts
            all classes and a class's held-out images are the same whatever else is kept.
        image_size: (height, width) to fit every image to (see `pipeline`); None: the source's own size.
        channels: 1 or 3 to convert to; None: the source's own.
        center_crop: (height, width) cut from each image's centre before resizing (e.g. [108, 108] for
            CelebA faces), or None.
        cache: for streamed sources, keep decoded images in memory (True, False, or "auto": when small).
        **source_options: passed to `open_source` (source_dir, data_dir, label, download, skip_corrupt).

    Returns:
        A dict with "train" (shuffled, re-binarised each epoch, full batches only), "validation" (None when
        there is none, or when it holds no image of `classes`), "test" (in order, fixed binarisation, last
        batch kept), "validation_images" (up to 64 validation images, or training images when there is no
        validation set, as float32 numpy in the model's range: [0, 1] for scale/binarize, [-1, 1] for
        tanh), "num_train" (number of training examples), "info" (the `DatasetInfo`) and "source".

    Raises:
        DataError: naming what is wrong with the source or the options, and what to do.
    """
    pipeline.check_preprocessing(preprocessing)
    if isinstance(source, str):
        source = open_source(source, **source_options)
    center_crop = pipeline.check_image_size(center_crop, "center_crop")
    shape = target_shape(source, image_size, channels, center_crop)
    if (with_labels or classes is not None) and source.class_names is None:
        raise DataError(f"{source.name} has no labels, but this model trains on labeled images; use a labeled source (for a folder: one sub-folder per class).")
    keep = None if classes is None else check_classes(classes, source.class_names)
    options = dict(batch_size=batch_size, preprocessing=preprocessing, seed=seed, keep=keep, shape=shape, center_crop=center_crop, with_labels=with_labels)
    if hasattr(source, "arrays"):
        splits = _in_memory(source, validation_size, options)
    else:
        splits = _streamed(source, validation_size, test_size, cache, options)
    if not splits["num_train"]:
        raise DataError(f"No training image of {source.name} is of the classes {list(keep)}; check `classes`.")
    if splits["num_train"] < batch_size:
        # Training keeps full batches only: fewer images than one batch would train on nothing.
        raise DataError(
            f"{source.name} has {splits['num_train']} training images{'' if keep is None else f' of the classes {list(keep)}'}, "
            f"fewer than one batch of {batch_size}; lower the batch size (--batch-size) or hold out fewer images (--validation-size)."
        )
    preview = pipeline.preprocess(splits.pop("preview"), pipeline.preview_range(preprocessing)).numpy()
    info = DatasetInfo(source.name, shape, source.class_names, splits.pop("sizes"))
    return {**splits, "validation_images": preview, "info": info, "source": source}


def _in_memory(source, validation_size, options):
    shape = options["shape"]
    arrays = {}
    for split in ("train", "test"):
        images, labels = source.arrays(split)
        arrays[split] = (_fitted_arrays(images, shape, options["center_crop"]), labels)
    (train_images, train_labels), (validation_images, validation_labels) = pipeline.split_train_validation(
        *arrays["train"], validation_size, options["seed"]
    )
    test_images, test_labels = arrays["test"]
    keep = options["keep"]
    if keep is not None:
        train_images, train_labels = pipeline.keep_classes(train_images, train_labels, keep)
        validation_images, validation_labels = pipeline.keep_classes(validation_images, validation_labels, keep)
        test_images, test_labels = pipeline.keep_classes(test_images, test_labels, keep)
    seed = options["seed"]
    common = dict(batch_size=options["batch_size"], preprocessing=options["preprocessing"], with_labels=options["with_labels"])
    # Distinct seeds per set so that validation draws are not a copy of the first training draws.
    train = pipeline.make_dataset(train_images, train_labels, shuffle=True, seed=seed, drop_remainder=True, dynamic_binarization=True, **common)
    evaluation = dict(shuffle=False, drop_remainder=False, dynamic_binarization=False, **common)
    validation = pipeline.make_dataset(validation_images, validation_labels, seed=seed + 1, **evaluation) if len(validation_images) else None
    test = pipeline.make_dataset(test_images, test_labels, seed=seed + 2, **evaluation)
    preview = validation_images if len(validation_images) else train_images
    return {
        "train": train,
        "validation": validation,
        "test": test,
        "num_train": int(len(train_images)),
        "preview": preview[: pipeline.NUM_PREVIEW_IMAGES],
        "sizes": {"train": int(len(train_images)), "validation": int(len(validation_images)), "test": int(len(test_images))},
    }


def _fitted_arrays(images, shape, center_crop):
    """In-memory uint8 images ([n, h, w] or [n, h, w, c]) fitted to `shape` unless they have it already."""
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if tuple(images.shape[1:]) != shape or center_crop is not None:
        images = pipeline.fit_images(images, shape[:2], shape[2], center_crop)
    return images


def _split_plan(source, validation_size, test_size, seed):
    """{split: (examples, select)} of a streamed source: its own splits, or held-out ones carved from
    train (test first, with `TEST_SPLIT_SEED`; then validation, with `seed`). No "validation" without one."""
    train = source.examples("train")
    pool = np.arange(train.count)
    carved = False
    plan = {}
    if "test" in source.splits:
        plan["test"] = (source.examples("test"), None)
    else:
        size = max(1, int(round(TEST_FRACTION * len(pool)))) if test_size is None else test_size
        select, pool = pipeline.held_out_mask(pool, size, TEST_SPLIT_SEED, "test_size")
        plan["test"], carved = (train, select), True
    if validation_size and "validation" in source.splits:
        plan["validation"] = (source.examples("validation"), None)
    elif validation_size:
        select, pool = pipeline.held_out_mask(pool, validation_size, seed)
        plan["validation"], carved = (train, select), True
    plan["train"] = (train, pool if carved else None)
    return plan


def _streamed(source, validation_size, test_size, cache, options):
    seed, shape, keep = options["seed"], options["shape"], options["keep"]
    plan = _split_plan(source, validation_size, test_size, seed)
    common = dict(
        batch_size=options["batch_size"], preprocessing=options["preprocessing"], with_labels=options["with_labels"],
        image_size=shape[:2], channels=shape[2], center_crop=options["center_crop"], classes=keep, cache=cache,
    )
    settings = {
        "train": dict(shuffle=True, seed=seed, drop_remainder=True, dynamic_binarization=True),
        # Distinct seeds per set so that validation draws are not a copy of the first training draws.
        "validation": dict(shuffle=False, seed=seed + 1, drop_remainder=False, dynamic_binarization=False),
        "test": dict(shuffle=False, seed=seed + 2, drop_remainder=False, dynamic_binarization=False),
    }
    splits, sizes = {"validation": None}, {"validation": 0}
    for split, (examples, select) in plan.items():
        dataset, count = pipeline.stream_dataset(examples, select=select, **settings[split], **common)
        sizes[split] = _count(examples, select, keep) if count is None else count
        splits[split] = dataset if sizes[split] or split != "validation" else None
    shown = "validation" if splits["validation"] is not None else "train"
    preview, _ = pipeline.stream_images(
        plan[shown][0], image_size=shape[:2], channels=shape[2], center_crop=options["center_crop"], select=plan[shown][1],
        classes=keep, limit=pipeline.NUM_PREVIEW_IMAGES,
    )
    return {**splits, "num_train": sizes["train"], "preview": preview, "sizes": sizes}


def _count(examples, select, classes):
    dataset, _ = pipeline._selected(examples, select, classes)
    return int(dataset.reduce(np.int64(0), lambda total, _: total + 1))


def load_split_arrays(
    source="fashion_mnist", split="test", *, image_size=None, channels=None, center_crop=None, seed=0, validation_size=5000, test_size=None, limit=None,
    file_order=False, **source_options,
):
    """One split of a source as uint8 images [n, H, W, C] and int64 labels [n] (-1 when unlabeled), in
    order: what evaluation protocols (e.g. one-class anomaly detection) and array pipelines score. The
    splits ("train" without its held-out images, "validation", "test") are the ones `load_datasets`
    makes with the same options. An in-memory source's "train" comes in the order of the seeded
    validation carve, even with `validation_size` 0, unless `file_order` (then, with nothing held out,
    in file order)."""
    if isinstance(source, str):
        source = open_source(source, **source_options)
    center_crop = pipeline.check_image_size(center_crop, "center_crop")
    shape = target_shape(source, image_size, channels, center_crop)
    if hasattr(source, "arrays"):
        images, labels = source.arrays("test" if split == "test" else "train")
        if split != "test" and not (file_order and split == "train" and not validation_size):
            train, validation = pipeline.split_train_validation(images, labels, validation_size, seed)
            images, labels = train if split == "train" else validation
        images, labels = (images, labels) if limit is None else (images[:limit], labels[:limit])
        images = _fitted_arrays(images, shape, center_crop)
        return images, (np.full(len(images), -1, np.int64) if labels is None else labels.astype(np.int64))
    if split in source.splits and split != "train":
        return pipeline.stream_images(source.examples(split), image_size=shape[:2], channels=shape[2], center_crop=center_crop, limit=limit)
    plan = _split_plan(source, validation_size, test_size, seed)
    if split not in plan:
        raise DataError(f"{source.name} has no {split} split with validation_size {validation_size}.")
    examples, select = plan[split]
    return pipeline.stream_images(examples, image_size=shape[:2], channels=shape[2], center_crop=center_crop, select=select, limit=limit)
