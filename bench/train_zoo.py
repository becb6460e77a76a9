"""Trains zoo recipes for a stated budget and writes each one's model card, `zoo/cards/<recipe>.md`.

    .venv/bin/python bench/train_zoo.py --recipes vae,dcgan --epochs 2 --max-minutes 10 [--eval-samples 10000]
    .venv/bin/python bench/train_zoo.py --recipes all --epochs 3,semi_supervised=recipe --max-minutes 4,wgan_gp=30

`--epochs` and `--max-minutes` take one value for every recipe, then optional `recipe=value` overrides;
`recipe=recipe` keeps the recipe's own epochs (what a multi-stage recipe such as `semi_supervised`, whose
epochs cap each classifier's training, needs). A multi-stage recipe runs its own `fit`s, so the step timer
and the wall-clock cap do not reach it; its card says so.

For each recipe: `keras_gen.training.train_recipe` with the budget (epochs, and a wall-clock cap that
stops training after the batch that crosses it), the median images/s of its training steps after a
warm-up, the sample-quality table of its export against the Fashion-MNIST test set (with the reference
rows: real training images and uniform noise), and a PNG grid of samples, `zoo/cards/<recipe>-samples.png`.

The card's generated part sits between `<!-- train_zoo:begin -->` and `<!-- train_zoo:end -->`; a rerun
replaces only that part, so text written by hand around it (by the recipe's author) is kept. A card
without the markers gets the generated part appended. Runs write their logs, checkpoints and exports
under `--work-dir` (default /tmp/keras_gen_zoo), never into the repository.
"""

import argparse
import datetime
import os
import pathlib
import platform
import shlex
import statistics
import sys
import time

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf

from keras_gen import evaluation
from keras_gen import recipes
from keras_gen import training
from keras_gen.callbacks import tile

BEGIN = "<!-- train_zoo:begin -->"
END = "<!-- train_zoo:end -->"
WARMUP_STEPS = 20
CARDS_DIR = pathlib.Path(__file__).resolve().parent.parent / "zoo" / "cards"


class StepTimer(keras.callbacks.Callback):
    """Seconds between consecutive training batches' ends, after the first `warmup` batches.

    Intervals between batch ends measure the whole step, however asynchronously the backend runs it;
    each epoch's first interval, which holds the epoch's start (and the previous validation), is skipped.
    """

    def __init__(self, warmup=WARMUP_STEPS):
        super().__init__()
        self.warmup = warmup
        self.seen = 0
        self.intervals = []
        self._last = None

    def on_epoch_begin(self, epoch, logs=None):
        self._last = None

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.seen += 1
        if self._last is not None and self.seen > self.warmup:
            self.intervals.append(now - self._last)
        self._last = now


class WallClockCap(keras.callbacks.Callback):
    """Stops training after the batch that ends past `minutes` from the start of `fit`."""

    def __init__(self, minutes):
        super().__init__()
        self.seconds = 60.0 * minutes
        self.stopped_early = False
        self._start = None

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() - self._start > self.seconds:
            self.model.stop_training = True
            self.stopped_early = True


def hardware():
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = tf.config.list_physical_devices("GPU")
    # These machines are shared: the load when the card is written says how busy it was.
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} CPU cores ({cpu}), {'no GPU' if not gpus else f'{len(gpus)} GPU(s)'}; "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}; load average {load} (1, 5, 15 min)"
    )


def write_grid(sampler, path, num_classes=10):
    """A PNG of samples: 8 rows of 8, or for a conditional model 8 rows with one column per class."""
    if sampler.conditional:
        seeds = np.arange(8 * num_classes, dtype=np.int64)
        images, columns = sampler(seeds, seeds % num_classes), num_classes
    else:
        images, columns = sampler(np.arange(64, dtype=np.int64)), 8
    grid = tile(np.clip(images, 0.0, 1.0), columns)
    tf.io.write_file(str(path), tf.io.encode_png(tf.cast(tf.round(grid * 255.0), tf.uint8)))


