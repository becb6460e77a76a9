"""The semi-supervised pipeline: pre-training for a classifier on few labels, the steps of the `semi_supervised` recipe.

1. Pre-train an autoencoder on the unlabeled training images (or reuse a trained model's encoder).
2. Draw N labeled training images per class, and N' labeled validation images per class for early
   stopping; the test split is only used for the final table.
3. Train the same shallow classifier three ways on those labels: on the frozen encoder; fine-tuned
   from there at a lower learning rate; and from scratch (a freshly initialised copy of the encoder).
   Fine-tuning may also learn from pseudo-labels of the unlabeled training images, propagated from the
   few labels over the nearest-neighbour graph of the codes (`propagate_labels`), in rounds.

`run_recipe` runs the steps for a recipe whose [pipeline] table says `name = "semi_supervised"`;
`bench/semi_supervised.py` repeats steps 2 and 3 over several label draws for the model card.
"""

import pathlib
import time

import keras_gen  # noqa: F401
import keras
import numpy as np
import scipy.sparse
import tensorflow as tf

from keras_gen import data as data_lib
from keras_gen import recipes
from keras_gen.callbacks import StopOnNonFinite
from keras_gen.checkpoints import load_checkpoint
from keras_gen.models.classifier import SemiSupervisedClassifier
from keras_gen.pipelines import fit
from keras_gen.pipelines import runs

MODES = ("frozen", "fine_tuned", "scratch")
MODE_TITLES = {"frozen": "pre-trained encoder, frozen", "fine_tuned": "pre-trained encoder, fine-tuned", "scratch": "from scratch"}


