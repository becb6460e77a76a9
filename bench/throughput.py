"""Images per second of each zoo model's compiled train step (with and without XLA) and of its export's
`sample` signature at batch 1 and 64; with `--step-share OPTION`, the share of the train step that
grows with an integer model option (the EBM's Langevin steps per training step).

    .venv/bin/python bench/throughput.py [--recipes vae,dcgan] [--steps 20] [--rounds 3]
    .venv/bin/python bench/throughput.py --recipes ebm --step-share langevin_steps

Each recipe's model is built as the recipe says and trained on random data shaped like the recipe's
(images in its preprocessing's range, labels when it takes them), so the figures measure the
computation, not the input pipeline. Train steps are timed with `fit` over `--steps` batches after a
warm-up (tracing), in interleaved rounds; the median round is printed. The export is written to a
temporary folder, loaded with TensorFlow alone and its `sample` signature called repeatedly.
`--step-share OPTION` times, in the same interleaved rounds (no XLA), the step with the recipe's value n
of the option and with 1. Taking the step time as t(m) = a + m * b (a: everything the option does not
repeat, here the optimizer step on the real batch and the negatives; b: one repetition, here one
Langevin step over the batch), b = (t(n) - t(1)) / (n - 1), and the option's share of the step at n is
n * b / t(n). Recipes whose model has no such option are left out of that table.
Nothing here is a test; it prints figures.
"""

import argparse
import dataclasses
import os
import resource
import inspect
import statistics
import sys
import tempfile
import time

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf

from keras_gen import export
from keras_gen import recipes


def peak_mib():
    """The process's peak resident memory so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_batches(recipe, batch_size, model):
    """A repeating dataset of random batches as the recipe's data would give them."""
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(batch_size * 4, *model.image_shape)).astype("float32")
    if recipe.data["preprocessing"] == "binarize":
        images = (images > 0.5).astype("float32")
    elif recipe.data["preprocessing"] == "tanh":
        images = images * 2.0 - 1.0
    if recipe.data["with_labels"]:
        labels = (np.arange(len(images)) % getattr(model, "num_classes", 10)).astype("int64")
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    else:
        dataset = tf.data.Dataset.from_tensor_slices(images)
    return dataset.batch(batch_size, drop_remainder=True).repeat().prefetch(4)


def build(recipe, jit_compile):
    model = recipe.build_model()
    recipe.compile_model(model)
    model.jit_compile = jit_compile
    return model


def train_step_rates(recipe, steps, rounds):
    """{"no XLA": median images/s, "XLA": median images/s} of the recipe's compiled train step."""
    batch_size = recipe.train["batch_size"]
    models = {"no XLA": build(recipe, False), "XLA": build(recipe, True)}
    dataset = random_batches(recipe, batch_size, models["no XLA"])
    return median_rates(models, dataset, batch_size, steps, rounds), models["no XLA"]


