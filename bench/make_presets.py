"""Turns runs of bench/train_zoo.py into shipped presets, `keras_gen/assets/presets/<recipe>_<dataset>/`.

    .venv/bin/python bench/train_zoo.py --recipes vae --epochs 3 --max-minutes 3
    .venv/bin/python bench/make_presets.py --recipes vae
    .venv/bin/python bench/make_presets.py --feature-classifier   # the shipped feature classifier, as a preset

For each recipe: the latest run's final checkpoint under `--work-dir` (train_zoo's
`<work-dir>/checkpoints/<recipe>/<run>/model.keras`, with the dataset record beside it), and the figures
and command that train_zoo wrote into the recipe's card (`zoo/cards/<recipe>.md`, between its
`train_zoo` markers) with the card's sample grid. The preset (`keras_gen.presets`) holds the model's
config and weights without optimizer state, its metadata (versions, dataset, the headline figures
FD / KID / precision / recall of the card's quality table and the test loss, the command; and the same
figures on 1,000 samples, their mean and spread over 5 disjoint blocks of seeds, which
`keras-gen evaluate samples NAME --num-samples 1000` and the slow test of tests/test_presets.py reproduce),
and a card: the train_zoo section of the zoo card under a header that says how to use the preset. A
preset folder that exists already is never written over: remove it first to replace it.

A card older than the checkpoint describes another run, and a run without a card section has no
figures; both stop the conversion with what to do.
"""

import argparse
import json
import pathlib
import re
import shlex
import sys

import keras_gen  # noqa: F401

from keras_gen import data
from keras_gen import evaluation
from keras_gen import feature_extractor
from keras_gen import presets
from keras_gen.checkpoints import load_checkpoint

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import train_zoo  # noqa: E402  (its card markers and folders: one definition of what it writes)

GRID_FILE = "samples.png"
# The spread the card states and the slow test checks (default): 5 blocks of 1,000 samples (seeds 0..4999).
SPREAD_SAMPLES, SPREAD_BLOCKS = 1000, 5
SPREAD_NAMES = {"frechet_distance": "FD", "kid_mean": "KID", "precision": "precision", "recall": "recall"}


def latest_run(work_dir, recipe):
    """The final checkpoint (`model.keras`) of the latest finished run of `recipe` under `work_dir`."""
    runs = pathlib.Path(work_dir) / "checkpoints" / recipe
    finished = sorted(path for path in runs.glob("*/model.keras") if path.parent.name != "backup") if runs.is_dir() else []
    if not finished:
        raise SystemExit(
            f"No finished run of {recipe!r} under {runs} (a run folder with a model.keras): train it first, e.g. "
            f".venv/bin/python bench/train_zoo.py --recipes {recipe} --work-dir {work_dir} --epochs 3 --max-minutes 3."
        )
    # The last written: run folders' names (start times, then -2, -3 within one second) do not sort by time.
    return max(finished, key=lambda path: path.stat().st_mtime)


def card_section(card_path, checkpoint):
    """The train_zoo section of the card at `card_path`, checked to be newer than `checkpoint`."""
    if not card_path.is_file():
        raise SystemExit(f"No card {card_path}: bench/train_zoo.py writes it with the run's figures; pass its folder with --cards-dir.")
    text = card_path.read_text()
    if train_zoo.BEGIN not in text or train_zoo.END not in text:
        raise SystemExit(f"{card_path} has no section written by bench/train_zoo.py (between {train_zoo.BEGIN} and {train_zoo.END}).")
    if card_path.stat().st_mtime < checkpoint.stat().st_mtime:
        raise SystemExit(
            f"{card_path} is older than {checkpoint}, so its figures are of another run. Convert the run whose card this is, "
            "or let bench/train_zoo.py finish writing the card of this one."
        )
    return text.split(train_zoo.BEGIN, 1)[1].split(train_zoo.END, 1)[0].strip()


