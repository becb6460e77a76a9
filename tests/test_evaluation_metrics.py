"""Sample-quality metrics (keras_gen.evaluation), the feature classifier and the FD callback.

The metrics are checked on cases with known answers; the models are tiny (8x8 images) and read
through a small stand-in feature space, since the shipped classifier reads 28x28 images.
"""

import shutil

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

from keras_gen import evaluation
from keras_gen import export
from keras_gen import feature_extractor
from keras_gen.callbacks import FrechetDistance
from keras_gen.models import VAE
from tests import helpers


def gaussian(n, dim=4, shift=0.0, scale=1.0, seed=0):
    return np.random.default_rng(seed).normal(shift, scale, size=(n, dim))


# === Fréchet distance ===
def test_frechet_distance_matches_the_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    dim = 5
    root_a = rng.normal(size=(dim, dim))
    covariance_a = root_a @ root_a.T + np.eye(dim)
    mean_a, mean_b = rng.normal(size=dim), rng.normal(size=dim)
    # Commuting covariances (a polynomial in covariance_a): the root of the product is exact.
    covariance_b = 0.5 * covariance_a + 0.25 * covariance_a @ covariance_a
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(
        (scipy.linalg.sqrtm(covariance_a) - scipy.linalg.sqrtm(covariance_b)).real @ (scipy.linalg.sqrtm(covariance_a) - scipy.linalg.sqrtm(covariance_b)).real
    )
    assert evaluation.frechet_distance(mean_a, covariance_a, mean_b, covariance_b) == pytest.approx(expected, rel=1e-8)
    # Same covariance: only the means differ.
    assert evaluation.frechet_distance(mean_a, covariance_a, mean_b, covariance_a) == pytest.approx(np.sum((mean_a - mean_b) ** 2), rel=1e-6)
    # Isotropic: |shift|^2 + d (s_a - s_b)^2.
    assert evaluation.frechet_distance(np.zeros(3), np.eye(3), np.full(3, 2.0), 9 * np.eye(3)) == pytest.approx(12.0 + 3 * 4.0)


def test_frechet_distance_of_samples_from_shifted_gaussians():
    same = evaluation.FeatureStatistics().update(gaussian(20000))
    assert evaluation.frechet_distance(same.mean, same.covariance, same.mean, same.covariance) == pytest.approx(0.0, abs=1e-6)
    shifted = evaluation.FeatureStatistics().update(gaussian(20000, shift=1.5, seed=1))
    # Closed form for N(0, I) vs N(1.5, I) in 4-d: 4 * 1.5^2 = 9; sampling noise is about 1%.
    distance = evaluation.frechet_distance(same.mean, same.covariance, shifted.mean, shifted.covariance)
    assert distance == pytest.approx(9.0, rel=0.03)


def test_frechet_distance_survives_singular_covariances_and_rejects_bad_shapes():
    # A dead feature (always 0) makes both covariances singular.
    a = np.concatenate([gaussian(50), np.zeros((50, 1))], axis=1)
    b = np.concatenate([gaussian(50, seed=1), np.zeros((50, 1))], axis=1)
    sa, sb = evaluation.FeatureStatistics().update(a), evaluation.FeatureStatistics().update(b)
    distance = evaluation.frechet_distance(sa.mean, sa.covariance, sb.mean, sb.covariance)
    assert np.isfinite(distance) and 0.0 <= distance < 2.0
    with pytest.raises(ValueError, match=r"must be \[d\] and \[d, d\]"):
        evaluation.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# === Streaming statistics ===
