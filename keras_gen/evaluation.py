"""Evaluation of trained models on held-out images: plain functions, one per measure.

Likelihood of the zoo's VAEs: the importance-weighted bound (IWAE; Burda et al., 2016),

    log p(x) >= L_k = E[log (1/k) sum_s p(x | z_s) p(z_s) / q(z_s | x)],  z_1..z_k ~ q(z | x),

which equals the ELBO at k = 1 and rises towards log p(x) as k grows. The terms come from the model's
own hooks (`latent_terms` draws z and gives log p(z) - log q(z | x), for a hierarchy the joint over its
groups; `likelihood` gives p(x | z)), so every VAE of the zoo is evaluated the same way. The k samples
are drawn in chunks and combined with a running log-sum-exp, so k = 1000 fits in memory.

Example:
>>> from keras_gen import evaluation
>>> test = evaluation.fashion_mnist_test_set("binarize", batch_size=20, num_images=1000)
>>> evaluation.evaluate_likelihood(vae, test, num_samples=1000)["nll_bound"]  # doctest: +SKIP
"""

import contextlib
import math
import pathlib
import time
import warnings

import keras_gen  # noqa: F401
import keras
import numpy as np
import scipy.linalg
import tensorflow as tf

from keras_gen import data
from keras_gen import feature_extractor

DEFAULT_NUM_SAMPLES = 1000
# Importance samples per image decoded in one pass, times the images in a batch, bounds the memory.
DEFAULT_CHUNK_SIZE = 100


def check_latent_variable_model(model):
    """Raises a ValueError unless `model` has the VAE hooks that the likelihood bounds need."""
    if not (hasattr(model, "latent_terms") and hasattr(model, "likelihood")):
        raise ValueError(
            f"{type(model).__name__} is not a latent-variable model with a likelihood (it lacks `latent_terms` "
            "and `likelihood`); the ELBO and IWAE bounds apply to the zoo's VAEs (vae, cvae, gmvae, hvae)."
        )


def likelihood_preprocessing(model):
    """The data preprocessing a model's likelihood is defined on: "binarize" for a Bernoulli decoder, else "scale"."""
    return "binarize" if getattr(model, "likelihood_kind", "bernoulli") == "bernoulli" else "scale"


def fashion_mnist_test_set(preprocessing, batch_size, num_images=None, seed=0, source_dir=None, data_dir=None):
    """The Fashion-MNIST test split as (images, int64 labels) batches, in file order.

    With "binarize" each image is binarised once, by a draw seeded with (seed, its index): the same
    binary images on every call, and the first n images are the same whatever `num_images` is.

    Args:
        preprocessing: one of `data.PREPROCESSING`.
        batch_size: images per batch.
        num_images: use only the first `num_images` test images (None: all 10,000).
        seed: binarisation seed.
        source_dir: folder of the IDX files; see `data.find_source_dir`.
        data_dir: TFDS data folder; see `data.load_fashion_mnist`.
    """
    images, labels = data.load_fashion_mnist(source_dir=source_dir, data_dir=data_dir)["test"]
    if num_images is not None:
        if num_images < 1:
            raise ValueError(f"num_images must be at least 1, got {num_images}.")
        images, labels = images[:num_images], labels[:num_images]
    return data.make_dataset(
        images,
        labels,
        batch_size=batch_size,
        preprocessing=preprocessing,
        seed=seed,
        with_labels=True,
        dynamic_binarization=False,
    )


def log_importance_weights(model, images, labels=None, num_samples=1):
    """log w_s = log p(x | z_s) + log p(z_s) - log q(z_s | x) for `num_samples` draws z_s ~ q(z | x) per
    image, in nats: [num_samples, batch]. Each draw comes from the model's seed generator."""
    images = model.check_images(images)
    batch = tf.shape(images)[0]
    # Sample-major copies: row s * batch + b is image b's s-th draw.
    tiled = tf.tile(images, [num_samples, 1, 1, 1])
    tiled_labels = None if labels is None else tf.tile(tf.convert_to_tensor(labels), [num_samples])
    z, terms = model.latent_terms(tiled, tiled_labels, training=False)
    log_likelihood = model.likelihood(z, tiled_labels, training=False).log_prob(tiled)
    return tf.reshape(log_likelihood + terms["log_ratio"], [num_samples, batch])