def median_rates(models, dataset, batch_size, steps, rounds, warm_up=5):
    """{name: median images/s} of `fit` on `dataset` for each of {name: model}: `warm_up` steps each
    (tracing), then `rounds` interleaved rounds of `steps` steps. The other bench scripts use it too."""
    for model in models.values():
        model.fit(dataset, epochs=1, steps_per_epoch=warm_up, verbose=0)
    rates = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
            rates[name].append(batch_size * steps / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def step_share(recipe, option, steps, rounds):
    """The share of the train step (no XLA) that scales with the integer model option `option`, or None
    where the recipe's model has no such option (see the module docstring).

    Returns:
        {"n" (the recipe's value), "rate_n" and "rate_1" (median images/s at n and at 1), "seconds_n" and
        "seconds_1" (the step's time), "per_unit_seconds" (b), "rest_seconds" (a), "share" (n b / t(n))}.
    """
    if option not in inspect.signature(recipe.model_class().__init__).parameters:
        return None
    model = build(recipe, False)
    n = model.get_config()[option]
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise SystemExit(f"--step-share {option}: {recipe.name}'s value is {n!r}; it needs an int of at least 2 to compare with 1.")
    batch_size = recipe.train["batch_size"]
    models = {n: model, 1: build(dataclasses.replace(recipe, model_options={**recipe.model_options, option: 1}), False)}
    rates = median_rates(models, random_batches(recipe, batch_size, models[n]), batch_size, steps, rounds)
    seconds = {m: batch_size / rate for m, rate in rates.items()}
    per_unit = (seconds[n] - seconds[1]) / (n - 1)
    return {
        "n": n,
        "rate_n": rates[n],
        "rate_1": rates[1],
        "seconds_n": seconds[n],
        "seconds_1": seconds[1],
        "per_unit_seconds": per_unit,
        "rest_seconds": seconds[1] - per_unit,
        "share": n * per_unit / seconds[n],
    }


def sample_rates(model, repeats, batch_sizes=(1, 64)):
    """{batch size: images/s} of the exported `sample` signature, or None without one."""
    if "sample" not in [endpoint.name for endpoint in model.serving_endpoints()]:
        return None
    with tempfile.TemporaryDirectory() as folder:
        loaded = tf.saved_model.load(str(export.export_model(model, folder)))
        signature = loaded.signatures["sample"]
        conditional = "label" in signature.structured_input_signature[1]
        rates = {}
        for batch in batch_sizes:
            inputs = {"seed": tf.range(batch, dtype=tf.int64)}
            if conditional:
                inputs["label"] = tf.range(batch, dtype=tf.int64) % 10
            signature(**inputs)  # warm-up
            start = time.perf_counter()
            for _ in range(repeats):
                signature(**inputs)["images"].numpy()
            rates[batch] = batch * repeats / (time.perf_counter() - start)
    return rates


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", help="comma-separated recipe names (default: every recipe in the zoo)")
    parser.add_argument("--steps", type=int, default=20, help="train steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sample-repeats", type=int, default=20, help="calls of `sample` timed per batch size")
    parser.add_argument("--step-share", metavar="OPTION", help="also the share of the train step that scales with this integer model option (e.g. langevin_steps)")
    parser.add_argument("--no-main-table", action="store_true", help="with --step-share: that table alone")
    args = parser.parse_args(argv)
    if args.no_main_table and not args.step_share:
        parser.error("--no-main-table goes with --step-share")
    names = args.recipes.split(",") if args.recipes else list(recipes.recipe_paths())
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores, load average {load} (1, 5, 15 min); "
        f"median of {args.rounds} rounds of {args.steps} steps"
    )
    if not args.no_main_table:
        header = f"{'recipe':<16} {'batch':>5} {'train img/s':>12} {'XLA img/s':>10} {'sample@1 img/s':>15} {'sample@64 img/s':>16}"
        print(header)
        print("-" * len(header))
        for name in names:
            recipe = recipes.load_recipe(name.strip())
            steps, model = train_step_rates(recipe, args.steps, args.rounds)
            sampled = sample_rates(model, args.sample_repeats)
            cells = ("n/a", "n/a") if sampled is None else (f"{sampled[1]:.0f}", f"{sampled[64]:.0f}")
            print(
                f"{recipe.name:<16} {recipe.train['batch_size']:>5} {steps['no XLA']:>12.0f} {steps['XLA']:>10.0f} {cells[0]:>15} {cells[1]:>16}",
                flush=True,
            )
    if args.step_share:
        option = args.step_share
        print()
        print(f"Share of the train step (no XLA) that scales with {option}, from its recipe value n and 1:")
        header = f"{'recipe':<16} {'n':>4} {'img/s at n':>11} {'img/s at 1':>11} {'step ms at n':>13} {'ms per unit':>12} {'ms rest':>8} {'share at n':>11}"
        print(header)
        print("-" * len(header))
        for name in names:
            recipe = recipes.load_recipe(name.strip())
            share = step_share(recipe, option, args.steps, args.rounds)
            if share is None:
                continue
            print(
                f"{recipe.name:<16} {share['n']:>4} {share['rate_n']:>11.0f} {share['rate_1']:>11.0f} {1000 * share['seconds_n']:>13.1f} "
                f"{1000 * share['per_unit_seconds']:>12.2f} {1000 * share['rest_seconds']:>8.1f} {100 * share['share']:>10.1f} %",
                flush=True,
            )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"Load average at the end: {load} (1, 5, 15 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
