"""keras_gen.evaluation.features: feature spaces by name, the shipped and trained classifiers, and
Inception-v3 with a given weights file.

Inception-v3's ImageNet weights cannot be downloaded here, so these tests use a randomly initialised
InceptionV3 whose weights the test saves to a file: the features (and any FID computed from them) are
then meaningless numbers; what is tested is that the path works, that the given file is the one used,
and that its sha256 is recorded. For speed the tests resize to 75x75 (Inception's smallest input); the
real path resizes to 299x299.
"""

import json
import shutil

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_gen import evaluation
from keras_gen import feature_extractor
from tests.test_evaluation_sample_quality import tiny_feature_model

SMALL = 75  # InceptionV3's smallest input side


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """(path, weights) of a randomly initialised InceptionV3(include_top=False) saved to a file (meaningless features)."""
    keras.utils.set_random_seed(0)
    model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None, input_shape=(SMALL, SMALL, 3))
    path = tmp_path_factory.mktemp("inception") / "random.weights.h5"
    model.save_weights(path)
    return path, model.get_weights()


# === The classifier spaces ===
def test_shipped_classifier_loads_after_its_hash_is_checked_and_met_its_accuracy():
    manifest = feature_extractor.read_manifest()
    assert manifest["test_accuracy"] >= 0.93
    classifier = feature_extractor.load_classifier()
    assert classifier.get_layer(feature_extractor.EMBEDDING_LAYER).output.shape[-1] == manifest["embedding_dim"]
    features, logits = evaluation.FeatureSpace()(np.zeros((3, 28, 28, 1), np.float32))
    assert features.shape == (3, 128) and logits.shape == (3, 10)