@contextlib.contextmanager
def seeded_noise(model, seed):
    """Within the block, `model` draws its noise from `seed`; afterwards its own noise stream resumes
    where it was, so evaluating a model does not change how it goes on training."""
    state = model.seed_generator.state
    saved = keras.ops.convert_to_numpy(state)
    state.assign(np.array([seed, 0], dtype=saved.dtype))
    try:
        yield
    finally:
        state.assign(saved)


def _bound_function(model, num_samples, chunk_size):
    """A function (images, labels) -> per-image (IWAE bound, ELBO estimate) as numpy, in nats."""
    if num_samples < 1 or chunk_size < 1:
        raise ValueError(f"num_samples and chunk_size must be at least 1, got {num_samples} and {chunk_size}.")

    # One trace per chunk length (at most two: chunk_size and the remainder).
    @tf.function(reduce_retracing=True)
    def chunk(images, labels, count):
        log_weights = log_importance_weights(model, images, labels, count)
        return tf.reduce_logsumexp(log_weights, axis=0), tf.reduce_sum(log_weights, axis=0)

    def bound(images, labels=None):
        log_sums, total, remaining = [], 0.0, num_samples
        while remaining > 0:
            count = min(chunk_size, remaining)
            log_sum, weight_sum = chunk(images, labels, count)
            log_sums.append(log_sum.numpy().astype(np.float64))
            total = total + weight_sum.numpy().astype(np.float64)
            remaining -= count
        # log (1/k) sum_s w_s, combined across chunks without leaving log space.
        stacked = np.stack(log_sums)
        top = stacked.max(axis=0)
        iwae = top + np.log(np.exp(stacked - top).sum(axis=0)) - math.log(num_samples)
        return iwae, total / num_samples

    return bound


def importance_weighted_bound(model, images, labels=None, num_samples=DEFAULT_NUM_SAMPLES, chunk_size=DEFAULT_CHUNK_SIZE, seed=None):
    """Per-image likelihood bounds of one batch, in nats (higher is better).

    Args:
        model: a zoo VAE.
        images: float32 [batch, *model.image_shape].
        labels: int64 [batch] for class-conditional models (ignored by the others).
        num_samples: k, the importance samples per image.
        chunk_size: importance samples per image drawn in one pass (memory grows with chunk_size * batch).
        seed: draw the samples from this seed, leaving the model's noise stream as it was (None: draw
            from the model's stream).

    Returns:
        {"iwae": L_k per image, "elbo": the mean of the k log-weights per image (an ELBO estimate)}, numpy [batch].
    """
    check_latent_variable_model(model)
    bound = _bound_function(model, num_samples, chunk_size)
    with seeded_noise(model, seed) if seed is not None else contextlib.nullcontext():
        iwae, elbo = bound(images, labels)
    return {"iwae": iwae, "elbo": elbo}


