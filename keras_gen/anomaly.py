"""Anomaly detection: ROC-AUC, thresholds at a false-positive rate, and the one-class protocol.

The one-class protocol, on any labeled source (Fashion-MNIST by default): a model is trained on the
training images of one class (the normal class), except for held-out images of that class, which
calibrate its score; it then scores all the test images, of which that class's are normal and the
others anomalies (on Fashion-MNIST 1,000 and 9,000). The figures
are the ROC-AUC of the scores (free of any threshold) and, at the threshold at which a chosen fraction of
the held-out normal images is flagged, the detection rate (the anomalies flagged) and the false-positive
rate met on the normal test images.

Scores are "higher means more anomalous" throughout; an image is flagged when its score is above the
threshold. `OneClassDetector` gives a model such a score, calibrated on held-out normal images, with
its thresholds stored among the model's weights so that exports carry them.

Example:
>>> roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
0.75
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf

from keras_gen.evaluation.client import ClientBuilt
from keras_gen.export import UNIT_INTERVAL
from keras_gen.export import Endpoint
from keras_gen.export import ValueRange

# Thresholds are stored for the false-positive rates 0, 1/1000, ..., 999/1000 of held-out normal data.
THRESHOLD_LEVELS = 1000


def _vector(values, name):
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array (one value per example), got shape {values.shape}.")
    return values


def _finite_scores(scores, name="scores"):
    scores = _vector(scores, name)
    if not (np.issubdtype(scores.dtype, np.number) and not np.issubdtype(scores.dtype, np.complexfloating)):
        raise ValueError(f"{name} must be real numbers, got dtype {scores.dtype}.")
    scores = scores.astype(np.float64)
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} hold {int(np.sum(~np.isfinite(scores)))} NaN or infinite value(s); score finite numbers only.")
    return scores


def _labels(is_anomaly, count):
    labels = _vector(is_anomaly, "is_anomaly")
    if len(labels) != count:
        raise ValueError(f"is_anomaly has {len(labels)} entries but there are {count} scores; give one label per score.")
    if labels.dtype != bool:
        if not np.issubdtype(labels.dtype, np.integer) or not np.all(np.isin(labels, (0, 1))):
            raise ValueError(f"is_anomaly must be booleans (or 0/1), got values like {labels[:5].tolist()} of dtype {labels.dtype}.")
        labels = labels.astype(bool)
    return labels


def roc_auc(scores, is_anomaly):
    """The area under the ROC curve of `scores` for telling anomalies from normal examples.

    Computed from ranks (the Mann-Whitney U statistic): the probability that a randomly chosen anomaly
    scores higher than a randomly chosen normal example, a tie counting one half.

    Args:
        scores: [n] real scores, higher meaning more anomalous.
        is_anomaly: [n] booleans (or 0/1), True for the anomalies.

    Returns:
        A float in [0, 1] (0.5: no better than chance).

    Raises:
        ValueError: for mismatched or non-finite inputs, or when either class is missing.
    """
    scores = _finite_scores(scores)
    labels = _labels(is_anomaly, len(scores))
    num_anomalies = int(labels.sum())
    num_normal = len(labels) - num_anomalies
    if not num_anomalies or not num_normal:
        missing = "anomalies" if not num_anomalies else "normal examples"
        raise ValueError(f"ROC-AUC needs both anomalies and normal examples; these {len(labels)} labels hold no {missing}.")
    # Tied scores share the mean of the ranks they span (1-based), which makes each tie count one half.
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)
    mean_rank = last_rank - (counts - 1) / 2.0
    ranks = mean_rank[inverse]
    u_statistic = ranks[labels].sum() - num_anomalies * (num_anomalies + 1) / 2.0
    return float(u_statistic / (num_anomalies * num_normal))


def threshold_at_fpr(normal_scores, fpr):
    """The lowest threshold at which at most a fraction `fpr` of `normal_scores` lies above it.

    Calibrate it on held-out normal data; then flag an example when its score is above the threshold. On
    the calibration scores the flagged fraction is at most `fpr` (below it where tied scores straddle the
    cut), and on new normal data about `fpr`.

    Args:
        normal_scores: [n] scores of held-out normal examples.
        fpr: the false-positive rate to allow, in [0, 1): a number, or an array of them.

    Returns:
        The threshold (one of the scores), with `fpr`'s shape.
    """
    scores = np.sort(_finite_scores(normal_scores, "normal_scores"))
    if not len(scores):
        raise ValueError("threshold_at_fpr needs held-out normal scores; it got none.")
    rates = np.asarray(fpr, dtype=np.float64)
    if not np.all((rates >= 0.0) & (rates < 1.0)):
        raise ValueError(f"fpr must be in [0, 1), got {fpr!r}.")
    # With k = ceil(n (1 - fpr)), n - k <= n fpr scores lie above the k-th smallest; the tolerance keeps
    # float rounding (e.g. 100 * (1 - 0.07) = 93.000...01) from moving k up by one.
    kept = np.ceil(len(scores) * (1.0 - rates) - 1e-9).astype(np.int64)
    return scores[np.clip(kept, 1, len(scores)) - 1]


def detection_rates(scores, is_anomaly, threshold):
    """{"detection_rate", "false_positive_rate"}: the fraction of anomalies and of normal examples whose
    score is above `threshold` (NaN for a class that is absent)."""
    scores = _finite_scores(scores)
    labels = _labels(is_anomaly, len(scores))
    flagged = scores > threshold

    def fraction(mask):
        return float(flagged[mask].mean()) if mask.any() else float("nan")

    return {"detection_rate": fraction(labels), "false_positive_rate": fraction(~labels)}


# === A calibrated score inside a model ===
class OneClassDetector:
    """Mixin for a `GenerativeModel` that scores anomalies: a standardised score, calibrated thresholds.

    The model gives, per image, raw terms (`score_terms(images)`, e.g. a reconstruction error and a log
    density) and their weights (`score_weights()`); the score is

        score = sum over terms k of weight_k * (term_k - mean_k) / std_k

    higher meaning more anomalous, with each term's mean and standard deviation those of held-out normal
    images, set by `calibrate(images)` (0 and 1 until then), so the terms are on one scale whatever the
    image size. `calibrate` also stores the thresholds at which the held-out images' false-positive
    rate is 0, 0.001, ..., 0.999 (`threshold_at_fpr`); `anomaly_threshold(fpr)` reads them back. Both
    live in the model's weights (the thresholds NaN until calibrated, so an uncalibrated threshold can
    never pass for a real one) and are exported with it.

    The model sets `normal_class` (None: trained on all classes), calls `add_calibration_weights()` in
    its constructor and adds `anomaly_endpoints()` to its serving endpoints. A recipe run trains a
    one-class detector on its normal class alone (`training_classes`) and calibrates it on its validation
    split (`after_training`), which it never trains on.
    """

    nan_sentinel_weights = ("score_thresholds",)

    def score_terms(self, images):
        """{name: per-image raw term}, in the order of `score_weights()`."""
        raise NotImplementedError(f"{type(self).__name__} must say which terms make its anomaly score.")

    def score_weights(self):
        """One weight per term of `score_terms` (its sign says which way is anomalous)."""
        raise NotImplementedError(f"{type(self).__name__} must weigh the terms of its anomaly score.")

    def add_calibration_weights(self, num_terms):
        """The calibration's weights: per term its mean and spread (0 and 1 until calibrated), and the thresholds."""
        self.score_statistics = self.add_weight(
            shape=(2 * num_terms,), initializer=keras.initializers.Constant([0.0, 1.0] * num_terms), trainable=False, name="score_statistics"
        )
        self.score_thresholds = self.add_weight(
            shape=(THRESHOLD_LEVELS,), initializer=keras.initializers.Constant(float("nan")), trainable=False, name="score_thresholds"
        )

    def anomaly_terms(self, images, statistics=None):
        """{score, and each raw term} per image; `statistics` replaces the calibrated ones (for `calibrate`)."""
        statistics = self.score_statistics if statistics is None else statistics
        terms = self.score_terms(images)
        statistics = tf.cast(statistics, tf.float32)
        score = 0.0
        for index, (term, weight) in enumerate(zip(terms.values(), self.score_weights())):
            score += weight * (term - statistics[2 * index]) / statistics[2 * index + 1]
        return {"score": score, **terms}

    def anomaly_score(self, images):
        return self.anomaly_terms(images)

    def anomaly_threshold(self, fpr):
        """The calibrated score threshold for each false-positive rate in [0, 1) (linear between the levels
        stored at 0, 0.001, ..., 0.999; a rate above 0.999 gets that level's; NaN before `calibrate`), and
        the model's normal class (-1: all classes)."""
        fpr = tf.cast(fpr, tf.float32)
        finite = tf.debugging.assert_all_finite(fpr, "fpr must be a false-positive rate in [0, 1), not NaN or infinite.")
        with tf.control_dependencies([finite]):
            fpr = tf.identity(fpr)
        position = tf.clip_by_value(fpr, 0.0, (THRESHOLD_LEVELS - 1) / THRESHOLD_LEVELS) * THRESHOLD_LEVELS
        below = tf.floor(position)
        above = tf.minimum(below + 1.0, THRESHOLD_LEVELS - 1)
        thresholds = tf.cast(self.score_thresholds, tf.float32)
        low = tf.gather(thresholds, tf.cast(below, tf.int32))
        high = tf.gather(thresholds, tf.cast(above, tf.int32))
        normal_class = -1 if self.normal_class is None else self.normal_class
        return {
            "threshold": low + (position - below) * (high - low),
            "normal_class": tf.fill(tf.shape(fpr), tf.constant(normal_class, tf.int64)),
        }

    def anomaly_endpoints(self):
        """The `anomaly_score(images)` and `anomaly_threshold(fpr)` serving endpoints."""
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        return [
            Endpoint("anomaly_score", self.anomaly_score, [images], {"images": UNIT_INTERVAL}),
            # A rate in [0, 1), as `threshold_at_fpr` and `keras-gen evaluate anomaly --fpr` take it; rates
            # above the last stored level (0.999) get that level's threshold.
            Endpoint("anomaly_threshold", self.anomaly_threshold, [tf.TensorSpec([None], tf.float32, name="fpr")], {"fpr": ValueRange(0.0, 1.0, high_exclusive=True)}),
        ]

    def calibrate(self, images, batch_size=500):
        """Sets the score's standardisation and thresholds from held-out normal images.

        Args:
            images: float images in [0, 1] that the model was not trained on, all of the normal class:
                an array, or a `tf.data.Dataset` of batches (of images, or of (images, labels)).
            batch_size: images scored at a time (for an array).

        Returns:
            {"num_images", and for each term "mean_<term>" and "std_<term>"}.
        """
        if isinstance(images, tf.data.Dataset):
            batches = (self.unpack(batch)[0] for batch in images)
        else:
            images = np.asarray(images)
            batches = (images[start : start + batch_size] for start in range(0, len(images), batch_size))
        scored = [self.score_terms(self.check_training_images(batch)) for batch in batches]
        if not scored:
            raise ValueError("calibrate needs held-out normal images; it got none.")
        names = list(scored[0])
        terms = {name: np.concatenate([np.asarray(batch[name], np.float64) for batch in scored]) for name in names}
        count = len(terms[names[0]])
        if count < 2:
            raise ValueError(f"calibrate needs at least 2 held-out normal images to estimate a spread, got {count}.")
        # A floor on the spreads keeps a degenerate term (e.g. a constant code density) from dividing by 0.
        statistics = [(terms[name].mean(), max(terms[name].std(), 1e-12)) for name in names]
        scores = sum(weight * (terms[name] - mean) / spread for name, weight, (mean, spread) in zip(names, self.score_weights(), statistics))
        levels = np.arange(THRESHOLD_LEVELS) / THRESHOLD_LEVELS
        self.score_statistics.assign(np.asarray(statistics, np.float32).reshape(-1))
        self.score_thresholds.assign(threshold_at_fpr(scores, levels).astype(np.float32))
        summary = {"num_images": count}
        for name, (mean, spread) in zip(names, statistics):
            summary.update({f"mean_{name}": float(mean), f"std_{name}": float(spread)})
        return summary

    def training_classes(self):
        """The classes a recipe trains on: the normal class of a one-class detector, else all (None)."""
        return None if self.normal_class is None else [self.normal_class]

    def after_training(self, datasets):
        """Called by the fit pipeline after `fit`: calibrates on the validation split."""
        if datasets.get("validation") is not None:
            self.calibrate(datasets["validation"])


