"""Sources by name and `load_datasets`: the same data through a folder and through the IDX files."""

import keras_gen  # noqa: F401
import numpy as np
import pytest

from keras_gen import data
from keras_gen.data import write_folder
from tests import helpers


@pytest.fixture(scope="module")
def idx_and_folder(tmp_path_factory):
    """Fake Fashion-MNIST IDX files and the same images written as PNG class folders."""
    root = tmp_path_factory.mktemp("sources")
    helpers.make_fake_source(root / "idx", seed=3)
    counts = write_folder.write_folder(root / "png", source_dir=root / "idx", data_dir=root / "tfds")
    assert counts == {"train": helpers.NUM_TRAIN, "test": helpers.NUM_TEST}
    return root


def arrays(dataset):
    images, labels = zip(*dataset)
    return np.concatenate(images), np.concatenate(labels)


def test_a_folder_of_the_idx_images_gives_the_same_splits(idx_and_folder):
    root = idx_and_folder
    common = dict(batch_size=2, validation_size=6, seed=2, with_labels=True, preprocessing="scale")
    idx = data.load_datasets("fashion_mnist", source_dir=root / "idx", data_dir=root / "tfds", **common)
    png = data.load_datasets(f"folder:{root / 'png'}", **common)
    assert idx["info"].image_shape == png["info"].image_shape == (28, 28, 1)
    assert idx["info"].split_sizes == png["info"].split_sizes
    assert png["info"].class_names == tuple(write_folder.class_folder_names(data.CLASS_NAMES))

    def as_set(*splits):
        images, labels = (np.concatenate(parts) for parts in zip(*(arrays(split) for split in splits)))
        pixels = np.round(images * 255).astype(np.uint8)
        return sorted((int(label), image.tobytes()) for label, image in zip(labels, pixels))

    # The folder lists images class by class and the IDX files hold them in file order, so the seeded
    # validation carve picks other images; the test split and all of train are the same images.
    assert as_set(idx["test"]) == as_set(png["test"])
    assert as_set(idx["train"], idx["validation"]) == as_set(png["train"], png["validation"])


def test_unknown_sources_and_arguments():
    with pytest.raises(data.DataError, match="Unknown data source 'cifar10'; use fashion_mnist, tfds:NAME"):
        data.open_source("cifar10")
    with pytest.raises(data.DataError, match="takes no argument"):
        data.open_source("fashion_mnist:x")
    with pytest.raises(data.DataError, match="needs a path"):
        data.open_source("folder:")


def test_classes_of_a_labeled_source_are_checked_against_its_names(idx_and_folder):
    root = idx_and_folder
    with pytest.raises(data.DataError, match=r"class indices 0..9 \(0 0_T-shirt-top"):
        data.load_datasets(f"folder:{root / 'png'}", batch_size=4, validation_size=4, classes=[12])
    kept = data.load_datasets(f"folder:{root / 'png'}", batch_size=1, validation_size=4, classes=[2, 5], with_labels=True)
    _, labels = arrays(kept["test"])
    assert set(labels) <= {2, 5} and kept["info"].split_sizes["test"] == len(labels) > 0


def test_split_arrays_match_load_datasets(idx_and_folder):
    root = idx_and_folder
    source = data.open_source(f"folder:{root / 'png'}")
    images, labels = data.load_split_arrays(source, "validation", validation_size=6, seed=2)
    loaded = data.load_datasets(source, batch_size=2, validation_size=6, seed=2, with_labels=True)
    got, got_labels = arrays(loaded["validation"])
    np.testing.assert_array_equal((got * 255).round().astype(np.uint8), images)
    np.testing.assert_array_equal(got_labels, labels)


def test_fewer_training_images_than_a_batch_is_an_error_not_an_empty_epoch(idx_and_folder):
    with pytest.raises(data.DataError, match="34 training images, fewer than one batch of 64; lower the batch size"):
        data.load_datasets(f"folder:{idx_and_folder / 'png'}", batch_size=64, validation_size=6)