def evaluate_likelihood(model, dataset, num_samples=DEFAULT_NUM_SAMPLES, chunk_size=DEFAULT_CHUNK_SIZE, seed=0):
    """ELBO and IWAE bound of `model` on every image of `dataset`, in nats per image.

    Args:
        model: a zoo VAE.
        dataset: batches of images or (images, labels), e.g. from `fashion_mnist_test_set`.
        num_samples: k, the importance samples per image.
        chunk_size: importance samples per image drawn in one pass.
        seed: seed of the importance samples (the model's own noise stream is left as it was).

    Returns:
        A dict: `elbo` and `iwae` (means of the per-image bounds on log p(x); higher is better),
        `negative_elbo` and `nll_bound` (their negatives: upper bounds on the test NLL), `iwae_stderr`
        (standard error of the mean over images), `num_images`, `num_samples`, and `per_image_iwae`
        (numpy [num_images]).
    """
    check_latent_variable_model(model)
    bound = _bound_function(model, num_samples, chunk_size)
    iwae, elbo = [], []
    with seeded_noise(model, seed):
        for batch in dataset:
            images, labels = model.unpack(batch)
            batch_iwae, batch_elbo = bound(images, labels)
            iwae.append(batch_iwae)
            elbo.append(batch_elbo)
    if not iwae:
        raise ValueError("The dataset is empty; there is nothing to evaluate.")
    iwae, elbo = np.concatenate(iwae), np.concatenate(elbo)
    return {
        "elbo": float(elbo.mean()),
        "iwae": float(iwae.mean()),
        "negative_elbo": float(-elbo.mean()),
        "nll_bound": float(-iwae.mean()),
        "iwae_stderr": float(iwae.std(ddof=1) / math.sqrt(len(iwae))) if len(iwae) > 1 else float("nan"),
        "num_images": int(len(iwae)),
        "num_samples": int(num_samples),
        "per_image_iwae": iwae,
    }


def mixture_components(model, dataset, num_classes=len(data.CLASS_NAMES)):
    """How the images of a labelled dataset fall into a mixture-prior model's components.

    Args:
        model: a model with `components(images)` (the `gmvae`) and `num_components`.
        dataset: (images, labels) batches.
        num_classes: number of classes of the labels.

    Returns:
        int64 counts [num_components, num_classes]: row k counts, per class, the images whose code
        falls in component k.
    """
    if not hasattr(model, "components"):
        raise ValueError(f"{type(model).__name__} has no mixture components (only mixture-prior models such as gmvae do).")
    counts = np.zeros([model.num_components, num_classes], np.int64)
    for batch in dataset:
        images, labels = model.unpack(batch)
        if labels is None:
            raise ValueError("mixture_components needs (images, labels) batches.")
        assigned = keras.ops.convert_to_numpy(model.components(model.check_images(images))["component"])
        np.add.at(counts, (assigned, np.asarray(labels)), 1)
    return counts


# === Sample quality in a classifier's feature space ===
#
# Fréchet distance, KID and precision/recall compare generated images with real ones through the
# 128-d embedding of the project's Fashion-MNIST classifier (`keras_gen.feature_extractor`), not
# through Inception-v3: Inception FID needs weights that cannot be fetched offline. The numbers are
# comparable between models of this zoo, and are NOT comparable with Inception FIDs in papers. Each
# result is printed beside two reference points computed the same way: real training images against
# the real test images (the floor a perfect generator would reach) and uniform noise (for scale; an
# untrained generator can score worse still).
#
# Images pass through the classifier batch by batch and only their features are kept: a streaming
# mean and covariance (all samples) and a uniform subset of at most `max_kept` feature vectors for
# KID and precision/recall, so memory does not grow with the number of samples.

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
PR_NEIGHBOURS = 3
DEFAULT_METRIC_SAMPLES = 10000


