"""The fit pipeline: data, model, one `fit` with TensorBoard and checkpoints, evaluation, export.

What most recipes run (their [pipeline] table names none, or `name = "fit"`); the semi-supervised and
one-class pipelines run it for their own training steps.
"""

import contextlib
import inspect
import json
import math
import pathlib
import time

import keras_gen  # noqa: F401
import keras
import tensorflow as tf

from keras_gen import data as data_lib
from keras_gen import distribute
from keras_gen import recipes
from keras_gen.callbacks import ImageSummaries
from keras_gen.callbacks import ResumeState
from keras_gen.callbacks import StopOnNonFinite
from keras_gen.callbacks import TrainingDiverged
from keras_gen.pipelines import runs


def open_data(recipe, source_dir=None, data_dir=None):
    """Opens the recipe's data source (its listing or metadata is checked here, before anything is
    written) and returns `(source, options)`: the source and the `data.load_datasets` options of the
    recipe's [data] table. `source_dir` is Fashion-MNIST's IDX folder; `data_dir` the TFDS data folder."""
    options = recipes.data_options(recipe.data)
    if data_dir is not None:
        options["data_dir"] = str(data_dir)
    opening = {key: options.pop(key) for key in ("data_dir", "label", "download", "skip_corrupt")}
    source = data_lib.open_source(recipe.data["dataset"], source_dir=source_dir, **opening)
    return source, options


def data_model_options(recipe, source, options):
    """The recipe's model options with what the data decides: `image_shape` (the fitted images' shape)
    and, for models with a `num_classes` option, the number of classes. A recipe that sets either to
    something else, or a conditional model given unlabeled data, is a RecipeError saying what to change."""
    shape = data_lib.target_shape(source, options["image_size"], options["channels"], options["center_crop"])
    model_options = dict(recipe.model_options)
    where = f"Recipe {recipe.name!r}"
    given = model_options.get("image_shape")
    if given is not None and tuple(given) != shape:
        raise recipes.RecipeError(
            f"{where} sets [model_options] image_shape = {list(given)}, but its data ({source.name}) gives images of "
            f"{list(shape)}. Remove image_shape (the data decides it) or set [data] image_size / channels "
            "(--image-size, --channels) to match."
        )
    model_options["image_shape"] = list(shape)
    if "num_classes" in inspect.signature(recipe.model_class().__init__).parameters:
        if source.class_names is None:
            raise recipes.RecipeError(
                f"{where} trains a class-conditional {recipe.model_class().__name__}, but {source.name} has no labels. "
                "Use a labeled source (for a folder: one sub-folder per class) or an unconditional recipe."
            )
        count = len(source.class_names)
        if model_options.get("num_classes", count) != count:
            raise recipes.RecipeError(
                f"{where} sets [model_options] num_classes = {model_options['num_classes']}, but {source.name} has "
                f"{count} classes. Remove num_classes (the data decides it)."
            )
        model_options["num_classes"] = count
    return model_options


def load_datasets(recipe, batch_size, seed, source_dir=None, data_dir=None, classes=None, source=None):
    """The recipe's datasets (see `data.load_datasets`); `classes` (default: the recipe's `[data] classes`,
    empty for all) filters them. `source` is the recipe's source when it is open already."""
    opened, options = open_data(recipe, source_dir, data_dir)
    if classes:
        options["classes"] = list(classes)
    return data_lib.load_datasets(source or opened, batch_size=batch_size, seed=seed, **options)


@contextlib.contextmanager
def naming_unreadable_files(source):
    """Turns a decode error raised while reading `source` (in `load_datasets`, `fit` or `evaluate`) into a
    DataError naming the unreadable files and what to do; other errors pass through unchanged."""
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        if data_lib.NON_FINITE_PIXELS in error.message:
            raise data_lib.DataError(error.message.strip().splitlines()[0].split(data_lib.NON_FINITE_PIXELS, 1)[1].strip(" :")) from None
        unreadable = [path for split in source.splits for path in source.unreadable(split)] if hasattr(source, "unreadable") else []
        if not unreadable:
            raise
        more = f" and {len(unreadable) - 1} more" if len(unreadable) > 1 else ""
        raise data_lib.DataError(
            f"{unreadable[0]}{more} cannot be decoded ({error.message.strip().splitlines()[0]}). Remove or replace the file, or skip "
            "unreadable files with --skip-corrupt ([data] skip_corrupt = true); the checkpoints of finished epochs are kept."
        ) from None