def select_per_class(labels, per_class, seed, num_classes=10):
    """Indices of exactly `per_class` examples of each class, drawn without replacement with `seed`.

    Args:
        labels: integer class labels [N].
        per_class: how many examples of each class to take.
        seed: integer seed; the same seed gives the same indices.
        num_classes: classes 0..num_classes-1 must all have `per_class` examples.

    Returns:
        Sorted int64 indices into `labels`, `per_class * num_classes` of them.

    Raises:
        DataError: if a class has fewer than `per_class` examples, or `per_class` is not positive.
    """
    labels = np.asarray(labels)
    if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise data_lib.DataError(f"per_class must be a positive integer, got {per_class!r}.")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(num_classes):
        candidates = np.flatnonzero(labels == label)
        if len(candidates) < per_class:
            raise data_lib.DataError(
                f"Class {label} has {len(candidates)} examples but {per_class} per class were asked for; "
                "ask for fewer labels per class or use a larger split."
            )
        chosen.append(rng.choice(candidates, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def encoder_of(model):
    """The images -> code network of a trained zoo model: an autoencoder's encoder, or a VAE's
    encoder reduced to its posterior mean."""
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        raise ValueError(f"{type(model).__name__} has no `encoder`; pass an autoencoder's or a VAE's checkpoint.")
    if len(encoder.outputs) > 1:
        # A VAE's encoder gives [mean, log_variance]; the mean is its code.
        return keras.Model(encoder.input, encoder.outputs[0], name=f"{encoder.name}_mean")
    return encoder


def decoder_of(model):
    """The code -> image logits network of a trained autoencoder or VAE (fed the encoder's code or
    posterior mean), for the reconstruction term of fine-tuning."""
    decoder = getattr(model, "decoder", None)
    if decoder is None:
        raise ValueError(f"{type(model).__name__} has no `decoder`; pass an autoencoder's or a VAE's checkpoint.")
    return decoder


def fresh_copy(encoder):
    """The same architecture as `encoder`, freshly initialised (for the from-scratch baseline)."""
    return keras.models.clone_model(encoder)


def weight_copy(encoder):
    """An independent copy of `encoder` with the same weights, so that fine-tuning leaves the original."""
    copy = keras.models.clone_model(encoder)
    copy.set_weights(encoder.get_weights())
    return copy


def labeled_splits(
    images,
    labels,
    validation_images,
    validation_labels,
    test_images,
    test_labels,
    *,
    per_class,
    validation_per_class,
    seed,
    preprocessing,
    batch_size,
    unlabeled_batch_size=0,
    num_classes=10,
):
    """The labeled training, labeled validation and test datasets of one label draw.

    Args:
        images, labels: the training split (uint8 images [N, H, W, C], int labels [N]).
        validation_images, validation_labels: the validation split carved from the training images.
        test_images, test_labels: the untouched test split.
        per_class: labeled training images per class.
        validation_per_class: labeled validation images per class.
        seed: seed of the label draw and the shuffle.
        preprocessing: one of `data.PREPROCESSING` (as in pre-training).
        batch_size: classifier batch size (capped at the number of labeled images).
        unlabeled_batch_size: if positive, also "train_with_unlabeled": the labeled batches, each with a
            batch of this many training images (all of them, labels unused) as a third element, for
            fine-tuning with a reconstruction term.
        num_classes: the number of classes; each must have `per_class` training images.

    Returns:
        {"train", "validation", "test"} datasets of (images, labels), "indices" of the draw and its
        "labels", the training "images" (uint8, all of them), "preprocessing" and "seed", and
        "train_with_unlabeled" of (images, labels, unlabeled images) and "unlabeled_batch_size" when
        `unlabeled_batch_size` is set.
    """
    chosen = select_per_class(labels, per_class, seed, num_classes)
    held_out = select_per_class(validation_labels, validation_per_class, seed + 1, num_classes)
    batch_size = min(batch_size, len(chosen))
    common = dict(preprocessing=preprocessing, with_labels=True)
    # Full batches only: BatchNorm sees no tiny remainder batch while fine-tuning.
    train = data_lib.make_dataset(
        images[chosen], labels[chosen], batch_size=batch_size, shuffle=True, seed=seed, drop_remainder=True, **common
    )
    validation = data_lib.make_dataset(
        validation_images[held_out], validation_labels[held_out], batch_size=256, seed=seed + 1, **common
    )
    test = data_lib.make_dataset(test_images, test_labels, batch_size=256, seed=seed + 2, **common)
    splits = {
        "train": train,
        "validation": validation,
        "test": test,
        "indices": chosen,
        # For pseudo-labels of the unlabeled images (`pseudo_labeled_stream`).
        "images": images,
        "labels": np.asarray(labels)[chosen],
        "preprocessing": preprocessing,
        "seed": seed,
    }
    if unlabeled_batch_size:
        splits["unlabeled_batch_size"] = unlabeled_batch_size
        unlabeled = data_lib.make_dataset(
            images, batch_size=unlabeled_batch_size, preprocessing=preprocessing, shuffle=True, seed=seed + 3, drop_remainder=True
        ).repeat()
        splits["train_with_unlabeled"] = with_unlabeled_batches(train, unlabeled)
    return splits


def with_unlabeled_batches(labeled, unlabeled):
    """Each (images, labels) batch of `labeled` with the next element of the endless `unlabeled` stream as a
    third element. An epoch stays one pass over the labeled images; the unlabeled stream runs on across epochs."""
    return tf.data.Dataset.zip(labeled, unlabeled).map(lambda pair, extra: (*pair, extra), num_parallel_calls=tf.data.AUTOTUNE)


def propagate_labels(codes, labeled_indices, labels, num_classes=10, neighbours=10, alpha=0.99, iterations=30):
    """Pseudo-labels for every example, propagated from a few labeled ones over the codes' neighbour graph.

    Label propagation (Zhou et al., 2004) as Iscen et al. (2019) use it for semi-supervised learning:
    - each example is joined to its `neighbours` nearest examples by cosine similarity of the codes,
      with affinity max(similarity, 0) ** 3, and the graph is made symmetric, W = A + A^T;
    - S = D^-1/2 W D^-1/2 (D: the degrees); Z <- alpha S Z + Y, `iterations` times from Z = Y, where Y
      is the one-hot labels of the labeled examples and 0 elsewhere;
    - the pseudo-label is the argmax of Z; its weight is 1 - entropy(Z normalised) / log(num_classes)
      (certain: 1; uniform: 0), times a class-balancing factor N / (num_classes * examples given that
      pseudo-label), so that a class that the propagation over-assigns does not dominate;
    - labeled examples keep their labels at weight 1; examples that no label reaches get weight 0.

    Args:
        codes: float array [N, D], e.g. an encoder's codes of all training images.
        labeled_indices: int indices into `codes` of the labeled examples.
        labels: their integer labels in [0, num_classes).
        num_classes: number of classes.
        neighbours: k of the k-nearest-neighbour graph.
        alpha: how far labels spread (0 <= alpha < 1; closer to 1: further).
        iterations: propagation steps.

    Returns:
        (pseudo_labels int32 [N], weights float32 [N]).

    Example:
    >>> pseudo_labels, weights = propagate_labels(codes, splits["indices"], splits["labels"])
    """
    codes = np.asarray(codes, dtype=np.float32)
    labeled_indices = np.asarray(labeled_indices, dtype=np.int64)
    labels = np.asarray(labels)
    count = len(codes)
    if codes.ndim != 2 or count < 2:
        raise ValueError(f"codes must be a [N, D] array with N >= 2, got shape {codes.shape}.")
    if labeled_indices.shape != labels.shape or labels.ndim != 1 or not len(labels):
        raise ValueError(
            "labeled_indices and labels must be two 1-d arrays of the same length; "
            f"got shapes {labeled_indices.shape} and {labels.shape}."
        )
    if labeled_indices.min() < 0 or labeled_indices.max() >= count or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labeled_indices must index the {count} codes and labels lie in [0, {num_classes}).")
    if not 1 <= neighbours < count or not 0.0 <= alpha < 1.0 or iterations < 1:
        raise ValueError(
            f"Need 1 <= neighbours < N ({count}), 0 <= alpha < 1 and iterations >= 1; got {neighbours}, {alpha}, {iterations}."
        )
    normalised = neighbour_graph(codes, neighbours)
    seeds = np.zeros((count, num_classes), np.float64)
    seeds[labeled_indices, labels] = 1.0
    scores = seeds
    for _ in range(iterations):
        scores = alpha * (normalised @ scores) + seeds
    totals = scores.sum(axis=1)
    reached = totals > 0
    probabilities = scores / np.where(reached, totals, 1.0)[:, None]
    pseudo_labels = probabilities.argmax(axis=1)
    entropy = -np.sum(probabilities * np.log(np.maximum(probabilities, 1e-12)), axis=1)
    weights = np.where(reached, 1.0 - entropy / np.log(num_classes), 0.0)
    assigned = np.bincount(pseudo_labels[reached], minlength=num_classes)
    weights *= reached.sum() / (num_classes * np.maximum(assigned[pseudo_labels], 1))
    pseudo_labels[labeled_indices] = labels
    weights[labeled_indices] = 1.0
    return pseudo_labels.astype(np.int32), weights.astype(np.float32)


def neighbour_graph(codes, neighbours):
    """The normalised affinity matrix S = D^-1/2 W D^-1/2 of `propagate_labels`, as a scipy sparse matrix:
    W = A + A^T, where A joins each code to its `neighbours` most cosine-similar others with affinity
    max(similarity, 0) ** 3."""
    count = len(codes)
    unit = tf.constant(codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12))
    rows, columns, affinities = [], [], []
    for start in range(0, count, 1024):  # 1024 x N similarities at a time
        block = tf.matmul(unit[start : start + 1024], unit, transpose_b=True)
        own = tf.range(start, start + tf.shape(block)[0])
        # An example is not its own neighbour (cosine similarities are >= -1).
        block = tf.tensor_scatter_nd_update(block, tf.stack([own - start, own], axis=1), tf.fill(tf.shape(own), -2.0))
        similarity, nearest = tf.math.top_k(block, neighbours)
        rows.append(np.repeat(np.arange(start, start + len(nearest)), neighbours))
        columns.append(nearest.numpy().ravel())
        affinities.append(np.maximum(similarity.numpy().ravel(), 0.0) ** 3)
    graph = scipy.sparse.csr_matrix((np.concatenate(affinities), (np.concatenate(rows), np.concatenate(columns))), shape=(count, count))
    graph = graph + graph.T
    degrees = np.asarray(graph.sum(axis=1)).ravel()
    scale = scipy.sparse.diags(1.0 / np.sqrt(np.where(degrees > 0, degrees, 1.0)))
    return scale @ graph @ scale


def codes_of(encoder, splits, batch_size=1000):
    """The encoder's codes (inference mode) of all training images of `splits`, in order."""
    images = data_lib.make_dataset(splits["images"], batch_size=batch_size, preprocessing=splits["preprocessing"])
    return encoder.predict(images, verbose=0)


def pseudo_labeled_stream(splits, pseudo_labels, weights):
    """The labeled batches of `splits`, each with `splits["unlabeled_batch_size"]` training images and
    their pseudo-labels and weights: (images, labels, (unlabeled images, pseudo-labels, weights)).

    As with "train_with_unlabeled" (`with_unlabeled_batches`), the unlabeled stream runs on, reshuffled,
    across epochs.
    """
    images = splits["images"]
    pseudo_labels = tf.constant(np.asarray(pseudo_labels, np.int32))
    weights = tf.constant(np.asarray(weights, np.float32))
    # Each image's index rides along as its label, to look up its pseudo-label and weight.
    unlabeled = (
        data_lib.make_dataset(
            images,
            np.arange(len(images)),
            batch_size=splits["unlabeled_batch_size"],
            preprocessing=splits["preprocessing"],
            shuffle=True,
            seed=splits["seed"] + 4,
            with_labels=True,
            drop_remainder=True,
        )
        .repeat()
        .map(lambda batch, index: (batch, tf.gather(pseudo_labels, index), tf.gather(weights, index)), num_parallel_calls=tf.data.AUTOTUNE)
    )
    return with_unlabeled_batches(splits["train"], unlabeled).prefetch(tf.data.AUTOTUNE)


def fit_classifier(classifier, splits, learning_rate, epochs, patience, logdir=None, verbose=0, train_split="train"):
    """Trains `classifier` on `splits[train_split]`, stopping early on the labeled validation accuracy and
    keeping the weights of its best epoch (the first, on ties). Returns the history dict."""
    classifier.compile(optimizer=keras.optimizers.Adam(learning_rate))
    # Accuracy, not loss: with ~100 labels the loss keeps rising on confident mistakes while accuracy still improves.
    callbacks = [
        StopOnNonFinite(),
        keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=patience, restore_best_weights=True),
    ]
    if logdir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(logdir)))
    history = classifier.fit(
        splits[train_split], validation_data=splits["validation"], epochs=epochs, callbacks=callbacks, shuffle=False, verbose=verbose
    )
    return history.history