class FeatureStatistics:
    """Streaming mean and covariance of feature vectors, plus a uniform subset of the vectors themselves.

    Batches are merged with Chan et al.'s pairwise update (float64), which stays accurate however many
    batches arrive. The subset is a reservoir sample (Algorithm R), so after n vectors each has had
    the same chance, `max_kept / n`, of being kept.

    Args:
        max_kept: how many feature vectors to keep for KID and precision/recall.
        seed: seed of the reservoir's draws.

    Example:
    >>> stats = FeatureStatistics(max_kept=10000)
    >>> for batch in feature_batches:
    ...     stats.update(batch)
    >>> stats.mean, stats.covariance, stats.kept  # doctest: +SKIP
    """

    def __init__(self, max_kept=DEFAULT_METRIC_SAMPLES, seed=0):
        if max_kept < 2:
            raise ValueError(f"max_kept must be at least 2, got {max_kept}.")
        self.max_kept = int(max_kept)
        self.count = 0
        self.mean = None
        self._scatter = None  # sum of outer products of deviations from the mean
        self._kept = None
        self._rng = np.random.default_rng(seed)

    def update(self, features):
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2:
            raise ValueError(f"Features must be [batch, dim], got shape {features.shape}.")
        if self.mean is not None and features.shape[1] != self.mean.shape[0]:
            raise ValueError(f"Features of width {features.shape[1]} cannot join statistics of width {self.mean.shape[0]}.")
        size = len(features)
        if size == 0:
            return self
        batch_mean = features.mean(axis=0)
        centred = features - batch_mean
        batch_scatter = centred.T @ centred
        if self.count == 0:
            self.mean, self._scatter = batch_mean, batch_scatter
            self._kept = np.empty((self.max_kept, features.shape[1]), np.float32)
        else:
            total = self.count + size
            delta = batch_mean - self.mean
            self._scatter = self._scatter + batch_scatter + np.outer(delta, delta) * (self.count * size / total)
            self.mean = self.mean + delta * (size / total)
        self._keep(features.astype(np.float32))
        self.count += size
        return self

    def _keep(self, features):
        free = max(0, min(self.max_kept - self.count, len(features)))
        self._kept[self.count : self.count + free] = features[:free]
        if free == len(features):
            return
        # Vector i (0-based, counting all seen so far) replaces a random kept one with chance max_kept / (i + 1).
        positions = np.arange(self.count + free, self.count + len(features))
        slots = self._rng.integers(0, positions + 1)
        for row, slot in zip(range(free, len(features)), slots):
            if slot < self.max_kept:
                self._kept[slot] = features[row]

    @property
    def covariance(self):
        if self.count < 2:
            raise ValueError(f"A covariance needs at least 2 feature vectors, got {self.count}.")
        return self._scatter / (self.count - 1)

    @property
    def kept(self):
        """The kept feature vectors, float32 [min(count, max_kept), dim]."""
        return self._kept[: min(self.count, self.max_kept)]


def frechet_distance(mean_a, covariance_a, mean_b, covariance_b, eps=1e-6):
    """The Fréchet (2-Wasserstein) distance between Gaussians N(mean_a, covariance_a) and N(mean_b, covariance_b):

        |mean_a - mean_b|^2 + Tr(covariance_a + covariance_b - 2 (covariance_a covariance_b)^(1/2)).

    The matrix square root is scipy's `sqrtm`. Near-singular covariances (few samples, dead features)
    can make it fail or return large imaginary parts; then `eps` is added to both diagonals and the root
    taken again. The product of two covariances has non-negative eigenvalues, so small imaginary parts
    are round-off and are dropped.

    Returns:
        A float >= 0 (round-off below zero is clipped).

    Raises:
        ValueError: shapes do not match, or the root stays non-finite or clearly complex.
    """
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    covariance_a, covariance_b = np.asarray(covariance_a, np.float64), np.asarray(covariance_b, np.float64)
    dim = mean_a.shape[0]
    if mean_b.shape != (dim,) or covariance_a.shape != (dim, dim) or covariance_b.shape != (dim, dim):
        raise ValueError(
            f"Means and covariances must be [d] and [d, d] with one d; got {mean_a.shape}, {covariance_a.shape}, "
            f"{mean_b.shape}, {covariance_b.shape}."
        )

    def root(a, b):
        with warnings.catch_warnings():
            # A singular product is handled below (offset and retry); its warning would only alarm.
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            product = scipy.linalg.sqrtm(a @ b)
        if not np.all(np.isfinite(product)):
            return None
        if np.iscomplexobj(product):
            if np.max(np.abs(product.imag)) > 1e-3 * max(1.0, np.max(np.abs(product.real))):
                return None
            product = product.real
        return product

    covariance_root = root(covariance_a, covariance_b)
    if covariance_root is None:
        offset = eps * np.eye(dim)
        covariance_root = root(covariance_a + offset, covariance_b + offset)
        if covariance_root is None:
            raise ValueError("The covariances are too ill-conditioned for a matrix square root; use more samples.")
    difference = mean_a - mean_b
    distance = difference @ difference + np.trace(covariance_a) + np.trace(covariance_b) - 2.0 * np.trace(covariance_root)
    return max(float(distance), 0.0)


