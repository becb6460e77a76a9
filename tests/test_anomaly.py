"""keras_gen.anomaly: ROC-AUC, calibrated thresholds, and the one-class evaluation around them."""

import itertools

import keras_gen  # noqa: F401
import numpy as np
import pytest

from keras_gen import anomaly
from keras_gen import data


def pairwise_auc(scores, is_anomaly):
    """The definition itself: over all (anomaly, normal) pairs, 1 if the anomaly scores higher, 1/2 on a tie."""
    scores, is_anomaly = np.asarray(scores), np.asarray(is_anomaly, bool)
    pairs = list(itertools.product(scores[is_anomaly], scores[~is_anomaly]))
    return sum(1.0 if a > n else 0.5 if a == n else 0.0 for a, n in pairs) / len(pairs)


def test_roc_auc_of_a_hand_checked_case_with_a_tie():
    # normal: 0.1, 0.4, 0.6; anomalies: 0.35, 0.6, 0.9. The 9 (anomaly, normal) pairs:
    #   0.35 vs 0.1 -> 1, vs 0.4 -> 0, vs 0.6 -> 0
    #   0.6  vs 0.1 -> 1, vs 0.4 -> 1, vs 0.6 -> 1/2 (tie)
    #   0.9  vs 0.1 -> 1, vs 0.4 -> 1, vs 0.6 -> 1
    # AUC = 6.5 / 9.
    scores = [0.1, 0.35, 0.4, 0.6, 0.6, 0.9]
    is_anomaly = [False, True, False, False, True, True]
    assert anomaly.roc_auc(scores, is_anomaly) == pytest.approx(6.5 / 9)
    # 0/1 labels are the same labels.
    assert anomaly.roc_auc(scores, [0, 1, 0, 0, 1, 1]) == pytest.approx(6.5 / 9)


def test_roc_auc_extremes_and_ties():
    assert anomaly.roc_auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert anomaly.roc_auc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert anomaly.roc_auc([7, 7, 7, 7, 7], [0, 1, 0, 1, 1]) == 0.5  # all tied: every pair counts 1/2


def test_roc_auc_matches_the_pairwise_definition_on_heavily_tied_scores():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=60)  # 5 distinct values among 60 scores: many ties
    is_anomaly = rng.uniform(size=60) < 0.3
    assert anomaly.roc_auc(scores, is_anomaly) == pytest.approx(pairwise_auc(scores, is_anomaly), abs=1e-12)


@pytest.mark.parametrize(
    "scores, labels, message",
    [
        ([1.0, 2.0, 3.0], [0, 0, 0], "no anomalies"),
        ([1.0, 2.0, 3.0], [True, True, True], "no normal examples"),
        ([1.0, 2.0], [0, 1, 1], "one label per score"),
        ([1.0, np.nan, 3.0], [0, 1, 1], "NaN or infinite"),
        ([[1.0, 2.0]], [0, 1], "1-d array"),
        ([1.0, 2.0, 3.0], [0, 2, 1], "booleans"),
        (["a", "b"], [0, 1], "real numbers"),
    ],
)
def test_roc_auc_rejects_bad_input_clearly(scores, labels, message):
    with pytest.raises(ValueError, match=message):
        anomaly.roc_auc(scores, labels)


def test_threshold_at_fpr_flags_at_most_that_fraction_of_normal_scores():
    scores = np.random.default_rng(1).permutation(np.arange(1.0, 101.0))  # 1..100 in random order
    assert anomaly.threshold_at_fpr(scores, 0.05) == 95.0  # 96..100 lie above: 5 of 100
    assert anomaly.threshold_at_fpr(scores, 0.07) == 93.0  # 100 * (1 - 0.07) rounds to 93.000...01
    assert anomaly.threshold_at_fpr(scores, 0.0) == 100.0  # flag none
    assert anomaly.threshold_at_fpr(scores, 0.995) == 1.0  # flag all but the lowest
    np.testing.assert_array_equal(anomaly.threshold_at_fpr(scores, np.array([0.1, 0.5])), [90.0, 50.0])
    normal = np.random.default_rng(2).normal(size=337)
    for fpr in (0.01, 0.05, 0.1, 0.3):
        flagged = np.mean(normal > anomaly.threshold_at_fpr(normal, fpr))
        assert fpr - 1 / 337 < flagged <= fpr