def test_corrupt_classifier_weights_are_refused(tmp_path):
    for name in (feature_extractor.WEIGHTS_NAME, feature_extractor.MANIFEST_NAME):
        shutil.copy(feature_extractor.ASSETS_DIR / name, tmp_path / name)
    weights = tmp_path / feature_extractor.WEIGHTS_NAME
    feature_extractor.load_classifier(tmp_path)  # the copies load
    corrupt = bytearray(weights.read_bytes())
    corrupt[len(corrupt) // 2] ^= 0xFF  # one flipped byte
    weights.write_bytes(bytes(corrupt))
    with pytest.raises(feature_extractor.FeatureExtractorError, match="sha256.*corrupt or from another training run"):
        feature_extractor.load_classifier(tmp_path)
    weights.unlink()
    with pytest.raises(feature_extractor.FeatureExtractorError, match="No classifier weights"):
        feature_extractor.load_classifier(tmp_path)


def test_feature_space_says_what_images_it_reads():
    space = evaluation.FeatureSpace(tiny_feature_model())
    with pytest.raises(feature_extractor.FeatureExtractorError, match=r"reads images \[n, 8, 8, 1\], got \(2, 28, 28, 1\)"):
        space(np.zeros((2, 28, 28, 1), np.float32))
    with pytest.raises(feature_extractor.FeatureExtractorError, match="divide by 255"):
        space(np.zeros((2, 8, 8, 1), np.uint8))


@pytest.mark.slow
def test_shipped_classifier_accuracy_on_the_real_test_set():
    from keras_gen import data

    images, labels = data.load_fashion_mnist()["test"]
    _, logits = evaluation.FeatureSpace()(images.astype(np.float32) / 255.0)
    assert (logits.argmax(1) == labels).mean() >= 0.93




def test_feature_spaces_are_chosen_by_name_and_unknown_names_are_refused():
    space = evaluation.feature_space("fashion_mnist")
    assert space.dim == 128 and space.has_classes and space.description["sha256"] == feature_extractor.read_manifest()["sha256"]
    assert space.description["sha256"] in space.summary()
    shipped = evaluation.feature_space(f"classifier:{feature_extractor.ASSETS_DIR}")
    assert shipped.description["sha256"] == space.description["sha256"]
    with pytest.raises(feature_extractor.FeatureExtractorError, match="Unknown feature space 'fid'; use one of: inception, classifier:DIR, fashion_mnist"):
        evaluation.feature_space("fid")
    with pytest.raises(feature_extractor.FeatureExtractorError, match="classifier: needs the folder"):
        evaluation.feature_space("classifier:")
    with pytest.raises(feature_extractor.FeatureExtractorError, match="--feature-weights is for --features inception"):
        evaluation.feature_space("fashion_mnist", weights="w.h5")


def test_missing_inception_weights_say_where_keras_looks_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    expected = tmp_path / "keras_home" / "models" / evaluation.INCEPTION_WEIGHTS_NAME
    with pytest.raises(feature_extractor.FeatureExtractorError, match="not on this machine: Keras looks for") as caught:
        evaluation.feature_space("inception")
    assert str(expected) in str(caught.value) and "--feature-weights" in str(caught.value)
    with pytest.raises(feature_extractor.FeatureExtractorError, match="No Inception-v3 weights file at"):
        evaluation.feature_space("inception", weights=tmp_path / "missing.h5")


def test_inception_reads_any_size_uses_the_given_weights_and_records_their_sha256(random_inception_weights):
    path, saved = random_inception_weights
    space = evaluation.InceptionFeatures(path, batch_size=4, input_size=SMALL)
    # The file given is the one used (every weight), and its hash is recorded.
    assert all(np.array_equal(a, b) for a, b in zip(space.model.get_weights(), saved, strict=True))
    assert space.description["sha256"] == feature_extractor.sha256_of(path) and space.description["sha256"] in space.summary()
    images = np.random.default_rng(0).uniform(size=(6, 32, 32, 3)).astype(np.float32)
    features, logits = space(images)
    assert features.shape == (6, 2048) and logits is None
    # Batched: the same features whatever the batch size.
    space.batch_size = 5
    np.testing.assert_allclose(space(images)[0], features, rtol=1e-4, atol=1e-5)
    # Greyscale images are replicated to three channels.
    grey = images[..., :1]
    np.testing.assert_allclose(space(grey)[0], space(np.repeat(grey, 3, axis=-1))[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(feature_extractor.FeatureExtractorError, match=r"\[n, height, width, 1 or 3\]"):
        space(np.zeros((2, 8, 8, 2), np.float32))


def test_weights_of_another_architecture_or_a_corrupt_file_are_refused_with_their_sha256(tmp_path):
    wrong = tmp_path / "tiny.weights.h5"
    tiny_feature_model().save_weights(wrong)
    with pytest.raises(feature_extractor.FeatureExtractorError, match="is not a weights file of Keras' InceptionV3") as caught:
        evaluation.InceptionFeatures(wrong, input_size=SMALL)
    assert feature_extractor.sha256_of(wrong) in str(caught.value)
    corrupt = tmp_path / "corrupt.weights.h5"
    corrupt.write_bytes(b"\x89HDF\r\n" + bytes(range(256)) * 8)
    with pytest.raises(feature_extractor.FeatureExtractorError, match=f"sha256 {feature_extractor.sha256_of(corrupt)}"):
        evaluation.InceptionFeatures(corrupt, input_size=SMALL)


def test_the_feature_classifier_trains_on_any_labeled_source_and_loads_as_classifier_dir(tmp_path, capsys):
    out = tmp_path / "cifar_classifier"
    argv = ["--data", "tfds:cifar10", "--epochs", "1", "--batch-size", "8", "--validation-size", "8", "--out-dir", str(out)]
    with tfds.testing.mock_data(num_examples=32):
        assert feature_extractor.main([*argv, "--tfds-dir", str(tmp_path / "tfds")]) == 0
    printed = capsys.readouterr().out
    manifest = feature_extractor.read_manifest(out)
    assert manifest["dataset"]["name"] == "tfds:cifar10" and manifest["image_shape"] == [32, 32, 3] and manifest["num_classes"] == 10
    assert manifest["sha256"] == feature_extractor.sha256_of(out / feature_extractor.TRAINED_WEIGHTS_NAME)
    assert f"Test accuracy on tfds:cifar10: {manifest['test_accuracy']:.4f} (32 test images)" in printed
    space = evaluation.feature_space(f"classifier:{out}")
    features, logits = space(np.zeros((3, 32, 32, 3), np.float32))
    assert features.shape == (3, 128) and logits.shape == (3, 10) and space.description["dataset"] == "tfds:cifar10"
    with pytest.raises(feature_extractor.FeatureExtractorError, match=r"reads images \[n, 32, 32, 3\], got \(2, 28, 28, 1\).*--features inception"):
        space(np.zeros((2, 28, 28, 1), np.float32))
    # Weights of another classifier (5 classes) behind a manifest that records their hash are refused, with it.
    other = feature_extractor.fashion_classifier((32, 32, 3), 5)
    other.save_weights(out / feature_extractor.TRAINED_WEIGHTS_NAME)
    manifest["sha256"] = feature_extractor.sha256_of(out / feature_extractor.TRAINED_WEIGHTS_NAME)
    (out / feature_extractor.TRAINED_MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(feature_extractor.FeatureExtractorError, match=f"sha256 {manifest['sha256']}\\) does not fit the classifier"):
        feature_extractor.load_classifier(out)
    unlabeled = tmp_path / "no_manifest"
    unlabeled.mkdir()
    with pytest.raises(feature_extractor.FeatureExtractorError, match="No classifier manifest in"):
        evaluation.feature_space(f"classifier:{unlabeled}")
