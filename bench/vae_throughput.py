"""Images per second of the VAE's compiled training step, beside a model of the keras.io VAE's sizes,
and the peak resident memory of training the default `vae` recipe.

    .venv/bin/python bench/vae_throughput.py [--batch-size 128] [--steps 100] [--rounds 5] [--recipe-epochs 1] [--pipeline]

The reference model re-creates the layer sizes of the keras.io "Variational AutoEncoder" example
(conv 32 and 64 with stride 2, dense 16, 2-d latent; dense 7*7*64, transposed conv 64, 32, 1) with a
train step written here in the same style (binary cross-entropy summed over pixels plus the KL). Both
are timed the same way: `fit` on in-memory batches after a warm-up (tracing), in interleaved rounds. Nothing here is a test; it prints figures.

`--pipeline` adds a row to the same rounds: the `vae` recipe's model (built and compiled as the recipe
says) fed by the recipe's own input pipeline (dynamically binarised Fashion-MNIST, shuffled, batch 128),
one whole epoch of the training split per round. To compare two checkouts (e.g. HEAD and the working
tree) back to back, run this same script with the other checkout first on the import path:

    git worktree add /tmp/keras_gen_head HEAD
    PYTHONPATH=/tmp/keras_gen_head .venv/bin/python bench/vae_throughput.py --recipe-epochs 2 --pipeline
    .venv/bin/python bench/vae_throughput.py --recipe-epochs 2 --pipeline

(the first line printed after the versions says which keras_gen was imported). With `--pipeline` the
process also holds that row's model and data before the recipe runs, so its peak-memory line is not
comparable with docs/performance.md's; take that figure from a run without `--pipeline`.
"""

import argparse
import os
import resource
import statistics
import sys
import time

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_gen import networks
from keras_gen.models import VAE


