"""The classifier on a pre-trained encoder, and the `semi_supervised` recipe end to end.

The models these tests compile run eagerly: the tests check what the steps do, and a few eager steps of
a tiny model take a fraction of the seconds that tracing them takes. The traced step is checked for
every zoo model in tests/test_zoo.py and tests/test_distributed_zoo.py; the `compare_modes` tests run
eagerly too (the `eager_steps` fixture), and the `keras-gen train` end-to-end run trains traced, as users do.
"""

import os
import subprocess
import sys

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import recipes
from keras_gen.data import DataError
from keras_gen.models import Autoencoder
from keras_gen.models import SemiSupervisedClassifier
from keras_gen.models import VAE
from keras_gen.pipelines import semi_supervised
from tests import helpers


def labeled(count=32, seed=0):
    images = helpers.tiny_images(count, seed=seed, binary=False)
    # Two visibly different classes, so that a classifier has something to learn.
    labels = (np.arange(count) % 2).astype("int64")
    images[labels == 1, :4] = 1.0
    return images, labels


_PRETRAINED = {}


def pretrained_encoder():
    """A tiny autoencoder's encoder after a few steps, so its BatchNorm statistics are not the initial ones:
    an independent copy of one trained once per test process (the tests freeze, fine-tune or check it)."""
    if "encoder" not in _PRETRAINED:
        model = Autoencoder(image_shape=helpers.IMAGE_SHAPE, code_dim=3, filters=(4, 8), seed=0)
        model.compile(optimizer="adam", run_eagerly=True)
        helpers.fit_steps(model, labeled()[0], steps=3)
        _PRETRAINED["encoder"] = model.encoder
    return semi_supervised.weight_copy(_PRETRAINED["encoder"])


def classifier(encoder=None, **kwargs):
    options = dict(image_shape=helpers.IMAGE_SHAPE, code_dim=3, filters=(4, 8), seed=0)
    return SemiSupervisedClassifier(encoder=encoder, **{**options, **kwargs})


def snapshot(network):
    return {variable.path: variable.numpy().copy() for variable in network.weights}


def moving_statistics(network):
    return {path: value for path, value in snapshot(network).items() if "moving_" in path}


# === Label draws ===
def test_label_draw_takes_exactly_n_per_class_and_is_seeded():
    labels = np.random.default_rng(0).integers(0, 10, size=500)
    chosen = semi_supervised.select_per_class(labels, 7, seed=1)
    assert len(chosen) == 70 and len(set(chosen)) == 70
    np.testing.assert_array_equal(np.bincount(labels[chosen], minlength=10), np.full(10, 7))
    np.testing.assert_array_equal(chosen, semi_supervised.select_per_class(labels, 7, seed=1))
    assert not np.array_equal(chosen, semi_supervised.select_per_class(labels, 7, seed=2))


def test_label_draw_refuses_what_it_cannot_give():
    labels = np.repeat(np.arange(10), 3)
    with pytest.raises(DataError, match="Class 0 has 3 examples but 4 per class"):
        semi_supervised.select_per_class(labels, 4, seed=0)
    with pytest.raises(DataError, match="positive integer"):
        semi_supervised.select_per_class(labels, 0, seed=0)


