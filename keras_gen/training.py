"""Runs a zoo recipe: data, model, `fit` with TensorBoard and checkpoints, evaluation, export."""

import contextlib
import datetime
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
from keras_gen import export as export_lib
from keras_gen import recipes
from keras_gen.callbacks import ImageSummaries
from keras_gen.callbacks import ResumeState
from keras_gen.callbacks import StopOnNonFinite
from keras_gen.callbacks import TrainingDiverged


def run_name():
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def unique_dir(parent, name):
    """`parent/name`, or `parent/name-2`, ... if taken: runs never share (and so never overwrite) a folder."""
    candidate, suffix = parent / name, 2
    while candidate.exists():
        candidate, suffix = parent / f"{name}-{suffix}", suffix + 1
    return candidate


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
    own = getattr(model, "training_classes", lambda: None)()
    if wanted and own is not None and sorted(wanted) != sorted(own):
        raise ValueError(
            f"Recipe {recipe.name!r} keeps the classes {wanted} in [data] but its model trains on {sorted(own)}; "
            "make them agree or remove [data] classes."
        )
    return wanted or (list(own) if own is not None else None)


def train_recipe(
    recipe,
    *,
    epochs=None,
    steps_per_epoch=None,
    batch_size=None,
    seed=None,
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
):
    """Trains `recipe` (a `recipes.Recipe`) and returns a dict of where everything went.

    Arguments left as None take the recipe's values. TensorBoard logs go to
    `<logdir>/<recipe>/<timestamp>/`, one `.keras` checkpoint per epoch to
    `<checkpoint_dir>/<recipe>/<timestamp>/`, and the SavedModel to the next free version under
    `<export_dir>/<recipe>/`. If a previous run of the same recipe was interrupted, training resumes
    from its last completed epoch (`callbacks.ResumeState` in `<checkpoint_dir>/<recipe>/backup`); the state
    is removed only once the export is published, so a run killed after its last epoch finishes evaluation
    and export without training again. `restart` sets an existing state aside (renamed, not deleted) and
    trains from epoch 1.
    Training stops at the first non-finite loss or metric (`callbacks.StopOnNonFinite`) with a
    `TrainingDiverged` naming the epoch, the step and the last good checkpoint; nothing is exported from
    non-finite weights or test metrics.
    `callbacks` are added to the run's own (e.g. a step timer or a wall-clock cap, as bench/train_zoo.py does).
    `data` replaces keys of the recipe's [data] table (e.g. {"dataset": "folder:faces", "image_size": [64, 64]}).
    The model's `image_shape` and `num_classes` come from the data (see `data_model_options`).
    `strategy` (default: the recipe's `[train] strategy`) names a `distribute.STRATEGIES` entry; the
    model is built and compiled in its scope, `batch_size` is the global batch, and in a cluster only
    the chief writes logs, checkpoints and the export (the result's "export" is None on other workers).
    """
    if data:
        recipe = recipes.with_data(recipe, data)
    train = dict(recipe.train)
    overrides = {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "batch_size": batch_size, "seed": seed}
    train.update({key: value for key, value in overrides.items() if value is not None})
    for key in ("epochs", "batch_size"):
        if train[key] < 1:
            raise ValueError(f"{key} must be at least 1, got {train[key]}.")
    if train["steps_per_epoch"] < 0:
        raise ValueError(f"steps_per_epoch must be 0 (a full pass) or positive, got {train['steps_per_epoch']}.")
    pipeline = getattr(recipe.model_class(), "train_pipeline", None)
    if pipeline is not None:
        keras.utils.set_random_seed(train["seed"])
        # A model whose recipe is more than one `fit` (e.g. pre-training, then classifiers) runs its own
        # steps with the same settings and returns a dict with the same keys as below.
        run = dict(
            logdir=logdir, export_dir=export_dir, checkpoint_dir=checkpoint_dir, source_dir=source_dir, data_dir=data_dir,
            data=data or {}, export=export, verbose=verbose, restart=restart,
        )
        return pipeline(recipe, train, run, **recipe.pipeline)

    # A multi-worker strategy must exist before TensorFlow runs anything.
    strategy = distribute.make_strategy(strategy or train["strategy"])
    keras.utils.set_random_seed(train["seed"])
    worker = distribute.role(strategy)
    backup_dir = worker.resume_dir(pathlib.Path(checkpoint_dir) / recipe.name / "backup")
    # Only the chief writes logs, checkpoints and the export; other workers write to scratch folders.
    with worker.scratch(logdir, checkpoint_dir) as (logdir, checkpoint_dir):
        return _fit_recipe(
            recipe, train, strategy, worker, backup_dir,
            logdir=logdir, export_dir=export_dir, checkpoint_dir=checkpoint_dir, source_dir=source_dir, data_dir=data_dir,
            export=export and worker.chief, verbose=verbose, callbacks=callbacks, restart=restart,
        )


