"""Train-step images/s of zoo recipes in float32, in mixed precision and with XLA: one row each.

    .venv/bin/python bench/train_step_modes.py [--recipes dcgan,wgan_gp,vae,dcgan_celeba] [--steps 20] [--rounds 3]
    .venv/bin/python bench/train_step_modes.py --dry-run      # seconds on a CPU: checks that it runs

Each recipe's model is built from its [model_options] at the recipe's image size (Fashion-MNIST's
28x28x1 when the recipe names none), compiled as the recipe says and trained with `fit` on random
batches shaped like its data (bench/throughput.py's `random_batches`), so the figures measure the
computation, not the input pipeline. Modes: float32 (the recipe's mixed_precision switched off), mixed
precision (float16 with loss scaling on a GPU, bfloat16 elsewhere) and float32 with XLA (`jit_compile`).
After a warm-up (tracing) each mode is timed over `--steps` batches in interleaved rounds and the
median round is printed. `--dry-run` shrinks everything (16x16 images, batch 8, one step after one warm-up step, 1 round) so
that CI can check the script on a CPU; its figures mean nothing. Nothing here is a test.
"""

import argparse
import dataclasses
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import keras_gen  # noqa: E402,F401
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_gen import recipes  # noqa: E402
from throughput import median_rates  # noqa: E402
from throughput import random_batches  # noqa: E402

DEFAULT_RECIPES = ("dcgan", "wgan_gp", "vae", "dcgan_celeba")
MODES = ("float32", "mixed", "XLA")


def image_shape(recipe, dry_run):
    """The recipe's image shape: its [data] image_size and channels, else Fashion-MNIST's."""
    if dry_run:
        return (16, 16, recipe.data["channels"] or 1)
    height, width = recipe.data["image_size"] or (28, 28)
    return (height, width, recipe.data["channels"] or 1)


def build(recipe, mode, shape, mixed_policy):
    options = {**recipe.model_options, "image_shape": shape, "seed": 0}
    options["mixed_precision"] = mixed_policy if mode == "mixed" else False
    model = dataclasses.replace(recipe, model_options=options).build_model()
    recipe.compile_model(model)
    model.jit_compile = mode == "XLA"
    return model


def rates(recipe, shape, batch_size, steps, rounds, mixed_policy, warm_up=2):
    """{mode: median images/s} of the recipe's train step."""
    models = {mode: build(recipe, mode, shape, mixed_policy) for mode in MODES}
    return median_rates(models, random_batches(recipe, batch_size, models["float32"]), batch_size, steps, rounds, warm_up)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", default=",".join(DEFAULT_RECIPES), help="comma-separated recipe names")
    parser.add_argument("--steps", type=int, default=20, help="train steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes: checks the script, measures nothing")
    args = parser.parse_args(argv)
    steps, rounds, warm_up = (1, 1, 1) if args.dry_run else (args.steps, args.rounds, 2)
    gpus = tf.config.list_logical_devices("GPU")
    mixed_policy = "float16" if gpus else "bfloat16"
    where = f"{len(gpus)} GPU(s): {', '.join(d.name for d in gpus)}" if gpus else f"CPU only, {os.cpu_count()} cores"
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; {where}; mixed precision = {mixed_policy}")
    print(f"median of {rounds} round(s) of {steps} steps" + ("; DRY RUN: tiny sizes, figures mean nothing" if args.dry_run else ""))
    header = f"{'recipe':<14} {'image':>9} {'batch':>5} " + " ".join(f"{mode + ' img/s':>15}" for mode in MODES)
    print(header)
    print("-" * len(header))
    for name in args.recipes.split(","):
        recipe = recipes.load_recipe(name.strip())
        shape = image_shape(recipe, args.dry_run)
        batch_size = 8 if args.dry_run else recipe.train["batch_size"]
        figures = rates(recipe, shape, batch_size, steps, rounds, mixed_policy, warm_up)
        size = "x".join(map(str, shape))
        print(f"{recipe.name:<14} {size:>9} {batch_size:>5} " + " ".join(f"{figures[mode]:>15.0f}" for mode in MODES), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