# === Frozen versus fine-tuned ===
def test_frozen_encoder_keeps_its_weights_and_batchnorm_statistics():
    encoder = pretrained_encoder()
    before = snapshot(encoder)
    assert moving_statistics(encoder), "the encoder has BatchNorm moving statistics to check"
    model = classifier(encoder, freeze_encoder=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    head_before = snapshot(model.head)
    images, labels = labeled()
    model.fit(images, labels, batch_size=8, epochs=3, verbose=0)
    for path, value in snapshot(encoder).items():
        np.testing.assert_array_equal(value, before[path], err_msg=path)
    assert any(not np.array_equal(value, head_before[path]) for path, value in snapshot(model.head).items())
    assert all(not w.trainable for w in encoder.weights) and model.trainable_weights == model.head.trainable_weights


def test_fine_tuning_changes_the_encoder_and_its_batchnorm_statistics():
    encoder = pretrained_encoder()
    before = snapshot(encoder)
    model = classifier(encoder, freeze_encoder=True)
    model.set_encoder_frozen(False)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    images, labels = labeled()
    model.fit(images, labels, batch_size=8, epochs=2, verbose=0)
    after = snapshot(encoder)
    kernels = [path for path in before if path.endswith("kernel")]
    assert kernels and all(not np.array_equal(after[path], before[path]) for path in kernels)
    assert all(not np.array_equal(after[path], before[path]) for path in moving_statistics(encoder))
    assert model.get_config()["freeze_encoder"] is False


@pytest.mark.usefixtures("eager_steps")
def test_compare_modes_trains_three_classifiers_and_leaves_the_pretrained_encoder(tmp_path):
    encoder = pretrained_encoder()
    before = snapshot(encoder)
    images, labels = labeled(64)
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    splits = {"train": data.take(32).batch(8), "validation": data.skip(32).batch(16), "test": data.skip(32).batch(16)}
    results = semi_supervised.compare_modes(
        encoder,
        splits,
        classifier_options={"image_shape": helpers.IMAGE_SHAPE, "num_classes": 2},
        learning_rate=1e-2,
        fine_tune_learning_rate=1e-3,
        epochs=4,
        patience=2,
        seed=0,
        logdir=tmp_path / "logs",
        checkpoint_dir=tmp_path,
    )
    assert set(results) == {"frozen", "fine_tuned", "scratch"}
    for mode, result in results.items():
        assert 0.0 <= result["accuracy"] <= 1.0 and 1 <= result["epochs"] <= 4, mode
        assert (tmp_path / f"{mode}.keras").exists() and list((tmp_path / "logs" / mode / "train").glob("events*"))
    for path, value in snapshot(encoder).items():
        np.testing.assert_array_equal(value, before[path], err_msg=path)
    frozen = keras.models.load_model(tmp_path / "frozen.keras")
    assert frozen.freeze_encoder and not frozen.encoder.trainable
    assert results["scratch"]["model"].encoder is not encoder and results["fine_tuned"]["model"].encoder is not encoder
    initial = semi_supervised.fresh_copy(encoder)
    assert not np.allclose(initial.get_layer("code").kernel.numpy(), encoder.get_layer("code").kernel.numpy())


def pretrained_autoencoder():
    model = Autoencoder(image_shape=helpers.IMAGE_SHAPE, code_dim=3, filters=(4, 8), seed=0)
    model.compile(optimizer="adam", run_eagerly=True)
    helpers.fit_steps(model, labeled()[0], steps=3)
    return model


def test_fine_tuning_with_a_reconstruction_term_trains_the_decoder_on_unlabeled_images(tmp_path):
    autoencoder = pretrained_autoencoder()
    model = classifier(
        semi_supervised.weight_copy(autoencoder.encoder),
        decoder=semi_supervised.weight_copy(autoencoder.decoder),
        reconstruction_weight=2.0,
        hidden_units=4,
        freeze_encoder=True,
    )
    images, labels = labeled(16)
    unlabeled = helpers.tiny_images(16, seed=3, binary=False)
    joint = tf.data.Dataset.from_tensor_slices((images, labels, unlabeled)).batch(8)
    before = snapshot(model.decoder)
    # Frozen: no reconstruction term, so the decoder stays as it was.
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    model.fit(joint, epochs=1, verbose=0)
    for path, value in snapshot(model.decoder).items():
        np.testing.assert_array_equal(value, before[path], err_msg=path)
    model.set_encoder_frozen(False)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    logs = model.fit(joint, epochs=1, verbose=0).history
    assert logs["reconstruction"][0] > 0.0
    assert any(not np.array_equal(value, before[path]) for path, value in snapshot(model.decoder).items())
    # The term is the decoder's per-pixel cross-entropy on the unlabeled images.
    logits = model.decoder(model.encoder(unlabeled, training=True), training=True)  # BatchNorm on batch statistics, as in the step
    expected = keras.losses.binary_crossentropy(unlabeled, tf.sigmoid(logits), axis=(1, 2, 3))
    np.testing.assert_allclose(model.reconstruction(unlabeled), expected, rtol=1e-3, atol=1e-4)
    # Evaluation scores the labels only.
    assert set(model.evaluate(images, labels, verbose=0, return_dict=True)) == {"loss", "accuracy"}
    path = tmp_path / "joint.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.reconstruction_weight == 2.0 and loaded.decoder is not None
    np.testing.assert_allclose(loaded.classify(images)["probabilities"], model.classify(images)["probabilities"], atol=1e-6)


def test_a_reconstruction_weight_needs_a_decoder():
    with pytest.raises(ValueError, match="positive with a decoder"):
        classifier(reconstruction_weight=1.0)


def test_labeled_splits_can_carry_unlabeled_batches():
    images = (np.arange(40 * 64) % 256).astype("uint8").reshape(40, 8, 8, 1)
    labels = (np.arange(40) % 10).astype("int64")
    splits = semi_supervised.labeled_splits(
        images, labels, images, labels, images, labels,
        per_class=2, validation_per_class=1, seed=0, preprocessing="scale", batch_size=4, unlabeled_batch_size=6,
    )
    batches = list(splits["train_with_unlabeled"])
    assert len(batches) == len(list(splits["train"])) == 5
    labeled_images, batch_labels, unlabeled = batches[0]
    assert labeled_images.shape == (4, 8, 8, 1) and batch_labels.shape == (4,) and unlabeled.shape == (6, 8, 8, 1)
    assert "train_with_unlabeled" not in semi_supervised.labeled_splits(
        images, labels, images, labels, images, labels, per_class=2, validation_per_class=1, seed=0, preprocessing="scale", batch_size=4
    )


def tiny_splits():
    """labeled_splits-shaped datasets of 48 two-class images: 16 to train on (with an unlabeled stream), 16 each to
    validate and test."""
    images, labels = labeled(48)
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    train = data.take(16).batch(8)
    unlabeled = tf.data.Dataset.from_tensor_slices(images).batch(8).repeat()
    return {
        "train": train,
        "train_with_unlabeled": tf.data.Dataset.zip(train, unlabeled).map(lambda pair, extra: (*pair, extra)),
        "validation": data.skip(16).batch(16),
        "test": data.skip(32).batch(16),
    }


@pytest.mark.usefixtures("eager_steps")
def test_compare_modes_fine_tunes_with_the_decoder_and_leaves_the_pretrained_one():
    autoencoder = pretrained_autoencoder()
    before = snapshot(autoencoder.decoder)
    splits = tiny_splits()
    results = semi_supervised.compare_modes(
        autoencoder.encoder,
        splits,
        classifier_options={"image_shape": helpers.IMAGE_SHAPE, "num_classes": 2},
        learning_rate=1e-2,
        fine_tune_learning_rate=1e-3,
        epochs=2,
        patience=2,
        seed=0,
        decoder=autoencoder.decoder,
        reconstruction_weight=1.0,
    )
    assert "reconstruction" in results["fine_tuned"]["history"] and "reconstruction" not in results["scratch"]["history"]
    for path, value in snapshot(autoencoder.decoder).items():
        np.testing.assert_array_equal(value, before[path], err_msg=path)


def test_a_vae_encoder_is_reused_through_its_posterior_mean():
    vae = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    encoder = semi_supervised.encoder_of(vae)
    images = helpers.tiny_images(4)
    np.testing.assert_allclose(encoder(images), vae.encode(images)["mean"], atol=1e-6)
    model = SemiSupervisedClassifier(encoder=encoder, image_shape=helpers.IMAGE_SHAPE, code_dim=2)
    assert model.classify(images)["probabilities"].shape == (4, 10)


# === Serving and inputs ===
def test_classify_returns_probabilities_and_the_most_likely_label():
    model = classifier(hidden_units=4)
    outputs = model.classify(labeled(6)[0])
    np.testing.assert_allclose(tf.reduce_sum(outputs["probabilities"], axis=-1), np.ones(6), rtol=1e-5)
    np.testing.assert_array_equal(outputs["label"], np.argmax(outputs["probabilities"], axis=-1))
    assert outputs["label"].dtype == tf.int64


def test_training_learns_two_visible_classes():
    model = classifier(hidden_units=8)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))  # 40 steps: traced is faster
    images, labels = labeled(64)
    history = model.fit(images, labels, batch_size=16, epochs=10, verbose=0).history
    assert history["accuracy"][-1] > 0.9 and history["loss"][-1] < history["loss"][0]


