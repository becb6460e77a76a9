"""keras_gen.evaluation.metrics: FD, KID, precision/recall and the streaming statistics, on cases with
known answers."""

import keras_gen  # noqa: F401
import numpy as np
import pytest
import scipy.linalg

from keras_gen import evaluation


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


def test_frechet_distance_equals_the_sqrtm_trace_of_the_reference_code_and_the_low_rank_route():
    # The FID reference implementations take Tr(sqrtm(A B)); the symmetric route gives the same number.
    rng = np.random.default_rng(3)
    for dim, count in ((16, 400), (64, 40)):  # full rank, and rank-deficient (fewer samples than dimensions)
        a, b = rng.normal(size=(count, dim)), rng.normal(1.0, 2.0, size=(count, dim)) @ rng.normal(size=(dim, dim))
        mean_a, mean_b, cov_a, cov_b = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        root = scipy.linalg.sqrtm(cov_a @ cov_b).real
        expected = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root)
        assert evaluation.frechet_distance(mean_a, cov_a, mean_b, cov_b) == pytest.approx(expected, rel=1e-6)
        assert evaluation.frechet_distance_of_vectors(a, b) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="NaN or infinite"):
        evaluation.frechet_distance(np.zeros(2), np.full((2, 2), np.nan), np.zeros(2), np.eye(2))


def test_kid_subset_size_shrinks_to_the_smaller_set_and_refuses_below_the_minimum():
    assert evaluation.kid_subset_size(5000, 20000) == evaluation.KID_SUBSET_SIZE
    assert evaluation.kid_subset_size(300, 20000) == 300
    assert evaluation.kid_subset_size(evaluation.KID_MIN_SUBSET_SIZE, 50) == evaluation.KID_MIN_SUBSET_SIZE
    with pytest.raises(ValueError, match=f"at least {evaluation.KID_MIN_SUBSET_SIZE} feature vectors in each set, got 9 and 50.*--num-samples"):
        evaluation.kid_subset_size(9, 50)
