"""Sample quality of a generative model against real images: Fréchet distance, KID, precision/recall.

Generated images and a fixed set of real ones, the reference set, pass through one feature space
(`features`) and are compared with the measures of `metrics`. The reference set is the test split of
the model's own dataset (its dataset record: source, image size, channels, held-out splits), or its
validation split for model selection, or the training split (what the training callback uses, so the
test set is never used to choose a model). Each result is printed beside two reference points computed
the same way: real images of another split (the floor a perfect generator would reach) and uniform
noise (for scale; an untrained generator can score worse still).

Images pass through the feature space batch by batch and only their features are kept: a streaming
mean and covariance (all samples) and a uniform subset of at most `max_kept` feature vectors for
KID and precision/recall, so memory does not grow with the number of samples.

Example:
>>> quality = SampleQuality(feature_space("inception"), dataset=sampler.dataset)
>>> quality.evaluate(Sampler.from_export("exports/dcgan_cifar10"), num_samples=10000)
{'frechet_distance': ..., 'kid_mean': ..., 'kid_std': ..., 'precision': ..., 'recall': ..., ...}
"""

import time

import keras_gen  # noqa: F401
import numpy as np

from keras_gen import data
from keras_gen.evaluation.features import FeatureSpace
from keras_gen.evaluation.metrics import DEFAULT_METRIC_SAMPLES
from keras_gen.evaluation.metrics import KID_MIN_SUBSET_SIZE
from keras_gen.evaluation.metrics import KID_SUBSET_SIZE
from keras_gen.evaluation.metrics import FeatureStatistics
from keras_gen.evaluation.metrics import fraction_inside
from keras_gen.evaluation.metrics import frechet_distance
from keras_gen.evaluation.metrics import frechet_distance_of_vectors
from keras_gen.evaluation.metrics import kernel_inception_distance
from keras_gen.evaluation.metrics import kid_subset_size
from keras_gen.evaluation.metrics import nearest_neighbour_radii

REFERENCE_SPLITS = ("test", "validation", "train")
# Real images converted to float and read at a time (a multiple of every space's batch size, so the
# batches the feature model sees do not depend on it).
_CHUNK = 1000
# The figures whose spread over seed blocks `SampleQuality.spread` measures (the presets' headline figures).
SPREAD_FIGURES = ("frechet_distance", "kid_mean", "precision", "recall")


def _as_unit_float(images):
    images = np.asarray(images)
    return images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images