def figures_of(section, recipe):
    """(headline figures, the command) from a train_zoo card section: its quality row for this run
    (FD, KID, precision, recall) where the model samples, and its test-set loss."""
    command = re.search(r"^- \*\*Command:\*\* `(.+)`$", section, re.MULTILINE)
    figures = {}
    row = re.search(
        rf"^{re.escape(recipe)} \(this run\)\s+(?P<fd>[-\d.]+)\s+(?P<kid>[-\d.]+) ± [\d.]+\s+(?P<precision>[\d.]+)\s+(?P<recall>[\d.]+)\s+(?P<samples>\d+)$",
        section,
        re.MULTILINE,
    )
    if row:
        figures.update(FD=float(row["fd"]), KID=float(row["kid"]), precision=float(row["precision"]), recall=float(row["recall"]))
    test = re.search(r"^- \*\*Test set[^:]*:\*\* (.+)$", section, re.MULTILINE)
    if test:
        losses = dict(part.rsplit(" ", 1) for part in test.group(1).split(", "))
        if "loss" in losses:
            figures["test loss"] = float(losses["loss"])
    if not figures or command is None:
        raise SystemExit(f"The card section of {recipe!r} holds no figures or no command; rerun bench/train_zoo.py for it.")
    return figures, command.group(1)


def preset_name(recipe, record):
    """`<recipe>_<dataset>`, e.g. vae_fashion_mnist, dcgan_cifar10."""
    source = record["source"]
    if source.startswith("folder:"):
        raise SystemExit(f"{recipe!r} was trained on {source}; name the preset of a folder dataset with --name.")
    return f"{recipe}_{source.split(':', 1)[-1]}"


def figure_spread(model, record, num_samples=SPREAD_SAMPLES, blocks=SPREAD_BLOCKS):
    """`SampleQuality.spread` of `model`'s samples on blocks of `num_samples` in the space the card's
    figures used (the shipped classifier, Fashion-MNIST test set); None for a model that does not sample,
    or of other data or image shape (their figures need a feature space chosen for them)."""
    samples = "sample" in {endpoint.name for endpoint in model.serving_endpoints()}
    if not samples or record["source"] != "fashion_mnist" or tuple(model.image_shape) != tuple(feature_extractor.IMAGE_SHAPE):
        return None
    quality = evaluation.SampleQuality(evaluation.feature_space("fashion_mnist"), reference="test", dataset=record)
    return quality.spread(evaluation.Sampler.from_model(model), num_samples=num_samples, blocks=blocks)


def spread_lines(name, spread):
    """The card's paragraph on the 1,000-sample figures that `keras-gen evaluate samples` reproduces."""
    if spread is None:
        return []
    count, blocks = spread["num_samples"], spread["blocks"]
    last = spread["first_seed"] + count * blocks - 1
    figures = ", ".join(f"{label} {spread[key]['mean']:.4g} ± {spread[key]['std']:.2g}" for key, label in SPREAD_NAMES.items())
    first = ", ".join(f"{label} {spread[key]['first_block']:.4g}" for key, label in SPREAD_NAMES.items())
    return [
        f"**To check it:** `keras-gen evaluate samples {name} --num-samples {count}` scores seeds 0..{count - 1}; when the preset",
        f"was made they gave {first}. Over {blocks} disjoint blocks of {count} seeds (0..{last}) the figures were",
        f"{figures} (mean ± standard deviation over the blocks). The slow test",
        "`tests/test_presets.py::test_shipped_presets_reproduce_their_figures` checks that the first block lands within",
        "three standard deviations of the mean.",
        "",
    ]