@pytest.mark.parametrize(
    "labels, error, message",
    [
        (None, ValueError, r"needs a class label per image: fit it on \(images, labels\) batches"),
        (np.zeros(8, "float32"), ValueError, "integer class indices"),
        (np.zeros((8, 2), "int64"), ValueError, r"shape \[batch\]"),
        (np.full(8, 10, "int64"), tf.errors.InvalidArgumentError, r"class indices in \[0, 10\)"),
    ],
)
def test_bad_labels_say_what_to_do(labels, error, message):
    model = classifier()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
    images = labeled(8)[0]
    with pytest.raises(error, match=message):
        model.fit(images, labels, batch_size=8, verbose=0)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="dropout"):
        classifier(dropout=1.0)
    with pytest.raises(ValueError, match="code_dim"):
        classifier(pretrained_encoder(), code_dim=5)


# === The recipe ===
def test_pipeline_options_are_checked_like_every_recipe_section(tmp_path):
    recipe = recipes.load_recipe("semi_supervised")
    assert recipe.pipeline["labels_per_class"] == 10 and recipe.model == "semi_supervised"
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "semi_supervised"\n[pipeline]\nlabels = 5\n')
    message = r"\[pipeline\] of the semi_supervised pipeline: unknown key\(s\) labels; valid keys are: name, pretrain_recipe"
    with pytest.raises(recipes.RecipeError, match=message):
        recipes.load_recipe(bad)
    bad.write_text('model = "semi_supervised"\n[pipeline]\nlabels_per_class = "ten"\n')
    with pytest.raises(recipes.RecipeError, match="`labels_per_class` must be int"):
        recipes.load_recipe(bad)
    bad.write_text('model = "vae"\n[pipeline]\nlabels_per_class = 5\n')
    with pytest.raises(recipes.RecipeError, match=r"\[pipeline\] of the fit pipeline: unknown key\(s\) labels_per_class; valid keys are: name\."):
        recipes.load_recipe(bad)