class SampleQuality:
    """Sample-quality metrics of generated images against a fixed set of real images.

    The real set's features, statistics and k-NN radii are computed once and reused for every model
    and reference row.

    Args:
        feature_space: a `FeatureSpace` (None: the shipped Fashion-MNIST classifier's).
        reference: "test" (the default: final reporting), "validation" (model selection) or "train"
            (during training): the split of the dataset that the samples are compared with.
        max_reference: at most this many real images (the first of a seeded shuffle).
        max_kept: feature vectors kept of each evaluated set for KID and precision/recall.
        seed: seed of the shuffles, subsets and noise.
        reference_images: images [n, h, w, c] (float in [0, 1], or uint8) to use instead of a split of
            `dataset` (with their `reference_labels`, optionally).
        source_dir: Fashion-MNIST IDX folder (see `keras_gen.data`).
        data_dir: TFDS data folder (see `keras_gen.data`).
        dataset: the dataset record of the model (`data.read_record`); None: Fashion-MNIST.
        kid_subset_size: vectors per KID subset; fewer when a set is smaller (the result says so), and an
            error below `metrics.KID_MIN_SUBSET_SIZE`.
    """

    def __init__(
        self,
        feature_space=None,
        reference="test",
        max_reference=DEFAULT_METRIC_SAMPLES,
        max_kept=DEFAULT_METRIC_SAMPLES,
        seed=0,
        reference_images=None,
        reference_labels=None,
        source_dir=None,
        data_dir=None,
        dataset=None,
        kid_subset_size=KID_SUBSET_SIZE,
    ):
        if reference not in REFERENCE_SPLITS:
            raise ValueError(f"reference must be one of {', '.join(REFERENCE_SPLITS)}, got {reference!r}.")
        self.space = feature_space or FeatureSpace()
        self.reference = reference
        self.max_kept = int(max_kept)
        self.seed = int(seed)
        self.kid_subset_size = int(kid_subset_size)
        self.dataset = dataset or data.record_for_source("fashion_mnist", data.fashion_mnist.IMAGE_SHAPE, source_dir=source_dir, data_dir=data_dir)
        self._data_options = {"source_dir": source_dir, "data_dir": data_dir}
        if reference_images is None:
            reference_images, reference_labels = self._real_images(reference, max_reference)
        if len(reference_images) < KID_MIN_SUBSET_SIZE:
            raise ValueError(
                f"The reference set ({self.reference_name}) holds {len(reference_images)} images; sample-quality metrics need at "
                f"least {KID_MIN_SUBSET_SIZE}. Use a larger split (--reference) or dataset (--data)."
            )
        self.image_shape = tuple(np.shape(reference_images)[1:])
        self.reference_labels = None if reference_labels is None else np.asarray(reference_labels)
        features, logits = self._features(reference_images)
        self.reference_stats = FeatureStatistics(max_kept=len(features), seed=self.seed).update(features)
        self.reference_logits = logits
        self._reference_centre = self.reference_stats.kept.mean(axis=0)
        self._reference_radii = None  # computed on first use: the FD-only callback never needs them

    @property
    def reference_name(self):
        return f"{self.dataset.get('source', 'the dataset')} {self.reference} split"

    def _features(self, images):
        features, logits = [], []
        for start in range(0, len(images), _CHUNK):
            chunk_features, chunk_logits = self.space(_as_unit_float(images[start : start + _CHUNK]))
            features.append(chunk_features)
            if chunk_logits is not None:
                logits.append(chunk_logits)
        return np.concatenate(features), (np.concatenate(logits) if logits else None)

    def _real_images(self, split, count):
        """Up to `count` uint8 images of `split` (a seeded shuffle's first) and their labels."""
        # Real training images beside a validation reference leave the validation images out.
        held_out = split == "train" and self.reference == "validation"
        images, labels = data.load_record_split(self.dataset, split, hold_out_validation=held_out, **self._data_options)
        order = np.random.default_rng(self.seed).permutation(len(images))[:count]
        return images[order], labels[order]

    def statistics(self, batches):
        """Streams `batches` of images (or (images, labels)) through the feature space.

        Returns:
            (FeatureStatistics, per-class [correct, total] counts int64 [classes, 2] or None). The counts
            compare the classifier's prediction with each batch's labels, when batches carry labels.
        """
        stats = FeatureStatistics(max_kept=self.max_kept, seed=self.seed)
        counts = None
        for batch in batches:
            images, labels = batch if isinstance(batch, tuple) else (batch, None)
            features, logits = self.space(_as_unit_float(images))
            stats.update(features)
            if labels is not None and logits is not None:
                if counts is None:
                    counts = np.zeros((logits.shape[1], 2), np.int64)
                labels = np.asarray(labels, np.int64)
                np.add.at(counts, (labels, 0), (logits.argmax(axis=1) == labels).astype(np.int64))
                np.add.at(counts, (labels, 1), 1)
        if stats.count < 2:
            raise ValueError(f"Sample-quality metrics need at least 2 images, got {stats.count}.")
        return stats, counts

    def frechet_distance(self, stats):
        """The Fréchet distance of `stats` (a `FeatureStatistics`) to the real set."""
        reference = self.reference_stats
        everything_kept = stats.count <= stats.max_kept and reference.count <= reference.max_kept
        if everything_kept and max(stats.count, reference.count) < len(stats.mean):
            # Fewer vectors than dimensions, all of them at hand: the same distance from the vectors, quicker.
            return frechet_distance_of_vectors(reference.kept, stats.kept)
        return frechet_distance(reference.mean, reference.covariance, stats.mean, stats.covariance)

    def compare(self, stats):
        """{frechet_distance, kid_mean, kid_std, kid_subset_size, precision, recall, num_samples} of `stats`
        against the real set."""
        reference = self.reference_stats
        size = kid_subset_size(len(reference.kept), len(stats.kept), self.kid_subset_size)
        kid_mean, kid_std = kernel_inception_distance(reference.kept, stats.kept, subset_size=size, seed=self.seed)
        real = reference.kept - self._reference_centre
        fake = stats.kept - self._reference_centre
        if self._reference_radii is None:
            self._reference_radii = nearest_neighbour_radii(real)
        fake_radii = nearest_neighbour_radii(fake)
        return {
            "frechet_distance": self.frechet_distance(stats),
            "kid_mean": kid_mean,
            "kid_std": kid_std,
            "kid_subset_size": size,
            "precision": fraction_inside(fake, real, self._reference_radii),
            "recall": fraction_inside(real, fake, fake_radii),
            "num_samples": int(stats.count),
        }

    def evaluate_images(self, batches):
        """The metrics of real or generated image batches (see `statistics`), with `class_accuracy` when
        the batches carry labels and the feature space classifies."""
        stats, counts = self.statistics(batches)
        result = self.compare(stats)
        if counts is not None:
            result["class_accuracy"] = _accuracies(counts)
        return result

    def num_classes(self):
        """The classes a conditional sampler is asked for: the classifier's, else the dataset's (else 10)."""
        if self.reference_logits is not None:
            return self.reference_logits.shape[1]
        names = self.dataset.get("class_names")
        return len(names) if names else len(data.CLASS_NAMES)

    def evaluate(self, sampler, num_samples=DEFAULT_METRIC_SAMPLES, batch_size=500, first_seed=0, num_classes=None):
        """Draws `num_samples` images from `sampler` (seeds first_seed, first_seed + 1, ...) and scores them.

        A class-conditional sampler is asked for the classes in turn (0, 1, ..., 0, 1, ...), so every class
        gets the same share; with a classifier's feature space the result then holds `class_accuracy`:
        per class, how often the classifier recognises a sample generated for that class as that class.

        Returns:
            The `compare` dict, plus `class_accuracy` ({class id: accuracy}) for conditional samplers and
            a classifying feature space, and `seconds` (sampling excluded: feature extraction and metrics
            only) and `sampling_seconds`.
        """
        if num_samples < 2:
            raise ValueError(f"num_samples must be at least 2, got {num_samples}.")
        classes = num_classes or self.num_classes()
        timing = {"sampling": 0.0}

        def batches():
            for start in range(first_seed, first_seed + num_samples, batch_size):
                seeds = np.arange(start, min(start + batch_size, first_seed + num_samples), dtype=np.int64)
                labels = seeds % classes if sampler.conditional else None
                began = time.perf_counter()
                images = sampler(seeds, labels)
                timing["sampling"] += time.perf_counter() - began
                yield (images, labels) if sampler.conditional else images

        began = time.perf_counter()
        result = self.evaluate_images(batches())
        result["seconds"] = time.perf_counter() - began - timing["sampling"]
        result["sampling_seconds"] = timing["sampling"]
        return result

    def spread(self, sampler, num_samples=1000, blocks=5, first_seed=0):
        """How much the headline figures of `num_samples` samples vary with the seeds: `evaluate` on
        `blocks` disjoint blocks of seeds (first_seed, first_seed + num_samples, ...).

        Returns:
            {"num_samples", "blocks", "first_seed", and per figure (frechet_distance, kid_mean, precision,
            recall) {"first_block": the first block's value, "mean", "std" (over the blocks, ddof 1)}}:
            a later `evaluate(sampler, num_samples, first_seed=first_seed)` of the same model should land
            within a few `std` of `mean` (the first block exactly, on the same machine and versions).
        """
        if blocks < 2:
            raise ValueError(f"blocks must be at least 2 to measure a spread, got {blocks}.")
        runs = [self.evaluate(sampler, num_samples=num_samples, first_seed=first_seed + block * num_samples) for block in range(blocks)]
        figures = {"num_samples": int(num_samples), "blocks": int(blocks), "first_seed": int(first_seed)}
        for key in SPREAD_FIGURES:
            values = np.array([run[key] for run in runs], np.float64)
            figures[key] = {"first_block": float(values[0]), "mean": float(values.mean()), "std": float(values.std(ddof=1))}
        return figures

    def reference_rows(self, num_samples=DEFAULT_METRIC_SAMPLES, batch_size=500, class_accuracy=False):
        """The reference points, scored like a model with `num_samples` images:

        - "real train vs test" (or "real test vs train" when the reference is the training split): real
          images of the other split; the floor, what a generator of the data distribution would get;
          with `class_accuracy`, also the classifier's accuracy per class on them (the ceiling of a
          conditional model's `class_accuracy`);
        - "uniform noise": pixels drawn uniformly from [0, 1]; what a generator that learnt nothing gets.
        """
        other = "test" if self.reference == "train" else "train"
        images, labels = self._real_images(other, num_samples)

        def real():
            for start in range(0, len(images), batch_size):
                batch = images[start : start + batch_size]
                yield (batch, labels[start : start + batch_size]) if class_accuracy else batch

        rng = np.random.default_rng(self.seed + 1)
        noise = (
            rng.uniform(size=(min(batch_size, num_samples - start), *self.image_shape)).astype(np.float32)
            for start in range(0, num_samples, batch_size)
        )
        return {f"real {other} vs {self.reference}": self.evaluate_images(real()), "uniform noise": self.evaluate_images(noise)}