def evaluate_accuracy(classifier, splits):
    """Accuracy of `classifier` on the test split of `splits`."""
    return float(classifier.evaluate(splits["test"], return_dict=True, verbose=0)["accuracy"])


def compare_modes(
    encoder,
    splits,
    *,
    classifier_options,
    learning_rate,
    fine_tune_learning_rate,
    epochs,
    patience,
    seed,
    logdir=None,
    checkpoint_dir=None,
    verbose=0,
    decoder=None,
    reconstruction_weight=0.0,
    propagation_rounds=0,
):
    """Trains the frozen, fine-tuned and from-scratch classifiers on one label draw.

    The fine-tuned classifier starts from the frozen one (its head already fitted, so the first
    fine-tuning steps do not push a random head's gradients into the encoder) on a copy of `encoder`,
    which itself is left unchanged.

    Args:
        encoder: the pre-trained images -> code network.
        splits: from `labeled_splits`.
        classifier_options: `SemiSupervisedClassifier` arguments (head, image shape, ...); with a
            `consistency_weight`, fine-tuning trains on `splits["train_with_unlabeled"]` (pseudo-labels).
        learning_rate: Adam's learning rate for the frozen and from-scratch classifiers.
        fine_tune_learning_rate: Adam's learning rate for fine-tuning.
        epochs: most epochs of each training.
        patience: early-stopping patience, in epochs.
        seed: seed of the classifiers' dropout noise.
        logdir: if given, TensorBoard scalars go to `<logdir>/<mode>`.
        checkpoint_dir: if given, each classifier is saved as `<checkpoint_dir>/<mode>.keras`.
        verbose: Keras' verbosity.
        decoder: the pre-trained decoder (code -> image logits); with `reconstruction_weight` > 0 and
            `splits["train_with_unlabeled"]`, fine-tuning keeps reconstructing unlabeled images (a copy
            of the decoder learns along; the original is left unchanged).
        reconstruction_weight: weight of that reconstruction term (0: fine-tune on the labels alone).
        propagation_rounds: with a `consistency_weight` and an unlabeled stream, fine-tune in this many
            rounds, each on pseudo-labels propagated from the labels over the neighbour graph of the
            current encoder's codes of all training images (`propagate_labels`), instead of the
            classifier's own confident predictions; each round is a `fit` with early stopping that
            starts from the previous round's best weights. 0: no propagation.

    Returns:
        {mode: {"model", "accuracy" (on the test split), "epochs" (run), "history"}}; the frozen
        entry's model is None, as that object has been fine-tuned since (its checkpoint is on disk).
        With propagation, the fine-tuned entry also has "rounds": one {"epochs", "pseudo_labels",
        "weights"} per round, and its history runs on across rounds.
    """

    def where(folder, name):
        return None if folder is None else pathlib.Path(folder) / name

    def record(mode, classifier, history, **extra):
        results[mode] = {"accuracy": evaluate_accuracy(classifier, splits), "epochs": len(history["loss"]), "history": history, **extra}

    def train(classifier, mode, rate, train_split="train"):
        record(mode, classifier, fit_classifier(classifier, splits, rate, epochs, patience, where(logdir, mode), verbose, train_split))

    def train_in_rounds(classifier, rate):
        rounds, history = [], {}
        for number in range(1, propagation_rounds + 1):
            pseudo_labels, weights = propagate_labels(codes_of(classifier.encoder, splits), splits["indices"], splits["labels"], classifier.num_classes)
            stream = {**splits, "train_with_pseudo_labels": pseudo_labeled_stream(splits, pseudo_labels, weights)}
            folder = where(logdir, f"fine_tuned/round_{number}")
            this_round = fit_classifier(classifier, stream, rate, epochs, patience, folder, verbose, "train_with_pseudo_labels")
            rounds.append({"epochs": len(this_round["loss"]), "pseudo_labels": pseudo_labels, "weights": weights})
            for key, values in this_round.items():
                history.setdefault(key, []).extend(values)
        record("fine_tuned", classifier, history, rounds=rounds)

    check_propagation_rounds(propagation_rounds, classifier_options)
    if propagation_rounds and "unlabeled_batch_size" not in splits:
        raise ValueError(
            "propagation_rounds needs splits with unlabeled batches (labeled_splits(..., unlabeled_batch_size=...)): "
            "the pseudo-labels come with the unlabeled images."
        )
    code_dim = int(encoder.outputs[0].shape[-1])
    options = dict(classifier_options, code_dim=code_dim, seed=seed)
    results = {}

    joint = bool(reconstruction_weight) and decoder is not None and "train_with_unlabeled" in splits
    extra = dict(decoder=weight_copy(decoder), reconstruction_weight=reconstruction_weight) if joint else {}
    # Fine-tuning sees the unlabeled images for the reconstruction term, the pseudo-label term, or both.
    with_unlabeled = "train_with_unlabeled" in splits and uses_unlabeled_images(classifier_options, reconstruction_weight if joint else 0.0)
    frozen = SemiSupervisedClassifier(encoder=weight_copy(encoder), freeze_encoder=True, **options, **extra)
    train(frozen, "frozen", learning_rate)
    if checkpoint_dir is not None:
        frozen.save(where(checkpoint_dir, "frozen.keras"))

    # Fine-tuning continues from the frozen classifier; the table's frozen figure is taken above.
    fine_tuned = frozen
    fine_tuned.set_encoder_frozen(False)
    if propagation_rounds:
        train_in_rounds(fine_tuned, fine_tune_learning_rate)
    else:
        train(fine_tuned, "fine_tuned", fine_tune_learning_rate, "train_with_unlabeled" if with_unlabeled else "train")

    # Labels only: the baseline has no unlabeled term (and so no always-zero trackers for one).
    scratch = SemiSupervisedClassifier(encoder=fresh_copy(encoder), freeze_encoder=False, **dict(options, consistency_weight=0.0))
    train(scratch, "scratch", learning_rate)

    results["frozen"]["model"] = None  # the same object as the fine-tuned one by now; its checkpoint is on disk
    results["fine_tuned"]["model"] = fine_tuned
    results["scratch"]["model"] = scratch
    if checkpoint_dir is not None:
        fine_tuned.save(where(checkpoint_dir, "fine_tuned.keras"))
        scratch.save(where(checkpoint_dir, "scratch.keras"))
    return results


