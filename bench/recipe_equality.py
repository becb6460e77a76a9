"""Does a change leave the zoo's recipes training the same? This tree against a base commit, bit for bit.

    .venv/bin/python bench/recipe_equality.py --base dbd3ab4 [--recipes vae,dcgan] [--no-steps]

For each recipe it builds the recipe's model and compiles it as `keras-gen train` would (Keras' global
seed fixed, so initial weights are comparable), then trains it for one epoch of two batches of 8 fixed
random images (labels where the recipe uses them), once with this tree's keras_gen and once with the base
commit's (checked out with `git worktree` in a temporary folder, removed afterwards). It prints, per
recipe: whether the initial weights, the parameter count, the model config and the optimizers' configs
are equal (the numbers Keras appends to the layer names it makes are left out), and whether the weights
and logs after the epoch are equal. Equal after training means the
recipe's cards stay what they are without retraining. Recipes of the base commit only or of this tree
only are listed as such.
"""

import argparse
import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Runs inside one tree: argv = [tree, output file, steps (0/1), recipe names...].
PROBE = r'''
import hashlib, json, re, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import keras
import tensorflow as tf
from keras_gen import recipes

def canonical(value):
    # Keras numbers the layers it names (dense_3, dense_7) in creation order within a process, so the
    # numbers say nothing about the model: compare configs without them.
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return re.sub(r"_\d+$", "", value) if isinstance(value, str) else value

def digest(model):
    h = hashlib.sha256()
    for weight in model.weights:
        h.update(np.asarray(weight.numpy()).tobytes())
    return h.hexdigest()[:16]

found, train = {}, sys.argv[3] == "1"
for name in sys.argv[4:]:
    if name not in recipes.recipe_paths():
        continue
    keras.utils.set_random_seed(0)
    recipe = recipes.load_recipe(name)
    model = recipe.build_model(seed=0)
    # Before the house redesign recipes compiled through the model's compile_recipe.
    recipe.compile_model(model) if hasattr(recipe, "compile_model") else model.compile_recipe(**recipe.compile)
    config = {key: value for key, value in model.get_config().items() if key != "name"}
    optimizers = {}
    for attribute in model.optimizer_names or ("optimizer",):
        optimizer = getattr(model, attribute)
        optimizers[attribute] = {key: value for key, value in optimizer.get_config().items() if key != "name"}
    row = {"initial": digest(model), "count": model.count_params(), "config": canonical(json.loads(json.dumps(config, default=str))),
           "optimizers": json.loads(json.dumps(optimizers, default=str))}
    if train:
        images = np.random.default_rng(0).random((16, *model.image_shape)).astype("float32")
        if recipe.data["preprocessing"] == "tanh":
            images = images * 2.0 - 1.0
        elif recipe.data["preprocessing"] == "binarize":
            images = (images > 0.5).astype("float32")
        labels = (np.arange(16) % 10).astype("int64")
        uses_labels = recipe.data["with_labels"] or getattr(model, "num_classes", 0)
        data = tf.data.Dataset.from_tensor_slices((images, labels) if uses_labels else images).batch(8)
        history = model.fit(data, epochs=1, verbose=0).history
        row.update(trained=digest(model), logs={key: float(values[-1]) for key, values in history.items()})
    found[name] = row
json.dump(found, open(sys.argv[2], "w"))
'''


def probe(tree, names, steps, work):
    out = pathlib.Path(work) / f"{hashlib.sha256(str(tree).encode()).hexdigest()[:8]}.json"
    script = pathlib.Path(work) / "probe.py"
    script.write_text(PROBE)
    subprocess.run([sys.executable, str(script), str(tree), str(out), "1" if steps else "0", *names], check=True, cwd=tree, capture_output=True, text=True)
    return json.loads(out.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare with (e.g. HEAD~1)")
    parser.add_argument("--recipes", help="comma-separated recipe names (default: every recipe of this tree)")
    parser.add_argument("--no-steps", action="store_true", help="compare the built models only, without the training epoch")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from keras_gen import recipes

    names = args.recipes.split(",") if args.recipes else sorted(recipes.recipe_paths())
    with tempfile.TemporaryDirectory() as work:
        base_tree = pathlib.Path(work) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base_tree), args.base], cwd=ROOT, check=True)
        try:
            base = probe(base_tree, names, not args.no_steps, work)
            here = probe(ROOT, names, not args.no_steps, work)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
    columns = ("initial weights", "parameters", "config", "optimizers") + (() if args.no_steps else ("trained weights", "logs"))
    keys = ("initial", "count", "config", "optimizers", "trained", "logs")
    print(f"this tree against {args.base}: 'same' is bit for bit")
    print(f"{'recipe':<24}" + "".join(f"{column:>17}" for column in columns))
    for name in names:
        if name not in base or name not in here:
            print(f"{name:<24}  only in {'this tree' if name in here else args.base}")
            continue
        cells = ["same" if base[name].get(key) == here[name].get(key) else "DIFFERENT" for key in keys[: len(columns)]]
        print(f"{name:<24}" + "".join(f"{cell:>17}" for cell in cells))
        if base[name]["config"] != here[name]["config"]:
            changed = sorted(key for key in set(base[name]["config"]) | set(here[name]["config"]) if base[name]["config"].get(key) != here[name]["config"].get(key))
            print(f"{'':<24}  config keys that differ: {', '.join(changed)}")


if __name__ == "__main__":
    main()