def _accuracies(counts):
    return {int(label): float(correct / total) for label, (correct, total) in enumerate(counts) if total > 0}


def format_quality_table(rows, class_names=data.CLASS_NAMES):
    """A plain-text table of `{row name: metrics dict}`: FD, KID mean ± std, precision, recall; and a
    per-class accuracy table below it when any row has `class_accuracy`."""
    header = f"{'':<28} {'FD':>9} {'KID (mean ± std)':>22} {'precision':>9} {'recall':>7} {'samples':>8}"
    lines = [header, "-" * len(header)]
    for name, row in rows.items():
        kid = f"{row['kid_mean']:.4f} ± {row['kid_std']:.4f}"
        lines.append(
            f"{name:<28} {row['frechet_distance']:>9.3f} {kid:>22} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['num_samples']:>8d}"
        )
    with_classes = {name: row["class_accuracy"] for name, row in rows.items() if "class_accuracy" in row}
    if with_classes:
        lines += ["", "Classifier accuracy per class (conditional samples: how often a sample asked for the class is recognised as it)"]
        names = list(with_classes)
        lines.append(f"{'class':<14}" + "".join(f" {name[:24]:>24}" for name in names))
        for label in sorted({label for accuracies in with_classes.values() for label in accuracies}):
            title = class_names[label] if label < len(class_names) else str(label)
            cells = "".join(f" {with_classes[name][label]:>24.3f}" if label in with_classes[name] else f" {'':>24}" for name in names)
            lines.append(f"{title:<14}" + cells)
    return "\n".join(lines)