TINY_PRETRAIN = """
model = "denoising_autoencoder"
description = "tiny denoising autoencoder"
[model_options]
code_dim = 4
filters = [4, 8]
convs_per_stage = 1
corruption = "masking"
corruption_strength = 0.3
[data]
validation_size = 40
[train]
epochs = 1
batch_size = 16
summary_samples = 4
"""

TINY_SEMI_SUPERVISED = """
model = "semi_supervised"
description = "tiny semi-supervised run"
[model_options]
hidden_units = 4
consistency_weight = 1.0
[pipeline]
pretrain_recipe = "pretrain.toml"
pretrain_epochs = 2
labels_per_class = 2
validation_labels_per_class = 1
classifier_batch_size = 8
patience = 2
unlabeled_batch_size = 16
propagation_rounds = 2
[data]
validation_size = 40
[train]
epochs = 3
"""


def test_keras_gen_train_semi_supervised_end_to_end(tmp_path):
    """Pre-trains a tiny denoising autoencoder, trains the three classifiers on fake Fashion-MNIST files,
    prints the table and exports a classifier that TensorFlow alone can call."""
    helpers.make_fake_source(tmp_path / "idx", seed=0, num_train=240)
    (tmp_path / "pretrain.toml").write_text(TINY_PRETRAIN)
    (tmp_path / "semi.toml").write_text(TINY_SEMI_SUPERVISED)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "keras_gen.cli", "train", "semi.toml", "--data-dir", "idx", "--tfds-dir", "tfds"]
    command += ["--steps-per-epoch", "3"]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Test accuracy with 2 labels per class (20 labels)" in run.stdout
    for title in semi_supervised.MODE_TITLES.values():
        assert title in run.stdout
    assert list((tmp_path / "checkpoints" / "pretrain").glob("*/model.keras")), "the autoencoder was pre-trained"
    assert list((tmp_path / "tensorboard_logs" / "pretrain").glob("*/train/events*"))
    for mode in ("frozen", "fine_tuned/round_1", "fine_tuned/round_2", "scratch"):
        assert list((tmp_path / "tensorboard_logs" / "semi").glob(f"*/{mode}/validation/events*")), mode
    export = tmp_path / "exports" / "semi" / "1"
    images = helpers.tiny_images(3, binary=False, shape=(28, 28, 1))
    calls = {"classify": {"images": images}, "serving_default": {"images": images}}
    result = helpers.call_export_in_fresh_process(export, calls, tmp_path)
    assert not {"keras_gen", "tensorflow_probability"} & set(result["imported"])
    assert set(result["signatures"]) == {"classify", "serving_default", "metadata"}
    model = keras.models.load_model(next((tmp_path / "checkpoints" / "semi").glob("*/model.keras")))
    expected = model.classify(images)
    np.testing.assert_allclose(result["classify"]["probabilities"], expected["probabilities"], atol=1e-5)
    np.testing.assert_array_equal(result["serving_default"]["label"], expected["label"])
    assert not model.freeze_encoder, "the exported classifier is the fine-tuned one"


