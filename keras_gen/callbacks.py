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
    callback writes its training scalars to.

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