def preset_card(name, recipe, section, grid, image_shape, spread=None):
    """The preset's README.md: how to use it, its check, then the zoo card's train_zoo section."""
    height, width, channels = image_shape
    usage = [
        f"# {name}",
        "",
        f"The `{recipe}` recipe trained by bench/train_zoo.py, as a keras_gen preset: config, weights (no optimizer state: a",
        "fine-tuning run starts with fresh optimizers), metadata and this card. Made by bench/make_presets.py.",
        "",
        "```sh",
        f"keras-gen sample {name} --seeds 0..63 --out grid.png",
        f"keras-gen export {name} --export-dir exports          # a TF Serving version, exports/{name}/1",
        f"keras-gen train {recipe} --from-preset {name} --data folder:DIR --image-size {height}x{width} --channels {channels}   # fine-tune",
        "```",
        "",
        f'In Python: `keras_gen.from_preset("{name}")`.',
        "",
        *spread_lines(name, spread),
    ]
    if grid is not None:
        section = re.sub(r"!\[samples\]\([^)]*\)", f"![samples]({GRID_FILE})", section)
    return "\n".join(usage) + "\n" + section + "\n"


def make_preset(recipe, args, command):
    checkpoint = latest_run(args.work_dir, recipe)
    cards = pathlib.Path(args.cards_dir)
    section = card_section(cards / f"{recipe}.md", checkpoint)
    figures, train_command = figures_of(section, recipe)
    record = data.read_record(checkpoint)
    if record is None:
        raise SystemExit(f"{checkpoint} has no dataset record beside it ({data.RECORD_NAME}); train it again with bench/train_zoo.py.")
    name = args.name or preset_name(recipe, record)
    grid = cards / f"{recipe}-samples.png"
    grid = grid if grid.is_file() else None
    # The logs of the same run say whether it was fine-tuned from another preset (keras_gen.pipelines.fit).
    run_json = pathlib.Path(args.work_dir) / "logs" / recipe / checkpoint.parent.name / "run.json"
    fine_tuned_from = json.loads(run_json.read_text()).get("fine_tuned_from") if run_json.is_file() else None
    target = pathlib.Path(args.out_dir) / name
    if target.exists():  # before the minute the spread takes; save_to_preset refuses it too
        raise SystemExit(f"{target} exists already and a preset is never written over another; remove it first to replace it.")
    model = load_checkpoint(checkpoint, compile=False)
    spread = figure_spread(model, record, args.spread_samples, args.spread_blocks)
    folder = model.save_to_preset(
        target,
        recipe=recipe,
        dataset=record,
        figures=figures,
        spread=spread,
        command=f"{train_command}; then {command}",
        card=preset_card(name, recipe, section, grid, record["image_shape"], spread),
        fine_tuned_from=fine_tuned_from,
        files={GRID_FILE: grid} if grid is not None else None,
    )
    size = sum(path.stat().st_size for path in folder.iterdir())
    print(f"Wrote {folder} from {checkpoint}: {presets.format_figures(figures)}; {size / 1e6:.2f} MB.")
    return folder


CLASSIFIER_PRESET = "feature_classifier_fashion_mnist"


def classifier_card(name, manifest, record):
    """The feature classifier preset's README.md: what it is, how it was trained, how to load it."""
    settings = manifest.get("settings", {})
    return "\n".join(
        [
            f"# {name}",
            "",
            "The project's Fashion-MNIST classifier (`keras_gen.feature_extractor.fashion_classifier()`), a plain Keras model (not a",
            "zoo model: nothing to sample, export or fine-tune with `keras-gen`), as a keras_gen preset. Its 128-d `embedding` layer",
            "is the feature space of the zoo cards' FD, KID and precision/recall (`keras-gen evaluate samples`, `--features",
            "fashion_mnist`), which reads the same weights (same sha256) from `keras_gen/assets/fashion_classifier.weights.h5`.",
            "Made by bench/make_presets.py --feature-classifier from those shipped weights and their manifest.",
            "",
            "```python",
            "import keras_gen",
            "from keras_gen import feature_extractor",
            "",
            f'classifier = keras_gen.from_preset("{name}")  # images [n, 28, 28, 1] in [0, 1] -> class logits [n, 10]',
            "features = feature_extractor.feature_model(classifier)  # -> [embedding [n, 128], logits [n, 10]]",
            "```",
            "",
            f"- **Command:** `{manifest.get('command')}` ({manifest.get('date')}, {manifest.get('trained_on')})",
            f"- **Budget:** {manifest.get('epochs_run')} epochs of batch {settings.get('batch_size')}, Adam {settings.get('learning_rate')}, "
            f"seed {settings.get('seed')}, capped at {settings.get('max_minutes')} minutes; {manifest.get('train_minutes')} minutes of training",
            f"- **Accuracy:** test {manifest.get('test_accuracy')} (the 10,000 Fashion-MNIST test images, scored once at the end), validation "
            f"{manifest.get('validation_accuracy')} ({record['validation_size']:,} training images held out by keras_gen.data, seed {record['seed']})",
            "- **Classes:** " + ", ".join(record["class_names"]),
            "",
        ]
    )


