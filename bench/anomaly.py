"""One-class anomaly detection on Fashion-MNIST with a one-class detector (aae, ebm): all ten classes in turn.

The one-class pipeline (`keras_gen.pipelines.one_class`): for each normal class, the recipe (`--recipe`,
default `aae`) with `normal_class` set, trained with the fit pipeline (that class's training images,
minus its share of the validation split, which calibrates the score after training), for `--epochs`
epochs or `--minutes-per-class` minutes, whichever ends first (`--minutes-per-class 0`: epochs alone, so
that the figures do not depend on the machine's load); then the whole Fashion-MNIST test set is scored
(`keras_gen.anomaly.evaluate_one_class`). Prints the table (ROC-AUC per
class and the mean; detection rate and test false-positive rate at the threshold calibrated for `--fpr`),
the ROC-AUC of each of the model's score terms alone (`one_class.term_aucs`; three columns for the AAE,
and for a one-term score such as the EBM's energy a note, since the first table is then its table),
and the `keras-gen evaluate --anomaly` command that reprints the table from the saved checkpoints.

    nice -n 10 .venv/bin/python bench/anomaly.py --epochs 20 --minutes-per-class 2 --max-minutes 25
    nice -n 10 .venv/bin/python bench/anomaly.py --recipe ebm --epochs 6 --minutes-per-class 0 --max-minutes 0

Runs write their logs and checkpoints under `--work-dir` (default /tmp/keras_gen_anomaly), never into
the repository. Classes that would start after `--max-minutes` are skipped (and said so).
"""

import argparse
import os
import pathlib
import shlex
import sys
import tempfile

import keras_gen  # noqa: F401

from keras_gen import anomaly
from keras_gen import cli
from keras_gen import data
from keras_gen import recipes
from keras_gen.pipelines import one_class
from keras_gen.pipelines import runs
from train_zoo import WallClockCap
from train_zoo import hardware


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", default="aae")
    parser.add_argument("--classes", type=cli.parse_seeds, default=list(range(10)), help="normal classes, e.g. 0..9 or 0,6")
    parser.add_argument("--epochs", type=int, default=20, help="most epochs per class")
    parser.add_argument("--minutes-per-class", type=float, default=2.0, help="wall-clock cap of each class's training (0: none, --epochs alone)")
    parser.add_argument("--max-minutes", type=float, default=25.0, help="start no new class after this much wall time (0: no limit)")
    parser.add_argument("--fpr", type=float, default=0.05, help="false-positive rate of the calibrated threshold")
    parser.add_argument("--batch-size", type=int, help="default: the recipe's")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="override a [model_options] value (TOML syntax), e.g. latent_dim=16")
    parser.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "keras_gen_anomaly"))
    return parser.parse_args(argv)


def base_recipe(args):
    """The recipe with the `--option` overrides, validated again so that an override gets the same checks as the file."""
    import tomllib

    recipe = recipes.load_recipe(args.recipe)
    raw = tomllib.loads(recipe.path.read_text())
    for option in args.option:
        raw.setdefault("model_options", {}).update(tomllib.loads(option))
    return recipes.validate(raw, name=recipe.name, path=recipe.path)


def main(argv=None):
    args = parse_args(argv)
    work = pathlib.Path(args.work_dir)
    recipe = base_recipe(args)
    images, labels = anomaly.test_set("fashion_mnist")
    train = runs.train_settings(recipe, epochs=args.epochs, batch_size=args.batch_size)
    run = runs.run_settings(logdir=work / "logs", export_dir=work / "exports", checkpoint_dir=work / "checkpoints", export=False, verbose=0)
    caps = {}

    def cap(normal_class):
        if args.minutes_per_class <= 0:
            return []
        caps[normal_class] = WallClockCap(args.minutes_per_class)
        return [caps[normal_class]]

    def report(record):
        capped = record["normal_class"] in caps and caps[record["normal_class"]].stopped_early
        note = " (wall-clock cap)" if capped else ""
        print(one_class.class_line(record, data.CLASS_NAMES, note), flush=True)

    at_start = hardware()
    outcome = one_class.evaluate_classes(
        recipe, args.classes, images, labels, train, run, fpr=args.fpr, max_minutes=args.max_minutes, callbacks=cap, on_class=report
    )
    records = outcome["records"]
    model_options = one_class.class_recipe(recipe, args.classes[0]).model_options if args.classes else {}
    print()
    print(f"Command: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
    print(f"Hardware at the start: {at_start}")
    print(f"Hardware at the end: {hardware()}")
    cap_text = f" or {args.minutes_per_class:g} min" if args.minutes_per_class > 0 else ""
    print(f"Budget: at most {args.epochs} epochs{cap_text} of training per class; {outcome['seconds'] / 60:.1f} min in all")
    print(f"Model options: {model_options}")
    if outcome["skipped"]:
        print(f"Skipped (past --max-minutes): classes {outcome['skipped']}")
    print()
    print(anomaly.format_anomaly_table([record["row"] for record in records], args.fpr, class_names=data.CLASS_NAMES, markdown=True))
    columns = list(records[0]["terms"]) if records else []
    if len(columns) > 1:
        print()
        print("ROC-AUC of the score's terms, from the same models:")
        print()
        print(one_class.format_terms_table(records, data.CLASS_NAMES))
    elif columns:
        # A one-term score (the EBM's energy) ranks the images as that term does: the table above is its table.
        print()
        print(f"The score has one term ({columns[0]}): its ROC-AUCs are the table's.")
    print()
    print("Reprint the table from the checkpoints: " + one_class.reprint_command(records, args.fpr))


if __name__ == "__main__":
    main()
