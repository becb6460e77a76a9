"""The TensorFlow Datasets source, offline through `tfds.testing.mock_data`."""

import time

import keras_gen  # noqa: F401
import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_gen import data


@pytest.fixture
def mock_tfds(tmp_path):
    with tfds.testing.mock_data(num_examples=24):
        yield str(tmp_path / "tfds")


def test_cifar10_is_labeled_colour_with_a_carved_validation_split(mock_tfds):
    splits = data.load_datasets("tfds:cifar10", batch_size=4, validation_size=4, with_labels=True, data_dir=mock_tfds)
    info = splits["info"]
    assert info.image_shape == (32, 32, 3) and info.num_classes == 10  # mock metadata: names "0".."9"
    assert info.split_sizes == {"train": 20, "validation": 4, "test": 24}
    images, labels = next(iter(splits["train"]))
    assert images.shape == (4, 32, 32, 3) and labels.dtype == np.int64
    assert 0.0 <= float(np.min(images)) and float(np.max(images)) <= 1.0


def test_celeb_a_is_unlabeled_and_takes_the_dcgan_face_crop(mock_tfds):
    splits = data.load_datasets("tfds:celeb_a", batch_size=4, validation_size=4, center_crop=108, image_size=64, preprocessing="tanh", data_dir=mock_tfds)
    assert splits["info"].image_shape == (64, 64, 3) and not splits["info"].labeled
    assert next(iter(splits["train"])).shape == (4, 64, 64, 3)
    assert splits["validation_images"].shape == (4, 64, 64, 3)


def test_mnist_can_be_made_colour_and_labels_can_be_named(mock_tfds):
    splits = data.load_datasets("tfds:mnist", batch_size=4, validation_size=4, channels=3, label="label", data_dir=mock_tfds)
    assert splits["info"].image_shape == (28, 28, 3)
    with pytest.raises(data.DataError, match="no feature 'digit'.*features: image, label"):
        data.open_source("tfds:mnist", label="digit", data_dir=mock_tfds)


def test_unknown_names_and_unprepared_datasets_fail_fast_with_what_to_do(tmp_path):
    with pytest.raises(data.DataError, match="TFDS has no dataset 'cifar100x'. Did you mean cifar100"):
        data.open_source("tfds:cifar100x")
    started = time.perf_counter()
    with pytest.raises(data.DataError, match="not prepared in .*tfds build mnist --data_dir DIR.*--download"):
        data.open_source("tfds:mnist", data_dir=str(tmp_path))
    # No download is tried unless asked for (TFDS retries one it cannot make for minutes).
    assert time.perf_counter() - started < 30


def test_a_dataset_without_images_is_refused(mock_tfds):
    with pytest.raises(data.DataError, match="has no image feature"):
        data.open_source("tfds:imdb_reviews", data_dir=mock_tfds)