# === Pseudo-labels on unlabeled images (consistency term) ===
def shifted(image, dx, dy):
    """`image` [H, W, C] read at (x + dx, y + dy), zeros from outside: what the augmentation's shift does."""
    out = np.zeros_like(image)
    height, width = image.shape[:2]
    for y in range(height):
        for x in range(width):
            if 0 <= y + dy < height and 0 <= x + dx < width:
                out[y, x] = image[y + dy, x + dx]
    return out


def test_augmentation_mirrors_shifts_and_masks_each_image_on_its_own():
    images = helpers.tiny_images(24, seed=7, binary=False) + 0.1  # no zero pixel, so masked pixels show
    model = classifier(augment_shift=2, augment_masking=0.0)
    augmented = model.augment(tf.constant(images)).numpy()
    moves = []
    for image, result in zip(images, augmented):
        found = [
            (mirror, dx, dy)
            for mirror in (False, True)
            for dx in range(-2, 3)
            for dy in range(-2, 3)
            if np.array_equal(shifted(image[:, ::-1] if mirror else image, dx, dy), result)
        ]
        assert found, "an augmented image is not a mirrored and shifted copy of its image"
        moves.append(found[0])
    assert len(set(moves)) > 5  # drawn per image, not one move for the batch
    assert 0 < sum(mirror for mirror, _, _ in moves) < len(moves)
    masked = classifier(augment_shift=0, augment_masking=0.5).augment(tf.constant(images)).numpy()
    zero = masked == 0.0
    assert 0.4 < zero.mean() < 0.6
    # Unmasked pixels are the image or its mirror image, untouched.
    assert all(np.array_equal(m[~z], i[~z]) or np.array_equal(m[~z], i[:, ::-1][~z]) for m, z, i in zip(masked, zero, images))


def test_consistency_term_is_the_cross_entropy_against_confident_pseudo_labels():
    images = helpers.tiny_images(16, seed=8, binary=False)
    images = (images + images[:, :, ::-1]) / 2  # mirror-symmetric: with no shift or masking, augment is the identity
    model = classifier(hidden_units=4, consistency_weight=1.0, confidence_threshold=0.01, augment_shift=0, augment_masking=0.0)
    # Pseudo-labels first: the step's training-mode pass updates BatchNorm's moving statistics.
    pseudo = np.argmax(model.classify(images)["probabilities"], axis=-1)
    term, confident = model.consistency(tf.constant(images))
    np.testing.assert_array_equal(confident, np.ones(16))
    logits = model.logits(tf.constant(images), training=True)  # BatchNorm on batch statistics, as in the step
    expected = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=pseudo, logits=logits)
    np.testing.assert_allclose(term, expected, rtol=1e-4, atol=1e-6)
    # Nothing reaches a threshold of 1 with ten classes on a fresh head: no pseudo-labels, no term.
    strict = classifier(hidden_units=4, consistency_weight=1.0, confidence_threshold=1.0)
    term, confident = strict.consistency(tf.constant(images))
    assert np.all(np.asarray(confident) == 0.0) and np.all(np.asarray(term) == 0.0)