# === Scoring models and exports ===
class AnomalyScorer(ClientBuilt):
    """Anomaly scores and calibrated thresholds of a model, live or exported.

    Build one with `AnomalyScorer.from_model` (a zoo model with `anomaly_score` and `anomaly_threshold`
    endpoints, e.g. `keras_gen.models.AAE` or `EBM`), `from_export` (a SavedModel's signatures, with TensorFlow
    alone) or `load` (either, from a path); all three go through `keras_gen.evaluation.ModelClient`.

    Args:
        score_fn: images float32 [n, h, w, c] -> scores [n].
        threshold_fn: fpr float32 [n] -> (thresholds [n], normal classes int64 [n]).
        name: what the tables call it.
    """

    def __init__(self, score_fn, threshold_fn, name="model"):
        self.score_fn = score_fn
        self.threshold_fn = threshold_fn
        self.name = name

    def score(self, images, batch_size=500):
        """Scores of `images` (float32 in [0, 1]), scored `batch_size` at a time."""
        images = np.asarray(images, np.float32)
        parts = [np.asarray(self.score_fn(images[start : start + batch_size])) for start in range(0, len(images), batch_size)]
        return np.concatenate(parts) if parts else np.zeros([0], np.float32)

    def calibration(self, fpr):
        """(threshold, normal class) at false-positive rate `fpr`; the threshold is NaN for an uncalibrated
        model and the class -1 for one trained on all classes."""
        thresholds, classes = self.threshold_fn(np.array([fpr], np.float32))
        return float(np.asarray(thresholds)[0]), int(np.asarray(classes)[0])

    @classmethod
    def from_client(cls, client, name=None):
        client.require(["anomaly_score", "anomaly_threshold"], "it cannot score anomalies (an `aae` or an `ebm` can)")

        def score_fn(images):
            return client("anomaly_score", images=images)["score"]

        def threshold_fn(fpr):
            outputs = client("anomaly_threshold", fpr=fpr)
            return outputs["threshold"], outputs["normal_class"]

        score_fn.client = client  # keeps a SavedModel's variables alive as long as the scorer
        return cls(score_fn, threshold_fn, name=name or client.name)

    @classmethod
    def load(cls, path, name=None):
        """From an export folder (`<export_dir>/<model>[/<version>]`) or a `.keras` checkpoint; named by its path."""
        return super().load(path, name=name or str(path))


