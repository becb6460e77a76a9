"""The one-class pipeline: one anomaly detector per normal class, scored with the one-class protocol.

For each normal class: the recipe with `normal_class` set, trained with the fit pipeline on that class's
training images minus its share of the validation split (the model calibrates its score on those
held-out images after training, `GenerativeModel.after_training`), then the whole test set scored with
`keras_gen.anomaly.evaluate_one_class`. The metrics and the table are `keras_gen.anomaly`'s.

A recipe runs it with `[pipeline] name = "one_class"`; `bench/anomaly.py` runs it on Fashion-MNIST for
the `aae` and `ebm` cards. Any `anomaly.OneClassDetector` with a `normal_class` option fits: `term_aucs`
reads the terms the model declares, one (the EBM's energy) or several (the AAE's reconstruction error and
log density).
"""

import dataclasses
import inspect
import shlex
import time

import keras_gen  # noqa: F401
import numpy as np

from keras_gen import anomaly
from keras_gen import recipes
from keras_gen.pipelines import fit


def class_recipe(recipe, normal_class):
    """`recipe` training a one-class detector of `normal_class` with the fit pipeline, named
    `<recipe>_class<normal_class>` (so each class has its own run folders, resume state and export)."""
    if "normal_class" not in inspect.signature(recipe.model_class().__init__).parameters:
        raise recipes.RecipeError(
            f"The one_class pipeline trains one-class anomaly detectors (models with a normal_class option, e.g. aae or ebm); "
            f"{recipe.model!r} has no normal_class option."
        )
    return dataclasses.replace(
        recipe,
        name=f"{recipe.name}_class{normal_class}",
        model_options={**recipe.model_options, "normal_class": normal_class},
        pipeline_name="fit",
        pipeline={},
    )


def term_aucs(model, images, labels, normal_class, batch_size=500):
    """The ROC-AUC of each of a model's score terms alone and, for more than one term, of their sum with
    every weight set to +1 or -1, from the same model, the test labels other than `normal_class` being
    the anomalies.

    The terms and their signs are the model's own (`anomaly.OneClassDetector.score_terms` and
    `score_weights`): each term is ranked with its weight's sign, so that higher is more anomalous (the
    adversarial autoencoder's -log p(z), for its log density of weight -anomaly_weight), and the sum
    standardises the terms with the model's calibration. With one term (the EBM's energy) that sum would
    rank the images as the term does, so it is left out.

    Returns:
        {column: ROC-AUC}, in the order of the terms, e.g. {"reconstruction_error alone", "-log_density
        alone", "sum of the standardised terms, weights +-1"} for the adversarial autoencoder.
    """
    if not isinstance(model, anomaly.OneClassDetector):
        raise TypeError(f"term_aucs needs a one-class detector (anomaly.OneClassDetector), got a {type(model).__name__}.")
    parts = [model.score_terms(images[start : start + batch_size]) for start in range(0, len(images), batch_size)]
    names = list(parts[0])
    signs = np.sign(np.asarray(model.score_weights(), np.float64))
    if len(signs) != len(names) or not np.all(signs):
        raise ValueError(f"{type(model).__name__} gives terms {names} but weights {tuple(model.score_weights())}: one non-zero weight per term.")
    terms = {name: np.concatenate([np.asarray(part[name], np.float64) for part in parts]) for name in names}
    is_anomaly = np.asarray(labels) != normal_class
    aucs = {f"{'-' if sign < 0 else ''}{name} alone": anomaly.roc_auc(sign * terms[name], is_anomaly) for name, sign in zip(names, signs)}
    if len(names) > 1:
        statistics = np.asarray(model.score_statistics, np.float64).reshape(-1, 2)
        summed = sum(sign * (terms[name] - mean) / spread for name, sign, (mean, spread) in zip(names, signs, statistics))
        aucs["sum of the standardised terms, weights +-1"] = anomaly.roc_auc(summed, is_anomaly)
    return aucs


def evaluate_classes(recipe, classes, images, labels, train, run, *, fpr=0.05, max_minutes=0.0, callbacks=None, on_class=None):
    """The one-class protocol over `classes`: one detector per normal class, trained with the fit pipeline,
    then scored on the test `images` and `labels`.

    Args:
        recipe: a recipe of a model with a `normal_class` option (e.g. aae or ebm).
        classes: the normal classes, in order.
        images, labels: the test split (`anomaly.test_set`).
        train, run: as for any pipeline (`runs.train_settings`, `runs.run_settings`); each class's run
            goes to its own folders (`class_recipe`).
        fpr: the false-positive rate at which the thresholds are read.
        max_minutes: start no new class after this much wall time (0: no limit); the classes left are "skipped".
        callbacks: a function normal_class -> callbacks for that class's `fit` (e.g. a wall-clock cap).
        on_class: called with each class's record as soon as it is scored (e.g. to print a line).

    Returns:
        {"records": [per class: {"normal_class", "row" (`anomaly.evaluate_one_class`), "terms"
        (`term_aucs`), "result" (the fit pipeline's), "seconds" (training and scoring)}], "skipped": [classes],
        "seconds"}.
    """
    # Every class's recipe is checked before the first one trains.
    per_class = {normal_class: class_recipe(recipe, normal_class) for normal_class in classes}
    started = time.perf_counter()
    records, skipped = [], []
    for normal_class, own in per_class.items():
        if max_minutes and time.perf_counter() - started > 60.0 * max_minutes:
            skipped.append(normal_class)
            continue
        class_started = time.perf_counter()
        extra = list(callbacks(normal_class)) if callbacks is not None else []
        result = fit.run_recipe(own, train, dict(run, callbacks=[*run["callbacks"], *extra]))
        model = result["model"]
        scorer = anomaly.AnomalyScorer.from_model(model, name=own.name)
        record = {
            "normal_class": normal_class,
            "row": anomaly.evaluate_one_class(scorer, images, labels, fpr=fpr),
            "terms": term_aucs(model, images, labels, normal_class),
            "result": result,
            "seconds": time.perf_counter() - class_started,
        }
        records.append(record)
        if on_class is not None:
            on_class(record)
    return {"records": records, "skipped": skipped, "seconds": time.perf_counter() - started}


