"""The folder source: layouts, decoding, mixed sizes and channels, and unreadable files."""

import keras_gen  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_gen import data
from keras_gen.data import folder as folder_lib
from tests import helpers


def batches_of(dataset):
    return np.concatenate([np.asarray(batch) for batch in dataset])


def test_split_folders_with_classes_give_back_the_written_pixels(tmp_path):
    written = helpers.write_image_folder(tmp_path, per_class=3, rgb=True, pad=32)
    splits = data.load_datasets(f"folder:{tmp_path}", batch_size=7, validation_size=5, seed=1)
    info = splits["info"]
    assert info.image_shape == (32, 32, 3) and info.num_classes == 10
    assert info.class_names[3] == "3_Dress"
    assert info.split_sizes == {"train": 25, "validation": 5, "test": 30}
    # The test split is the test/ folder in file order, and PNG is lossless: the same pixels come back.
    test_images, test_labels = written["test"]
    order = np.lexsort((np.arange(30), test_labels))
    np.testing.assert_array_equal(np.round(batches_of(splits["test"]) * 255).astype(np.uint8), test_images[order])
    train = list(splits["train"])
    assert len(train) == 25 // 7 and train[0].shape == (7, 32, 32, 3)


def test_flat_folder_is_unlabeled_and_has_its_test_split_carved(tmp_path):
    images, _ = helpers.real_images(per_class=4)
    for index, image in enumerate(images):
        (tmp_path / f"{index}.png").write_bytes(tf.io.encode_png(image).numpy())
    splits = data.load_datasets(f"folder:{tmp_path}", batch_size=4, validation_size=6, seed=0)
    assert not splits["info"].labeled and splits["info"].num_classes is None
    assert splits["info"].split_sizes == {"train": 30, "validation": 6, "test": 4}
    again = data.load_datasets(f"folder:{tmp_path}", batch_size=4, validation_size=6, seed=5)
    # The test images are carved with a fixed seed, whatever the training seed; validation follows the seed.
    np.testing.assert_array_equal(batches_of(splits["test"]), batches_of(again["test"]))
    assert not np.array_equal(batches_of(splits["validation"]), batches_of(again["validation"]))
    with pytest.raises(data.DataError, match="has no labels"):
        data.load_datasets(f"folder:{tmp_path}", batch_size=4, validation_size=6, with_labels=True)


def test_mixed_sizes_formats_and_channels_are_fitted(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 30), np.uint8), "L").save(tmp_path / "a" / "grey.png")
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), np.uint8), "RGB").save(tmp_path / "a" / "colour.jpg")
    Image.fromarray(rng.integers(0, 256, (24, 24, 4), np.uint8), "RGBA").save(tmp_path / "b" / "alpha.png")
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), np.uint8), "RGB").save(tmp_path / "b" / "bitmap.bmp")
    Image.fromarray(rng.integers(0, 256, (18, 18), np.uint8), "L").convert("P").save(tmp_path / "b" / "palette.gif")
    for channels in (1, 3):
        splits = data.load_datasets(f"folder:{tmp_path}", batch_size=4, validation_size=0, test_size=1, image_size=16, channels=channels)
        assert splits["info"].image_shape == (16, 16, channels)
        assert splits["info"].split_sizes["train"] + splits["info"].split_sizes["test"] == 5
        assert batches_of(splits["test"]).shape[1:] == (16, 16, channels)
    # Without image_size the first image (in sorted order: a/colour.jpg) sets the size.
    assert data.load_datasets(f"folder:{tmp_path}", batch_size=4, validation_size=0, test_size=1)["info"].image_shape == (40, 40, 3)


def test_empty_folders_and_missing_folders_say_what_to_do(tmp_path):
    with pytest.raises(data.DataError, match="is not a folder"):
        data.open_source(f"folder:{tmp_path / 'nowhere'}")
    with pytest.raises(data.DataError, match="no image files"):
        data.open_source(f"folder:{tmp_path}")
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "notes.txt").write_text("not an image")
    with pytest.raises(data.DataError, match="no image files .* class folders \\(cats\\)"):
        data.open_source(f"folder:{tmp_path}")


def test_truncated_and_mislabelled_files_stop_the_listing_and_can_be_skipped(tmp_path):
    helpers.write_image_folder(tmp_path, per_class=2, splits=("train",))
    png = sorted((tmp_path / "train").rglob("*.png"))
    png[0].write_bytes(png[0].read_bytes()[:60])  # a kill during the write
    png[1].write_bytes(b"GIF89a but really nothing")
    with pytest.raises(data.DataError, match=f"{png[0]} is not a readable image: truncated PNG.*1 more files.*--skip-corrupt"):
        data.open_source(f"folder:{tmp_path}")
    source = data.open_source(f"folder:{tmp_path}", skip_corrupt=True)
    assert source.skipped == [str(png[0]), str(png[1])]
    assert "skipped 2 unreadable image files" in source.notes()[0]
    assert data.load_datasets(source, batch_size=2, validation_size=2)["info"].split_sizes["train"] == 20 - 2 - 2 - 2


def test_damage_inside_a_file_is_found_at_decode_and_named(tmp_path):
    helpers.write_image_folder(tmp_path, per_class=2, splits=("train",))
    victim = sorted((tmp_path / "train").rglob("*.png"))[5]
    raw = bytearray(victim.read_bytes())
    raw[40:-20] = bytes(len(raw) - 60)  # header and IEND intact, the image data zeroed
    victim.write_bytes(bytes(raw))
    source = data.open_source(f"folder:{tmp_path}")  # the quick check passes
    with pytest.raises(tf.errors.InvalidArgumentError):
        batches_of(data.load_datasets(source, batch_size=4, validation_size=0)["train"])
    assert source.unreadable("train") == [str(victim)]
    skipping = data.open_source(f"folder:{tmp_path}", skip_corrupt=True)
    assert skipping.skipped == [str(victim)]
    assert len(batches_of(data.load_datasets(skipping, batch_size=1, validation_size=0, test_size=1)["train"])) == 18


@pytest.mark.parametrize(
    "content, why",
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "truncated PNG"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 40, "truncated JPEG"),
        (b"BM" + (10_000).to_bytes(4, "little") + b"\0" * 40, "truncated BMP"),
        (b"hello world, not an image", "not a PNG, JPEG"),
    ],
)
def test_check_file_finds_each_kind_of_damage(tmp_path, content, why):
    path = tmp_path / "x.png"
    path.write_bytes(content)
    assert why in folder_lib.check_file(str(path))


def test_split_folders_share_one_class_list(tmp_path):
    helpers.write_image_folder(tmp_path, per_class=1)
    (tmp_path / "test" / "zebra").mkdir()
    (tmp_path / "test" / "zebra" / "z.png").write_bytes(tf.io.encode_png(np.zeros((28, 28, 1), np.uint8)).numpy())
    source = data.open_source(f"folder:{tmp_path}")
    assert source.class_names[-1] == "zebra" and len(source.class_names) == 11
    (tmp_path / "validation").mkdir()
    (tmp_path / "validation" / "flat.png").write_bytes(tf.io.encode_png(np.zeros((28, 28, 1), np.uint8)).numpy())
    with pytest.raises(data.DataError, match="validation has no class folders, but .*train has; lay out every split the same way"):
        data.open_source(f"folder:{tmp_path}")