def test_streaming_statistics_equal_the_whole_set_and_keep_a_uniform_subset():
    features = gaussian(5000, dim=3, shift=100.0, seed=2)  # a large mean tests the merge's stability
    stats = evaluation.FeatureStatistics(max_kept=1000, seed=0)
    for start in range(0, len(features), 333):
        stats.update(features[start : start + 333])
    assert stats.count == 5000
    np.testing.assert_allclose(stats.mean, features.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(features, rowvar=False), rtol=1e-9)
    kept = stats.kept
    assert kept.shape == (1000, 3)
    # Every kept vector is one of the inputs, and they come from the whole stream, not its start.
    index = {tuple(row): i for i, row in enumerate(features.astype(np.float32))}
    positions = np.array([index[tuple(row)] for row in kept])
    assert len(set(positions)) == 1000
    assert 2000 < positions.mean() < 3000 and positions.max() > 4500


def test_streaming_statistics_reject_inconsistent_features():
    stats = evaluation.FeatureStatistics().update(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="width 2 cannot join statistics of width 3"):
        stats.update(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\[batch, dim\]"):
        evaluation.FeatureStatistics().update(np.zeros(5))


# === KID ===
def naive_mmd(a, b):
    """The unbiased MMD^2 with the cubic kernel, by explicit sums."""
    kernel = lambda x, y: (x @ y / a.shape[1] + 1.0) ** 3  # noqa: E731
    m = len(a)
    within_a = sum(kernel(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    within_b = sum(kernel(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    across = sum(kernel(a[i], b[j]) for i in range(m) for j in range(m)) / (m * m)
    return within_a + within_b - 2 * across


def test_kid_is_the_unbiased_cubic_mmd():
    a, b = gaussian(12, seed=0), gaussian(12, shift=0.5, seed=1)
    # One subset of the whole sets: exactly the MMD estimate.
    mean, std = evaluation.kernel_inception_distance(a, b, num_subsets=1, subset_size=12)
    # float32 kernels: agreement to about 1e-6 relative.
    assert mean == pytest.approx(naive_mmd(a, b), rel=1e-5) and std == 0.0


def test_kid_is_about_zero_for_one_distribution_and_grows_with_a_shift():
    options = dict(num_subsets=30, subset_size=300)
    same_mean, same_std = evaluation.kernel_inception_distance(gaussian(1000, seed=0), gaussian(1000, seed=1), **options)
    assert abs(same_mean) < 3 * same_std
    identical_mean, identical_std = evaluation.kernel_inception_distance(gaussian(1000), gaussian(1000), **options)
    assert abs(identical_mean) < 3 * identical_std
    shifted_mean, shifted_std = evaluation.kernel_inception_distance(gaussian(1000), gaussian(1000, shift=1.0, seed=1), **options)
    assert shifted_mean > 10 * shifted_std > 0 and shifted_mean > 20 * abs(same_mean)


def test_kid_rejects_too_few_vectors():
    with pytest.raises(ValueError, match="at least 2 feature vectors"):
        evaluation.kernel_inception_distance(gaussian(1), gaussian(10))


# === Precision and recall ===
def test_nearest_neighbour_radii_match_brute_force():
    features = gaussian(40, dim=3)
    radii = evaluation.nearest_neighbour_radii(features, k=3, chunk_size=7)
    distances = ((features[:, None] - features[None]) ** 2).sum(-1)
    expected = np.sort(distances, axis=1)[:, 3]
    np.testing.assert_allclose(radii, expected, rtol=1e-4)


def test_precision_and_recall_of_a_set_against_itself_are_one():
    features = gaussian(1000, dim=8)
    assert evaluation.precision_recall(features, features) == (1.0, 1.0)


def test_precision_and_recall_see_mode_dropping_and_disjoint_sets():
    rng = np.random.default_rng(0)
    # Real: two far-apart clusters; fake: only the first, drawn afresh.
    real = np.concatenate([rng.normal(0, 1, (500, 2)), rng.normal(50, 1, (500, 2))])
    fake = rng.normal(0, 1, (1000, 2))
    precision, recall = evaluation.precision_recall(real, fake)
    assert precision > 0.95
    assert 0.4 < recall < 0.55
    far = rng.normal(1000, 1, (300, 2))
    assert evaluation.precision_recall(real, far) == (0.0, 0.0)


# === Feature classifier ===
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


# === Evaluating samplers ===
def tiny_feature_model(classes=10):
    """A stand-in feature space for 8x8 images: the pixels are the features; the logits pick the class
    c nearest to 10 * (mean pixel), so a constant image of value (c + 0.2) / 10 reads as class c."""
    images = keras.Input((8, 8, 1))
    features = keras.layers.Flatten()(images)
    mean = keras.layers.GlobalAveragePooling2D()(images)
    # argmax_c of -(10 m - c)^2 = argmax_c of 20 c m - c^2.
    head = keras.layers.Dense(classes)
    logits = head(mean)
    head.set_weights([20.0 * np.arange(classes, dtype=np.float32)[None, :], -np.arange(classes, dtype=np.float32) ** 2])
    return keras.Model(images, [features, logits])


def class_images(labels, seed=0):
    rng = np.random.default_rng(seed)
    values = (np.asarray(labels, np.float32) + 0.2) / 10.0
    return (values[:, None, None, None] + rng.uniform(-0.01, 0.01, (len(labels), 8, 8, 1))).astype(np.float32)


def test_a_sampler_of_the_real_distribution_scores_like_the_real_set():
    real = helpers.tiny_images(600, seed=1, binary=False)
    quality = evaluation.SampleQuality(evaluation.FeatureSpace(tiny_feature_model()), reference_images=real)
    copy = evaluation.Sampler(lambda seeds, labels: real[seeds], name="copy")
    same = quality.evaluate(copy, num_samples=600, batch_size=128)
    assert same["frechet_distance"] == pytest.approx(0.0, abs=1e-6)
    assert (same["precision"], same["recall"]) == (1.0, 1.0)
    assert abs(same["kid_mean"]) < 1e-3 and same["num_samples"] == 600
    noise = evaluation.Sampler(lambda seeds, labels: np.random.default_rng(int(seeds[0])).uniform(size=(len(seeds), 8, 8, 1)), name="noise")
    bad = quality.evaluate(noise, num_samples=300)
    assert bad["frechet_distance"] > 1.0 and bad["kid_mean"] > 0.01 and bad["precision"] < 0.1


def test_conditional_samplers_get_per_class_accuracy():
    real_labels = np.arange(500) % 10
    quality = evaluation.SampleQuality(
        evaluation.FeatureSpace(tiny_feature_model()), reference_images=class_images(real_labels), reference_labels=real_labels
    )
    # Draws the class asked for, except class 3, which it draws as class 4.
    sampler = evaluation.Sampler(lambda seeds, labels: class_images(np.where(labels == 3, 4, labels), seed=int(seeds[0])), conditional=True)
    result = quality.evaluate(sampler, num_samples=200, batch_size=64)
    assert result["class_accuracy"] == {c: (0.0 if c == 3 else 1.0) for c in range(10)}
    table = evaluation.format_quality_table({"model": result})
    assert "Coat" in table and "FD" in table and "±" in table
    with pytest.raises(ValueError, match="class-conditional: pass labels"):
        sampler(np.arange(3))


def test_sampler_from_model_and_from_its_export_draw_the_same_images(tmp_path):
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    live = evaluation.Sampler.from_model(model)
    seeds = np.arange(5)
    exported = evaluation.Sampler.from_export(export.export_model(model, tmp_path / "exports"))
    np.testing.assert_allclose(exported(seeds), live(seeds), atol=1e-6)
    assert not live.conditional and exported.name == "vae"
    with pytest.raises(FileNotFoundError, match="neither a .keras checkpoint nor an export folder"):
        evaluation.Sampler.load(tmp_path / "missing")


# === The training callback ===
def read_scalars(run_dir, tag):
    values = []
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    values.append((event.step, float(tf.make_ndarray(value.tensor))))
    return values


def test_frechet_distance_callback_logs_the_distance_of_fixed_samples_each_epoch(tmp_path):
    real = helpers.tiny_images(256, seed=3, binary=False)
    quality = evaluation.SampleQuality(evaluation.FeatureSpace(tiny_feature_model()), reference_images=real)
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    model.compile(optimizer="adam")
    callback = FrechetDistance(tmp_path, num_samples=64, quality=quality)
    history = model.fit(helpers.tiny_images(32), batch_size=8, epochs=2, verbose=0, callbacks=[callback])
    logged = read_scalars(tmp_path / "train", "epoch_frechet_distance")
    assert [step for step, _ in logged] == [0, 1]
    assert [value for _, value in logged] == pytest.approx(history.history["frechet_distance"], rel=1e-6)
    # The same seeds each time: recomputed now, it equals the last logged value.
    assert callback.distance() == pytest.approx(logged[-1][1], rel=1e-5)
    # Computed independently from the model's samples.
    stats = evaluation.FeatureStatistics().update(model.sample(tf.range(64, dtype=tf.int64))["images"].numpy().reshape(64, -1))
    assert quality.frechet_distance(stats) == pytest.approx(logged[-1][1], rel=1e-4)


def test_frechet_distance_callback_refuses_a_feature_space_of_another_image_shape(tmp_path):
    model = VAE(image_shape=(16, 16, 1), latent_dim=2, seed=0)
    model.compile(optimizer="adam")
    quality = evaluation.SampleQuality(evaluation.FeatureSpace(tiny_feature_model()), reference_images=helpers.tiny_images(16))
    with pytest.raises(ValueError, match=r"reads images of shape \(8, 8, 1\), but the model makes \(16, 16, 1\)"):
        model.fit(np.zeros((8, 16, 16, 1), np.float32), epochs=1, verbose=0, callbacks=[FrechetDistance(tmp_path, quality=quality)])


# === `keras-gen evaluate EXPORT_DIR --num-samples N` ===
def test_cli_evaluate_prints_the_sample_quality_table_for_an_export(tmp_path, capsys):
    from keras_gen import cli

    source = tmp_path / "fashion"
    helpers.make_fake_source(source, seed=0, num_train=60, num_test=40)
    model = VAE(image_shape=(28, 28, 1), latent_dim=2, seed=0)
    path = export.export_model(model, tmp_path / "exports")
    args = ["evaluate", str(path.parent), "--num-samples", "30", "--data-dir", str(source), "--tfds-dir", str(tmp_path / "tfds")]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "30 samples (seeds 0..29) against 40 Fashion-MNIST test images" in out
    assert "not comparable with Inception FIDs" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("vae ", "real ", "uniform "))}
    assert set(rows) == {"vae", "real", "uniform"} and "real train vs test" in rows["real"]
    # FD, KID mean ± std, precision, recall, samples on each row.
    assert all(len(row.split()) >= 7 and row.split()[-1] == "30" for row in rows.values()), rows
    assert "Scored in" in out
    # A folder with no export in it is an error that says what to pass.
    assert cli.main(["evaluate", str(tmp_path), "--num-samples", "30"]) == 2
    assert "neither a saved_model.pb nor integer version folders" in capsys.readouterr().err


def test_train_zoo_rewrites_only_its_own_part_of_a_card():
    import importlib.util
    import pathlib

    spec = importlib.util.spec_from_file_location("train_zoo", pathlib.Path(__file__).parent.parent / "bench" / "train_zoo.py")
    train_zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_zoo)
    written_by_hand = "# vae\n\nNotes by the recipe's author.\n"
    first = train_zoo.splice(written_by_hand, "run 1")
    assert first.startswith(written_by_hand) and first.count(train_zoo.BEGIN) == 1 and "run 1" in first
    edited = first + "\nMore notes, added after the first run.\n"
    second = train_zoo.splice(edited, "run 2")
    assert "run 1" not in second and "run 2" in second
    assert second.startswith(written_by_hand) and second.endswith("\nMore notes, added after the first run.\n")
