"""Proof that the folder source serves real data as the built-in source does, and a short colour run.

    .venv/bin/python bench/own_data.py idx-vs-folder [--epochs 2] [--seeds 0,1] [--work-dir /tmp/keras_gen_own_data]
    .venv/bin/python bench/own_data.py colour-card [--dcgan-minutes 8] [--vae-minutes 4] [--card zoo/cards/colour_fashion.md]

`idx-vs-folder` writes the Fashion-MNIST training and test images as PNG files in class sub-folders
(`keras_gen.data.write_folder`), then trains the `vae` recipe for the same epochs and seeds twice per
seed: from the IDX files (`fashion_mnist`) and from the folder (`folder:DIR`). It prints the test
negative ELBO (nats per image) of each run and the difference between sources beside the difference
between seeds (run-to-run noise). The two test sets hold the same 10,000 images; they are binarised
with the same seed but in another order (the folder lists them class by class), so their binary
draws differ too: part of the noise.

`colour-card` writes a colour version of Fashion-MNIST (each image tinted with its own seeded random
colour and padded with black to 32x32x3: a synthetic colouring of a real dataset), trains `dcgan` and
`vae` on it through `keras-gen train ... --data folder:DIR` for the stated wall-clock budgets, and writes
a card with their test metrics, the images/s of their training steps and a grid of samples from each
export (`zoo/cards/colour_fashion-dcgan.png`, `-vae.png`). Nothing here is a test; it prints figures.
"""

import argparse
import pathlib
import shlex
import statistics
import sys
import time

import keras_gen  # noqa: F401
import numpy as np

from keras_gen import cli
from keras_gen import evaluation
from keras_gen import recipes
from keras_gen import training
from keras_gen.data import write_folder
from train_zoo import CARDS_DIR
from train_zoo import StepTimer
from train_zoo import WallClockCap
from train_zoo import hardware
from train_zoo import write_grid


def fashion_folder(root, colour):
    """Writes (once) Fashion-MNIST as PNG class folders under `root`; returns the folder."""
    folder = pathlib.Path(root) / ("fashion_colour32" if colour else "fashion_png")
    if not (folder / "test").is_dir():
        started = time.perf_counter()
        counts = write_folder.write_folder(folder, colour=colour, pad=32 if colour else None)
        print(f"Wrote {counts} PNG files to {folder} in {time.perf_counter() - started:.0f} s")
    return folder


def train(name, data, work, epochs=None, minutes=None, seed=0, **overrides):
    timer = StepTimer()
    cap = WallClockCap(minutes) if minutes else None
    callbacks = [timer] + ([cap] if cap else [])
    result = training.train_recipe(
        recipes.load_recipe(name), epochs=epochs, seed=seed, data={"dataset": data, **overrides}, callbacks=callbacks,
        logdir=work / "logs", checkpoint_dir=work / "checkpoints", export_dir=work / "exports", verbose=2,
    )
    batch = recipes.load_recipe(name).train["batch_size"]
    result["images_per_second"] = batch / statistics.median(timer.intervals) if timer.intervals else float("nan")
    result["cut_short"] = bool(cap and cap.stopped_early)
    return result


def idx_vs_folder(args):
    work = pathlib.Path(args.work_dir)
    folder = fashion_folder(work, colour=False)
    rows = []
    for seed in args.seeds:
        for source in ("fashion_mnist", f"folder:{folder}"):
            result = train("vae", source, work / "runs", epochs=args.epochs, seed=seed)
            rows.append((seed, source, result["test"]["loss"], result["train_seconds"], result["images_per_second"]))
            print(f"seed {seed}  {source}: test -ELBO {result['test']['loss']:.2f} nats, {result['train_seconds']:.0f} s")
    print()
    print(f"vae recipe, {args.epochs} epochs per run; {hardware()}")
    print(f"{'seed':>4}  {'source':<40} {'test -ELBO (nats)':>18} {'train s':>8} {'images/s':>9}")
    for seed, source, loss, seconds, speed in rows:
        print(f"{seed:>4}  {source:<40} {loss:>18.2f} {seconds:>8.0f} {speed:>9.0f}")
    by = {(seed, source.split(":")[0]): loss for seed, source, loss, _, _ in rows}
    source_gaps = [by[(seed, "folder")] - by[(seed, "fashion_mnist")] for seed in args.seeds]
    print(f"folder - IDX, per seed: {', '.join(f'{gap:+.2f}' for gap in source_gaps)} nats")
    if len(args.seeds) > 1:
        for source in ("fashion_mnist", "folder"):
            losses = [by[(seed, source)] for seed in args.seeds]
            print(f"{source}: spread over seeds (max - min) {max(losses) - min(losses):.2f} nats")


