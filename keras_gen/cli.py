"""The `keras-gen` command: list recipes, train one, export a checkpoint, sample from an export."""

import argparse
import pathlib
import sys

import keras_gen


def parse_seeds(text):
    """'0..15' (inclusive), '3,7,9' or a mix ('0..3,10') -> list of ints."""
    seeds = []
    for part in text.split(","):
        part = part.strip()
        try:
            if ".." in part:
                low, high = (int(bound) for bound in part.split(".."))
                if high < low:
                    raise ValueError
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad seeds {text!r}: use a range like 0..15, a list like 1,5,9, or both") from None
    return seeds


def cmd_list(args):
    from keras_gen import recipes

    paths = recipes.recipe_paths()
    width = max((len(name) for name in paths), default=0)
    for name in paths:
        recipe = recipes.load_recipe(paths[name])
        print(f"{name:<{width}}  {recipe.model:<8}  {recipe.description}")


def cmd_train(args):
    from keras_gen import recipes
    from keras_gen import training

    recipe = recipes.load_recipe(args.recipe)
    result = training.train_recipe(
        recipe,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        seed=args.seed,
        logdir=args.logdir,
        export_dir=args.export_dir,
        checkpoint_dir=args.checkpoint_dir,
        source_dir=args.data_dir,
        data_dir=args.tfds_dir,
    )
    export_path = pathlib.Path(result["export"]).resolve()
    base_path = export_path.parent
    print()
    print(f"Trained {recipe.name} in {result['train_seconds']:.0f} s.")
    print("Test set: " + ", ".join(f"{key} {value:.2f}" for key, value in result["test"].items()))
    print(f"TensorBoard logs:  {result['logdir']}")
    print(f"Checkpoint:        {result['checkpoint']}")
    print(f"SavedModel:        {export_path}")
    print()
    print("Next:")
    print(f"  tensorboard --logdir {pathlib.Path(args.logdir)}")
    print(f"  saved_model_cli show --dir {export_path} --all")
    print(
        f"  docker run -p 8501:8501 -p 8500:8500 -v {base_path}:/models/{recipe.name} "
        f"-e MODEL_NAME={recipe.name} tensorflow/serving"
    )
    print(f"  keras-gen sample {base_path} --seeds 0..15 --out {recipe.name}-samples.png")


def cmd_export(args):
    import keras

    from keras_gen import export
    from keras_gen import registry

    checkpoint = pathlib.Path(args.checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"No checkpoint at {checkpoint}; pass a .keras file written by `keras-gen train` or model.save().")
    registry.model_names()  # registers the zoo's classes so the .keras file can be rebuilt
    model = keras.models.load_model(checkpoint)
    path = export.export_model(model, args.export_dir, model_name=args.name, version=args.version)
    print(f"SavedModel: {path.resolve()}")


def cmd_sample(args):
    import numpy as np
    import tensorflow as tf

    from keras_gen import export
    from keras_gen.callbacks import tile

    path = export.latest_version_dir(args.export_dir)
    loaded = tf.saved_model.load(str(path))
    if "sample" not in loaded.signatures:
        raise ValueError(f"{path} has no `sample` signature; it has: {', '.join(loaded.signatures)}.")
    signature = loaded.signatures["sample"]
    inputs = {"seed": tf.constant(args.seeds, tf.int64)}
    if "label" in signature.structured_input_signature[1]:
        if args.label is None:
            raise ValueError(f"{path} is class-conditional: pass --label N.")
        inputs["label"] = tf.fill([len(args.seeds)], tf.constant(args.label, tf.int64))
    images = signature(**inputs)["images"].numpy()
    columns = args.columns or int(np.ceil(np.sqrt(len(images))))
    grid = tile(np.clip(images, 0.0, 1.0), columns)
    png = tf.io.encode_png(tf.cast(tf.round(grid * 255.0), tf.uint8))
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tf.io.write_file(str(out), png)
    print(f"Wrote {len(images)} samples from {path} to {out}")


def build_parser():
    parser = argparse.ArgumentParser(prog="keras-gen", description=keras_gen.__doc__)
    parser.add_argument("--version", action="version", version=f"keras-gen {keras_gen.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("list", help="list the zoo's recipes").set_defaults(run=cmd_list)

    train = commands.add_parser("train", help="train a recipe, log to TensorBoard, export a SavedModel")
    train.add_argument("recipe", help="a zoo recipe name (see `keras-gen list`) or a path to a recipe .toml")
    train.add_argument("--epochs", type=int)
    train.add_argument("--steps-per-epoch", type=int, help="batches per epoch (0: a full pass)")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--logdir", default="tensorboard_logs", help="TensorBoard root (default: tensorboard_logs)")
    train.add_argument("--export-dir", default="exports", help="SavedModel root (default: exports)")
    train.add_argument("--checkpoint-dir", default="checkpoints", help="checkpoints and resume state (default: checkpoints)")
    train.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (default: /usr/share/datasets/fashion-mnist)")
    train.add_argument("--tfds-dir", help="TensorFlow Datasets data_dir for the prepared dataset (default: TFDS's)")
    train.set_defaults(run=cmd_train)

    export = commands.add_parser("export", help="export a .keras checkpoint as a versioned SavedModel")
    export.add_argument("checkpoint", help="a .keras file")
    export.add_argument("--export-dir", default="exports")
    export.add_argument("--name", help="model folder name (default: the model's zoo name)")
    export.add_argument("--version", type=int, help="version number (default: the next free one)")
    export.set_defaults(run=cmd_export)

    sample = commands.add_parser("sample", help="write a PNG grid of samples from an export's `sample` signature")
    sample.add_argument("export_dir", help="<export_dir>/<model> (latest version) or a version folder")
    sample.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0..15"), help="e.g. 0..15 or 1,5,9")
    sample.add_argument("--label", type=int, help="class to sample, for class-conditional models")
    sample.add_argument("--columns", type=int)
    sample.add_argument("--out", default="samples.png")
    sample.set_defaults(run=cmd_sample)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from keras_gen.data import DataError
    from keras_gen.export import ExportError
    from keras_gen.recipes import RecipeError

    try:
        args.run(args)
    except (RecipeError, DataError, ExportError, FileNotFoundError, FileExistsError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"keras-gen: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("keras-gen: interrupted; `keras-gen train` with the same recipe resumes from the last finished epoch.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