def data_classes(recipe, model):
    """The classes to train on: the recipe's `[data] classes`, or the model's own (`training_classes()`,
    e.g. a one-class model's normal class); None for all. A ValueError when the two disagree."""
    wanted = list(recipe.data.get("classes") or [])
    own = model.training_classes()
    if wanted and own is not None and sorted(wanted) != sorted(own):
        raise ValueError(
            f"Recipe {recipe.name!r} keeps the classes {wanted} in [data] but its model trains on {sorted(own)}; "
            "make them agree or remove [data] classes."
        )
    return wanted or (list(own) if own is not None else None)


def run_recipe(recipe, train, run):
    """Trains `recipe` with one `fit` and returns a dict of where everything went (see
    `keras_gen.pipelines.train_recipe`, which calls it for recipes of this pipeline).

    Args:
        recipe: the validated `recipes.Recipe`.
        train: its [train] settings, the caller's overrides applied (`runs.train_settings`).
        run: where things go and what to do (`runs.run_settings`).
    """
    # A multi-worker strategy must exist before TensorFlow runs anything.
    strategy = distribute.make_strategy(run["strategy"] or train["strategy"])
    keras.utils.set_random_seed(train["seed"])
    worker = distribute.role(strategy)
    backup_dir = worker.resume_dir(pathlib.Path(run["checkpoint_dir"]) / recipe.name / "backup")
    # Only the chief writes logs, checkpoints and the export; other workers write to scratch folders.
    with worker.scratch(run["logdir"], run["checkpoint_dir"]) as (logdir, checkpoint_dir):
        own = dict(run, logdir=logdir, checkpoint_dir=checkpoint_dir, export=run["export"] and worker.chief)
        return _fit_recipe(recipe, train, strategy, worker, backup_dir, own)


