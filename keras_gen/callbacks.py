"""Callbacks: image grids for TensorBoard, the KL warm-up schedule, a stop at the first non-finite loss,
and resume state that survives a kill at any moment."""

import datetime
import json
import math
import os
import pathlib
import shutil

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
    callback writes its training scalars to. The model's `summary_histograms(fixed)` ({name: values}, e.g.
    the adversarial autoencoder's codes beside prior samples; none by default) are written as TensorBoard
    histograms in the same run.

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
            for name, values in self.model.summary_histograms(self._fixed).items():
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


class TrainingDiverged(ValueError):
    """Training produced a non-finite loss or metric.

    `epoch` and `step` (1-based; `step` None when an epoch's validation metrics were the first) say where,
    `name` which value.
    """

    def __init__(self, message, epoch=None, step=None, name=None):
        super().__init__(message)
        self.epoch, self.step, self.name = epoch, step, name


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops `fit` at the first NaN or infinite loss or metric, before that epoch's checkpoints are written.

    Keras' `TerminateOnNaN` watches `loss` alone (the GANs log `d_loss` and `g_loss`) and lets the epoch
    end, so `ModelCheckpoint` and `BackupAndRestore` then save the broken weights. This callback checks
    every logged value after each batch, and the validation metrics at the end of each epoch, and raises
    `TrainingDiverged` naming the epoch, the step and the value: put it first in the callback list, so that
    nothing after the last good epoch is saved. Gradient norms (`*grad_norm`) are not checked: with a
    dynamic loss scale, an overflowing step that the optimizer skips reports an infinite norm.

    Example:
    >>> model.fit(train, epochs=10, callbacks=[StopOnNonFinite(), keras.callbacks.ModelCheckpoint("ckpt/{epoch}.keras")])
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, None)

    def _check(self, logs, step):
        # Losses first: when a loss is NaN, so usually are the metrics computed beside it.
        for name, value in sorted((logs or {}).items(), key=lambda item: "loss" not in item[0]):
            if name.endswith("grad_norm"):
                continue
            try:
                value = float(keras.ops.convert_to_numpy(value))
            except (TypeError, ValueError):
                continue  # not a scalar (nothing Keras' own logs hold)
            if not math.isfinite(value):
                where = f"epoch {self._epoch + 1}, step {step}" if step is not None else f"the end of epoch {self._epoch + 1} (validation)"
                raise TrainingDiverged(f"Training diverged: {name} is {value} at {where}.", self._epoch + 1, step, name)


class ResumeStateError(ValueError):
    """A resume state that cannot be read (damaged files, or weights of another model)."""