def class_line(record, class_names, note=""):
    """One class's progress line: its ROC-AUC, epochs, training time (then `note`), time with scoring and
    the first validation metric of the last epoch (the adversarial autoencoder's reconstruction loss,
    the EBM's energy of real images)."""
    result, normal_class = record["result"], record["normal_class"]
    history = result["history"]
    epochs_run = len(next(iter(history.values()), []))
    name = f" ({class_names[normal_class]})" if normal_class < len(class_names) else ""
    validation = next((key for key in history if key.startswith("val_")), None)
    last = "" if validation is None else f"; {validation.replace('_', ' ')} {history[validation][-1]:.4f}"
    return (
        f"class {normal_class}{name}: ROC-AUC {record['row']['auroc']:.4f}, {epochs_run} epoch(s) in "
        f"{result['train_seconds']:.0f} s{note}, {record['seconds']:.0f} s with scoring{last}"
    )


def format_terms_table(records, class_names):
    """The markdown table of each class's `term_aucs` (columns those of the first record), then their means."""
    columns = list(records[0]["terms"]) if records else []
    lines = ["| normal class | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for record in records:
        normal_class = record["normal_class"]
        name = f" {class_names[normal_class]}" if normal_class < len(class_names) else ""
        lines.append(f"| {normal_class}{name} | " + " | ".join(f"{record['terms'][column]:.4f}" for column in columns) + " |")
    if records:
        lines.append("| mean | " + " | ".join(f"{np.mean([record['terms'][column] for record in records]):.4f}" for column in columns) + " |")
    return "\n".join(lines)


def reprint_command(records, fpr):
    """The `keras-gen evaluate --anomaly` command that reprints the table from the classes' checkpoints."""
    paths = [shlex.quote(str(record["result"]["checkpoint"])) for record in records]
    return "keras-gen evaluate " + " ".join(paths) + f" --anomaly --fpr {fpr:g}"


def run_recipe(recipe, train, run, *, classes=(), fpr=0.05, max_minutes=0.0):
    """Runs the one-class protocol for a recipe whose [pipeline] table says `name = "one_class"` (called by
    `keras_gen.pipelines.train_recipe`): one detector per normal class, each with its own run folders and
    export (`<recipe>_class<N>`), scored on the recipe's data's test split. Prints a line per class, the
    table and the command that reprints it.

    Args:
        recipe: the validated `recipes.Recipe` of a model with a `normal_class` option (e.g. aae or ebm).
        train: its [train] settings, command-line overrides applied (`runs.train_settings`).
        run: where things go and what to do (`runs.run_settings`).
        classes: the normal classes (empty: every class of the data).
        fpr: the false-positive rate of the calibrated thresholds in the table.
        max_minutes: start no new class after this much wall time (0: no limit).

    Returns:
        "recipe", "test" ({"mean_auroc", "class_<N>_auroc"}), "train_seconds" (the whole protocol),
        "runs" ({normal class: the fit pipeline's result}), "rows" (`anomaly.evaluate_one_class`'s),
        "records" and "skipped" (`evaluate_classes`).
    """
    source, options = fit.open_data(recipe, run["source_dir"], run["data_dir"])
    if source.class_names is None:
        raise recipes.RecipeError(f"Recipe {recipe.name!r} runs the one_class pipeline, which needs labels, but {source.name} has none.")
    classes = list(classes) or list(range(len(source.class_names)))
    shape = {key: options[key] for key in ("image_size", "channels", "center_crop", "validation_size", "test_size")}
    images, labels = anomaly.test_set(source, seed=train["seed"], **shape)
    outcome = evaluate_classes(
        recipe, classes, images, labels, train, run, fpr=fpr, max_minutes=max_minutes,
        on_class=lambda record: print(class_line(record, source.class_names), flush=True),
    )
    records = outcome["records"]
    rows = [record["row"] for record in records]
    print()
    if outcome["skipped"]:
        print(f"Skipped (past max_minutes): classes {outcome['skipped']}")
    print(anomaly.format_anomaly_table(rows, fpr, class_names=source.class_names))
    if records:
        print()
        print("Reprint the table from the checkpoints: " + reprint_command(records, fpr))
    test = {f"class_{row['normal_class']}_auroc": row["auroc"] for row in rows}
    return {
        "recipe": recipe.name,
        "test": {"mean_auroc": float(np.mean([row["auroc"] for row in rows])) if rows else float("nan"), **test},
        "train_seconds": outcome["seconds"],
        "runs": {record["normal_class"]: record["result"] for record in records},
        "rows": rows,
        "records": records,
        "skipped": outcome["skipped"],
    }
