"""One-class anomaly detection on Fashion-MNIST with the adversarial autoencoder: all ten classes in turn.

For each normal class: the `aae` recipe with `normal_class` set (`keras_gen.training.train_recipe`:
that class's training images, minus its share of the validation split, which calibrates the score after
training), for `--epochs` epochs or `--minutes-per-class` minutes, whichever ends first; then the whole
Fashion-MNIST test set is scored (`keras_gen.anomaly.evaluate_one_class`). Prints the table (ROC-AUC per
class and the mean; detection rate and test false-positive rate at the threshold calibrated for `--fpr`),
the ROC-AUC of each score term alone, and the `keras-gen evaluate --anomaly` command that reprints the
table from the saved checkpoints.

    nice -n 10 .venv/bin/python bench/anomaly.py --epochs 20 --minutes-per-class 2 --max-minutes 25

Runs write their logs and checkpoints under `--work-dir` (default /tmp/keras_gen_anomaly), never into
the repository. Classes that would start after `--max-minutes` are skipped (and said so).
"""

import argparse
import os
import pathlib
import shlex
import sys
import tempfile
import time

import keras_gen  # noqa: F401
import numpy as np

from keras_gen import anomaly
from keras_gen import cli
from keras_gen import data
from keras_gen import recipes
from keras_gen import training
from train_zoo import WallClockCap
from train_zoo import hardware


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="aae")
    parser.add_argument("--classes", type=cli.parse_seeds, default=list(range(10)), help="normal classes, e.g. 0..9 or 0,6")
    parser.add_argument("--epochs", type=int, default=20, help="most epochs per class")
    parser.add_argument("--minutes-per-class", type=float, default=2.0, help="wall-clock cap of each class's training")
    parser.add_argument("--max-minutes", type=float, default=25.0, help="start no new class after this much wall time")
    parser.add_argument("--fpr", type=float, default=0.05, help="false-positive rate of the calibrated threshold")
    parser.add_argument("--batch-size", type=int, help="default: the recipe's")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="override a [model_options] value (TOML syntax), e.g. latent_dim=16")
    parser.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "keras_gen_anomaly"))
    return parser.parse_args(argv)


def recipe_for(args, normal_class):
    import tomllib

    recipe = recipes.load_recipe(args.recipe)
    raw = tomllib.loads(recipe.path.read_text())
    for option in args.option:
        raw.setdefault("model_options", {}).update(tomllib.loads(option))
    # Validated again, so an override gets the same checks as the file; one name (and folder) per class.
    recipe = recipes.validate(raw, name=f"{recipe.name}_class{normal_class}", path=recipe.path)
    cli.set_normal_class(recipe, normal_class)
    return recipe


def main(argv=None):
    args = parse_args(argv)
    work = pathlib.Path(args.work_dir)
    started = time.perf_counter()
    images, labels = anomaly.test_set("fashion_mnist")
    rows, terms, checkpoints, skipped = [], [], [], []
    for normal_class in args.classes:
        if time.perf_counter() - started > 60.0 * args.max_minutes:
            skipped.append(normal_class)
            continue
        recipe = recipe_for(args, normal_class)
        cap = WallClockCap(args.minutes_per_class)
        class_started = time.perf_counter()
        result = training.train_recipe(
            recipe,
            epochs=args.epochs,
            batch_size=args.batch_size,
            logdir=work / "logs",
            export_dir=work / "exports",
            checkpoint_dir=work / "checkpoints",
            export=False,
            verbose=0,
            callbacks=[cap],
        )
        model = result["model"]
        scorer = anomaly.AnomalyScorer.from_model(model, name=recipe.name)
        row = anomaly.evaluate_one_class(scorer, images, labels, fpr=args.fpr)
        # The two terms of the score alone, from the same model: how much each contributes.
        parts = [model.anomaly_score(images[start : start + 500]) for start in range(0, len(images), 500)]
        error = np.concatenate([np.asarray(part["reconstruction_error"]) for part in parts])
        log_density = np.concatenate([np.asarray(part["log_density"]) for part in parts])
        is_anomaly = labels != normal_class
        mean_error, std_error, mean_log_density, std_log_density = np.asarray(model.score_statistics)
        weight_one = (error - mean_error) / std_error - (log_density - mean_log_density) / std_log_density
        terms.append(
            (
                normal_class,
                anomaly.roc_auc(error, is_anomaly),
                anomaly.roc_auc(-log_density, is_anomaly),
                anomaly.roc_auc(weight_one, is_anomaly),
            )
        )
        rows.append(row)
        checkpoints.append(result["checkpoint"])
        epochs_run = len(next(iter(result["history"].values())))
        print(
            f"class {normal_class} ({data.CLASS_NAMES[normal_class]}): ROC-AUC {row['auroc']:.4f}, {epochs_run} epoch(s) in "
            f"{result['train_seconds']:.0f} s{' (wall-clock cap)' if cap.stopped_early else ''}, "
            f"{time.perf_counter() - class_started:.0f} s with scoring; val reconstruction "
            f"{result['history'].get('val_reconstruction', [float('nan')])[-1]:.4f}",
            flush=True,
        )
    total = time.perf_counter() - started
    model_options = recipe_for(args, args.classes[0]).model_options if args.classes else {}
    print()
    print(f"Command: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
    print(f"Hardware: {hardware()}")
    print(f"Budget: at most {args.epochs} epochs or {args.minutes_per_class:g} min of training per class; {total / 60:.1f} min in all")
    print(f"Model options: {model_options}")
    if skipped:
        print(f"Skipped (past --max-minutes): classes {skipped}")
    print()
    print(anomaly.format_anomaly_table(rows, args.fpr, class_names=data.CLASS_NAMES, markdown=True))
    print()
    print("ROC-AUC of the score's terms, from the same models:")
    print()
    print("| normal class | reconstruction error alone | -log p(z) alone | both standardised, anomaly_weight 1 |")
    print("|---|---|---|---|")
    for normal_class, *aucs in terms:
        print(f"| {normal_class} {data.CLASS_NAMES[normal_class]} | " + " | ".join(f"{auc:.4f}" for auc in aucs) + " |")
    if terms:
        print("| mean | " + " | ".join(f"{np.mean([t[i] for t in terms]):.4f}" for i in (1, 2, 3)) + " |")
    print()
    print("Reprint the table from the checkpoints: keras-gen evaluate " + " ".join(str(path) for path in checkpoints) + f" --anomaly --fpr {args.fpr:g}")


if __name__ == "__main__":
    main()