def format_table(rows, labels_per_class):
    """A plain-text table: rows = {mode: [accuracy per label draw]} -> mean and spread per mode."""
    lines = [f"Test accuracy with {labels_per_class} labels per class ({10 * labels_per_class} labels):"]
    for mode in MODES:
        values = np.asarray(rows[mode], dtype=np.float64) * 100.0
        spread = f" +- {values.std(ddof=1):.1f} (sd over {len(values)} draws)" if len(values) > 1 else ""
        lines.append(f"  {MODE_TITLES[mode]:<32} {values.mean():5.1f}%{spread}")
    return "\n".join(lines)


def pretrain_encoder(pretrain_recipe, pretrained, pretrain_epochs, train, run, preprocessing):
    """The pre-trained encoder and where it came from: a checkpoint, or a fresh run of the fit pipeline."""
    model, source = pretrain_autoencoder(pretrain_recipe, pretrained, pretrain_epochs, train, run, preprocessing)
    return encoder_of(model), source


def pretrain_autoencoder(pretrain_recipe, pretrained, pretrain_epochs, train, run, preprocessing):
    """The pre-trained model (autoencoder or VAE) and where it came from: a checkpoint, or a fresh run of the
    fit pipeline (`run` as `runs.run_settings` makes it; the caller's callbacks and strategy do not reach it)."""
    if pretrained:
        path = pathlib.Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"No checkpoint at {path}; `pretrained` names a .keras file (\"\" to pre-train instead).")
        return load_checkpoint(path), path
    recipe = recipes.load_recipe(pretrain_recipe)
    if recipe.pipeline_name != "fit":
        raise recipes.RecipeError(f"The pre-training recipe {recipe.name!r} runs the {recipe.pipeline_name} pipeline; pre-train with a fit recipe (an autoencoder's).")
    if recipe.data["preprocessing"] != preprocessing:
        raise recipes.RecipeError(
            f"The pre-training recipe {recipe.name!r} preprocesses images with {recipe.data['preprocessing']!r} "
            f"but the classifier with {preprocessing!r}; make them the same."
        )
    if run.get("data"):
        recipe = recipes.with_data(recipe, run["data"])
    settings = runs.train_settings(recipe, epochs=pretrain_epochs, steps_per_epoch=train["steps_per_epoch"], seed=train["seed"])
    result = fit.run_recipe(recipe, settings, runs.run_settings(**dict(run, export=False, callbacks=None, strategy=None)))
    return result["model"], result["checkpoint"]