def kernel_inception_distance(features_a, features_b, num_subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=0):
    """KID (Bińkowski et al., 2018): the unbiased MMD^2 with the cubic polynomial kernel
    k(x, y) = (x.y / d + 1)^3, averaged over random subsets.

    Args:
        features_a: [n_a, d] features of one set.
        features_b: [n_b, d] features of the other.
        num_subsets: how many pairs of subsets to draw.
        subset_size: vectors per subset (capped at the smaller set's size).
        seed: seed of the subsets.

    Returns:
        (mean, std) of the per-subset estimates. The mean is unbiased, so it can fall slightly below 0
        for sets from one distribution.
    """
    # float32 products (twice as fast as float64) summed in float64: the estimates agree with a float64
    # computation to about 1e-6 of the kernel's scale, far below their spread over subsets.
    features_a, features_b = np.asarray(features_a, np.float32), np.asarray(features_b, np.float32)
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"KID needs two [n, d] feature sets with the same d; got {features_a.shape} and {features_b.shape}.")
    size = min(subset_size, len(features_a), len(features_b))
    if size < 2:
        raise ValueError(f"KID needs at least 2 feature vectors in each set; got {len(features_a)} and {len(features_b)}.")
    dim = features_a.shape[1]
    rng = np.random.default_rng(seed)
    off_diagonal = size * (size - 1)
    estimates = np.empty(num_subsets)

    def kernel(x, y):
        k = x @ y.T
        k /= dim
        k += 1.0
        return k * k * k  # much faster than ** 3, which numpy computes with pow

    for index in range(num_subsets):
        a = features_a[rng.choice(len(features_a), size, replace=False)]
        b = features_b[rng.choice(len(features_b), size, replace=False)]
        k_aa, k_bb = kernel(a, a), kernel(b, b)
        # Unbiased: the diagonals (a vector with itself) are left out of the within-set means.
        within = (k_aa.sum(dtype=np.float64) - np.trace(k_aa, dtype=np.float64)) / off_diagonal
        within += (k_bb.sum(dtype=np.float64) - np.trace(k_bb, dtype=np.float64)) / off_diagonal
        estimates[index] = within - 2.0 * kernel(a, b).mean(dtype=np.float64)
    return float(estimates.mean()), float(estimates.std())


def _distances_less_own_norm(points, centres, offset=None):
    """|p - c|^2 - |p|^2 = |c|^2 - 2 p.c (minus `offset` per centre) for every pair, [len(points), len(centres)].

    Leaving |p|^2 out keeps each row's order and saves a pass over the matrix; all in place after one
    matrix product, so a chunk costs one matrix of memory.
    """
    result = points @ centres.T
    result *= -2.0
    shift = (centres * centres).sum(1)
    result += shift if offset is None else shift - offset
    return result


def nearest_neighbour_radii(features, k=PR_NEIGHBOURS, chunk_size=1024):
    """Squared distance from each vector to its k-th nearest other vector in the same set, [n]."""
    features = np.asarray(features, np.float32)
    if len(features) <= k:
        raise ValueError(f"k-nearest-neighbour radii with k = {k} need more than {k} vectors, got {len(features)}.")
    radii = np.empty(len(features), np.float32)
    for start in range(0, len(features), chunk_size):
        chunk = features[start : start + chunk_size]
        partial = _distances_less_own_norm(chunk, features)
        # Index k, not k - 1: the nearest vector to each is itself, at distance 0.
        kth = np.partition(partial, k, axis=1)[:, k] + (chunk * chunk).sum(1)
        radii[start : start + chunk_size] = np.maximum(kth, 0.0)  # round-off can dip below 0
    return radii


def _fraction_inside(points, centres, radii, chunk_size=1024):
    """Fraction of `points` within the radius of at least one centre (the k-NN manifold of `centres`)."""
    inside = 0
    for start in range(0, len(points), chunk_size):
        chunk = points[start : start + chunk_size]
        # |p - c|^2 <= r_c  <=>  |c|^2 - r_c - 2 p.c <= -|p|^2, for some centre c.
        closest = _distances_less_own_norm(chunk, centres, offset=radii).min(axis=1)
        inside += int((closest <= -(chunk * chunk).sum(1)).sum())
    return inside / len(points)