def _fit_recipe(recipe, train, strategy, worker, backup_dir, run):
    """`run_recipe`'s single `fit`, under `strategy`, as `worker` (a `distribute.Role`)."""
    verbose = run["verbose"]
    source, options = open_data(recipe, run["source_dir"], run["data_dir"])
    model_options = data_model_options(recipe, source, options)
    preset = None
    with strategy.scope():
        if run["from_preset"] is None:
            model = recipe.model_class()(**{**model_options, "seed": train["seed"]})
        else:
            from keras_gen import presets

            model, preset = presets.fine_tuning_start(run["from_preset"], recipe.model_class(), model_options, f"Recipe {recipe.name!r}")
    classes = data_classes(recipe, model)
    if classes:
        options["classes"] = classes
    with naming_unreadable_files(source):
        datasets = data_lib.load_datasets(source, batch_size=train["batch_size"], seed=train["seed"], **options)
    for split in ("train", "validation", "test"):
        datasets[split] = distribute.shard(datasets[split], strategy)
    if verbose:
        print("Data: " + "; ".join([datasets["info"].summary(), *source.notes()]))
        if preset:
            print(f"Fine-tuning preset {preset.name} ({preset.path}) with fresh optimizers; the recipe's [model_options] give way to the preset's.")
        print(distribute.describe(strategy, train["batch_size"]) + ("" if worker.chief else f"; worker {worker.index} writes no logs, checkpoints or export"))
    with strategy.scope():
        recipe.compile_model(model)
    model.jit_compile = train["jit_compile"]

    folders = runs.RunFolders.create(recipe.name, run["logdir"], run["checkpoint_dir"])
    run_logdir, run_checkpoints = folders.logdir, folders.checkpoints
    settings = {
        "recipe": recipe.name,
        "recipe_path": str(recipe.path),
        "train": train,
        "model_options": recipe.model_options,
        "data": recipe.data,
        "dataset": datasets["info"].to_dict(),
        "fine_tuned_from": preset.summary() if preset else None,
    }
    (run_logdir / "run.json").write_text(json.dumps(settings, indent=2, default=str))
    # Beside the checkpoints and in the export: what `keras-gen evaluate` reopens as the model's data.
    record = data_lib.dataset_record(datasets["info"], recipe.data, train["seed"], source_dir=run["source_dir"], data_dir=run["data_dir"], classes=classes)
    data_lib.write_record(record, run_checkpoints)

    resume = ResumeState(backup_dir)
    if run["restart"]:
        aside = resume.set_aside()
        if aside is not None and verbose:
            print(f"Resume state set aside in {aside}; training from epoch 1.")
    resumed = resume.finished_epochs()  # a damaged state's ResumeStateError says to use --restart
    agreed = distribute.agreed_epoch(strategy, resumed)
    if agreed != resumed:
        resume.go_back_to(agreed)
        resumed = agreed
    if resumed and verbose:
        left = "evaluating and exporting" if resumed >= train["epochs"] else f"training epochs {resumed + 1} to {train['epochs']}"
        print(f"Resuming from {resume.path}: {resumed} epoch(s) finished before; {left}.")
    callbacks = [
        # First, so that a non-finite step stops the run before any callback saves that epoch.
        StopOnNonFinite(),
        resume,
        keras.callbacks.TensorBoard(log_dir=str(run_logdir)),
        ImageSummaries(run_logdir, datasets["validation_images"], train["summary_samples"], seed=train["seed"]),
        keras.callbacks.ModelCheckpoint(str(run_checkpoints / "epoch-{epoch:03d}.keras")),
        *model.recipe_callbacks(),
        *run["callbacks"],
    ]
    started = time.perf_counter()
    with naming_unreadable_files(source):
        try:
            history = model.fit(
                datasets["train"],
                epochs=train["epochs"],
                steps_per_epoch=train["steps_per_epoch"] or None,
                validation_data=datasets["validation"],
                callbacks=callbacks,
                shuffle=False,  # the tf.data pipeline shuffles (seeded) already
                verbose=verbose,
            )
        except TrainingDiverged as error:
            raise TrainingDiverged(
                f"{error} Nothing was saved from that epoch or exported. {last_good_state(run_checkpoints, resume)} "
                "Lower the recipe's [compile] learning_rate, or check the data, before running again.",
                error.epoch, error.step, error.name,
            ) from None
        seconds = time.perf_counter() - started
        # E.g. an anomaly detector sets its score statistics and thresholds on the held-out images here.
        model.after_training(datasets)
        test_metrics = model.evaluate(datasets["test"], return_dict=True, verbose=0)
    test = {key: float(value) for key, value in test_metrics.items()}
    bad = sorted(key for key, value in test.items() if not math.isfinite(value))
    if bad:
        raise TrainingDiverged(
            f"The test-set {', '.join(f'{key} is {test[key]}' for key in bad)}: the trained model is not exported. "
            f"{last_good_state(run_checkpoints, resume)}",
            name=bad[0],
        )
    final_checkpoint, export_path = folders.save_and_export(model, run["export_dir"], recipe.name, run["export"], dataset=record)
    # Every worker keeps its resume state until the chief's export is published.
    distribute.barrier(strategy)
    result = {
        "recipe": recipe.name,
        "logdir": run_logdir,
        "checkpoint": final_checkpoint,
        "history": history.history,
        "test": test,
        "train_seconds": seconds,
        "export": export_path,
        "model": model,
        "resumed_epochs": resumed,
        "fine_tuned_from": settings["fine_tuned_from"],
    }
    # Only now is the trained model safe (exported, or saved when not exporting).
    resume.remove()
    return result


def last_good_state(run_checkpoints, resume):
    """A sentence naming the run's last per-epoch checkpoint and the epoch the resume state holds."""
    epochs = sorted(run_checkpoints.glob("epoch-*.keras"))
    finished = resume.finished_epochs()
    state = f"the resume state in {resume.path} holds epoch {finished}" if finished else "there is no resume state"
    if epochs:
        return f"The last good checkpoint is {epochs[-1]}; {state}."
    return f"This run finished no epoch; {state}."
