"""Pipelines: what `keras-gen train RECIPE` runs, composing a recipe's model, data and callbacks.

A recipe names its pipeline in its [pipeline] table (`name = "semi_supervised"`); the other keys of that
table are the pipeline's options, checked against its signature like every recipe section. A recipe
that names none runs its model's `recipe_pipeline` ("fit" for every model but the semi-supervised
classifier, whose recipes predate pipeline names).

- `fit`: one `fit` with TensorBoard, checkpoints and resumption, then evaluation and export.
- `semi_supervised`: pre-train an autoencoder, then a classifier on few labels three ways.
- `one_class`: one anomaly detector per normal class, scored with the one-class protocol.

Each is `pipeline(recipe, train, run, **options)` (see `runs`); `train_recipe` calls the recipe's own.

Example:
>>> from keras_gen import recipes
>>> result = train_recipe(recipes.load_recipe("vae"), epochs=1)  # doctest: +SKIP
"""

from keras_gen import recipes
from keras_gen.pipelines import fit
from keras_gen.pipelines import one_class
from keras_gen.pipelines import runs
from keras_gen.pipelines import semi_supervised

PIPELINES = {
    "fit": fit.run_recipe,
    "semi_supervised": semi_supervised.run_recipe,
    "one_class": one_class.run_recipe,
}


def pipeline_names():
    """The pipelines a recipe can name, sorted."""
    return sorted(PIPELINES)


def get_pipeline(name):
    """The pipeline function called `name`; a KeyError listing the pipelines otherwise."""
    if name not in PIPELINES:
        raise KeyError(f"Unknown pipeline {name!r}; the pipelines are: {', '.join(pipeline_names())}.")
    return PIPELINES[name]


def train_recipe(recipe, *, epochs=None, steps_per_epoch=None, batch_size=None, seed=None, **run):
    """Runs `recipe` (a `recipes.Recipe`) with the pipeline it names and returns a dict of where everything went.

    `epochs`, `steps_per_epoch`, `batch_size` and `seed` left as None take the recipe's values; `run` are the
    keyword arguments of `runs.run_settings` (logdir, export_dir, checkpoint_dir, source_dir, data_dir, data,
    export, verbose, callbacks, restart, strategy, from_preset), with its defaults.
    For the fit pipeline: TensorBoard logs go to `<logdir>/<recipe>/<timestamp>/`, one `.keras` checkpoint
    per epoch to `<checkpoint_dir>/<recipe>/<timestamp>/`, and the SavedModel to the next free version
    under `<export_dir>/<recipe>/`. If a previous run of the same recipe was interrupted, training resumes
    from its last completed epoch (`callbacks.ResumeState` in `<checkpoint_dir>/<recipe>/backup`); the state
    is removed only once the export is published, so a run killed after its last epoch finishes evaluation
    and export without training again. `restart` sets an existing state aside (renamed, not deleted) and
    trains from epoch 1.
    Training stops at the first non-finite loss or metric (`callbacks.StopOnNonFinite`) with a
    `TrainingDiverged` naming the epoch, the step and the last good checkpoint; nothing is exported from
    non-finite weights or test metrics.
    `callbacks` are added to the run's own (e.g. a step timer or a wall-clock cap, as bench/train_zoo.py does).
    `data` replaces keys of the recipe's [data] table (e.g. {"dataset": "folder:faces", "image_size": [64, 64]}).
    The model's `image_shape` and `num_classes` come from the data (see `fit.data_model_options`).
    `strategy` (default: the recipe's `[train] strategy`) names a `distribute.STRATEGIES` entry; the
    model is built and compiled in its scope, `batch_size` is the global batch, and in a cluster only
    the chief writes logs, checkpoints and the export (the result's "export" is None on other workers).

    The semi-supervised and one-class pipelines take the same arguments for their own steps; their
    results say what they trained (see `semi_supervised.run_recipe` and `one_class.run_recipe`).
    """
    run = runs.run_settings(**run)
    if run["from_preset"] is not None and recipe.pipeline_name != "fit":
        raise recipes.RecipeError(
            f"Recipe {recipe.name!r} runs the {recipe.pipeline_name} pipeline, which trains several models; only recipes of the fit "
            "pipeline start from a preset (--from-preset)."
        )
    if run["data"]:
        recipe = recipes.with_data(recipe, run["data"])
    train = runs.train_settings(recipe, epochs=epochs, steps_per_epoch=steps_per_epoch, batch_size=batch_size, seed=seed)
    return get_pipeline(recipe.pipeline_name)(recipe, train, run, **recipe.pipeline)