def test_fine_tuning_with_pseudo_labels_reports_them_and_moves_the_encoder_differently(tmp_path):
    images, labels = labeled(16)
    unlabeled = helpers.tiny_images(16, seed=3, binary=False)
    joint = tf.data.Dataset.from_tensor_slices((images, labels, unlabeled)).batch(8)
    encoder = pretrained_encoder()
    after = {}
    for weight in (0.0, 5.0):
        model = classifier(semi_supervised.weight_copy(encoder), hidden_units=4, consistency_weight=weight, confidence_threshold=0.05)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
        logs = model.fit(joint, epochs=1, verbose=0, shuffle=False).history
        after[weight] = snapshot(model.encoder)
    assert logs["consistency"][0] > 0.0 and logs["confident"][0] == 1.0
    assert any(not np.allclose(value, after[0.0][path]) for path, value in after[5.0].items() if "moving_" not in path)
    # Frozen: the term is off, so the logs have no consistency figures.
    frozen = classifier(semi_supervised.weight_copy(encoder), consistency_weight=1.0, freeze_encoder=True)
    frozen.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    assert frozen.fit(joint, epochs=1, verbose=0).history["consistency"] == [0.0]
    path = tmp_path / "pseudo.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert (loaded.consistency_weight, loaded.confidence_threshold, loaded.augment_shift) == (5.0, 0.05, 1)
    np.testing.assert_allclose(loaded.classify(images)["probabilities"], model.classify(images)["probabilities"], atol=1e-6)


def test_compare_modes_fine_tunes_with_pseudo_labels_only():
    splits = tiny_splits()
    results = semi_supervised.compare_modes(
        pretrained_encoder(),
        splits,
        classifier_options={"image_shape": helpers.IMAGE_SHAPE, "num_classes": 2, "consistency_weight": 1.0, "confidence_threshold": 0.5},
        learning_rate=1e-2,
        fine_tune_learning_rate=1e-3,
        epochs=2,
        patience=2,
        seed=0,
    )
    assert results["fine_tuned"]["history"]["consistency"][0] > 0.0
    assert results["frozen"]["history"]["consistency"] == [0.0, 0.0] and "consistency" not in results["scratch"]["history"]
    assert results["scratch"]["model"].consistency_weight == 0.0
    assert semi_supervised.uses_unlabeled_images({"consistency_weight": 1.0}, 0.0)
    assert not semi_supervised.uses_unlabeled_images({"consistency_weight": 0.0}, 0.0)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"consistency_weight": -1.0}, "consistency_weight must be 0 or more"),
        ({"confidence_threshold": 0.0}, "confidence_threshold a probability"),
        ({"augment_shift": 1.5}, "augment_shift is a number of pixels"),
        ({"augment_masking": 2.0}, "fraction of pixels"),
    ],
)
def test_bad_pseudo_label_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        classifier(**options)


# === Pseudo-labels propagated over the codes' neighbour graph ===
def blobs():
    """Codes of three tight, far-apart groups (8, 4 and 4 points); labels: one point of each of the first two."""
    rng = np.random.default_rng(0)
    centres = np.array([[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]])
    codes = np.concatenate([centre + rng.normal(0.0, 0.1, (size, 3)) for centre, size in zip(centres, (8, 4, 4))])
    return codes.astype("float32"), np.array([0, 8]), np.array([1, 0])


