"""The TensorFlow Datasets source, `tfds:NAME`: any TFDS dataset with an image feature.

The images are the `image` feature (or the first image feature); the labels are `label` (or the class
feature named by `label=`) when it is a `tfds.features.ClassLabel`, otherwise the source is unlabeled.
The dataset's own splits are used ("train", "test", and "validation" when it has one). The data must be
prepared in the TFDS data folder (`data_dir`, `--tfds-dir`); keras_gen downloads only when asked to
(`download=True`, `--download`), because TFDS retries a download it cannot make for minutes.
"""

import keras_gen  # noqa: F401

import difflib

import tensorflow as tf
import tensorflow_datasets as tfds

from keras_gen.data.info import DataError
from keras_gen.data.info import quiet_absl
from keras_gen.data.pipeline import Examples

SPLITS = ("train", "validation", "test")


def _prepare_hint(name, data_dir):
    folder = data_dir or "~/tensorflow_datasets"
    return (
        f"Prepare it on a machine with internet access (`tfds build {name} --data_dir DIR`, or in Python "
        f"`tfds.builder('{name}', data_dir=DIR).download_and_prepare()`), copy DIR here and pass it as --tfds-dir "
        f"([data] tfds_dir; now: {folder}); datasets that need files you download by hand take them in "
        f"DIR/downloads/manual. Or pass --download to let keras-gen download it now."
    )


class TfdsSource:
    """A TensorFlow Datasets image dataset as a source of the pipeline.

    Args:
        name: the TFDS name, optionally with config and version (`celeb_a`, `mnist:3.*.*`).
        data_dir: TFDS data folder (None: TFDS's default).
        label: the class feature to use as labels (None: `label` when the dataset has one).
        download: download and prepare the dataset when it is not prepared yet.
    """

    def __init__(self, name, data_dir=None, label=None, download=False):
        self.tfds_name = name
        self.name = f"tfds:{name}"
        self.data_dir = data_dir
        with quiet_absl():
            self._open(name, data_dir, label, download)

    def _open(self, name, data_dir, label, download):
        try:
            self.builder = tfds.builder(name, data_dir=data_dir)
        except tfds.core.registered.DatasetNotFoundError:
            close = difflib.get_close_matches(name, tfds.list_builders(), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise DataError(f"TFDS has no dataset {name!r}.{hint} `tfds.list_builders()` lists them (see also the TFDS catalogue).") from None
        features = self.builder.info.features
        images = [key for key, feature in features.items() if isinstance(feature, tfds.features.Image)]
        if not images:
            raise DataError(f"{self.name} has no image feature (its features: {', '.join(features)}); keras_gen trains on image datasets.")
        self.image_key = "image" if "image" in images else images[0]
        self.label_key = self._label_key(features, label)
        self.class_names = tuple(features[self.label_key].names) if self.label_key else None
        height, width, channels = features[self.image_key].shape
        self.image_shape = (height, width, channels if channels is None else (1 if channels < 3 else 3))
        known = tuple(split for split in SPLITS if split in self.builder.info.splits)
        # A dataset described without split metadata (as under `tfds.testing.mock_data`) gets train and test.
        self.splits = known or ("train", "test")
        self._check_prepared(download)

    def _label_key(self, features, label):
        if label is None:
            return "label" if "label" in features and isinstance(features["label"], tfds.features.ClassLabel) else None
        if label not in features:
            raise DataError(f"{self.name} has no feature {label!r} to use as labels; its features: {', '.join(features)}.")
        if not isinstance(features[label], tfds.features.ClassLabel):
            raise DataError(f"{self.name}'s feature {label!r} is not a class label ({type(features[label]).__name__}); name a ClassLabel feature.")
        return label

    def _check_prepared(self, download):
        if self.builder.is_prepared():
            return
        try:
            # Under `tfds.testing.mock_data` reading works without prepared files.
            self.builder.as_dataset(split=self.splits[0])
            return
        except Exception:  # noqa: BLE001  (any failure to read means: not prepared here)
            pass
        if not download:
            raise DataError(f"{self.name} is not prepared in {self.builder.data_dir}. {_prepare_hint(self.tfds_name, self.data_dir)}")
        try:
            self.builder.download_and_prepare()
        except Exception as error:  # noqa: BLE001  (network, manual files, disk: all end here)
            raise DataError(f"{self.name} could not be downloaded and prepared: {error}. {_prepare_hint(self.tfds_name, self.data_dir)}") from None

    def examples(self, split):
        image_key, label_key = self.image_key, self.label_key
        # File order is kept, so that a split carved by example index is the same every epoch.
        dataset = self.builder.as_dataset(split=split, shuffle_files=False)
        keys = dataset.map(
            lambda example: (example[image_key], tf.cast(example[label_key], tf.int64) if label_key else tf.constant(-1, tf.int64)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        info = self.builder.info.splits
        count = info[split].num_examples if split in info else None
        if not count:
            count = int(keys.reduce(0, lambda total, _: total + 1))
        return Examples(keys, count, source=self.name)

    def notes(self):
        return []