class ReferenceVAE(keras.Model):
    """The keras.io example's sizes and loss, for a side-by-side figure."""

    def __init__(self, latent_dim=2):
        super().__init__()
        images = keras.Input((28, 28, 1))
        x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(images)
        x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
        x = layers.Dense(16, activation="relu")(layers.Flatten()(x))
        self.encoder = keras.Model(images, [layers.Dense(latent_dim)(x), layers.Dense(latent_dim)(x)])
        z = keras.Input((latent_dim,))
        y = layers.Reshape((7, 7, 64))(layers.Dense(7 * 7 * 64, activation="relu")(z))
        y = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(y)
        y = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(y)
        self.decoder = keras.Model(z, layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(y))
        self.seed_generator = keras.random.SeedGenerator(0)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, images):
        with tf.GradientTape() as tape:
            mean, log_variance = self.encoder(images)
            z = mean + tf.exp(0.5 * log_variance) * keras.random.normal(tf.shape(mean), seed=self.seed_generator)
            reconstruction = self.decoder(z)
            bce = tf.reduce_mean(tf.reduce_sum(keras.losses.binary_crossentropy(images, reconstruction), axis=(1, 2)))
            kl = tf.reduce_mean(tf.reduce_sum(-0.5 * (1 + log_variance - mean**2 - tf.exp(log_variance)), axis=1))
            loss = bce + kl
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def throughput(models, batch_size, steps, rounds, epochs_of=None):
    """{name: (best, median) images/s} of each model's `fit` loop, timed in interleaved rounds.

    These shared 2-core machines are sometimes slowed by half for seconds at a time; interleaving gives
    every model the same conditions, and the best round is the figure least touched by the slowdowns.
    The models in `epochs_of` ({name: (finite dataset, its batch size)}) are fed by that dataset
    instead, one whole epoch per round (its start-up included, as in training), rather than `steps`
    in-memory batches.
    """
    epochs_of = epochs_of or {}
    data = (np.random.default_rng(0).uniform(size=(batch_size * 8, 28, 28, 1)) > 0.5).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(batch_size, drop_remainder=True).repeat().prefetch(4)
    for name, model in models.items():
        warmup = epochs_of[name][0] if name in epochs_of else dataset
        model.fit(warmup, epochs=1, steps_per_epoch=10, shuffle=False, verbose=0)  # trace and warm up
    rates = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            if name in epochs_of:
                epoch, epoch_batch_size = epochs_of[name]
                model.fit(epoch, epochs=1, shuffle=False, verbose=0)
                images = epoch_batch_size * int(epoch.cardinality())
            else:
                model.fit(dataset, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
                images = batch_size * steps
            rates[name].append(images / (time.perf_counter() - start))
    return {name: (max(values), statistics.median(values)) for name, values in rates.items()}


def recipe_fed_by_pipeline():
    """The `vae` recipe's model, built and compiled as the recipe says, and (its training split as the
    recipe's input pipeline makes it, that split's batch size). Only functions that keras_gen had
    before the data package (`data.fashion_mnist_datasets`, `Recipe.build_model`, `Recipe.compile_model`)
    are used, so that the same script times an older checkout (PYTHONPATH=that checkout)."""
    from keras_gen import data
    from keras_gen import recipes

    recipe = recipes.load_recipe("vae")
    model = recipe.build_model(seed=0)
    recipe.compile_model(model)
    model.jit_compile = recipe.train["jit_compile"]
    batch_size = recipe.train["batch_size"]
    splits = data.fashion_mnist_datasets(
        batch_size=batch_size, preprocessing=recipe.data["preprocessing"], validation_size=recipe.data["validation_size"], seed=0
    )
    return model, splits["train"], batch_size


def peak_rss_of_default_recipe(epochs):
    from keras_gen import recipes
    from keras_gen import training

    recipe = recipes.load_recipe("vae")
    result = training.train_recipe(
        recipe, epochs=epochs, logdir="/tmp/keras_gen_bench/logs", export_dir="/tmp/keras_gen_bench/exports",
        checkpoint_dir="/tmp/keras_gen_bench/checkpoints", verbose=0,
    )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak_mib, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--recipe-epochs", type=int, default=1, help="epochs of the default recipe for the memory figure (0: skip)")
    parser.add_argument(
        "--pipeline", action="store_true",
        help="also time the `vae` recipe's model fed by its own Fashion-MNIST input pipeline, one epoch per round",
    )
    args = parser.parse_args()
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores, batch {args.batch_size}")
    print(f"keras_gen from {os.path.dirname(os.path.abspath(keras_gen.__file__))}")
    models = {"keras.io-sized VAE (2-d latent)": ReferenceVAE(), "keras_gen VAE (`vae` recipe)": VAE(seed=0)}
    xla = VAE(seed=0)
    models["keras_gen VAE, jit_compile=True"] = xla
    for name, model in models.items():
        model.compile(optimizer="adam", jit_compile=model is xla)
    epochs_of = {}
    if args.pipeline:
        model, train, batch_size = recipe_fed_by_pipeline()
        name = f"`vae` recipe + its pipeline, epochs of {int(train.cardinality()) * batch_size}"
        models[name] = model
        epochs_of[name] = (train, batch_size)
    results = throughput(models, args.batch_size, args.steps, args.rounds, epochs_of)
    reference = results["keras.io-sized VAE (2-d latent)"][0]
    for name, (best, median) in results.items():
        print(f"{name:<44} best {best:6.0f} images/s, median {median:6.0f}  ({best / reference:.2f}x the reference)")
    if args.recipe_epochs:
        peak, result = peak_rss_of_default_recipe(args.recipe_epochs)
        print(
            f"Default `vae` recipe, {args.recipe_epochs} epoch(s) on Fashion-MNIST in {result['train_seconds']:.0f} s: "
            f"peak resident memory {peak:.0f} MiB; test negative ELBO {result['test']['loss']:.1f} nats"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