def test_propagated_labels_follow_the_neighbour_graph_and_are_weighted():
    codes, labeled_indices, labels = blobs()
    pseudo_labels, weights = semi_supervised.propagate_labels(codes, labeled_indices, labels, num_classes=2, neighbours=3)
    assert pseudo_labels.dtype == np.int32 and weights.dtype == np.float32
    np.testing.assert_array_equal(pseudo_labels[:12], [1] * 8 + [0] * 4)
    # Each group is its own component of the graph, so every propagated label is certain (entropy 0): the weight
    # is the class balance alone, 12 reached / (2 classes x 8 or 4 given that label); labeled points keep weight 1.
    expected = np.array([1.0] + [0.75] * 7 + [1.0] + [1.5] * 3)
    np.testing.assert_allclose(weights[:12], expected, rtol=1e-6)
    # No label reaches the third group: weight 0, so whatever argmax says there is never learnt.
    np.testing.assert_array_equal(weights[12:], 0.0)


def test_propagated_labels_are_less_certain_between_the_labels():
    # A chain of points from one labeled end (class 0) to the other (class 1): the middle is the least certain.
    codes = np.stack([np.cos(np.linspace(0.0, 1.5, 11)), np.sin(np.linspace(0.0, 1.5, 11))], axis=1).astype("float32")
    pseudo_labels, weights = semi_supervised.propagate_labels(codes, np.array([0, 10]), np.array([0, 1]), num_classes=2, neighbours=2)
    np.testing.assert_array_equal(pseudo_labels[:4], 0)
    np.testing.assert_array_equal(pseudo_labels[-4:], 1)
    assert weights[5] < weights[2] and weights[5] < weights[8]
    assert weights[5] < 0.1  # halfway, the two labels arrive about equally


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(codes=np.zeros(5)), "codes must be a"),
        (dict(labels=np.array([0])), "two 1-d arrays of the same length"),
        (dict(labeled_indices=np.array([0, 99])), "must index the 16 codes"),
        (dict(labels=np.array([0, 2])), r"labels lie in \[0, 2\)"),
        (dict(neighbours=16), "1 <= neighbours < N"),
        (dict(alpha=1.0), "0 <= alpha < 1"),
    ],
)
def test_label_propagation_refuses_bad_input(arguments, message):
    codes, labeled_indices, labels = blobs()
    call = dict(codes=codes, labeled_indices=labeled_indices, labels=labels, num_classes=2, neighbours=3)
    with pytest.raises(ValueError, match=message):
        semi_supervised.propagate_labels(**{**call, **arguments})