def splice(existing, section):
    """`existing` card text with its generated part replaced by `section` (appended when it has none)."""
    block = f"{BEGIN}\n{section.rstrip()}\n{END}"
    if BEGIN in existing and END in existing.split(BEGIN, 1)[1]:
        before, rest = existing.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        return before + block + after
    return existing.rstrip("\n") + "\n\n" + block + "\n"


def card_section(result, budget, throughput, quality_rows, grid_name, command, scoring=""):
    test = result["test"]
    lines = [
        f"## Trained by bench/train_zoo.py ({datetime.date.today().isoformat()})",
        "",
        f"- **Command:** `{command}`",
        f"- **Hardware:** {hardware()}",
        f"- **Budget:** {budget}",
        f"- **Training time:** {result['train_seconds']:.0f} s for {budget_done(result)}",
        f"- **Throughput:** {throughput}",
        "- **Test set (the model's own metrics, per image):** " + ", ".join(f"{key} {value:.3f}" for key, value in test.items()),
        "",
    ]
    if quality_rows is None:
        lines += ["The model has no `sample` endpoint, so sample-quality metrics do not apply.", ""]
    else:
        lines += [
            "### Sample quality",
            "",
            "Fréchet distance, KID and precision/recall (k = 3) in the 128-d feature space of the project's Fashion-MNIST",
            "classifier (`keras_gen.feature_extractor`), against the Fashion-MNIST test set. These are not Inception FIDs",
            "and are not comparable with published ones. The real-data row is the floor; uniform noise shows the scale.",
            "Read precision with recall: the classifier maps all noise images to one tight spot, which a few outlying",
            "real images' large k-NN balls cover, hence the noise row's high precision beside its zero recall.",
            "",
            "```",
            evaluation.format_quality_table(quality_rows),
            "```",
            "",
            scoring,
            "",
            f"![samples]({grid_name})",
            "",
        ]
    return "\n".join(lines)


def budget_done(result):
    history = result["history"]
    if history and all(isinstance(value, dict) for value in history.values()):
        # A multi-stage recipe: one history per stage.
        return ", ".join(f"{stage} {len(next(iter(stage_history.values()), []))} epoch(s)" for stage, stage_history in history.items())
    epochs = len(next(iter(history.values()))) if history else 0
    return f"{epochs} epoch(s)"


def per_recipe(text, kind, name):
    """The value for recipe `name` from "default[,recipe=value...]" (None: the recipe's own, for `recipe=recipe`)."""
    default, overrides = None, {}
    for part in (piece.strip() for piece in text.split(",") if piece.strip()):
        key, sep, value = part.partition("=")
        if sep:
            overrides[key.strip()] = value.strip()
        else:
            default = part
    value = overrides.get(name, default)
    if value is None:
        raise SystemExit(f"No value for {name!r} in {text!r}: give a default first, e.g. 3,{name}=5.")
    if value == "recipe":
        return None
    try:
        return kind(value)
    except ValueError:
        raise SystemExit(f"Bad value {value!r} for {name!r} in {text!r}: expected a number or 'recipe'.") from None