# === The one-class protocol ===
def test_set(source="fashion_mnist", num_images=None, **options):
    """(images float32 [n, H, W, C] in [0, 1], labels int64 [n]): the test split of a labeled source, all
    of it or its first `num_images`. `options` go to `data.load_split_arrays` (e.g. image_size, channels,
    source_dir and data_dir)."""
    from keras_gen import data

    if num_images is not None and num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}.")
    opening = {key: options.pop(key) for key in ("source_dir", "data_dir", "label", "skip_corrupt") if key in options}
    opened = data.open_source(source, **opening) if isinstance(source, str) else source
    if opened.class_names is None:
        raise data.DataError(f"The one-class protocol needs labels, but {opened.name} has none; use a labeled source (for a folder: one sub-folder per class).")
    images, labels = data.load_split_arrays(opened, "test", limit=num_images, **options)
    return data.preprocess(images, "scale").numpy(), labels


def evaluate_one_class(scorer, images, labels, fpr=0.05, batch_size=500):
    """Scores a one-class detector on labelled images: the normal class is the scorer's own.

    Returns:
        {"name", "normal_class", "auroc", "threshold", "detection_rate", "false_positive_rate",
        "num_normal", "num_anomalies"}; the last four rates are NaN for an uncalibrated model.
    """
    threshold, normal_class = scorer.calibration(fpr)
    if normal_class < 0:
        raise ValueError(
            f"{scorer.name} was trained on all classes and has no normal class. The one-class protocol needs a model "
            "trained on one class, e.g. `keras-gen train aae --normal-class N` or `keras-gen train ebm --normal-class N` (or normal_class = N in the recipe's [model_options])."
        )
    labels = np.asarray(labels)
    is_anomaly = labels != normal_class
    scores = scorer.score(images, batch_size=batch_size)
    row = {
        "name": scorer.name,
        "normal_class": normal_class,
        "auroc": roc_auc(scores, is_anomaly),
        "threshold": threshold,
        "num_normal": int((~is_anomaly).sum()),
        "num_anomalies": int(is_anomaly.sum()),
    }
    if np.isnan(threshold):
        row.update(detection_rate=float("nan"), false_positive_rate=float("nan"))
    else:
        row.update(detection_rates(scores, is_anomaly, threshold))
    return row