def precision_recall(real, fake, k=PR_NEIGHBOURS, real_radii=None, chunk_size=1024):
    """Improved precision and recall (Kynkäänniemi et al., 2019) with k-nearest-neighbour manifolds.

    Each set's manifold is the union of balls around its vectors, each ball reaching the vector's k-th
    nearest neighbour. Precision is the fraction of generated vectors inside the real manifold (are
    the samples realistic?); recall the fraction of real vectors inside the generated one (is the data's
    variety covered?).

    Args:
        real: [n, d] features of real images.
        fake: [m, d] features of generated images.
        k: the neighbour that sets each ball's radius.
        real_radii: precomputed `nearest_neighbour_radii(real, k)`, to reuse across evaluations.
        chunk_size: rows of the distance matrix computed at a time (memory is chunk_size * max(n, m) floats).

    Returns:
        (precision, recall), each in [0, 1].
    """
    real, fake = np.asarray(real, np.float32), np.asarray(fake, np.float32)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"Precision/recall needs two [n, d] feature sets with the same d; got {real.shape} and {fake.shape}.")
    # Centring on the real mean first keeps |a|^2 + |b|^2 - 2 a.b accurate in float32.
    centre = real.mean(axis=0)
    real, fake = real - centre, fake - centre
    if real_radii is None:
        real_radii = nearest_neighbour_radii(real, k, chunk_size)
    fake_radii = nearest_neighbour_radii(fake, k, chunk_size)
    return _fraction_inside(fake, real, real_radii, chunk_size), _fraction_inside(real, fake, fake_radii, chunk_size)


# === Images -> features ===
class FeatureSpace:
    """Maps images to feature vectors (and, for a classifier, class predictions), batch by batch.

    Args:
        model: a Keras model, images -> features, or images -> [features, class logits]. None: the
            shipped Fashion-MNIST classifier (`feature_extractor.load_classifier()`), embedding and logits.
        batch_size: images per forward pass.

    Example:
    >>> space = FeatureSpace()
    >>> features, logits = space(images_in_0_1)  # [n, 128], [n, 10]
    """

    def __init__(self, model=None, batch_size=500):
        if model is None:
            model = feature_extractor.feature_model(feature_extractor.load_classifier())
        self.model = model
        self.batch_size = int(batch_size)
        self.image_shape = tuple(model.inputs[0].shape[1:])
        self.has_classes = len(model.outputs) == 2
        self._forward = tf.function(
            lambda images: model(images, training=False),
            input_signature=[tf.TensorSpec([None, *self.image_shape], tf.float32)],
        )

    def check(self, images):
        return feature_extractor.check_images(images, self.image_shape)

    def __call__(self, images):
        """(features float32 [n, d], logits float32 [n, classes] or None) of images in [0, 1]."""
        images = self.check(images)
        features, logits = [], []
        for start in range(0, len(images), self.batch_size):
            outputs = self._forward(tf.constant(images[start : start + self.batch_size]))
            if self.has_classes:
                features.append(outputs[0].numpy())
                logits.append(outputs[1].numpy())
            else:
                features.append(outputs.numpy())
        features = np.concatenate(features) if features else np.zeros((0, self.model.outputs[0].shape[-1]), np.float32)
        return features, (np.concatenate(logits) if logits else None)