def test_consistency_term_uses_given_pseudo_labels_and_weights():
    images = helpers.tiny_images(6, seed=9, binary=False)
    images = (images + images[:, :, ::-1]) / 2  # mirror-symmetric, so that augment (no shift) is the identity
    model = classifier(hidden_units=4, consistency_weight=1.0, confidence_threshold=1.0, augment_shift=0)
    given, weights = np.array([3, 1, 4, 1, 5, 9]), np.array([1.0, 0.5, 0.0, 2.0, 1.0, 0.25], "float32")
    term, reported = model.consistency(tf.constant(images), given, weights)
    logits = model.logits(tf.constant(images), training=True)
    expected = weights * tf.nn.sparse_softmax_cross_entropy_with_logits(labels=given, logits=logits).numpy()
    # A threshold of 1 would give no pseudo-label of its own: the given ones are used regardless.
    np.testing.assert_allclose(term, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(reported, weights)
    with pytest.raises(ValueError, match="one per unlabeled image"):
        model.consistency(tf.constant(images), given, weights[:, None])


def test_fine_tuning_on_a_pseudo_labeled_stream_reports_the_mean_weight():
    images, labels = labeled(16)
    unlabeled = helpers.tiny_images(16, seed=3, binary=False)
    weights = np.linspace(0.0, 1.0, 16).astype("float32")
    stream = tf.data.Dataset.from_tensor_slices((images, labels, (unlabeled, labels.astype("int32"), weights))).batch(16)
    model = classifier(pretrained_encoder(), hidden_units=4, consistency_weight=1.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    logs = model.fit(stream, epochs=1, verbose=0).history
    assert logs["consistency"][0] > 0.0
    np.testing.assert_allclose(logs["confident"][0], weights.mean(), rtol=1e-5)
    bad = tf.data.Dataset.from_tensor_slices((images, labels, (unlabeled, labels))).batch(16)
    with pytest.raises(ValueError, match=r"images, or \(images, pseudo_labels, weights\)"):
        model.fit(bad, epochs=1, verbose=0)


@pytest.mark.usefixtures("eager_steps")
def test_compare_modes_fine_tunes_in_propagation_rounds(tmp_path):
    images = (helpers.tiny_images(48, seed=4, binary=False) * 255).astype("uint8")
    labels = (np.arange(48) % 10).astype("int64")  # labeled_splits draws from the ten Fashion-MNIST classes
    splits = semi_supervised.labeled_splits(
        images, labels, images, labels, images, labels,
        per_class=2, validation_per_class=2, seed=0, preprocessing="scale", batch_size=8, unlabeled_batch_size=16,
    )
    # Weight i / 48 names image i, so each unlabeled image can be checked against its own pseudo-label.
    stream = semi_supervised.pseudo_labeled_stream(splits, np.arange(48, dtype="int32") % 7, np.arange(48, dtype="float32") / 48)
    first, first_labels, (unlabeled, pseudo_labels, weights) = next(iter(stream))
    assert first.shape == (8, 8, 8, 1) and unlabeled.shape == (16, 8, 8, 1) and float(tf.reduce_max(unlabeled)) <= 1.0
    indices = np.rint(weights.numpy() * 48).astype(int)
    assert len(set(indices)) == 16
    np.testing.assert_array_equal(pseudo_labels, indices % 7)
    np.testing.assert_allclose(unlabeled, images[indices] / 255.0, atol=1e-6)
    options = {"image_shape": helpers.IMAGE_SHAPE, "num_classes": 10, "consistency_weight": 1.0}
    results = semi_supervised.compare_modes(
        pretrained_encoder(), splits, classifier_options=options, learning_rate=1e-2, fine_tune_learning_rate=1e-3,
        epochs=2, patience=2, seed=0, logdir=tmp_path, propagation_rounds=2,
    )
    rounds = results["fine_tuned"]["rounds"]
    assert len(rounds) == 2 and sum(r["epochs"] for r in rounds) == results["fine_tuned"]["epochs"] == 4
    assert len(results["fine_tuned"]["history"]["consistency"]) == 4
    for number, result in enumerate(rounds, 1):
        assert result["pseudo_labels"].shape == (48,) and set(result["pseudo_labels"]) <= set(range(10))
        # The drawn labels come back unchanged, at weight 1.
        np.testing.assert_array_equal(result["pseudo_labels"][splits["indices"]], labels[splits["indices"]])
        np.testing.assert_array_equal(result["weights"][splits["indices"]], 1.0)
        assert list((tmp_path / "fine_tuned" / f"round_{number}" / "train").glob("events*"))
    assert "rounds" not in results["scratch"] and "consistency" not in results["scratch"]["history"]


def test_propagation_rounds_need_the_term_they_feed():
    semi_supervised.check_propagation_rounds(0, {})
    semi_supervised.check_propagation_rounds(3, {"consistency_weight": 1.0})
    with pytest.raises(ValueError, match="needs \\[model_options\\] consistency_weight > 0"):
        semi_supervised.check_propagation_rounds(3, {"consistency_weight": 0.0})
    with pytest.raises(ValueError, match="an int >= 0"):
        semi_supervised.check_propagation_rounds(-1, {"consistency_weight": 1.0})
    # compare_modes, called directly, says so too rather than fine-tune on the labels alone.
    options = {"image_shape": helpers.IMAGE_SHAPE, "num_classes": 2, "consistency_weight": 1.0}
    common = dict(learning_rate=1e-2, fine_tune_learning_rate=1e-3, epochs=1, patience=1, seed=0, propagation_rounds=1)
    with pytest.raises(ValueError, match="splits with unlabeled batches"):
        semi_supervised.compare_modes(pretrained_encoder(), tiny_splits(), classifier_options=options, **common)