def _fit_recipe(recipe, train, strategy, worker, backup_dir, *, logdir, export_dir, checkpoint_dir, source_dir, data_dir, export, verbose, callbacks, restart):
    """`train_recipe`'s single `fit`, under `strategy`, as `worker` (a `distribute.Role`)."""
    source, options = open_data(recipe, source_dir, data_dir)
    with strategy.scope():
        model = recipe.model_class()(**{**data_model_options(recipe, source, options), "seed": train["seed"]})
    classes = data_classes(recipe, model)
    if classes:
        options["classes"] = classes
    with naming_unreadable_files(source):
        datasets = data_lib.load_datasets(source, batch_size=train["batch_size"], seed=train["seed"], **options)
    for split in ("train", "validation", "test"):
        datasets[split] = distribute.shard(datasets[split], strategy)
    if verbose:
        print("Data: " + "; ".join([datasets["info"].summary(), *source.notes()]))
        print(distribute.describe(strategy, train["batch_size"]) + ("" if worker.chief else f"; worker {worker.index} writes no logs, checkpoints or export"))
    with strategy.scope():
        model.compile_recipe(**recipe.compile)
    model.jit_compile = train["jit_compile"]

    name = run_name()
    run_logdir = unique_dir(pathlib.Path(logdir) / recipe.name, name)
    run_checkpoints = unique_dir(pathlib.Path(checkpoint_dir) / recipe.name, name)
    run_checkpoints.mkdir(parents=True)
    run_logdir.mkdir(parents=True)
    settings = {
        "recipe": recipe.name,
        "recipe_path": str(recipe.path),
        "train": train,
        "model_options": recipe.model_options,
        "data": recipe.data,
        "dataset": datasets["info"].to_dict(),
    }
    (run_logdir / "run.json").write_text(json.dumps(settings, indent=2, default=str))
    # Beside the checkpoints and in the export: what `keras-gen evaluate` reopens as the model's data.
    record = data_lib.dataset_record(datasets["info"], recipe.data, train["seed"], source_dir=source_dir, data_dir=data_dir, classes=classes)
    data_lib.write_record(record, run_checkpoints)

    resume = ResumeState(backup_dir)
    if restart:
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
        *(callbacks or []),
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
        getattr(model, "after_training", lambda datasets: None)(datasets)
        test_metrics = model.evaluate(datasets["test"], return_dict=True, verbose=0)
    test = {key: float(value) for key, value in test_metrics.items()}
    bad = sorted(key for key, value in test.items() if not math.isfinite(value))
    if bad:
        raise TrainingDiverged(
            f"The test-set {', '.join(f'{key} is {test[key]}' for key in bad)}: the trained model is not exported. "
            f"{last_good_state(run_checkpoints, resume)}",
            name=bad[0],
        )
    final_checkpoint = run_checkpoints / "model.keras"
    model.save(final_checkpoint)
    export_path = export_lib.export_model(model, export_dir, model_name=recipe.name, dataset=record) if export else None
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
