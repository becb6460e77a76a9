"""Likelihood of the zoo's VAEs on any dataset: the ELBO and the importance-weighted bound (IWAE;
Burda et al., 2016),

    log p(x) >= L_k = E[log (1/k) sum_s p(x | z_s) p(z_s) / q(z_s | x)],  z_1..z_k ~ q(z | x),

which equals the ELBO at k = 1 and rises towards log p(x) as k grows. The terms come from the model's
own hooks (`latent_terms` draws z and gives log p(z) - log q(z | x), for a hierarchy the joint over its
groups; `likelihood` gives p(x | z)), so every VAE of the zoo is evaluated the same way. The k samples
are drawn in chunks and combined with a running log-sum-exp, so k = 1000 fits in memory.

The test images are the model's own dataset's (its dataset record; `likelihood_test_set`):

- a Bernoulli decoder is scored on the images binarised once with a fixed seed, in nats per image;
- a continuous decoder (Gaussian) is a density, and a density on 8-bit images is only a likelihood
  after dequantisation: each pixel value k in 0..255 becomes (k + u) / 256 with u ~ U[0, 1) (drawn once,
  seeded; for data in [-1, 1], 2 (k + u) / 256 - 1). Then -log P(k) <= -log p(x) + D log(256 / w) for
  D pixel values in a range of width w (Theis et al., 2016), and `bits_per_dim` is that bound divided by
  D log 2.

Example:
>>> from keras_gen import evaluation
>>> test = evaluation.likelihood_test_set(vae, record, batch_size=20, num_images=1000)
>>> evaluation.evaluate_likelihood(vae, test, num_samples=1000)["nll_bound"]  # doctest: +SKIP
"""

import contextlib
import math

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf

from keras_gen import data

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


# The width of the data range of each continuous preprocessing: [0, 1] and [-1, 1].
RANGE_WIDTH = {"scale": 1.0, "tanh": 2.0}


def dequantised_dataset(images, labels, preprocessing, batch_size, seed=0):
    """(images, labels) batches of uint8 `images` dequantised as the module docstring says: (k + u) / 256
    for "scale", 2 (k + u) / 256 - 1 for "tanh", u ~ U[0, 1) drawn with (seed, image index)."""
    if preprocessing not in RANGE_WIDTH:
        raise ValueError(f"Dequantisation is for continuous data ({', '.join(RANGE_WIDTH)}), got {preprocessing!r}.")
    width = RANGE_WIDTH[preprocessing]
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]

    def dequantise(index, image, label):
        noise = tf.random.stateless_uniform(tf.shape(image), seed=tf.stack([tf.constant(seed, tf.int64), index]))
        values = (tf.cast(image, tf.float32) + noise) / 256.0
        return values * width + (1.0 - width), label

    dataset = tf.data.Dataset.from_tensor_slices((images, np.asarray(labels, np.int64))).enumerate()
    return dataset.map(lambda index, example: dequantise(index, *example)).batch(batch_size)


def likelihood_test_set(model, record, batch_size, num_images=None, seed=0, split="test", source_dir=None, data_dir=None):
    """The images a model's likelihood is scored on: a split of its recorded dataset (`data.read_record`),
    binarised once for a Bernoulli decoder, dequantised for a continuous one.

    Returns:
        (dataset of (images, labels) batches, a sentence saying what was done to the images).
    """
    if num_images is not None and num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}.")
    images, labels = data.load_record_split(record, split, source_dir=source_dir, data_dir=data_dir, limit=num_images)
    if not len(images):
        raise data.DataError(f"The {split} split of {record['source']} holds no images; there is nothing to evaluate.")
    expected = tuple(getattr(model, "image_shape", images.shape[1:]))
    if tuple(images.shape[1:]) != expected:
        raise data.DataError(
            f"The model reads images of {list(expected)}, but {record['source']}'s {split} images are {list(images.shape[1:])}; "
            "pass the data it was trained on (--data SOURCE, --image-size, --channels)."
        )
    if likelihood_preprocessing(model) == "binarize":
        dataset = data.make_dataset(
            images, labels, batch_size=batch_size, preprocessing="binarize", seed=seed, with_labels=True, dynamic_binarization=False
        )
        return dataset, f"binarised once with seed {seed}"
    preprocessing = record.get("preprocessing") if record.get("preprocessing") in RANGE_WIDTH else "scale"
    interval = "[0, 1]" if preprocessing == "scale" else "[-1, 1]"
    return (
        dequantised_dataset(images, labels, preprocessing, batch_size, seed),
        f"dequantised to {interval}: (k + u) / 256 per pixel value k, u ~ U[0, 1) with seed {seed}",
    )


def bits_per_dim(nll_nats, num_dims, preprocessing="scale"):
    """An upper bound on the discrete test NLL in bits per pixel value, from a continuous model's bound
    `nll_nats` (nats per image) on data dequantised into a range of width RANGE_WIDTH[preprocessing]."""
    return (nll_nats + num_dims * math.log(256.0 / RANGE_WIDTH[preprocessing])) / (num_dims * math.log(2.0))