class Sampler:
    """Generated images on demand: `sampler(seeds, labels=None) -> float32 [n, h, w, c]` in [0, 1].

    Build one with `Sampler.from_model` (a live or loaded zoo model: its `sample` endpoint) or
    `Sampler.from_export` (a SavedModel's `sample` signature, with TensorFlow alone).

    Args:
        fn: a function (seed int64 [n], label int64 [n] or None) -> images.
        conditional: whether `fn` needs labels.
        name: what the tables call it.
    """

    def __init__(self, fn, conditional=False, name="model"):
        self.fn = fn
        self.conditional = bool(conditional)
        self.name = name

    def __call__(self, seeds, labels=None):
        seeds = tf.constant(np.asarray(seeds, np.int64))
        if self.conditional:
            if labels is None:
                raise ValueError(f"{self.name} is class-conditional: pass labels.")
            return np.asarray(self.fn(seeds, tf.constant(np.asarray(labels, np.int64))))
        return np.asarray(self.fn(seeds, None))

    @classmethod
    def from_model(cls, model, name=None):
        endpoints = {endpoint.name: endpoint for endpoint in model.serving_endpoints()}
        if "sample" not in endpoints:
            raise ValueError(
                f"{type(model).__name__} has no `sample` endpoint, so there is nothing to generate; sample-quality "
                f"metrics apply to generative models. Its endpoints: {', '.join(endpoints)}."
            )
        endpoint = endpoints["sample"]
        names = [spec.name for spec in endpoint.input_signature]
        compiled = tf.function(endpoint.fn, input_signature=endpoint.input_signature)

        def fn(seeds, labels):
            inputs = {"seed": seeds} if labels is None else {"seed": seeds, "label": labels}
            return compiled(**inputs)["images"].numpy()

        return cls(fn, conditional="label" in names, name=name or getattr(model, "zoo_name", type(model).__name__))

    @classmethod
    def from_export(cls, path, name=None):
        from keras_gen import export

        version_dir = export.latest_version_dir(path)
        loaded = tf.saved_model.load(str(version_dir))
        if "sample" not in loaded.signatures:
            raise ValueError(f"{version_dir} has no `sample` signature; it has: {', '.join(loaded.signatures)}.")
        signature = loaded.signatures["sample"]
        conditional = "label" in signature.structured_input_signature[1]

        def fn(seeds, labels):
            inputs = {"seed": seeds} if labels is None else {"seed": seeds, "label": labels}
            return signature(**inputs)["images"].numpy()

        fn.loaded = loaded  # keeps the SavedModel's variables alive as long as the sampler
        return cls(fn, conditional=conditional, name=name or pathlib.Path(version_dir).parent.name)

    @classmethod
    def load(cls, path, name=None):
        """From an export folder (`<export_dir>/<model>[/<version>]`) or a `.keras` checkpoint."""
        path = pathlib.Path(path)
        if path.is_file() and path.suffix == ".keras":
            from keras_gen.checkpoints import load_checkpoint

            return cls.from_model(load_checkpoint(path), name=name)
        if path.is_dir():
            return cls.from_export(path, name=name)
        raise FileNotFoundError(f"{path} is neither a .keras checkpoint nor an export folder (<export_dir>/<model>[/<version>]).")