def make_classifier_preset(args, command):
    """The shipped feature classifier as a preset: its weights, figures and command from its manifest."""
    classifier = feature_extractor.load_classifier()  # checks the weights' sha256 against the manifest
    manifest = feature_extractor.read_manifest()
    record = data.record_for_source("fashion_mnist", source_dir=args.data_dir)
    name = args.name or CLASSIFIER_PRESET
    folder = presets.save_to_preset(
        classifier,
        pathlib.Path(args.out_dir) / name,
        dataset=record,
        figures={"test accuracy": manifest["test_accuracy"], "validation accuracy": manifest["validation_accuracy"]},
        command=f"{manifest['command']}; then {command}",
        card=classifier_card(name, manifest, record),
    )
    size = sum(path.stat().st_size for path in folder.iterdir())
    print(f"Wrote {folder} from the shipped feature classifier: test accuracy {manifest['test_accuracy']}; {size / 1e6:.2f} MB.")
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", default="", help="comma-separated recipe names trained by bench/train_zoo.py")
    parser.add_argument("--feature-classifier", action="store_true", help=f"also write the shipped feature classifier as the preset {CLASSIFIER_PRESET}")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (default: keras_gen.data's)")
    parser.add_argument("--work-dir", default="/tmp/keras_gen_zoo", help="train_zoo's --work-dir (default: /tmp/keras_gen_zoo)")
    parser.add_argument("--cards-dir", default=str(train_zoo.CARDS_DIR), help="train_zoo's --out-dir, where the cards are (default: zoo/cards)")
    parser.add_argument("--out-dir", default=str(presets.SHIPPED_DIR), help="where the preset folders go (default: the package's shipped presets)")
    parser.add_argument("--spread-samples", type=int, default=SPREAD_SAMPLES, help=f"samples per block of the figures' spread (default: {SPREAD_SAMPLES})")
    parser.add_argument("--spread-blocks", type=int, default=SPREAD_BLOCKS, help=f"disjoint blocks of seeds for the spread (default: {SPREAD_BLOCKS})")
    parser.add_argument("--name", help="the preset's name, for one recipe (default: <recipe>_<dataset>)")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.recipes.split(",") if name.strip()]
    if not names and not args.feature_classifier:
        raise SystemExit("Name what to convert: --recipes NAME[,NAME...] and/or --feature-classifier.")
    if args.name and len(names) + args.feature_classifier != 1:
        raise SystemExit("--name names one preset; pass one recipe with --recipes, or --feature-classifier alone.")
    command = " ".join(shlex.quote(part) for part in [".venv/bin/python", "bench/make_presets.py", *(sys.argv[1:] if argv is None else argv)])
    for recipe in names:
        try:
            make_preset(recipe, args, command)
        except presets.PresetError as error:
            raise SystemExit(f"{recipe}: {error}") from None
    if args.feature_classifier:
        try:
            make_classifier_preset(args, command)
        except presets.PresetError as error:
            raise SystemExit(f"feature classifier: {error}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
