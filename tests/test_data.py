"""Tests for keras_gen.data on tiny IDX files written per test; one slow test reads the real files."""

import keras_gen  # noqa: F401  (sets KERAS_BACKEND before TensorFlow is imported)

import gzip
import pathlib
import struct

import numpy as np
import pytest
import tensorflow as tf

from keras_gen import data
from keras_gen.data import fashion_mnist
from tests.helpers import NUM_TEST
from tests.helpers import NUM_TRAIN
from tests.helpers import make_fake_source
from tests.helpers import write_idx

def collect_epoch(dataset):
    return np.concatenate([np.asarray(batch) for batch in dataset])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """One tiny source prepared through TFDS, shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("prepared")
    arrays = make_fake_source(root / "source", seed=1)
    splits = data.load_fashion_mnist(source_dir=root / "source", data_dir=root / "tfds")
    return root, arrays, splits


# === read_idx ===


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    path = write_idx(tmp_path / "x-idx3-ubyte", array, compress)
    result = data.read_idx(path)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, array)


def test_read_idx_sniffs_gzip_without_suffix(tmp_path):
    array = np.arange(12, dtype=np.uint8)
    gz_path = write_idx(tmp_path / "labels", array, compress=True)
    plain_name = gz_path.rename(tmp_path / "labels-idx1-ubyte")
    np.testing.assert_array_equal(data.read_idx(plain_name), array)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_truncated_payload(tmp_path, compress):
    header = bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 10, 10)
    payload = header + bytes(50)  # half of the declared 100 bytes
    path = tmp_path / ("short-idx2-ubyte.gz" if compress else "short-idx2-ubyte")
    path.write_bytes(gzip.compress(payload) if compress else payload)
    with pytest.raises(data.DataError, match="truncated or corrupt") as error:
        data.read_idx(path)
    assert "short-idx2-ubyte" in str(error.value)
    assert "dataset-fashion-mnist" in str(error.value)
    assert "--data-dir" in str(error.value)


def test_read_idx_truncated_header(tmp_path):
    path = tmp_path / "header-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">I", 5))
    with pytest.raises(data.DataError, match="header"):
        data.read_idx(path)


def test_read_idx_truncated_gzip_stream(tmp_path):
    path = write_idx(tmp_path / "cut-idx1-ubyte", np.arange(200, dtype=np.uint8), compress=True)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(data.DataError, match="truncated or corrupt") as error:
        data.read_idx(path)
    assert "cut-idx1-ubyte.gz" in str(error.value)
    assert "apt-get install --reinstall dataset-fashion-mnist" in str(error.value)


def test_read_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "garbage-idx1-ubyte.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(40)))
    with pytest.raises(data.DataError, match="corrupt") as error:
        data.read_idx(path)
    assert "garbage-idx1-ubyte.gz" in str(error.value)
    assert "dataset-fashion-mnist" in str(error.value)


def test_read_idx_wrong_magic(tmp_path):
    path = tmp_path / "magic-idx1-ubyte"
    path.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 3) + bytes(3))
    with pytest.raises(data.DataError, match="magic") as error:
        data.read_idx(path)
    assert "magic-idx1-ubyte" in str(error.value)


def test_read_idx_wrong_dtype(tmp_path):
    path = tmp_path / "float-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 1) + bytes(4))
    with pytest.raises(data.DataError, match="0x0d"):
        data.read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(data.DataError, match="nowhere-idx1-ubyte"):
        data.read_idx(tmp_path / "nowhere-idx1-ubyte")


# === find_source_dir ===


def test_find_source_dir_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv(data.SOURCE_DIR_ENV, str(tmp_path / "empty"))
    with pytest.raises(data.DataError) as error:
        data.find_source_dir()
    message = str(error.value)
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert "--data-dir" in message
    assert "zalandoresearch/fashion-mnist" in message
    assert "train-images-idx3-ubyte" in message
    assert data.SOURCE_DIR_ENV in message


def test_find_source_dir_names_only_missing_files(tmp_path):
    make_fake_source(tmp_path, seed=0)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataError) as error:
        data.find_source_dir(tmp_path)
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte" in message
    assert "train-images-idx3-ubyte" not in message.split("missing:")[1].split(".")[0]


@pytest.mark.parametrize("compress", [True, False])
def test_find_source_dir_accepts_plain_and_gzip(tmp_path, compress):
    make_fake_source(tmp_path, seed=0, compress=compress)
    assert data.find_source_dir(tmp_path) == tmp_path.resolve()


def test_find_source_dir_reads_environment(tmp_path, monkeypatch):
    make_fake_source(tmp_path, seed=0)
    monkeypatch.setenv(data.SOURCE_DIR_ENV, str(tmp_path))
    assert data.find_source_dir() == tmp_path.resolve()


# === TFDS builder and load_fashion_mnist ===


def test_load_returns_exact_pixels_and_labels(prepared):
    _, arrays, splits = prepared
    assert set(splits) == {"train", "test"}
    for split in ("train", "test"):
        images, labels = splits[split]
        expected_images, expected_labels = arrays[split]
        assert images.dtype == np.uint8 and images.shape == expected_images.shape + (1,)
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(images[..., 0], expected_images)
        np.testing.assert_array_equal(labels, expected_labels)


def test_load_is_cached_and_read_only(prepared):
    root, _, splits = prepared
    again = data.load_fashion_mnist(source_dir=root / "source", data_dir=root / "tfds")
    assert again["train"][0] is splits["train"][0]
    with pytest.raises(ValueError):
        again["train"][0][0, 0, 0, 0] = 1


def test_load_other_source_is_not_served_from_cache(prepared, tmp_path):
    root, arrays, _ = prepared
    other = make_fake_source(tmp_path / "other", seed=2, num_train=12, num_test=6)
    splits = data.load_fashion_mnist(source_dir=tmp_path / "other", data_dir=root / "tfds")
    np.testing.assert_array_equal(splits["train"][0][..., 0], other["train"][0])
    np.testing.assert_array_equal(splits["test"][1], other["test"][1])
    # Both sources now live side by side in the same TFDS folder, each under its own hash.
    assert len(list((root / "tfds" / "keras_gen_fashion_mnist_idx").iterdir())) == 2


def test_load_prepares_again_when_files_change(tmp_path):
    make_fake_source(tmp_path / "source", seed=3)
    first = data.load_fashion_mnist(source_dir=tmp_path / "source", data_dir=tmp_path / "tfds")
    changed = make_fake_source(tmp_path / "source", seed=4, num_train=8, num_test=4)
    second = data.load_fashion_mnist(source_dir=tmp_path / "source", data_dir=tmp_path / "tfds")
    assert len(first["train"][0]) == NUM_TRAIN
    np.testing.assert_array_equal(second["train"][0][..., 0], changed["train"][0])


def test_load_prefers_prepared_stock_tfds_unless_a_source_is_chosen(prepared, monkeypatch):
    root, arrays, _ = prepared
    stock = {"train": "stock train", "test": "stock test"}
    monkeypatch.delenv(data.SOURCE_DIR_ENV, raising=False)
    monkeypatch.setattr(fashion_mnist, "_stock_is_prepared", lambda data_dir: True)
    monkeypatch.setattr(fashion_mnist, "_load_stock", lambda data_dir: stock)
    assert data.load_fashion_mnist(data_dir=root / "tfds") == stock
    chosen = data.load_fashion_mnist(source_dir=root / "source", data_dir=root / "tfds")
    np.testing.assert_array_equal(chosen["test"][1], arrays["test"][1])


def test_stock_check_failure_falls_through(tmp_path, monkeypatch):
    (tmp_path / "fashion_mnist").mkdir()

    def broken_builder(*args, **kwargs):
        raise RuntimeError("registry unavailable")

    monkeypatch.setattr(fashion_mnist.tfds, "builder", broken_builder)
    assert fashion_mnist._stock_is_prepared(str(tmp_path)) is False
    assert fashion_mnist._stock_is_prepared(str(tmp_path / "absent")) is False


@pytest.mark.parametrize(
    "broken, message",
    [("labels", "label 12"), ("count", "images but"), ("size", "28x28")],
)
def test_builder_rejects_bad_files_before_writing(tmp_path, broken, message):
    source = tmp_path / "source"
    make_fake_source(source, seed=5)
    if broken == "labels":
        write_idx(source / "t10k-labels-idx1-ubyte", np.full(NUM_TEST, 12), compress=True)
    elif broken == "count":
        write_idx(source / "train-labels-idx1-ubyte", np.zeros(NUM_TRAIN - 1), compress=True)
    else:
        write_idx(source / "train-images-idx3-ubyte", np.zeros((NUM_TRAIN, 27, 28)), compress=True)
    with pytest.raises(data.DataError, match=message):
        data.load_fashion_mnist(source_dir=source, data_dir=tmp_path / "tfds")
    # No split files (tfrecords) were written anywhere in the data folder.
    assert not [path for path in (tmp_path / "tfds").rglob("*") if "tfrecord" in path.name]


# === split_train_validation ===


def test_split_is_deterministic_and_disjoint():
    images = np.arange(30, dtype=np.uint8).reshape(30, 1, 1)
    labels = np.arange(30)
    (train_x, train_y), (val_x, val_y) = data.split_train_validation(images, labels, 7, seed=3)
    (train_x2, _), (val_x2, _) = data.split_train_validation(images, labels, 7, seed=3)
    (_, _), (val_x3, _) = data.split_train_validation(images, labels, 7, seed=4)
    assert len(train_x) == 23 and len(val_x) == 7
    np.testing.assert_array_equal(train_x, train_x2)
    np.testing.assert_array_equal(val_x, val_x2)
    assert not np.array_equal(val_x, val_x3)
    assert set(train_y.tolist()).isdisjoint(val_y.tolist())
    assert sorted(train_y.tolist() + val_y.tolist()) == list(range(30))
    np.testing.assert_array_equal(train_x[:, 0, 0], train_y)  # images and labels stay paired


@pytest.mark.parametrize("size", [-1, 30, 31, 2.5])
def test_split_rejects_bad_sizes(size):
    with pytest.raises(data.DataError, match="validation_size"):
        data.split_train_validation(np.zeros((30, 2, 2), np.uint8), np.zeros(30), size, seed=0)


def test_split_allows_empty_validation():
    (train_x, _), (val_x, _) = data.split_train_validation(np.zeros((5, 2, 2), np.uint8), None, 0, seed=0)
    assert len(train_x) == 5 and len(val_x) == 0


# === preprocess ===


def test_preprocess_ranges():
    pixels = np.array([0, 51, 255], dtype=np.uint8)
    np.testing.assert_allclose(data.preprocess(pixels, "scale").numpy(), [0.0, 0.2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(data.preprocess(pixels, "tanh").numpy(), [-1.0, -0.6, 1.0], rtol=1e-6)
    np.testing.assert_allclose(data.preprocess(pixels.astype(np.float32), "scale").numpy(), [0.0, 0.2, 1.0])
    assert data.preprocess(pixels, "scale").dtype == tf.float32


def test_preprocess_binarize_is_bernoulli_of_pixel_intensity():
    pixels = np.array([0] * 2000 + [255] * 2000 + [64] * 20000, dtype=np.uint8)
    binary = data.preprocess(pixels, "binarize", seed=tf.constant([1, 2])).numpy()
    assert binary.dtype == np.float32
    assert set(np.unique(binary).tolist()) <= {0.0, 1.0}
    assert binary[:2000].max() == 0.0 and binary[2000:4000].min() == 1.0
    assert abs(binary[4000:].mean() - 64 / 255) < 0.02
    again = data.preprocess(pixels, "binarize", seed=tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(binary, again)


def test_preprocess_rejects_unknown_mode_and_missing_seed():
    with pytest.raises(data.DataError, match="scale, binarize, tanh"):
        data.preprocess(np.zeros(3, np.uint8), "standardize")
    with pytest.raises(data.DataError, match="seed"):
        data.preprocess(np.zeros(3, np.uint8), "binarize")


# === make_dataset ===


def grey_images(count=16):
    return np.full((count, 4, 4, 1), 128, dtype=np.uint8)


def test_make_dataset_dynamic_binarization_changes_each_epoch_but_follows_seed():
    dataset = data.make_dataset(grey_images(), batch_size=5, preprocessing="binarize", seed=7)
    first, second = collect_epoch(dataset), collect_epoch(dataset)
    assert first.shape == (16, 4, 4, 1)
    assert set(np.unique(first).tolist()) == {0.0, 1.0}
    assert not np.array_equal(first, second)
    rebuilt = data.make_dataset(grey_images(), batch_size=5, preprocessing="binarize", seed=7)
    np.testing.assert_array_equal(collect_epoch(rebuilt), first)
    other = data.make_dataset(grey_images(), batch_size=5, preprocessing="binarize", seed=8)
    assert not np.array_equal(collect_epoch(other), first)


@pytest.mark.parametrize("shuffle", [False, True])
def test_make_dataset_fixed_binarization_is_identical_each_epoch(shuffle):
    images = grey_images()
    labels = np.arange(16)
    dataset = data.make_dataset(
        images, labels, batch_size=5, preprocessing="binarize", dynamic_binarization=False,
        shuffle=shuffle, with_labels=True,
    )

    def by_example(dataset):
        pairs = [(np.asarray(x), np.asarray(y)) for x, y in dataset]
        images = np.concatenate([x for x, _ in pairs])
        order = np.argsort(np.concatenate([y for _, y in pairs]))
        return images[order]

    first = by_example(dataset)
    np.testing.assert_array_equal(first, by_example(dataset))
    assert 0.0 < first.mean() < 1.0


def test_make_dataset_shuffle_order_follows_seed():
    images = np.arange(32, dtype=np.uint8).reshape(32, 1, 1, 1)

    def order(seed):
        dataset = data.make_dataset(images, batch_size=8, shuffle=True, seed=seed)
        return [np.round(collect_epoch(dataset)[:, 0, 0, 0] * 255).astype(int) for _ in range(2)]

    first_epoch, second_epoch = order(0)
    assert sorted(first_epoch.tolist()) == list(range(32))
    assert first_epoch.tolist() != list(range(32))
    assert first_epoch.tolist() != second_epoch.tolist()  # reshuffled each epoch
    again = order(0)
    np.testing.assert_array_equal(again[0], first_epoch)
    np.testing.assert_array_equal(again[1], second_epoch)
    assert order(1)[0].tolist() != first_epoch.tolist()


def test_make_dataset_labels_batching_and_channel_axis():
    images = np.zeros((10, 3, 3), dtype=np.uint8)
    labels = np.arange(10, dtype=np.uint8)
    dataset = data.make_dataset(images, labels, batch_size=4, preprocessing="tanh", with_labels=True)
    batches = list(dataset)
    assert [int(x.shape[0]) for x, _ in batches] == [4, 4, 2]
    assert batches[0][0].shape == (4, 3, 3, 1) and batches[0][0].dtype == tf.float32
    assert batches[0][1].dtype == tf.int64
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), np.arange(10))
    assert float(batches[0][0].numpy().min()) == -1.0
    dropped = data.make_dataset(images, batch_size=4, drop_remainder=True)
    assert [int(x.shape[0]) for x in dropped] == [4, 4]


@pytest.mark.parametrize(
    "images, labels, kwargs, match",
    [
        (np.zeros((4, 3, 3, 1), np.float32), None, {}, "uint8"),
        ([[[0]]], None, {}, "uint8"),
        (np.zeros((4, 3), np.uint8), None, {}, "shape"),
        (np.zeros((4, 3, 3, 1, 1), np.uint8), None, {}, "shape"),
        (np.zeros((4, 3, 3), np.uint8), np.zeros(3, np.int64), {"with_labels": True}, "labels"),
        (np.zeros((4, 3, 3), np.uint8), np.zeros(4, np.float32), {"with_labels": True}, "integers"),
        (np.zeros((4, 3, 3), np.uint8), None, {"with_labels": True}, "labels"),
        (np.zeros((4, 3, 3), np.uint8), None, {"batch_size": 0}, "batch_size"),
        (np.zeros((4, 3, 3), np.uint8), None, {"batch_size": 2.0}, "batch_size"),
        (np.zeros((4, 3, 3), np.uint8), None, {"preprocessing": "unit"}, "valid modes"),
    ],
)
def test_make_dataset_rejects_bad_inputs(images, labels, kwargs, match):
    kwargs = {"batch_size": 2, **kwargs}
    with pytest.raises(data.DataError, match=match):
        data.make_dataset(images, labels, **kwargs)


# === fashion_mnist_datasets ===


def test_fashion_mnist_datasets(prepared):
    root, arrays, _ = prepared
    splits = data.fashion_mnist_datasets(
        batch_size=8, preprocessing="binarize", validation_size=10, seed=0, with_labels=True,
        source_dir=root / "source", data_dir=root / "tfds",
    )
    assert splits["num_train"] == NUM_TRAIN - 10
    train_sizes = [int(x.shape[0]) for x, _ in splits["train"]]
    assert train_sizes == [8, 8, 8]  # 30 examples, the remainder dropped
    assert sum(int(x.shape[0]) for x, _ in splits["validation"]) == 10
    test_labels = np.concatenate([y for _, y in splits["test"]])
    np.testing.assert_array_equal(test_labels, arrays["test"][1])  # test split in file order, complete
    preview = splits["validation_images"]
    assert preview.shape == (10, 28, 28, 1) and preview.dtype == np.float32
    assert 0.0 <= preview.min() and preview.max() <= 1.0
    assert len(np.unique(preview)) > 2  # grey levels, not binary draws

    tanh = data.fashion_mnist_datasets(
        batch_size=8, preprocessing="tanh", validation_size=0, source_dir=root / "source", data_dir=root / "tfds"
    )
    assert tanh["validation"] is None and tanh["num_train"] == NUM_TRAIN
    assert tanh["validation_images"].min() < 0.0
    first = next(iter(tanh["train"]))
    assert first.shape == (8, 28, 28, 1) and float(tf.reduce_min(first)) >= -1.0


def test_fashion_mnist_datasets_keep_only_the_chosen_classes(prepared):
    root, arrays, _ = prepared
    common = dict(batch_size=1, validation_size=20, seed=0, with_labels=True, source_dir=root / "source", data_dir=root / "tfds")
    everything = data.fashion_mnist_datasets(**common)
    kept = data.fashion_mnist_datasets(classes=[5, 3], **common)
    all_validation = np.concatenate([y for _, y in everything["validation"]])
    validation = np.concatenate([y for _, y in kept["validation"]])
    test = np.concatenate([y for _, y in kept["test"]])
    assert set(validation) <= {3, 5} and set(test) <= {3, 5}
    train = np.concatenate([y for _, y in data.fashion_mnist_datasets(classes=[5, 3], **{**common, "batch_size": 1})["train"]])
    assert set(train) <= {3, 5} and len(train) == kept["num_train"]
    # The held-out images are the kept classes' share of the same validation split.
    np.testing.assert_array_equal(validation, all_validation[np.isin(all_validation, [3, 5])])
    assert len(test) == np.isin(arrays["test"][1], [3, 5]).sum()
    assert kept["num_train"] + len(validation) == np.isin(arrays["train"][1], [3, 5]).sum()


@pytest.mark.parametrize("classes", [[10], [], [-1], ["3"], [True], "3"])
def test_fashion_mnist_datasets_reject_bad_classes(prepared, classes):
    root, _, _ = prepared
    with pytest.raises(data.DataError, match=r"class indices 0..9 \(0 T-shirt/top"):
        data.fashion_mnist_datasets(batch_size=4, classes=classes, validation_size=0, source_dir=root / "source", data_dir=root / "tfds")


# === Real data ===


@pytest.mark.slow
def test_real_fashion_mnist(tmp_path):
    source = pathlib.Path(data.DEFAULT_SOURCE_DIR)
    if not all(path is not None for path in fashion_mnist._locate_files(source).values()):
        pytest.skip(f"Fashion-MNIST not installed in {source}")
    # A fresh data folder: exercises the full prepare and leaves ~/tensorflow_datasets alone.
    splits = data.load_fashion_mnist(source_dir=source, data_dir=tmp_path)
    for split, count in (("train", 60000), ("test", 10000)):
        images, labels = splits[split]
        assert images.shape == (count, 28, 28, 1) and images.dtype == np.uint8
        assert labels.shape == (count,) and labels.dtype == np.int64
        assert labels.min() == 0 and labels.max() == 9
        assert np.bincount(labels).tolist() == [count // 10] * 10


def test_probing_for_a_stock_fashion_mnist_logs_no_warning_about_absent_folders(tmp_path, monkeypatch, caplog):
    helpers_source = tmp_path / "source"
    make_fake_source(helpers_source, seed=1)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "default_tfds"))
    monkeypatch.delenv(data.SOURCE_DIR_ENV, raising=False)
    with caplog.at_level("WARNING", logger="absl"):
        assert fashion_mnist._stock_is_prepared(None) is False
        data.load_fashion_mnist(source_dir=helpers_source, data_dir=tmp_path / "tfds")
    assert not [record for record in caplog.records if "Variant folder" in record.getMessage()]