# === Evaluation with reference points ===
class SampleQuality:
    """Sample-quality metrics of generated images against a fixed set of real images.

    The real set's features, statistics and k-NN radii are computed once and reused for every model
    and reference row.

    Args:
        feature_space: a `FeatureSpace` (None: the shipped Fashion-MNIST classifier's).
        reference: "test" (the default: final reporting) or "train" (during training, so the test set is
            never used for model selection): the Fashion-MNIST split the samples are compared with.
        max_reference: at most this many real images (the first of a seeded shuffle).
        max_kept: feature vectors kept of each evaluated set for KID and precision/recall.
        seed: seed of the shuffles, subsets and noise.
        reference_images: float images [n, h, w, c] in [0, 1] to use instead of a Fashion-MNIST split
            (with their `reference_labels`, optionally).
        source_dir: Fashion-MNIST IDX folder (see `keras_gen.data`).
        data_dir: TFDS data folder (see `keras_gen.data`).

    Example:
    >>> quality = SampleQuality()
    >>> quality.evaluate(Sampler.from_export("exports/vae"), num_samples=10000)
    {'frechet_distance': ..., 'kid_mean': ..., 'kid_std': ..., 'precision': ..., 'recall': ..., ...}
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
    ):
        if reference not in ("test", "train"):
            raise ValueError(f"reference must be 'test' or 'train', got {reference!r}.")
        self.space = feature_space or FeatureSpace()
        self.reference = reference
        self.max_kept = int(max_kept)
        self.seed = int(seed)
        self._data_options = {"source_dir": source_dir, "data_dir": data_dir}
        if reference_images is None:
            reference_images, reference_labels = self._real_images(reference, max_reference)
        self.reference_labels = None if reference_labels is None else np.asarray(reference_labels)
        features, logits = self.space(reference_images)
        self.reference_stats = FeatureStatistics(max_kept=len(features), seed=self.seed).update(features)
        self.reference_logits = logits
        self._reference_centre = self.reference_stats.kept.mean(axis=0)
        self._reference_radii = None  # computed on first use: the FD-only callback never needs them

    def _real_images(self, split, count):
        from keras_gen import data as data_lib

        images, labels = data_lib.load_fashion_mnist(**self._data_options)[split]
        order = np.random.default_rng(self.seed).permutation(len(images))[:count]
        return images[order].astype(np.float32) / 255.0, labels[order]

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
            features, logits = self.space(images)
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
        return frechet_distance(self.reference_stats.mean, self.reference_stats.covariance, stats.mean, stats.covariance)

    def compare(self, stats):
        """{frechet_distance, kid_mean, kid_std, precision, recall, num_samples} of `stats` against the real set."""
        reference = self.reference_stats
        kid_mean, kid_std = kernel_inception_distance(reference.kept, stats.kept, seed=self.seed)
        real = reference.kept - self._reference_centre
        fake = stats.kept - self._reference_centre
        if self._reference_radii is None:
            self._reference_radii = nearest_neighbour_radii(real)
        fake_radii = nearest_neighbour_radii(fake)
        return {
            "frechet_distance": self.frechet_distance(stats),
            "kid_mean": kid_mean,
            "kid_std": kid_std,
            "precision": _fraction_inside(fake, real, self._reference_radii),
            "recall": _fraction_inside(real, fake, fake_radii),
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

    def evaluate(self, sampler, num_samples=DEFAULT_METRIC_SAMPLES, batch_size=500, first_seed=0, num_classes=None):
        """Draws `num_samples` images from `sampler` (seeds first_seed, first_seed + 1, ...) and scores them.

        A class-conditional sampler is asked for the classes in turn (0, 1, ..., 0, 1, ...), so every class
        gets the same share; the result then holds `class_accuracy`: per class, how often the classifier
        recognises a sample generated for that class as that class.

        Returns:
            The `compare` dict, plus `class_accuracy` ({class id: accuracy}) for conditional samplers and
            `seconds` (sampling excluded: feature extraction and metrics only) and `sampling_seconds`.
        """
        if num_samples < 2:
            raise ValueError(f"num_samples must be at least 2, got {num_samples}.")
        if sampler.conditional and not self.space.has_classes:
            raise ValueError("Per-class accuracy needs a feature space with class logits (the shipped classifier).")
        classes = num_classes or (len(data.CLASS_NAMES) if self.reference_logits is None else self.reference_logits.shape[1])
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

    def reference_rows(self, num_samples=DEFAULT_METRIC_SAMPLES, batch_size=500, class_accuracy=False):
        """The reference points, scored like a model with `num_samples` images:

        - "real train vs test" (or "real test vs train" when the reference is the training split): real
          images of the other split; the floor, what a generator of the data distribution would get;
          with `class_accuracy`, also the classifier's accuracy per class on them (the ceiling of a
          conditional model's `class_accuracy`);
        - "uniform noise": pixels drawn uniformly from [0, 1]; what a generator that learnt nothing gets.
        """
        other = "train" if self.reference == "test" else "test"
        images, labels = self._real_images(other, num_samples)

        def real():
            for start in range(0, len(images), batch_size):
                batch = images[start : start + batch_size]
                yield (batch, labels[start : start + batch_size]) if class_accuracy else batch

        rng = np.random.default_rng(self.seed + 1)
        noise = (
            rng.uniform(size=(min(batch_size, num_samples - start), *self.space.image_shape)).astype(np.float32)
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