def train_one(name, args, quality, reference_rows, command):
    recipe = recipes.load_recipe(name)
    epochs = per_recipe(args.epochs, int, name)
    max_minutes = per_recipe(args.max_minutes, float, name)
    timer, cap = StepTimer(), WallClockCap(max_minutes if max_minutes is not None else float("inf"))
    work = pathlib.Path(args.work_dir)
    started = time.perf_counter()
    result = training.train_recipe(
        recipe,
        epochs=epochs,
        steps_per_epoch=args.steps_per_epoch,
        logdir=str(work / "logs"),
        export_dir=str(work / "exports"),
        checkpoint_dir=str(work / "checkpoints"),
        source_dir=args.data_dir,
        verbose=2,
        callbacks=[timer, cap],
    )
    wall = time.perf_counter() - started
    steps = f", {args.steps_per_epoch} steps per epoch" if args.steps_per_epoch else ", full passes over the training set"
    shown = f"{epochs} epoch(s)" if epochs is not None else f"the recipe's {recipe.train['epochs']} epoch(s)"
    if recipe.pipeline:
        cap_text = ""  # said below: the recipe's own fits do not take the harness's callbacks
    elif max_minutes is not None:
        cap_text = f", capped at {max_minutes:g} minutes of training"
    else:
        cap_text = ", no wall-clock cap"
    budget = f"{shown}{steps}{cap_text}" + (" (the cap stopped it)" if cap.stopped_early else "")
    if recipe.pipeline:
        budget += (
            f"; a multi-stage recipe ([pipeline] {', '.join(f'{key} = {value!r}' for key, value in recipe.pipeline.items())}), "
            f"whose own fits no wall-clock cap reaches: {wall / 60:.1f} minutes in all"
        )
    batch_size = recipe.train["batch_size"]
    if timer.intervals:
        median = statistics.median(timer.intervals)
        throughput = f"{batch_size / median:,.0f} images/s per training step (batch {batch_size}; median of {len(timer.intervals)} steps after {WARMUP_STEPS} warm-up steps)"
    else:
        throughput = "not measured (the run had no steps after the warm-up, or the recipe trains through its own pipeline)"

    model = result["model"]
    endpoints = [endpoint.name for endpoint in model.serving_endpoints()]
    quality_rows, grid_name, scoring = None, f"{recipe.name}-samples.png", ""
    if "sample" in endpoints:
        sampler = evaluation.Sampler.from_export(result["export"], name=recipe.name)
        scored = quality.evaluate(sampler, num_samples=args.eval_samples)
        scoring = (
            f"Scoring the {args.eval_samples} samples (feature extraction and all metrics) took {scored['seconds']:.1f} s; "
            f"drawing them from the export {scored['sampling_seconds']:.1f} s."
        )
        print(f"{recipe.name}: {scoring}")
        rows = dict(reference_rows(sampler.conditional))
        quality_rows = {f"{recipe.name} (this run)": scored, **rows}
        write_grid(sampler, pathlib.Path(args.out_dir) / grid_name)

    card = pathlib.Path(args.out_dir) / f"{recipe.name}.md"
    section = card_section(result, budget, throughput, quality_rows, grid_name, command, scoring)
    existing = card.read_text() if card.exists() else f"# {recipe.name}\n\n{recipe.description}\n"
    card.write_text(splice(existing, section))
    print(f"Wrote {card}")
    return card


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", required=True, help="comma-separated recipe names, or `all` for the whole zoo")
    parser.add_argument("--epochs", required=True, help="epochs of each recipe: N, then optional recipe=N (or recipe=recipe: its own)")
    parser.add_argument("--max-minutes", required=True, help="wall-clock cap on each recipe's training: M, then optional recipe=M")
    parser.add_argument("--steps-per-epoch", type=int, default=0, help="0: full passes over the training set")
    parser.add_argument("--eval-samples", type=int, default=evaluation.DEFAULT_METRIC_SAMPLES)
    parser.add_argument("--out-dir", default=str(CARDS_DIR))
    parser.add_argument("--work-dir", default="/tmp/keras_gen_zoo")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files")
    args = parser.parse_args(argv)
    names = list(recipes.recipe_paths()) if args.recipes == "all" else [n.strip() for n in args.recipes.split(",") if n.strip()]
    for name in names:
        recipes.load_recipe(name)  # fail on a bad name or budget before hours of training
        per_recipe(args.epochs, int, name)
        per_recipe(args.max_minutes, float, name)
    pathlib.Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(part) for part in [".venv/bin/python", "bench/train_zoo.py", *(sys.argv[1:] if argv is None else argv)])

    quality = evaluation.SampleQuality(reference="test", source_dir=args.data_dir)
    cache = {}

    def reference_rows(conditional):
        if conditional not in cache:
            cache[conditional] = quality.reference_rows(args.eval_samples, class_accuracy=conditional)
        return cache[conditional]

    for name in names:
        train_one(name, args, quality, reference_rows, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