class ResumeState(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose state survives a kill at any moment, kept until removed.

    At the end of each epoch the weights go to a new file, `epoch-N.weights.h5`, under a temporary name
    that is flushed to disk and then renamed; then `state.json` (the epoch and the weights file's name,
    and the epoch before with its file) is replaced the same way; then older weights files are deleted.
    Whenever the process dies, `state.json` names a complete weights file, so `fit` resumes from the
    last finished epoch (or, after `go_back_to`, the one before it).

    Unlike Keras' callback, the state is not deleted when `fit` returns: call `remove()` once what was
    trained is safe (e.g. exported), so that a kill between `fit` and the export resumes with no epochs
    left to run instead of starting over. A state that cannot be read raises `ResumeStateError` saying
    what to do; `set_aside()` renames it (nothing is deleted) so the next `fit` starts from epoch 1.
    A state written by Keras' own callback (`latest.weights.h5`, `training_metadata.json`) is read too.

    Args:
        backup_dir: the folder of the state, used by this run alone.
    """

    STATE_FILE = "state.json"

    def __init__(self, backup_dir):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=False)
        self.path = pathlib.Path(backup_dir)
        self._resume_epoch = None  # set by `go_back_to`

    def read_state(self):
        """{"epoch": finished epochs, "weights": path} of the saved state, or None when there is none."""
        state_file, legacy = self.path / self.STATE_FILE, self.path / "training_metadata.json"
        try:
            if state_file.exists():
                state = json.loads(state_file.read_text())
                previous = state.get("previous")
                return {
                    "epoch": int(state["epoch"]),
                    "weights": self.path / state["weights"],
                    "previous": {"epoch": int(previous["epoch"]), "weights": self.path / previous["weights"]} if previous else None,
                }
            if legacy.exists() or (self.path / "latest.weights.h5").exists():
                epoch = json.loads(legacy.read_text())["epoch"] if legacy.exists() else 0
                return {"epoch": int(epoch), "weights": self.path / "latest.weights.h5", "previous": None}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise self._damaged(f"{type(error).__name__}: {error}") from None
        return None

    def finished_epochs(self):
        """How many epochs the saved state holds (0 when there is none)."""
        state = self.read_state()
        return state["epoch"] if state else 0

    def on_train_begin(self, logs=None):
        # Keras' fallback copies a `.bkp` file that this layout never writes; load (or fail) directly.
        self._load_model()

    def go_back_to(self, epoch):
        """Makes the next `fit` resume after `epoch`: the saved state's epoch, or the one before it (kept
        so that the workers of a cluster, whose states may be an epoch apart after a kill, can agree)."""
        self._resume_epoch = int(epoch)

    def _load_model(self):
        state = self.read_state()
        wanted = self._resume_epoch
        if state is not None and wanted is not None and wanted != state["epoch"]:
            if wanted == 0:
                state = None
            elif state["previous"] and state["previous"]["epoch"] == wanted:
                state = state["previous"]
            else:
                raise self._damaged(f"it holds epoch {state['epoch']}, not epoch {wanted}")
        if state is None:
            return
        if not self.model.built:
            super()._load_model()  # raises Keras' own "must be built" error
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        if not state["weights"].exists():
            raise self._damaged(f"{state['weights'].name} is missing")
        try:
            self.model.load_weights(str(state["weights"]))
        except Exception as error:  # h5py, Keras and TF each raise their own type for a damaged file
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise self._damaged(f"{state['weights'].name}: {reason}") from None
        self.model._initial_epoch = state["epoch"]

    def _damaged(self, reason):
        return ResumeStateError(
            f"The resume state in {self.path} cannot be read ({reason}). Set it aside to start from epoch 1 "
            "(`keras-gen train --restart`, or `ResumeState.set_aside()`: the folder is renamed, nothing is deleted), "
            "or export one of the run's per-epoch .keras checkpoints."
        )

    def _save_model(self):
        self.path.mkdir(parents=True, exist_ok=True)
        last = self.read_state() if (self.path / self.STATE_FILE).exists() else None
        weights = self.path / f"epoch-{self._current_epoch:04d}.weights.h5"
        _write_atomically(weights, lambda path: self.model.save_weights(str(path), overwrite=True))
        previous = {"epoch": last["epoch"], "weights": last["weights"].name} if last and last["epoch"] < self._current_epoch else None
        state = json.dumps({"epoch": self._current_epoch, "weights": weights.name, "previous": previous})
        _write_atomically(self.path / self.STATE_FILE, lambda path: path.write_text(state))
        # Only now are older states (or Keras' layout, or what a killed run left half-written) not needed.
        keep = {self.STATE_FILE, weights.name, previous["weights"] if previous else None}
        for old in self.path.iterdir():
            if old.name not in keep and old.is_file():
                old.unlink()

    def on_train_end(self, logs=None):
        pass  # kept until `remove()`

    def remove(self):
        """Deletes the state (call it once the trained model is safe)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def set_aside(self):
        """Renames the state folder to `<folder>-set-aside-<time>` and returns the new path (None if none)."""
        if not self.path.exists():
            return None
        name = f"{self.path.name}-set-aside-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
        target, suffix = self.path.with_name(name), 2
        while target.exists():
            target, suffix = self.path.with_name(f"{name}-{suffix}"), suffix + 1
        os.rename(self.path, target)
        return target


def _write_atomically(path, write):
    """Calls `write(temporary_path)` beside `path`, flushes the file to disk and renames it to `path`."""
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    write(temporary)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
