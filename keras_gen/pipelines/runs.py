"""What every pipeline does with a run: its settings, its own folders, its final checkpoint and its export.

A pipeline is called as `pipeline(recipe, train, run, **options)`: `train` is the recipe's [train] table
with the caller's overrides (`train_settings`), `run` says where things go and what to do
(`run_settings`), and `options` are the rest of the recipe's [pipeline] table.
"""

import dataclasses
import datetime
import pathlib

import keras_gen  # noqa: F401

from keras_gen import export as export_lib


def train_settings(recipe, epochs=None, steps_per_epoch=None, batch_size=None, seed=None):
    """The recipe's [train] table with the given values (those that are not None) in place of its own.

    Raises:
        ValueError: for epochs or batch_size below 1, or a negative steps_per_epoch.
    """
    train = dict(recipe.train)
    overrides = {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "batch_size": batch_size, "seed": seed}
    train.update({key: value for key, value in overrides.items() if value is not None})
    for key in ("epochs", "batch_size"):
        if train[key] < 1:
            raise ValueError(f"{key} must be at least 1, got {train[key]}.")
    if train["steps_per_epoch"] < 0:
        raise ValueError(f"steps_per_epoch must be 0 (a full pass) or positive, got {train['steps_per_epoch']}.")
    return train


def run_settings(
    logdir="tensorboard_logs",
    export_dir="exports",
    checkpoint_dir="checkpoints",
    source_dir=None,
    data_dir=None,
    data=None,
    export=True,
    verbose=1,
    callbacks=None,
    restart=False,
    strategy=None,
    from_preset=None,
):
    """A pipeline's `run` dict: where things go and what to do, as `keras_gen.pipelines.train_recipe` takes them.

    Args:
        logdir, export_dir, checkpoint_dir: the parents of the run's TensorBoard logs, exports and checkpoints.
        source_dir: Fashion-MNIST's IDX folder; data_dir: the TFDS data folder.
        data: the [data] keys the caller replaced (a pipeline that trains another recipe passes them on).
        export: whether to export the trained model.
        verbose: Keras' verbosity.
        callbacks: callbacks added to the run's own in each `fit` of the fit pipeline.
        restart: set an interrupted run's resume state aside and train from epoch 1.
        strategy: a `distribute.STRATEGIES` name (None: the recipe's [train] strategy).
        from_preset: a preset (`keras_gen.presets` handle) whose model the fit pipeline fine-tunes, with
            fresh optimizers, instead of building the recipe's; None: train from scratch.
    """
    return dict(
        logdir=logdir, export_dir=export_dir, checkpoint_dir=checkpoint_dir, source_dir=source_dir, data_dir=data_dir,
        data=dict(data or {}), export=export, verbose=verbose, callbacks=list(callbacks or []), restart=restart, strategy=strategy,
        from_preset=from_preset,
    )


def run_name():
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def unique_dir(parent, name):
    """`parent/name`, or `parent/name-2`, ... if taken: runs never share (and so never overwrite) a folder."""
    candidate, suffix = parent / name, 2
    while candidate.exists():
        candidate, suffix = parent / f"{name}-{suffix}", suffix + 1
    return candidate


@dataclasses.dataclass(frozen=True)
class RunFolders:
    """One run's own folders, `<logdir>/<recipe>/<timestamp>/` and `<checkpoint_dir>/<recipe>/<timestamp>/`.

    Example:
    >>> folders = RunFolders.create("vae", "tensorboard_logs", "checkpoints")  # doctest: +SKIP
    >>> checkpoint, export_path = folders.save_and_export(model, "exports", "vae")  # doctest: +SKIP
    """

    logdir: pathlib.Path
    checkpoints: pathlib.Path

    @classmethod
    def create(cls, recipe_name, logdir, checkpoint_dir):
        """Makes both folders, named by the time now (with a suffix when a run of the same second has it)."""
        name = run_name()
        folders = cls(
            logdir=unique_dir(pathlib.Path(logdir) / recipe_name, name),
            checkpoints=unique_dir(pathlib.Path(checkpoint_dir) / recipe_name, name),
        )
        folders.checkpoints.mkdir(parents=True)
        folders.logdir.mkdir(parents=True)
        return folders

    def save_and_export(self, model, export_dir, model_name, export=True, dataset=None):
        """Saves the trained `model` as `model.keras` in the run's checkpoint folder and, if `export`, as the
        next SavedModel version under `<export_dir>/<model_name>/` (with the `dataset` record, when given).

        Returns:
            (the checkpoint's path, the export's path or None).
        """
        checkpoint = self.checkpoints / "model.keras"
        model.save(checkpoint)
        exported = export_lib.export_model(model, export_dir, model_name=model_name, dataset=dataset) if export else None
        return checkpoint, exported