def test_threshold_at_fpr_with_ties_never_exceeds_the_rate():
    # Four tied lowest scores: no threshold flags between 1 and 4 of the five, so at fpr 0.5 only the 2 is.
    assert anomaly.threshold_at_fpr([1, 1, 2, 1, 1], 0.2) == 1.0
    assert anomaly.threshold_at_fpr([1, 1, 2, 1, 1], 0.5) == 1.0
    assert anomaly.detection_rates([1, 1, 2, 1, 1], [0, 0, 0, 0, 0], 1.0)["false_positive_rate"] == pytest.approx(0.2)


@pytest.mark.parametrize("fpr", [1.0, -0.1, 1.5])
def test_threshold_at_fpr_rejects_rates_outside_0_1(fpr):
    with pytest.raises(ValueError, match=r"fpr must be in \[0, 1\)"):
        anomaly.threshold_at_fpr([1.0, 2.0], fpr)


def test_threshold_at_fpr_needs_scores():
    with pytest.raises(ValueError, match="got none"):
        anomaly.threshold_at_fpr([], 0.1)


def test_detection_rates():
    rates = anomaly.detection_rates([0.1, 0.9, 0.5, 0.7, 0.2], [False, True, True, False, False], 0.6)
    assert rates == {"detection_rate": 0.5, "false_positive_rate": pytest.approx(1 / 3)}


def constant_scorer(normal_class, threshold):
    """A scorer whose score is an image's mean pixel value."""
    return anomaly.AnomalyScorer(
        lambda images: np.asarray(images).mean(axis=(1, 2, 3)),
        lambda fpr: (np.full(len(fpr), threshold, np.float32), np.full(len(fpr), normal_class, np.int64)),
        name="mean pixel",
    )


def test_evaluate_one_class_scores_the_normal_class_against_the_rest():
    images = np.concatenate([np.full((4, 2, 2, 1), 0.1), np.full((4, 2, 2, 1), 0.9)]).astype(np.float32)
    labels = np.array([3, 3, 3, 3, 1, 5, 7, 8])
    row = anomaly.evaluate_one_class(constant_scorer(3, 0.5), images, labels, fpr=0.05, batch_size=3)
    assert row["normal_class"] == 3 and row["auroc"] == 1.0
    assert row["detection_rate"] == 1.0 and row["false_positive_rate"] == 0.0
    assert row["num_normal"] == 4 and row["num_anomalies"] == 4
    uncalibrated = anomaly.evaluate_one_class(constant_scorer(3, np.nan), images, labels)
    assert uncalibrated["auroc"] == 1.0 and np.isnan(uncalibrated["detection_rate"])
    table = anomaly.format_anomaly_table([row, {**uncalibrated, "normal_class": 1}], fpr=0.05, class_names=data.CLASS_NAMES)
    assert "3 Dress" in table and "1 Trouser" in table and "n/a" in table and "mean of 2" in table
    markdown = anomaly.format_anomaly_table([row], fpr=0.05, markdown=True)
    assert markdown.splitlines()[0].startswith("| normal class | ROC-AUC")
    assert "| 3 |" in markdown  # without class names, the index alone


def test_evaluate_one_class_needs_a_one_class_model():
    with pytest.raises(ValueError, match="trained on all classes"):
        anomaly.evaluate_one_class(constant_scorer(-1, 0.5), np.zeros((2, 2, 2, 1), np.float32), np.array([0, 1]))


def test_scorer_load_rejects_what_is_not_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a .keras checkpoint, an export folder .* nor a preset"):
        anomaly.AnomalyScorer.load(tmp_path / "nope.keras")
