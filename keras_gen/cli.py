"""The `keras-gen` command: list recipes and presets, train one (or fine-tune a preset), export a checkpoint or a preset,
sample from a preset or an export, evaluate a VAE, and write what TF Serving needs (serving-config, request, describe)."""

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
    from keras_gen import presets
    from keras_gen import recipes

    paths = recipes.recipe_paths()
    loaded = [recipes.load_recipe(path) for path in paths.values()]
    rows = [(recipe.name, recipe.model, recipe.description) for recipe in loaded]
    shipped = {name: presets.open_preset(path).metadata for name, path in presets.shipped_presets().items()}
    # Beside the recipes, with their headline figures: what samples, exports and fine-tunes without training.
    preset_rows = [(name, metadata["model"] or "(keras)", presets.format_figures(metadata.get("figures") or {}) or "no figures recorded") for name, metadata in shipped.items()]
    name_width = max((len(row[0]) for row in rows + preset_rows), default=0)
    model_width = max((len(row[1]) for row in rows + preset_rows), default=0)
    print("Recipes (keras-gen train RECIPE):")
    for name, model, description in rows:
        print(f"  {name:<{name_width}}  {model:<{model_width}}  {description}")
    print("Presets, trained (keras-gen sample PRESET; export PRESET; train RECIPE --from-preset PRESET):")
    for name, model, figures in preset_rows:
        print(f"  {name:<{name_width}}  {model:<{model_width}}  {figures}")
    if not preset_rows:
        print("  none shipped yet; a preset folder's path works wherever a preset's name does")
    if any(row[1] == "(keras)" for row in preset_rows):
        print("  (keras): a plain Keras model, not a zoo model: keras_gen.from_preset(NAME) in Python")


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
    from keras_gen import pipelines
    from keras_gen import recipes

    recipe = recipes.load_recipe(args.recipe)
    if args.normal_class is not None:
        set_normal_class(recipe, args.normal_class)
    # The recipe's own pipeline (its [pipeline] name): fit, semi_supervised or one_class.
    result = pipelines.train_recipe(
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
        from_preset=args.from_preset,
    )
    if "runs" in result:
        print_one_class_runs(recipe, result)
        return
    if result["export"] is None:
        print(f"Trained {recipe.name} as a worker of a cluster; the chief wrote the logs, checkpoints and export.")
        return
    export_path = pathlib.Path(result["export"]).resolve()
    base_path = export_path.parent
    print()
    print(f"Trained {recipe.name} in {result['train_seconds']:.0f} s.")
    if result.get("fine_tuned_from"):
        print(f"Fine-tuned from preset {result['fine_tuned_from']['name']} (recorded in the run's run.json).")
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


def print_one_class_runs(recipe, result):
    """What `keras-gen train` says after the one_class pipeline, which printed its table: each class's files."""
    print()
    print(f"Trained {recipe.name}: {len(result['runs'])} one-class detector(s) in {result['train_seconds']:.0f} s.")
    for normal_class, run in result["runs"].items():
        exported = f"; SavedModel {pathlib.Path(run['export']).resolve()}" if run["export"] is not None else ""
        print(f"  class {normal_class}: checkpoint {run['checkpoint']}{exported}")


def set_normal_class(recipe, normal_class):
    """Makes `recipe` train a one-class model on `normal_class` (for models with a `normal_class` option)."""
    import inspect

    from keras_gen import recipes

    if "normal_class" not in inspect.signature(recipe.model_class().__init__).parameters:
        raise recipes.RecipeError(f"--normal-class is for one-class anomaly detectors (e.g. aae or ebm); {recipe.model!r} has no normal_class option.")
    if normal_class < 0:
        raise recipes.RecipeError(f"--normal-class is a class index (0 or more), got {normal_class}.")
    # The data's class names bound it: an index the data does not have stops the run before training.
    recipe.model_options["normal_class"] = normal_class


