"""The `keras-gen` command: list recipes, train one, export a checkpoint, sample from an export, evaluate a VAE."""

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
    loaded = [recipes.load_recipe(path) for path in paths.values()]
    name_width = max((len(recipe.name) for recipe in loaded), default=0)
    model_width = max((len(recipe.model) for recipe in loaded), default=0)
    for recipe in loaded:
        print(f"{recipe.name:<{name_width}}  {recipe.model:<{model_width}}  {recipe.description}")


def parse_image_size(text):
    """'64' (square) or '64x48' (height x width) -> [height, width]."""
    try:
        sides = [int(side) for side in text.lower().split("x")]
        if len(sides) not in (1, 2) or min(sides) < 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad image size {text!r}: use one side (64) or height x width (64x48)") from None
    return sides * 2 if len(sides) == 1 else sides


def data_overrides(args):
    """The [data] keys that `keras-gen train`'s data flags replace."""
    flags = {"dataset": args.data, "image_size": args.image_size, "channels": args.channels, "validation_size": args.validation_size, "test_size": args.test_size}
    overrides = {key: value for key, value in flags.items() if value is not None}
    for key in ("skip_corrupt", "download"):
        if getattr(args, key):
            overrides[key] = True
    return overrides


def cmd_train(args):
    from keras_gen import recipes
    from keras_gen import training

    recipe = recipes.load_recipe(args.recipe)
    if args.normal_class is not None:
        set_normal_class(recipe, args.normal_class)
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
        data=data_overrides(args),
        restart=args.restart,
        strategy=args.strategy,
    )
    if result["export"] is None:
        print(f"Trained {recipe.name} as a worker of a cluster; the chief wrote the logs, checkpoints and export.")
        return
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
    if "sample" in [endpoint.name for endpoint in result["model"].serving_endpoints()]:
        print(f"  keras-gen sample {base_path} --seeds 0..15 --out {recipe.name}-samples.png")


def set_normal_class(recipe, normal_class):
    """Makes `recipe` train a one-class model on `normal_class` (for models with a `normal_class` option)."""
    import inspect

    from keras_gen import recipes

    if "normal_class" not in inspect.signature(recipe.model_class().__init__).parameters:
        raise recipes.RecipeError(f"--normal-class is for one-class anomaly detectors (e.g. aae); {recipe.model!r} has no normal_class option.")
    if normal_class < 0:
        raise recipes.RecipeError(f"--normal-class is a class index (0 or more), got {normal_class}.")
    # The data's class names bound it: an index the data does not have stops the run before training.
    recipe.model_options["normal_class"] = normal_class


def cmd_export(args):
    from keras_gen import export
    from keras_gen.checkpoints import load_checkpoint

    model = load_checkpoint(args.checkpoint)
    path = export.export_model(model, args.export_dir, model_name=args.name, version=args.version, max_serving_batch=args.max_serving_batch)
    print(f"SavedModel: {path.resolve()}")


def cmd_sample(args):
    import numpy as np
    import tensorflow as tf

    from keras_gen import export
    from keras_gen.callbacks import tile

    if pathlib.Path(args.export_dir).is_file():
        raise ValueError(
            f"{args.export_dir} is a file; `keras-gen sample` reads an export folder. For a .keras checkpoint, "
            f"run `keras-gen export {args.export_dir}` first and sample from the folder it prints."
        )
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