def load_splits(validation_size, seed, source_dir=None, data_dir=None, source=None, options=None):
    """Uint8 arrays of a labeled source: (train images, labels), (validation ...), (test ...), with the
    validation set carved with `seed`. `source` is an opened source and `options` its load options, as
    `fit.open_data` returns them (default: Fashion-MNIST from `source_dir` / `data_dir`)."""
    options = options or {}
    if source is None:
        source = data_lib.open_source("fashion_mnist", source_dir=source_dir, data_dir=data_dir)
    if source.class_names is None:
        raise data_lib.DataError(f"The semi-supervised pipeline needs labels, but {source.name} has none; use a labeled source (for a folder: one sub-folder per class).")
    shape = {key: options.get(key) for key in ("image_size", "channels", "center_crop")}
    common = dict(validation_size=validation_size, seed=seed, test_size=options.get("test_size"), **shape)
    return tuple(data_lib.load_split_arrays(source, split, **common) for split in ("train", "validation", "test"))


def uses_unlabeled_images(classifier_options, reconstruction_weight):
    """Whether fine-tuning needs a stream of unlabeled images (for a reconstruction or pseudo-label term)."""
    return bool(reconstruction_weight) or bool(classifier_options.get("consistency_weight"))


def check_propagation_rounds(propagation_rounds, classifier_options):
    """A clear error for a bad number of label-propagation rounds, or rounds without the term they feed."""
    if isinstance(propagation_rounds, bool) or not isinstance(propagation_rounds, int) or propagation_rounds < 0:
        raise ValueError(f"propagation_rounds is a number of rounds (an int >= 0), got {propagation_rounds!r}.")
    if propagation_rounds and not classifier_options.get("consistency_weight"):
        raise ValueError(
            f"propagation_rounds = {propagation_rounds} needs [model_options] consistency_weight > 0: the propagated "
            "pseudo-labels enter fine-tuning through that term. Set a weight, or propagation_rounds = 0."
        )


