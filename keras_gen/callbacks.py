"""Callbacks: image grids for TensorBoard, and the KL warm-up schedule."""

import math
import pathlib

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf


def tile(images, columns):
    """Arranges [n, h, w, c] images row by row into one [rows * h, columns * w, c] grid (blank padding)."""
    images = np.asarray(images, dtype=np.float32)
    count, height, width, channels = images.shape
    columns = max(1, min(int(columns), count))
    rows = math.ceil(count / columns)
    padded = np.zeros((rows * columns, height, width, channels), np.float32)
    padded[:count] = images
    grid = padded.reshape(rows, columns, height, width, channels).transpose(0, 2, 1, 3, 4)
    return grid.reshape(rows * height, columns * width, channels)


class ImageSummaries(keras.callbacks.Callback):
    """Writes the model's image grids to TensorBoard after every epoch.

    The model chooses its fixed inputs once (`model.summary_inputs`: e.g. the same latent vectors and
    validation images every epoch, so progress is visible) and draws the grids from them
    (`model.summary_images`). The grids go to `<log_dir>/train`, the run that Keras' TensorBoard
    callback writes its training scalars to. A model that also has `summary_histograms(fixed)` (returning
    {name: values}, e.g. the adversarial autoencoder's codes beside prior samples) gets those written as
    TensorBoard histograms in the same run.

    Args:
        log_dir: the run's log directory, as given to `keras.callbacks.TensorBoard`.
        validation_images: float images in the model's range; the first few are shown.
        num_samples: how many samples to draw from fixed noise.
        seed: seed of the fixed noise.
    """

    def __init__(self, log_dir, validation_images, num_samples=64, seed=0):
        super().__init__()
        self.log_dir = pathlib.Path(log_dir)
        self.validation_images = np.asarray(validation_images, dtype=np.float32)
        self.num_samples = num_samples
        self.seed = seed
        self._writer = None
        self._fixed = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(str(self.log_dir / "train"))
        self._fixed = self.model.summary_inputs(self.validation_images, self.num_samples, self.seed)

    def on_epoch_end(self, epoch, logs=None):
        with self._writer.as_default():
            for name, (images, columns) in self.model.summary_images(self._fixed).items():
                grid = tile(np.clip(keras.ops.convert_to_numpy(images), 0.0, 1.0), columns)
                tf.summary.image(name, grid[None], step=epoch)
            histograms = getattr(self.model, "summary_histograms", None)
            for name, values in (histograms(self._fixed) if histograms is not None else {}).items():
                tf.summary.histogram(name, keras.ops.convert_to_numpy(values), step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class KLWarmup(keras.callbacks.Callback):
    """Ramps a VAE's KL weight linearly from 0 (first epoch) to `model.beta` over `warmup_epochs`.

    A common remedy for posterior collapse: the decoder learns to use z before the KL term pulls the
    posterior onto the prior. The weight depends on the epoch index alone, so a run resumed by
    `BackupAndRestore` continues the same schedule.
    """

    def __init__(self, warmup_epochs):
        super().__init__()
        if warmup_epochs < 1:
            raise ValueError(f"warmup_epochs must be at least 1, got {warmup_epochs}.")
        self.warmup_epochs = int(warmup_epochs)

    def weight(self, epoch):
        return self.model.beta * min(1.0, epoch / self.warmup_epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight.assign(self.weight(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["kl_weight"] = float(keras.ops.convert_to_numpy(self.model.kl_weight))


class FrechetDistance(keras.callbacks.Callback):
    """Logs the Fréchet distance between the model's samples and real images to TensorBoard.

    Every `every_epochs` epochs the model's `sample` endpoint draws `num_samples` images from the same
    seeds (classes in turn for a conditional model), and the distance between their features and the
    real images' is written as the scalar `epoch_frechet_distance` to `<log_dir>/train`, beside Keras'
    loss curves, and added to the epoch's logs. The features are the shipped Fashion-MNIST
    classifier's (see `keras_gen.evaluation`; not comparable with Inception FID). The real images are
    training images by default, so the test set plays no part in choices made while training.

    Args:
        log_dir: the run's log directory, as given to `keras.callbacks.TensorBoard`.
        num_samples: samples drawn each time (a small sample: the distance is biased upwards by few samples,
            the same way every epoch, so the curve is comparable with itself).
        every_epochs: compute it after every this many epochs.
        quality: a `keras_gen.evaluation.SampleQuality` holding the real set and feature space (None:
            up to 10,000 Fashion-MNIST training images and the shipped classifier).
        seed: first seed of the samples.

    Example:
    >>> model.fit(train, epochs=20, callbacks=[keras.callbacks.TensorBoard("logs/run"), FrechetDistance("logs/run")])
    """

    def __init__(self, log_dir, num_samples=1000, every_epochs=1, quality=None, seed=0):
        super().__init__()
        if num_samples < 2 or every_epochs < 1:
            raise ValueError(f"num_samples must be at least 2 and every_epochs at least 1, got {num_samples} and {every_epochs}.")
        self.log_dir = pathlib.Path(log_dir)
        self.num_samples = int(num_samples)
        self.every_epochs = int(every_epochs)
        self.quality = quality
        self.seed = int(seed)
        self._writer = None
        self._sampler = None

    def on_train_begin(self, logs=None):
        from keras_gen import evaluation

        if self.quality is None:
            self.quality = evaluation.SampleQuality(reference="train")
        shape = tuple(getattr(self.model, "image_shape", self.quality.space.image_shape))
        if shape != self.quality.space.image_shape:
            raise ValueError(
                f"FrechetDistance's feature space reads images of shape {self.quality.space.image_shape}, but the model "
                f"makes {shape}; pass `quality=SampleQuality(FeatureSpace(your_feature_model), reference_images=...)`."
            )
        self._writer = tf.summary.create_file_writer(str(self.log_dir / "train"))

    def distance(self):
        """The Fréchet distance of `num_samples` fresh samples of the model (the same seeds every time)."""
        from keras_gen import evaluation

        if self._sampler is None:
            # Traced once: the compiled function reads the model's variables, so it sees every update.
            self._sampler = evaluation.Sampler.from_model(self.model)
        stats, _ = self.quality.statistics(self._batches(self._sampler))
        return self.quality.frechet_distance(stats)

    def _batches(self, sampler, batch_size=500):
        classes = self.quality.reference_logits.shape[1] if self.quality.reference_logits is not None else 10
        for start in range(self.seed, self.seed + self.num_samples, batch_size):
            seeds = np.arange(start, min(start + batch_size, self.seed + self.num_samples), dtype=np.int64)
            yield sampler(seeds, seeds % classes if sampler.conditional else None)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs:
            return
        value = self.distance()
        with self._writer.as_default():
            tf.summary.scalar("epoch_frechet_distance", value, step=epoch)
        self._writer.flush()
        if logs is not None:
            logs["frechet_distance"] = value

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