def cmd_export(args):
    from keras_gen import export
    from keras_gen import presets
    from keras_gen.checkpoints import load_checkpoint
    from keras_gen.data import read_record

    if presets.is_preset(args.checkpoint):
        model, preset = presets.load_zoo_model(args.checkpoint)
        dataset, name = preset.dataset, args.name or preset.name
    else:
        # The dataset record beside the checkpoint goes into the export, for `keras-gen evaluate`.
        model, dataset, name = load_checkpoint(args.checkpoint), read_record(args.checkpoint), args.name
    path = export.export_model(
        model,
        args.export_dir,
        model_name=name,
        version=args.version,
        max_serving_batch=args.max_serving_batch,
        dataset=dataset,
        serving_batch=args.serving_batch,
    )
    print(f"SavedModel: {path.resolve()}")


def cmd_sample(args):
    import numpy as np
    import tensorflow as tf

    from keras_gen import export
    from keras_gen import presets
    from keras_gen.callbacks import tile

    if pathlib.Path(args.export_dir).is_file():
        raise ValueError(
            f"{args.export_dir} is a file; `keras-gen sample` reads an export folder or a preset. For a .keras checkpoint, "
            f"run `keras-gen export {args.export_dir}` first and sample from the folder it prints."
        )
    if presets.is_preset(args.export_dir):
        # The model's own `sample` endpoint: what its export's signature computes, without writing one.
        model, preset = presets.load_zoo_model(args.export_dir)
        path, endpoints = preset.path, {endpoint.name: endpoint for endpoint in model.serving_endpoints()}
        if "sample" not in endpoints:
            raise ValueError(f"Preset {preset.name} has no `sample` endpoint; it has: {', '.join(endpoints)}.")
        sample, input_names = endpoints["sample"].fn, [spec.name for spec in endpoints["sample"].input_signature]
    else:
        path = export.latest_version_dir(args.export_dir)
        loaded = tf.saved_model.load(str(path))
        if "sample" not in loaded.signatures:
            raise ValueError(f"{path} has no `sample` signature; it has: {', '.join(loaded.signatures)}.")
        sample, input_names = loaded.signatures["sample"], list(loaded.signatures["sample"].structured_input_signature[1])
    inputs = {"seed": tf.constant(args.seeds, tf.int64)}
    if "label" in input_names:
        if args.label is None:
            raise ValueError(f"{path} is class-conditional: pass --label N.")
        inputs["label"] = tf.fill([len(args.seeds)], tf.constant(args.label, tf.int64))
    images = np.asarray(sample(**inputs)["images"])
    columns = args.columns or int(np.ceil(np.sqrt(len(images))))
    grid = tile(np.clip(images, 0.0, 1.0), columns)
    png = tf.io.encode_png(tf.cast(tf.round(grid * 255.0), tf.uint8))
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tf.io.write_file(str(out), png)
    print(f"Wrote {len(images)} samples from {path} to {out}")


def cmd_serving_config(args):
    from google.protobuf import text_format

    from keras_gen import export
    from keras_gen import serving

    root = pathlib.Path(args.export_root)
    config = serving.model_server_config(root, policy=args.policy, labels=args.label, model_base=args.model_base)
    out = pathlib.Path(args.out or root)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / serving.MODELS_CONFIG]
    (out / serving.MODELS_CONFIG).write_text(text_format.MessageToString(config))
    if args.batching:
        curves = {}
        for entry in config.model_config_list.config:
            version_dir = export.latest_version_dir(root / entry.name)
            curves[entry.name] = serving.latency_curve(version_dir, batch_sizes=serving.BATCHING_CURVE_SIZES, repeats=args.repeats)
            medians = ", ".join(f"{size}: {sorted(times)[len(times) // 2] * 1e3:.2f}" for size, times in curves[entry.name].items())
            print(f"{entry.name} (version {version_dir.name}) serving_default median ms by batch size: {medians}")
        parameters = serving.batching_parameters(curves, num_batch_threads=args.batch_threads)
        (out / serving.BATCHING_CONFIG).write_text(text_format.MessageToString(parameters))
        written.append(out / serving.BATCHING_CONFIG)
    for path in written:
        print(f"Wrote {path}")
    if out.resolve() != root.resolve():
        print(f"Copy them into {root}, which the container mounts as {args.model_base}:")
    print(serving.docker_command(root, batching=args.batching, model_base=args.model_base))


