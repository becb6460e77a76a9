"""The input pipeline on its own: fitting images, streams against in-memory arrays, caching, carving."""

import keras_gen  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import data
from keras_gen.data import pipeline


def fit(image, size, channels, crop=None):
    return pipeline.fit_image(tf.constant(image, tf.uint8), size, channels, crop).numpy()


def test_resize_keeps_the_aspect_ratio_then_crops_the_centre():
    # 20x40: a black left half and a white right half, with 5-pixel red-ish borders left and right.
    image = np.zeros((20, 40, 1), np.uint8)
    image[:, 20:] = 255
    image[:, :5] = 100
    image[:, 35:] = 100
    out = fit(image, (10, 10), 1)
    # Resized to 10x20 (the height fits), then the centre 10 columns: the borders are cropped away.
    assert out.shape == (10, 10, 1)
    assert (out[:, :4] == 0).all() and (out[:, 6:] == 255).all()
    assert not (out == 100).any()


def test_images_of_the_right_size_are_untouched_and_centre_crop_comes_first():
    image = np.random.default_rng(0).integers(0, 256, (12, 12, 3), np.uint8)
    np.testing.assert_array_equal(fit(image, (12, 12), 3), image)
    np.testing.assert_array_equal(fit(image, (4, 4), 3, crop=(4, 4)), image[4:8, 4:8])


def test_channel_conversions():
    grey = np.random.default_rng(1).integers(0, 256, (4, 4, 1), np.uint8)
    np.testing.assert_array_equal(fit(grey, (4, 4), 3), np.repeat(grey, 3, axis=-1))
    rgba = np.random.default_rng(2).integers(0, 256, (4, 4, 4), np.uint8)
    np.testing.assert_array_equal(fit(rgba, (4, 4), 3), rgba[..., :3])
    grey_alpha = np.concatenate([grey, np.zeros_like(grey)], axis=-1)
    np.testing.assert_array_equal(fit(grey_alpha, (4, 4), 1), grey)
    luma = fit(rgba, (4, 4), 1).astype(int)
    expected = rgba[..., :3] @ np.array([0.2989, 0.587, 0.114])
    assert np.abs(luma[..., 0] - expected).max() <= 1


def test_held_out_mask_carves_the_same_images_as_the_array_split():
    images = np.arange(50, dtype=np.uint8).reshape(50, 1, 1, 1)
    (_, _), (validation, _) = data.split_train_validation(images, None, 7, seed=3)
    held, kept = pipeline.held_out_mask(np.arange(50), 7, seed=3)
    assert sorted(validation.ravel()) == list(held)
    assert sorted(set(held) | set(kept)) == list(range(50)) and not set(held) & set(kept)
    with pytest.raises(data.DataError, match="fewer images, e.g. 5"):
        pipeline.held_out_mask(np.arange(50), 50, seed=0)


def examples_of(images, labels, small_keys=False):
    keys = tf.data.Dataset.from_tensor_slices((images, labels))
    return data.Examples(keys, len(images), labels=labels, small_keys=small_keys)


@pytest.mark.parametrize("cache", [True, False])
@pytest.mark.parametrize("small_keys", [True, False])
def test_a_stream_yields_what_the_array_pipeline_yields(cache, small_keys):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 4, 4, 1), np.uint8)
    labels = np.arange(30, dtype=np.int64) % 3
    select = np.arange(0, 30, 2)
    stream, count = pipeline.stream_dataset(
        examples_of(images, labels, small_keys), batch_size=4, image_size=(4, 4), channels=1, select=select, classes=(0, 1),
        with_labels=True, cache=cache, preprocessing="binarize", dynamic_binarization=False, seed=7,
    )
    keep = select[np.isin(labels[select], [0, 1])]
    assert count == len(keep) and stream.cardinality().numpy() == int(np.ceil(len(keep) / 4))
    got = np.concatenate([x for x, _ in stream])
    got_labels = np.concatenate([y for _, y in stream])
    np.testing.assert_array_equal(got_labels, labels[keep])
    # Each image is binarised from its own pixels: 0/1 values, more ones where the pixels are brighter.
    assert set(np.unique(got)) <= {0.0, 1.0}
    assert np.corrcoef(got.ravel(), images[keep].ravel())[0, 1] > 0.5
    # Fixed binarisation: the same draws on a second pass.
    np.testing.assert_array_equal(np.concatenate([x for x, _ in stream]), got)


def test_a_shuffled_stream_follows_its_seed_and_reshuffles_each_epoch():
    images = np.arange(64, dtype=np.uint8).reshape(64, 1, 1, 1)
    labels = np.zeros(64, np.int64)

    def order(seed):
        stream, _ = pipeline.stream_dataset(examples_of(images, labels, True), batch_size=64, image_size=(1, 1), channels=1, shuffle=True, seed=seed, cache=False)
        return [np.round(next(iter(stream)).numpy().ravel() * 255).astype(int) for _ in range(2)]

    first, second = order(0)
    assert sorted(first) == list(range(64)) and list(first) != list(second)
    np.testing.assert_array_equal(order(0)[0], first)
    assert list(order(1)[0]) != list(first)


def test_cache_auto_keeps_only_small_splits_in_memory(monkeypatch):
    images = np.zeros((10, 4, 4, 1), np.uint8)
    labels = np.zeros(10, np.int64)
    seen = []
    original = tf.data.Dataset.cache

    def spy(self, *args, **kwargs):
        seen.append(True)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(tf.data.Dataset, "cache", spy)
    pipeline.stream_dataset(examples_of(images, labels), batch_size=2, image_size=(4, 4), channels=1, cache="auto")
    assert seen == [True]
    monkeypatch.setattr(pipeline, "CACHE_AUTO_BYTES", 100)
    pipeline.stream_dataset(examples_of(images, labels), batch_size=2, image_size=(4, 4), channels=1, cache="auto")
    assert seen == [True]


@pytest.mark.parametrize("bad, match", [([0, 4], "positive integers"), ([4, 4, 4], "height, width"), ("64", "height, width")])
def test_bad_image_sizes(bad, match):
    with pytest.raises(data.DataError, match=match):
        pipeline.check_image_size(bad)
    assert pipeline.check_image_size(64) == (64, 64) and pipeline.check_image_size([32, 16]) == (32, 16)
    with pytest.raises(data.DataError, match="channels must be 1"):
        pipeline.check_channels(2)