def format_anomaly_table(rows, fpr, class_names=None, markdown=False):
    """The one-class table: per normal class its ROC-AUC, threshold, detection rate and test FPR, then the means."""
    class_names = class_names or ()
    header = ("normal class", "ROC-AUC", f"threshold (FPR {fpr:g})", "detection rate", "test FPR")

    def percent(value):
        return "n/a" if np.isnan(value) else f"{100 * value:.1f} %"

    lines = []
    for row in sorted(rows, key=lambda row: row["normal_class"]):
        label = f"{row['normal_class']} {class_names[row['normal_class']]}" if row["normal_class"] < len(class_names) else str(row["normal_class"])
        threshold = "n/a" if np.isnan(row["threshold"]) else f"{row['threshold']:.3f}"
        lines.append((label, f"{row['auroc']:.4f}", threshold, percent(row["detection_rate"]), percent(row["false_positive_rate"])))
    if rows:
        lines.append(
            (
                f"mean of {len(rows)}",
                f"{np.mean([row['auroc'] for row in rows]):.4f}",
                "",
                percent(np.mean([row["detection_rate"] for row in rows])),
                percent(np.mean([row["false_positive_rate"] for row in rows])),
            )
        )
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(f"{cell:<{widths[i]}}" if i == 0 else f"{cell:>{widths[i]}}" for i, cell in enumerate(line)) for line in [header, *lines]]
    out.insert(1, "-" * len(out[0]))
    return "\n".join(out)