def cmd_request(args):
    from keras_gen import export
    from keras_gen import serving

    version_dir = export.latest_version_dir(args.export)
    signatures = serving.read_signatures(version_dir)
    if args.signature not in signatures:
        raise ValueError(f"{version_dir} has no signature {args.signature!r}; it has: {', '.join(signatures)}.")
    if args.batch < 1:
        raise ValueError(f"--batch must be at least 1, got {args.batch}.")
    inputs = signatures[args.signature]["inputs"]
    images = None
    if args.image:
        by_name = {tensor.name: tensor for tensor in inputs}
        if "images" not in by_name:
            raise ValueError(f"--image is for signatures with an `images` input; {args.signature} takes {', '.join(by_name) or 'none'}.")
        images = serving.read_png_images(args.image, by_name["images"].shape[1:])
    values = serving.example_inputs(inputs, args.batch, seed=args.seed, label=args.label, images=images)
    model_name = args.model_name or version_dir.parent.name
    print(serving.request_body(args.signature, values, args.format, model_name))


def cmd_describe(args):
    from keras_gen import serving

    print(serving.signature_table(args.export))


EVALUATION_MODES = ("samples", "likelihood", "anomaly")


def evaluation_mode(args):
    """(mode, paths) of `keras-gen evaluate MODE PATH...`. The older spelling without a mode (`keras-gen
    evaluate PATH [--anomaly] [--num-samples N]`) still works: the mode is taken from the flags and the
    path, and a note names the explicit spelling."""
    from keras_gen import presets

    first, rest = args.target[0], list(args.target[1:])
    if first in EVALUATION_MODES:
        if not rest:
            raise ValueError(f"`keras-gen evaluate {first}` needs a model: a .keras checkpoint, an export folder or a preset.")
        if args.anomaly and first != "anomaly":
            raise ValueError(f"--anomaly is the old spelling of `keras-gen evaluate anomaly`; it cannot go with `evaluate {first}`.")
        return first, rest
    paths = list(args.target)
    if args.anomaly:
        mode = "anomaly"
    elif pathlib.Path(first).is_dir() or args.num_samples is not None or presets.is_preset(first):
        mode = "samples"
    else:
        mode = "likelihood"
    print(f"keras-gen: note: say the mode: `keras-gen evaluate {mode} {' '.join(paths)} ...` (the spelling without it guesses from the flags and the path).", file=sys.stderr)
    return mode, paths


def evaluation_record(args, recorded, image_shape, where):
    """The dataset a model is evaluated on: --data SOURCE (fitted to --image-size/--channels, else to the
    model's images), else the record beside the checkpoint or in the export, else Fashion-MNIST for a
    28x28x1 model (the zoo's default before records were written); any other is a DataError."""
    from keras_gen import data

    if args.data:
        shape = list(image_shape) if image_shape is not None else None
        if shape is not None and args.image_size:
            shape[:2] = args.image_size
        if shape is not None and args.channels:
            shape[2] = args.channels
        return data.record_for_source(args.data, shape, source_dir=args.data_dir, data_dir=args.tfds_dir)
    if recorded is not None:
        return recorded
    if image_shape is not None and tuple(image_shape) == (28, 28, 1):
        print(f"Note: {where} has no dataset record (written by keras-gen train since issue 16); evaluating on Fashion-MNIST. Pass --data SOURCE for another.")
        return data.record_for_source("fashion_mnist", source_dir=args.data_dir, data_dir=args.tfds_dir)
    raise data.DataError(
        f"{where} records no dataset (no {data.RECORD_NAME} beside the checkpoint or in the export's assets.extra/), and its "
        f"images are {list(image_shape) if image_shape is not None else 'of unknown shape'}; pass the data it was trained on with "
        "--data SOURCE (fashion_mnist, tfds:NAME, folder:DIR), and --image-size / --channels as in training."
    )


def dataset_label(record):
    return "Fashion-MNIST" if record["source"] == "fashion_mnist" else record["source"]


def cmd_evaluate(args):
    mode, paths = evaluation_mode(args)
    if mode != "anomaly" and len(paths) > 1:
        raise ValueError(
            f"Several models ({', '.join(paths)}) are only evaluated together with --anomaly (`keras-gen evaluate anomaly PATH...`); pass one."
        )
    return {"samples": cmd_evaluate_samples, "likelihood": cmd_evaluate_likelihood, "anomaly": cmd_evaluate_anomaly}[mode](args, paths)