def run_recipe(
    recipe,
    train,
    run,
    *,
    pretrain_recipe="denoising_autoencoder",
    pretrained="",
    pretrain_epochs=5,
    labels_per_class=10,
    validation_labels_per_class=10,
    classifier_batch_size=32,
    fine_tune_learning_rate=1e-3,
    patience=40,
    fine_tune_reconstruction_weight=0.0,
    unlabeled_batch_size=64,
    propagation_rounds=0,
):
    """Runs the `semi_supervised` recipe end to end (called by `keras_gen.pipelines.train_recipe`).

    Pre-trains `pretrain_recipe` on the unlabeled training images (or reuses the encoder of the
    `.keras` checkpoint `pretrained`: an autoencoder's, or a VAE's posterior mean), draws
    `labels_per_class` labeled training images per class and `validation_labels_per_class` labeled
    validation images per class, then trains the classifier three ways on them (encoder frozen;
    fine-tuned from the frozen one at `fine_tune_learning_rate`; from scratch), each for at most
    the recipe's epochs with early stopping (`patience` epochs) on the labeled validation accuracy.
    Prints the test accuracy table and exports the fine-tuned classifier.

    Args:
        recipe: the validated `recipes.Recipe`; [pipeline] holds the arguments below.
        train: the recipe's [train] settings, command-line overrides applied (`runs.train_settings`).
        run: where things go and what to do (`runs.run_settings`).
        pretrain_recipe: the zoo recipe (name or .toml path) of the autoencoder to pre-train.
        pretrained: a `.keras` checkpoint whose encoder to reuse instead ("" to pre-train).
        pretrain_epochs: epochs of pre-training.
        labels_per_class: labeled training images per class.
        validation_labels_per_class: labeled validation images per class, for early stopping.
        classifier_batch_size: batch size of the classifiers' training.
        fine_tune_learning_rate: Adam's learning rate when fine-tuning the whole classifier.
        patience: epochs without a better validation accuracy before stopping.
        fine_tune_reconstruction_weight: if positive, fine-tuning also minimises this times the
            pre-trained decoder's reconstruction loss on unlabeled training images.
        unlabeled_batch_size: unlabeled images per fine-tuning step (with the weight above, or
            with a `consistency_weight`).
        propagation_rounds: if positive (with a `consistency_weight`), fine-tune in this many rounds,
            each on pseudo-labels propagated from the labels over the nearest-neighbour graph of the
            current encoder's codes of all training images (`propagate_labels`).

    Returns:
        The fit pipeline's keys ("recipe", "logdir", "checkpoint", "history" and "test" per mode,
        "train_seconds", "export", "model": the fine-tuned classifier) and "pretrained": where the
        encoder came from.
    """
    keras.utils.set_random_seed(train["seed"])
    if not recipe.data["validation_size"]:
        raise ValueError("The semi_supervised recipe needs a validation split ([data] validation_size > 0) for early stopping.")
    check_propagation_rounds(propagation_rounds, recipe.model_options)
    started = time.perf_counter()
    pretrained_model, pretrain_source = pretrain_autoencoder(
        pretrain_recipe, pretrained, pretrain_epochs, train, run, recipe.data["preprocessing"]
    )
    encoder = encoder_of(pretrained_model)
    source, data_options = fit.open_data(recipe, run["source_dir"], run["data_dir"])
    model_options = fit.data_model_options(recipe, source, data_options)
    (images, labels), (validation_images, validation_labels), (test_images, test_labels) = load_splits(
        recipe.data["validation_size"], train["seed"], source=source, options=data_options
    )
    splits = labeled_splits(
        images,
        labels,
        validation_images,
        validation_labels,
        test_images,
        test_labels,
        per_class=labels_per_class,
        validation_per_class=validation_labels_per_class,
        seed=train["seed"],
        preprocessing=recipe.data["preprocessing"],
        batch_size=classifier_batch_size,
        unlabeled_batch_size=unlabeled_batch_size if uses_unlabeled_images(recipe.model_options, fine_tune_reconstruction_weight) else 0,
        num_classes=model_options["num_classes"],
    )
    folders = runs.RunFolders.create(recipe.name, run["logdir"], run["checkpoint_dir"])
    options = {key: value for key, value in model_options.items() if key not in ("code_dim", "freeze_encoder")}
    results = compare_modes(
        encoder,
        splits,
        classifier_options=options,
        learning_rate=recipe.compile["optimizer"]["config"]["learning_rate"],
        fine_tune_learning_rate=fine_tune_learning_rate,
        epochs=train["epochs"],
        patience=patience,
        seed=train["seed"],
        logdir=folders.logdir,
        checkpoint_dir=folders.checkpoints,
        verbose=run["verbose"],
        decoder=decoder_of(pretrained_model) if fine_tune_reconstruction_weight else None,
        reconstruction_weight=fine_tune_reconstruction_weight,
        propagation_rounds=propagation_rounds,
    )
    seconds = time.perf_counter() - started
    print()
    print(format_table({mode: [results[mode]["accuracy"]] for mode in MODES}, labels_per_class))
    print(f"Encoder pre-trained in/from: {pretrain_source}")
    model = results["fine_tuned"]["model"]
    checkpoint, exported = folders.save_and_export(model, run["export_dir"], recipe.name, run["export"])
    return {
        "recipe": recipe.name,
        "logdir": folders.logdir,
        "checkpoint": checkpoint,
        "history": {mode: results[mode]["history"] for mode in MODES},
        "test": {f"{mode}_accuracy": results[mode]["accuracy"] for mode in MODES},
        "train_seconds": seconds,
        "export": exported,
        "model": model,
        "pretrained": pretrain_source,
    }
