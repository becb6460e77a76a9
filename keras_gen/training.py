"""Runs a zoo recipe: data, model, `fit` with TensorBoard and checkpoints, evaluation, export."""

import datetime
import json
import pathlib
import time

import keras_gen  # noqa: F401
import keras

from keras_gen import data as data_lib
from keras_gen import export as export_lib
from keras_gen.callbacks import ImageSummaries


def run_name():
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def unique_dir(parent, name):
    """`parent/name`, or `parent/name-2`, ... if taken: runs never share (and so never overwrite) a folder."""
    candidate, suffix = parent / name, 2
    while candidate.exists():
        candidate, suffix = parent / f"{name}-{suffix}", suffix + 1
    return candidate


def load_datasets(recipe, batch_size, seed, source_dir=None, data_dir=None, classes=None):
    """The recipe's datasets; `classes` (default: the recipe's `[data] classes`, empty for all) filters them."""
    options = recipe.data
    return data_lib.fashion_mnist_datasets(
        batch_size=batch_size,
        preprocessing=options["preprocessing"],
        validation_size=options["validation_size"],
        seed=seed,
        with_labels=options["with_labels"],
        source_dir=source_dir,
        data_dir=data_dir,
        classes=classes or options.get("classes") or None,
    )


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
    export=True,
    verbose=1,
    callbacks=None,
):
    """Trains `recipe` (a `recipes.Recipe`) and returns a dict of where everything went.

    Arguments left as None take the recipe's values. TensorBoard logs go to
    `<logdir>/<recipe>/<timestamp>/`, one `.keras` checkpoint per epoch to
    `<checkpoint_dir>/<recipe>/<timestamp>/`, and the SavedModel to the next free version under
    `<export_dir>/<recipe>/`. If a previous run of the same recipe was interrupted, training resumes
    from its last completed epoch (`keras.callbacks.BackupAndRestore` in `<checkpoint_dir>/<recipe>/backup`).
    `callbacks` are added to the run's own (e.g. a step timer or a wall-clock cap, as bench/train_zoo.py does).
    """
    train = dict(recipe.train)
    overrides = {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "batch_size": batch_size, "seed": seed}
    train.update({key: value for key, value in overrides.items() if value is not None})
    for key in ("epochs", "batch_size"):
        if train[key] < 1:
            raise ValueError(f"{key} must be at least 1, got {train[key]}.")
    if train["steps_per_epoch"] < 0:
        raise ValueError(f"steps_per_epoch must be 0 (a full pass) or positive, got {train['steps_per_epoch']}.")
    keras.utils.set_random_seed(train["seed"])
    pipeline = getattr(recipe.model_class(), "train_pipeline", None)
    if pipeline is not None:
        # A model whose recipe is more than one `fit` (e.g. pre-training, then classifiers) runs its own
        # steps with the same settings and returns a dict with the same keys as below.
        run = dict(logdir=logdir, export_dir=export_dir, checkpoint_dir=checkpoint_dir, source_dir=source_dir, data_dir=data_dir, export=export, verbose=verbose)
        return pipeline(recipe, train, run, **recipe.pipeline)

    model = recipe.build_model(seed=train["seed"])
    datasets = load_datasets(recipe, train["batch_size"], train["seed"], source_dir, data_dir, classes=data_classes(recipe, model))
    model.compile_recipe(**recipe.compile)
    model.jit_compile = train["jit_compile"]

    name = run_name()
    run_logdir = unique_dir(pathlib.Path(logdir) / recipe.name, name)
    run_checkpoints = unique_dir(pathlib.Path(checkpoint_dir) / recipe.name, name)
    run_checkpoints.mkdir(parents=True)
    run_logdir.mkdir(parents=True)
    settings = {"recipe": recipe.name, "recipe_path": str(recipe.path), "train": train, "model_options": recipe.model_options}
    (run_logdir / "run.json").write_text(json.dumps(settings, indent=2, default=str))

    callbacks = [
        keras.callbacks.BackupAndRestore(str(pathlib.Path(checkpoint_dir) / recipe.name / "backup")),
        keras.callbacks.TensorBoard(log_dir=str(run_logdir)),
        ImageSummaries(run_logdir, datasets["validation_images"], train["summary_samples"], seed=train["seed"]),
        keras.callbacks.ModelCheckpoint(str(run_checkpoints / "epoch-{epoch:03d}.keras")),
        *model.recipe_callbacks(),
        *(callbacks or []),
    ]
    started = time.perf_counter()
    history = model.fit(
        datasets["train"],
        epochs=train["epochs"],
        steps_per_epoch=train["steps_per_epoch"] or None,
        validation_data=datasets["validation"],
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline shuffles (seeded) already
        verbose=verbose,
    )
    seconds = time.perf_counter() - started
    # E.g. an anomaly detector sets its score statistics and thresholds on the held-out images here.
    getattr(model, "after_training", lambda datasets: None)(datasets)
    test_metrics = model.evaluate(datasets["test"], return_dict=True, verbose=0)
    final_checkpoint = run_checkpoints / "model.keras"
    model.save(final_checkpoint)
    result = {
        "recipe": recipe.name,
        "logdir": run_logdir,
        "checkpoint": final_checkpoint,
        "history": history.history,
        "test": {key: float(value) for key, value in test_metrics.items()},
        "train_seconds": seconds,
        "export": export_lib.export_model(model, export_dir, model_name=recipe.name) if export else None,
        "model": model,
    }
    return result