def cmd_evaluate(args):
    import time

    import keras

    from keras_gen import data
    from keras_gen import evaluation
    from keras_gen.checkpoints import load_checkpoint

    if args.anomaly:
        return cmd_evaluate_anomaly(args)
    if args.more:
        raise ValueError(f"Several models ({args.checkpoint}, {', '.join(args.more)}) are only evaluated together with --anomaly; pass one.")
    checkpoint = pathlib.Path(args.checkpoint)
    if checkpoint.is_dir() or args.num_samples is not None:
        # An export folder, or sample quality asked for: the FD/KID/precision/recall table instead.
        return cmd_evaluate_samples(args)
    for flag, value in (("--iwae-k", args.iwae_k), ("--batch-size", args.batch_size), ("--num-images", args.num_images)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}.")
    model = load_checkpoint(checkpoint)
    evaluation.check_latent_variable_model(model)
    preprocessing = evaluation.likelihood_preprocessing(model)
    test = evaluation.fashion_mnist_test_set(
        preprocessing, args.batch_size, args.num_images, seed=args.seed, source_dir=args.data_dir, data_dir=args.tfds_dir
    )
    # Keeps one pass at about 2,000 decoded images, whatever the batch size.
    chunk_size = max(1, min(args.iwae_k, 2000 // args.batch_size))
    started = time.perf_counter()
    result = evaluation.evaluate_likelihood(model, test, num_samples=args.iwae_k, chunk_size=chunk_size, seed=args.seed)
    seconds = time.perf_counter() - started
    kind = "binarised once with seed" if preprocessing == "binarize" else "scaled to [0, 1]; importance-sample seed"
    print(f"{getattr(model, 'zoo_name', type(model).__name__)} from {checkpoint}")
    print(f"Fashion-MNIST test set: {result['num_images']} images, {kind} {args.seed}; k = {args.iwae_k} importance samples; {seconds:.0f} s")
    print(f"ELBO        {result['elbo']:9.2f} nats per image  (negative ELBO {result['negative_elbo']:.2f})")
    print(
        f"IWAE bound  {result['iwae']:9.2f} nats per image  "
        f"(test NLL <= {result['nll_bound']:.2f} +- {result['iwae_stderr']:.2f} standard error over images)"
    )
    if hasattr(model, "components"):
        counts = evaluation.mixture_components(model, test)
        weights = keras.ops.convert_to_numpy(keras.ops.softmax(model.mixture_logits))
        print("Mixture components (test images whose code falls in each, and the most common class there):")
        print(f"  {'component':>9}  {'weight':>6}  {'images':>6}  top class")
        for component, row in enumerate(counts):
            top = int(row.argmax())
            share = f"{data.CLASS_NAMES[top]} ({row[top] / row.sum():.0%})" if row.sum() else "-"
            print(f"  {component:>9}  {weights[component]:>6.3f}  {int(row.sum()):>6}  {share}")


def cmd_evaluate_anomaly(args):
    import time

    from keras_gen import anomaly

    if not 0.0 <= args.fpr < 1.0:
        raise ValueError(f"--fpr must be in [0, 1), got {args.fpr}.")
    paths = [args.checkpoint, *args.more]
    started = time.perf_counter()
    from keras_gen import data

    # Every model first, so that a missing or damaged one stops the command before the data are read.
    scorers = [anomaly.AnomalyScorer.load(path) for path in paths]
    source = data.open_source(args.data, source_dir=args.data_dir, data_dir=args.tfds_dir)
    images, labels = anomaly.test_set(source, args.num_images, image_size=args.image_size, channels=args.channels)
    rows = [anomaly.evaluate_one_class(scorer, images, labels, fpr=args.fpr) for scorer in scorers]
    print(f"One-class anomaly detection on {len(images)} test images of {source.name}: each model's normal class against the other classes.")
    print(f"Threshold: the score above which {args.fpr:g} of the model's held-out normal images lie (set when it was calibrated).")
    print()
    print(anomaly.format_anomaly_table(rows, args.fpr, class_names=source.class_names))
    print()
    for row in sorted(rows, key=lambda row: row["normal_class"]):
        print(f"  class {row['normal_class']}: {row['name']}")
    classes = [row["normal_class"] for row in rows]
    if len(set(classes)) != len(classes):
        print("Note: some normal classes appear more than once; the mean weighs each model equally.")
    if any(row["threshold"] != row["threshold"] for row in rows):
        print("n/a: the model was never calibrated (model.calibrate(held_out_normal_images), which `keras-gen train` does).")
    print(f"{time.perf_counter() - started:.0f} s")


def cmd_evaluate_samples(args):
    import time

    from keras_gen import evaluation

    num_samples = evaluation.DEFAULT_METRIC_SAMPLES if args.num_samples is None else args.num_samples
    if num_samples < 2:
        raise ValueError(f"--num-samples must be at least 2, got {num_samples}.")
    sampler = evaluation.Sampler.load(args.checkpoint)
    started = time.perf_counter()
    quality = evaluation.SampleQuality(reference="test", source_dir=args.data_dir, data_dir=args.tfds_dir)
    result = quality.evaluate(sampler, num_samples=num_samples, first_seed=args.seed)
    reference_started = time.perf_counter()
    rows = quality.reference_rows(num_samples, class_accuracy=sampler.conditional)
    reference_seconds = time.perf_counter() - reference_started
    print(
        f"{sampler.name} from {args.checkpoint}: {num_samples} samples (seeds {args.seed}..{args.seed + num_samples - 1}"
        f"{', classes in turn' if sampler.conditional else ''}) against {quality.reference_stats.count} Fashion-MNIST test images"
    )
    print(
        "Features: the 128-d embedding of keras_gen's own Fashion-MNIST classifier (Inception-v3 FID cannot be computed "
        "offline); these numbers are not comparable with Inception FIDs."
    )
    print()
    print(evaluation.format_quality_table({sampler.name: result, **rows}))
    print()
    print(
        f"Scored in {result['seconds']:.1f} s (feature extraction and metrics; sampling took {result['sampling_seconds']:.1f} s), "
        f"reference rows in {reference_seconds:.1f} s; {time.perf_counter() - started:.0f} s in all."
    )


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
    train.add_argument(
        "--data", metavar="SOURCE", help="the data, replacing the recipe's: fashion_mnist, tfds:NAME (e.g. tfds:cifar10) or folder:PATH"
    )
    train.add_argument("--image-size", type=parse_image_size, metavar="N|HxW", help="fit every image to this size (resize keeping the aspect ratio, then centre crop)")
    train.add_argument("--channels", type=int, choices=(1, 3), help="convert the images to greyscale (1) or RGB (3)")
    train.add_argument("--validation-size", type=int, metavar="N", help="images held out of train for validation when the source has no validation split")
    train.add_argument("--test-size", type=int, metavar="N", help="images held out for testing when the source has no test split (default: a tenth)")
    train.add_argument("--skip-corrupt", action="store_true", help="folder sources: leave out image files that cannot be decoded, and say how many")
    train.add_argument(
        "--strategy",
        help="tf.distribute strategy: auto, default, one_device, mirrored, multi_worker or tpu (default: the recipe's [train] strategy; "
        "auto: multi_worker under TF_CONFIG, mirrored on 2+ GPUs); --batch-size is the global batch",
    )
    train.add_argument(
        "--restart", action="store_true", help="set the recipe's resume state aside (renamed, not deleted) and train from epoch 1"
    )
    train.add_argument("--download", action="store_true", help="TFDS sources: download and prepare the dataset if it is not prepared yet")
    train.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (default: /usr/share/datasets/fashion-mnist)")
    train.add_argument("--tfds-dir", help="TensorFlow Datasets data_dir for the prepared dataset (default: TFDS's)")
    train.add_argument(
        "--normal-class", type=int, help="train a one-class anomaly detector on this class only (models with a normal_class option, e.g. aae)"
    )
    train.set_defaults(run=cmd_train)

    export = commands.add_parser("export", help="export a .keras checkpoint as a versioned SavedModel")
    export.add_argument("checkpoint", help="a .keras file")
    export.add_argument("--export-dir", default="exports")
    export.add_argument("--name", help="model folder name (default: the model's zoo name)")
    export.add_argument("--version", type=int, help="version number (default: the next free one)")
    export.add_argument(
        "--max-serving-batch", type=int, default=1024, metavar="N", help="largest batch a request may hold; larger ones get INVALID_ARGUMENT (default: 1024)"
    )
    export.set_defaults(run=cmd_export)

    evaluate = commands.add_parser(
        "evaluate",
        help="ELBO and IWAE bound (nats) of a VAE checkpoint on the Fashion-MNIST test set, or sample quality "
        "(FD, KID, precision/recall) of an export or checkpoint with --num-samples",
    )
    evaluate.add_argument(
        "checkpoint",
        metavar="EXPORT_DIR|CHECKPOINT",
        help="a .keras file (a VAE of the zoo for the likelihood bounds), or an export folder with a `sample` "
        "signature (sample quality)",
    )
    evaluate.add_argument(
        "more", nargs="*", metavar="MORE", help="with --anomaly: further models (checkpoints or exports), one per normal class"
    )
    evaluate.add_argument(
        "--anomaly",
        action="store_true",
        help="one-class anomaly detection table: each model (an aae trained with a normal class) scores the test set; "
        "ROC-AUC per class and their mean, detection rate and test FPR at the threshold calibrated for --fpr",
    )
    evaluate.add_argument("--fpr", type=float, default=0.05, help="with --anomaly: false-positive rate of the threshold (default: 0.05)")
    evaluate.add_argument(
        "--num-samples",
        type=int,
        help="score N generated samples against the test set: Fréchet distance, KID, precision/recall, per-class "
        "accuracy for conditional models, beside real-data and noise reference rows (default for an export: 10000)",
    )
    evaluate.add_argument("--iwae-k", type=int, default=1000, help="importance samples per image (default: 1000)")
    evaluate.add_argument("--num-images", type=int, help="evaluate the first N test images (default: all 10,000)")
    evaluate.add_argument("--batch-size", type=int, default=20, help="test images per batch (default: 20)")
    evaluate.add_argument("--seed", type=int, default=0, help="binarisation and importance-sample seed; with --num-samples, the first sample seed (default: 0)")
    evaluate.add_argument(
        "--data", default="fashion_mnist", metavar="SOURCE", help="with --anomaly: the labeled source whose test split is scored (default: fashion_mnist)"
    )
    evaluate.add_argument("--image-size", type=parse_image_size, metavar="N|HxW", help="with --anomaly: fit the test images to this size, as in training")
    evaluate.add_argument("--channels", type=int, choices=(1, 3), help="with --anomaly: convert the test images to greyscale (1) or RGB (3)")
    evaluate.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (default: /usr/share/datasets/fashion-mnist)")
    evaluate.add_argument("--tfds-dir", help="TensorFlow Datasets data_dir for the prepared dataset (default: TFDS's)")
    evaluate.set_defaults(run=cmd_evaluate)

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