def colour_card(args):
    work = pathlib.Path(args.work_dir)
    folder = fashion_folder(work, colour=True)
    command = "python bench/own_data.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [
        "# Colour Fashion-MNIST (synthetic colouring of a real dataset): dcgan and vae from a folder of PNGs",
        "",
        "The data is **not a colour dataset**: each Fashion-MNIST image is multiplied by its own seeded random RGB colour",
        "(uniform in [0.25, 1]^3) and padded with black to 32x32x3 (`python -m keras_gen.data.write_folder --tint --pad-to 32`).",
        "It proves the colour path end to end (folder source, 32x32x3 networks with three stride-2 stages, RGB TensorBoard",
        "grids and exports); its figures say nothing about natural colour images.",
        "",
        f"Command: `{command}`. Hardware: {hardware()}.",
        "",
        "| recipe | budget | epochs run | train s | images/s (median step) | test metrics |",
        "|---|---|---|---|---|---|",
    ]
    grids = []
    for name, minutes in (("dcgan", args.dcgan_minutes), ("vae", args.vae_minutes)):
        result = train(name, f"folder:{folder}", work / "runs", epochs=100, minutes=minutes, validation_size=5000)
        epochs = f"{len(next(iter(result['history'].values())))}" + (", the last cut short by the budget" if result["cut_short"] else "")
        metrics = ", ".join(f"{key} {value:.3f}" for key, value in result["test"].items())
        lines.append(f"| `{name}` | {minutes:g} min | {epochs} | {result['train_seconds']:.0f} | {result['images_per_second']:.0f} | {metrics} |")
        grid = CARDS_DIR / f"{pathlib.Path(args.card).stem}-{name}.png"
        write_grid(evaluation.Sampler.load(str(result["export"])), grid)
        grids.append(f"`{name}`, 64 samples from its export (seeds 0..63):\n\n![{name} samples]({grid.name})")
    lines += [
        "",
        "Both are short runs at the recipes' own settings, read from the folder: `dcgan` (tanh images, three stride-2",
        "stages) and `vae` (its Bernoulli decoder on dynamically binarised channels, so its loss is in nats per",
        "32x32x3 binary image). The tint is drawn independently of the garment, so a decoder's mean given z averages",
        "over colours unless z has learned the colour: after a few minutes the VAE's samples are still nearly grey,",
        "while the GAN's generator, which must fool a discriminator that sees colour, draws coloured garments.",
        "",
        *"\n\n".join(grids).split("\n"),
    ]
    pathlib.Path(args.card).write_text("\n".join(lines) + "\n")
    print(pathlib.Path(args.card).read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    proof = commands.add_parser("idx-vs-folder")
    proof.add_argument("--epochs", type=int, default=2)
    proof.add_argument("--seeds", type=cli.parse_seeds, default=[0, 1])
    proof.set_defaults(run=idx_vs_folder)
    card = commands.add_parser("colour-card")
    card.add_argument("--dcgan-minutes", type=float, default=8)
    card.add_argument("--vae-minutes", type=float, default=4)
    card.add_argument("--card", default=str(CARDS_DIR / "colour_fashion.md"))
    card.set_defaults(run=colour_card)
    for sub in (proof, card):
        sub.add_argument("--work-dir", default="/tmp/keras_gen_own_data")
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