def cmd_evaluate_likelihood(args, paths):
    import time

    import keras
    import numpy as np

    from keras_gen import data
    from keras_gen import evaluation
    from keras_gen import presets
    from keras_gen.checkpoints import load_checkpoint

    checkpoint = pathlib.Path(paths[0])
    from_preset = presets.is_preset(paths[0])
    if checkpoint.is_dir() and not from_preset:
        raise ValueError(
            f"{checkpoint} is a folder; the likelihood bounds need the model itself: pass its .keras checkpoint "
            "(checkpoints/<recipe>/<run>/model.keras) or a preset. For an export's sample quality: `keras-gen evaluate samples`."
        )
    for flag, value in (("--iwae-k", args.iwae_k), ("--batch-size", args.batch_size), ("--num-images", args.num_images)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}.")
    if from_preset:
        model, preset = presets.load_zoo_model(paths[0])
        recorded = preset.dataset
    else:
        model, recorded = load_checkpoint(checkpoint), data.read_record(checkpoint)
    evaluation.check_latent_variable_model(model)
    record = evaluation_record(args, recorded, getattr(model, "image_shape", None), checkpoint)
    split = args.reference or "test"
    test, how = evaluation.likelihood_test_set(
        model, record, args.batch_size, args.num_images, seed=args.seed, split=split, source_dir=args.data_dir, data_dir=args.tfds_dir
    )
    # Keeps one pass at about 2,000 decoded images, whatever the batch size.
    chunk_size = max(1, min(args.iwae_k, 2000 // args.batch_size))
    started = time.perf_counter()
    result = evaluation.evaluate_likelihood(model, test, num_samples=args.iwae_k, chunk_size=chunk_size, seed=args.seed)
    seconds = time.perf_counter() - started
    print(f"{getattr(model, 'zoo_name', type(model).__name__)} from {checkpoint}")
    print(
        f"{dataset_label(record)} {split} set: {result['num_images']} images, {how}; k = {args.iwae_k} importance samples "
        f"(seed {args.seed}); {seconds:.0f} s"
    )
    print(f"ELBO        {result['elbo']:9.2f} nats per image  (negative ELBO {result['negative_elbo']:.2f})")
    print(
        f"IWAE bound  {result['iwae']:9.2f} nats per image  "
        f"(test NLL <= {result['nll_bound']:.2f} +- {result['iwae_stderr']:.2f} standard error over images)"
    )
    if evaluation.likelihood_preprocessing(model) != "binarize":
        dims = int(np.prod(model.image_shape))
        preprocessing = record.get("preprocessing") if record.get("preprocessing") in evaluation.likelihood.RANGE_WIDTH else "scale"
        print(
            f"Bits per dim {evaluation.bits_per_dim(result['nll_bound'], dims, preprocessing):8.3f}  (IWAE; ELBO "
            f"{evaluation.bits_per_dim(result['negative_elbo'], dims, preprocessing):.3f}): an upper bound on the 8-bit images' "
            f"NLL, -log p(x) + {dims} log {256 / evaluation.likelihood.RANGE_WIDTH[preprocessing]:g} nats over {dims} values, in bits"
        )
    class_names = record.get("class_names")
    if hasattr(model, "components") and class_names:
        counts = evaluation.mixture_components(model, test, num_classes=len(class_names))
        weights = keras.ops.convert_to_numpy(keras.ops.softmax(model.mixture_logits))
        print("Mixture components (test images whose code falls in each, and the most common class there):")
        print(f"  {'component':>9}  {'weight':>6}  {'images':>6}  top class")
        for component, row in enumerate(counts):
            top = int(row.argmax())
            share = f"{class_names[top]} ({row[top] / row.sum():.0%})" if row.sum() else "-"
            print(f"  {component:>9}  {weights[component]:>6.3f}  {int(row.sum()):>6}  {share}")


def cmd_evaluate_anomaly(args, paths):
    import time

    from keras_gen import anomaly
    from keras_gen import data
    from keras_gen import evaluation

    if not 0.0 <= args.fpr < 1.0:
        raise ValueError(f"--fpr must be in [0, 1), got {args.fpr}.")
    started = time.perf_counter()
    # Every model first, so that a missing or damaged one stops the command before the data are read.
    clients = [evaluation.ModelClient.load(path) for path in paths]
    scorers = [anomaly.AnomalyScorer.from_client(client, name=str(path)) for client, path in zip(clients, paths)]
    recorded = clients[0].dataset or {}
    source_name = args.data or recorded.get("source") or "fashion_mnist"
    fitting = {} if args.data else {"image_size": recorded.get("image_size"), "channels": recorded.get("channels")}
    fitting = {key: value for key, value in fitting.items() if value}
    fitting.update({key: value for key, value in (("image_size", args.image_size), ("channels", args.channels)) if value})
    source = data.open_source(source_name, source_dir=args.data_dir or recorded.get("source_dir"), data_dir=args.tfds_dir or recorded.get("tfds_dir"))
    images, labels = anomaly.test_set(source, args.num_images, **fitting)
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


def default_feature_space(record):
    """`--features` left out: the shipped classifier for Fashion-MNIST; any other dataset must choose."""
    from keras_gen.feature_extractor import FeatureExtractorError

    if record["source"] == "fashion_mnist":
        return "fashion_mnist"
    raise FeatureExtractorError(
        f"Choose the feature space for {record['source']} (the default, the shipped classifier, is Fashion-MNIST's): "
        "--features inception (the standard FID features; needs Inception-v3's weights, see --feature-weights) or "
        f"--features classifier:DIR with a classifier trained on it (`python -m keras_gen.feature_extractor --data {record['source']}`)."
    )


def cmd_evaluate_samples(args, paths):
    import time

    import numpy as np

    from keras_gen import evaluation

    num_samples = evaluation.DEFAULT_METRIC_SAMPLES if args.num_samples is None else args.num_samples
    if num_samples < 2:
        raise ValueError(f"--num-samples must be at least 2, got {num_samples}.")
    started = time.perf_counter()
    if args.features is None and args.feature_weights is not None:
        raise ValueError("--feature-weights goes with --features inception.")
    # A named feature space is built before the model is read, so that a bad name or weights file stops the command at once.
    space = evaluation.feature_space(args.features, weights=args.feature_weights) if args.features else None
    sampler = evaluation.Sampler.load(paths[0])
    if num_samples < evaluation.KID_MIN_SUBSET_SIZE:
        raise ValueError(f"--num-samples must be at least {evaluation.KID_MIN_SUBSET_SIZE} for KID and precision/recall, got {num_samples}.")
    probe = sampler(np.array([args.seed]), np.array([0]) if sampler.conditional else None)
    shape = tuple(probe.shape[1:])
    record = evaluation_record(args, sampler.dataset, shape, paths[0])
    space = space or evaluation.feature_space(default_feature_space(record))
    if space.image_shape is not None:
        space.check(probe)  # a space that cannot read the samples says so before the real images are read
    split = args.reference or "test"
    quality = evaluation.SampleQuality(space, reference=split, dataset=record, source_dir=args.data_dir, data_dir=args.tfds_dir)
    result = quality.evaluate(sampler, num_samples=num_samples, first_seed=args.seed)
    rows = {}
    reference_started = time.perf_counter()
    if not args.no_reference_rows:
        rows = quality.reference_rows(num_samples, class_accuracy=sampler.conditional and space.has_classes)
    reference_seconds = time.perf_counter() - reference_started
    print(
        f"{sampler.name} from {paths[0]}: {num_samples} samples (seeds {args.seed}..{args.seed + num_samples - 1}"
        f"{', classes in turn' if sampler.conditional else ''}) against {quality.reference_stats.count} {dataset_label(record)} {split} images"
    )
    print(f"Features: {space.summary()}.")
    if space.description["features"] == "fashion_mnist" or space.description["features"].startswith("classifier:"):
        print("The embedding of keras_gen's own classifier, not Inception-v3: these numbers are not comparable with Inception FIDs.")
    else:
        print(
            f"Inception-v3 pool features of images resized to {space.input_size}x{space.input_size} (bilinear); the FD is the FID. "
            "Only with Keras' ImageNet weights do the figures mean anything (random or other weights give numbers without meaning)."
        )
        if shape[-1] == 1:
            print("Greyscale images are replicated to three channels for Inception-v3.")
    sizes = {row.get("kid_subset_size") for row in (result, *rows.values())}
    if min(sizes) < evaluation.KID_SUBSET_SIZE:
        print(f"KID subsets hold {min(sizes)} vectors, not {evaluation.KID_SUBSET_SIZE}: there are fewer samples or reference images than that.")
    print()
    print(evaluation.format_quality_table({sampler.name: result, **rows}, class_names=record.get("class_names") or ()))
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
        "--normal-class", type=int, help="train a one-class anomaly detector on this class only (models with a normal_class option, e.g. aae or ebm)"
    )
    train.add_argument(
        "--from-preset", metavar="PRESET", help="fine-tune this preset (a shipped name, a folder, hf:// or kaggle://) with fresh optimizers; "
        "its model must be the recipe's, and its architecture replaces the recipe's [model_options]"
    )
    train.set_defaults(run=cmd_train)

    export = commands.add_parser("export", help="export a .keras checkpoint or a preset as a versioned SavedModel")
    export.add_argument("checkpoint", metavar="CHECKPOINT_OR_PRESET", help="a .keras file, or a preset (a shipped name, a folder, hf:// or kaggle://)")
    export.add_argument("--export-dir", default="exports")
    export.add_argument("--name", help="model folder name (default: the model's zoo name; for a preset, its name)")
    export.add_argument("--version", type=int, help="version number (default: the next free one)")
    export.add_argument(
        "--max-serving-batch", type=int, default=1024, metavar="N", help="largest batch a request may hold; larger ones get INVALID_ARGUMENT (default: 1024)"
    )
    export.add_argument(
        "--serving-batch", type=int, metavar="N", help="typical batch of a request: TF Serving's warm-up records run every signature at 1 and N (default: 8)"
    )
    export.set_defaults(run=cmd_export)

    evaluate = commands.add_parser(
        "evaluate",
        usage="keras-gen evaluate {samples,likelihood,anomaly} PATH [PATH ...] [options]",
        help="evaluate a model: `evaluate samples PATH` (FD, KID, precision/recall of generated images), "
        "`evaluate likelihood CHECKPOINT` (ELBO and IWAE bound of a VAE), `evaluate anomaly PATH...` (one-class table)",
    )
    evaluate.add_argument(
        "target",
        nargs="+",
        metavar="MODE PATH",  # (the usage line above says it better than argparse's "MODE PATH [MODE PATH ...]")
        help="samples, likelihood or anomaly, then the model: a .keras checkpoint, an export folder or a preset (a shipped name "
        "such as dcgan_fashion_mnist, a preset folder; anomaly: one or more, one per normal class). The data are the model's own, "
        "from the dataset record training wrote beside it (a preset's metadata).",
    )
    evaluate.add_argument("--anomaly", action="store_true", help="old spelling of `evaluate anomaly`")
    evaluate.add_argument("--fpr", type=float, default=0.05, help="anomaly: false-positive rate of the threshold (default: 0.05)")
    evaluate.add_argument(
        "--num-samples",
        type=int,
        help="samples: score N generated samples (default: 10000) beside real-data and noise reference rows; per-class "
        "accuracy for conditional models with a classifier's features",
    )
    evaluate.add_argument(
        "--features",
        metavar="SPACE",
        help="samples: the feature space: inception (Inception-v3 pool features at 299x299, the FID), classifier:DIR (a classifier "
        "from `python -m keras_gen.feature_extractor --data SOURCE`) or fashion_mnist (the default for Fashion-MNIST)",
    )
    evaluate.add_argument(
        "--feature-weights",
        metavar="FILE",
        help="samples with --features inception: the weights file (default: Keras' cache, ~/.keras/models/"
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5; never downloaded)",
    )
    evaluate.add_argument(
        "--reference", choices=("test", "validation"), help="the split of the dataset compared with (default: test; validation for model selection)"
    )
    evaluate.add_argument("--no-reference-rows", action="store_true", help="samples: leave out the real-data and noise rows (a third of the time)")
    evaluate.add_argument("--iwae-k", type=int, default=1000, help="likelihood: importance samples per image (default: 1000)")
    evaluate.add_argument("--num-images", type=int, help="likelihood, anomaly: evaluate the first N test images (default: all)")
    evaluate.add_argument("--batch-size", type=int, default=20, help="likelihood: test images per batch (default: 20)")
    evaluate.add_argument("--seed", type=int, default=0, help="binarisation, dequantisation and importance-sample seed; for samples, the first sample seed (default: 0)")
    evaluate.add_argument(
        "--data", metavar="SOURCE", help="evaluate on this source instead of the model's recorded dataset: fashion_mnist, tfds:NAME or folder:DIR"
    )
    evaluate.add_argument("--image-size", type=parse_image_size, metavar="N|HxW", help="with --data: fit the images to this size, as in training")
    evaluate.add_argument("--channels", type=int, choices=(1, 3), help="with --data: convert the images to greyscale (1) or RGB (3)")
    evaluate.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (default: the record's, else /usr/share/datasets/fashion-mnist)")
    evaluate.add_argument("--tfds-dir", help="TensorFlow Datasets data_dir for the prepared dataset (default: the record's, else TFDS's)")
    evaluate.set_defaults(run=cmd_evaluate)

    sample = commands.add_parser("sample", help="write a PNG grid of samples from a preset or an export's `sample` signature")
    sample.add_argument(
        "export_dir", metavar="PRESET_OR_EXPORT", help="a preset (a shipped name, a folder, hf:// or kaggle://), or <export_dir>/<model> (latest version) or a version folder"
    )
    sample.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0..15"), help="e.g. 0..15 or 1,5,9")
    sample.add_argument("--label", type=int, help="class to sample, for class-conditional models")
    sample.add_argument("--columns", type=int)
    sample.add_argument("--out", default="samples.png")
    sample.set_defaults(run=cmd_sample)

    serving_config = commands.add_parser(
        "serving-config", help="write TF Serving's models.config (and with --batching its batching parameters) for an export root"
    )
    serving_config.add_argument("export_root", help="the folder holding <model>/<version>/ (e.g. exports)")
    serving_config.add_argument("--policy", default="latest", help="versions to load: latest, all or specific:1,2 (default: latest)")
    serving_config.add_argument(
        "--label", action="append", default=[], metavar="[MODEL:]LABEL=VERSION", help="a version label, e.g. stable=1 or vae:canary=2 (repeatable)"
    )
    serving_config.add_argument(
        "--batching", action="store_true", help="also write batching_parameters.pbtxt, sized from each model's measured latency curve"
    )
    serving_config.add_argument("--batch-threads", type=int, metavar="N", help="with --batching: num_batch_threads (default: this machine's CPUs)")
    serving_config.add_argument("--repeats", type=int, default=20, metavar="N", help="with --batching: timed calls per batch size (default: 20)")
    serving_config.add_argument("--model-base", default="/models", help="where the container mounts the export root (default: /models)")
    serving_config.add_argument("--out", help="folder for the files (default: the export root)")
    serving_config.set_defaults(run=cmd_serving_config)

    request = commands.add_parser("request", help="print a TF Serving Predict request body for one signature of an export")
    request.add_argument("export", help="<export_dir>/<model> (latest version) or a version folder")
    request.add_argument("--signature", default="serving_default", help="the signature (see `keras-gen describe`; default: serving_default)")
    request.add_argument("--format", choices=("rest-row", "rest-columnar", "grpc"), default="rest-row", help="REST instances, REST inputs, or a gRPC PredictRequest in text format (default: rest-row)")
    request.add_argument("--seed", type=int, default=0, help="the first seed; seeds count up from it, and codes and noise images are drawn from it (default: 0)")
    request.add_argument("--batch", type=int, default=1, metavar="N", help="rows in the request (default: 1; with --image, one per image)")
    request.add_argument("--label", type=int, default=0, help="the class of every row, for class-conditional signatures (default: 0)")
    request.add_argument("--image", nargs="+", metavar="PNG", help="PNG files of the model's size for an `images` input, one row each")
    request.add_argument("--model-name", help="model_spec name of a gRPC request (default: the model folder's name)")
    request.set_defaults(run=cmd_request)

    describe = commands.add_parser("describe", help="print an export's signatures: inputs, outputs, dtypes, shapes and what each does")
    describe.add_argument("export", help="<export_dir>/<model> (latest version) or a version folder")
    describe.set_defaults(run=cmd_describe)
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
