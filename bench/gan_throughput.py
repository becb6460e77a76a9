"""Images per second of the GAN family's training step beside the keras.io examples' steps, at the
keras.io examples' layer sizes.

    .venv/bin/python bench/gan_throughput.py [--models cgan,wgan_gp,dcgan_celeba] [--rounds 8] [--cgan-steps 30] [--wgan-steps 1] [--dcgan-steps 2]

Three references, re-created here from their published layer sizes with train steps written in the
same style (not copied):

- keras.io "Conditional GAN": batch 64, 128-d noise plus a one-hot label (138 inputs) -> dense
  7x7x138 -> two 4x4 stride-2 transposed convolutions of 128 channels -> 7x7 convolution; the
  discriminator reads the image with the one-hot label as 10 more channels (28x28x11) -> 3x3 stride-2
  convolutions of 64 and 128 channels -> global max pooling -> dense 1. One discriminator update on
  real and generated images together, then a generator update on freshly generated images.
- keras.io "WGAN-GP": batch 512, 128-d noise -> dense 4x4x256 -> three (upsample, 3x3 convolution,
  BatchNorm) blocks -> crop to 28x28; the critic pads to 32x32 -> 5x5 stride-2 convolutions of 64,
  128, 256 and 512 channels (dropout 0.3 after the middle two) -> dropout 0.2 -> dense 1. Three critic
  updates with a gradient penalty of weight 10, then a generator update.
- keras.io "DCGAN to generate face images" (dcgan_overriding_train_step.py; `dcgan_celeba` here):
  64x64x3 CelebA, batch 32, 128-d noise -> dense 8x8x128 -> 4x4 stride-2 transposed convolutions of
  128, 256 and 512 channels (LeakyReLU 0.2) -> 5x5 sigmoid convolution to 3 channels; the
  discriminator has 4x4 stride-2 convolutions of 64, 128 and 128 channels (LeakyReLU 0.2) -> flatten
  -> dropout 0.2 -> dense 1, sigmoid, binary cross-entropy; Adam(1e-4) for both. One discriminator
  update on generated and real images together, with 0.05 * uniform noise added to the labels, then
  a generator update on fresh noise. Run as published, the example makes about 16 images/s on these
  2-core machines: that is the figure the issue asking for this comparison reports, not one measured
  here (this script times the train step alone, on in-memory batches).

keras_gen's `cgan`, `wgan_gp` and `dcgan` models get networks of exactly these sizes and are timed
with the same data, optimizers and batch sizes. The conditional ones read the label through a 10-d
embedding, the same width as the one-hot code. The DCGAN's networks are `networks.conv_generator`
(which also puts a LeakyReLU after the dense projection, and ends in tanh) and the convolutions of
`networks.conv_discriminator` under keras.io's flatten, dropout 0.2 and dense head; its loss is
`non_saturating` (the same cross-entropies, on logits, without the label noise). All are timed as
configured (`fresh_generator_noise=False`), with `fresh_generator_noise=True` (the generator update
draws its own batch, as the references do), and with bfloat16 hidden layers (what `mixed_precision=True` gives the default networks). keras_gen's
WGAN-GP critic and DCGAN discriminator use `networks.MaskedLeakyReLU`, its discriminators' activation
(same function and gradient). All run `fit` on in-memory batches after a warm-up, in interleaved
rounds. The DCGAN issue's goal is keras_gen's `dcgan` at 1.5x the reference's images/s or more; its
steps take seconds each on these machines, hence the few `--dcgan-steps` per round. Nothing here is a
test; it prints figures.
"""

import argparse
import os
import statistics
import sys
import time

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_gen import networks
from keras_gen.models import CGAN
from keras_gen.models import DCGAN
from keras_gen.models import WGANGP

NUM_CLASSES = 10
NOISE_DIM = 128
DCGAN_IMAGE_SHAPE = (64, 64, 3)
DCGAN_NOISE_DIM = 128
DCGAN_GENERATOR_FILTERS = (128, 256, 512)
DCGAN_DISCRIMINATOR_FILTERS = (64, 128, 128)


# === The keras.io conditional GAN's sizes ===
def cgan_generator_body(output_activation, dtype=None):
    """[batch, 138] -> [batch, 28, 28, 1]."""
    inputs = keras.Input((NOISE_DIM + NUM_CLASSES,))
    x = layers.LeakyReLU(0.2, dtype=dtype)(layers.Dense(7 * 7 * (NOISE_DIM + NUM_CLASSES), dtype=dtype)(inputs))
    x = layers.Reshape((7, 7, NOISE_DIM + NUM_CLASSES), dtype=dtype)(x)
    for _ in range(2):
        x = layers.LeakyReLU(0.2, dtype=dtype)(layers.Conv2DTranspose(128, 4, strides=2, padding="same", dtype=dtype)(x))
    images = layers.Conv2D(1, 7, padding="same", activation=output_activation, dtype="float32")(x)
    return keras.Model(inputs, images)


def cgan_discriminator_body(dtype=None):
    """[batch, 28, 28, 11] -> [batch, 1]."""
    inputs = keras.Input((28, 28, 1 + NUM_CLASSES))
    x = layers.LeakyReLU(0.2, dtype=dtype)(layers.Conv2D(64, 3, strides=2, padding="same", dtype=dtype)(inputs))
    x = layers.LeakyReLU(0.2, dtype=dtype)(layers.Conv2D(128, 3, strides=2, padding="same", dtype=dtype)(x))
    return keras.Model(inputs, layers.Dense(1, dtype="float32")(layers.GlobalMaxPooling2D(dtype=dtype)(x)))


def label_maps(one_hot):
    """One-hot labels [batch, 10] broadcast to [batch, 28, 28, 10]."""
    return tf.tile(one_hot[:, None, None, :], [1, 28, 28, 1])


class ReferenceConditionalGAN(keras.Model):
    """The keras.io conditional GAN's train step, in its style: one-hot labels concatenated to the
    noise and to the image channels, one discriminator update on real and generated images together."""

    def __init__(self):
        super().__init__()
        self.generator = cgan_generator_body("sigmoid")
        self.discriminator = cgan_discriminator_body()
        self.seed_generator = keras.random.SeedGenerator(0)
        self.d_optimizer = keras.optimizers.Adam(3e-4)
        self.g_optimizer = keras.optimizers.Adam(3e-4)
        self.cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
        self.d_tracker = keras.metrics.Mean(name="d_loss")
        self.g_tracker = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_tracker, self.g_tracker]

    def train_step(self, data):
        images, labels = data
        one_hot = tf.one_hot(labels, NUM_CLASSES)
        maps = label_maps(one_hot)
        batch = tf.shape(images)[0]
        noise = keras.random.normal((batch, NOISE_DIM), seed=self.seed_generator)
        generated = self.generator(tf.concat([noise, one_hot], axis=1))
        combined = tf.concat([tf.concat([generated, maps], -1), tf.concat([images, maps], -1)], axis=0)
        targets = tf.concat([tf.ones((batch, 1)), tf.zeros((batch, 1))], axis=0)
        with tf.GradientTape() as tape:
            d_loss = self.cross_entropy(targets, self.discriminator(combined))
        gradients = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(gradients, self.discriminator.trainable_weights))
        noise = keras.random.normal((batch, NOISE_DIM), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            generated = self.generator(tf.concat([noise, one_hot], axis=1))
            g_loss = self.cross_entropy(tf.zeros((batch, 1)), self.discriminator(tf.concat([generated, maps], -1)))
        gradients = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(gradients, self.generator.trainable_weights))
        self.d_tracker.update_state(d_loss)
        self.g_tracker.update_state(g_loss)
        return {"d_loss": self.d_tracker.result(), "g_loss": self.g_tracker.result()}


def keras_gen_cgan(dtype=None, **options):
    """keras_gen's CGAN with networks of the keras.io sizes taking [inputs, labels]."""
    z = keras.Input((NOISE_DIM,))
    labels = keras.Input((), dtype="int64")
    embedding = layers.Embedding(NUM_CLASSES, NUM_CLASSES, dtype=dtype)(labels)
    generator = keras.Model([z, labels], cgan_generator_body("tanh", dtype)(layers.Concatenate(dtype=dtype)([z, embedding])))
    images = keras.Input((28, 28, 1))
    labels = keras.Input((), dtype="int64")
    embedding = layers.Embedding(NUM_CLASSES, NUM_CLASSES, dtype=dtype)(labels)
    maps = layers.Reshape((28, 28, NUM_CLASSES), dtype=dtype)(layers.RepeatVector(28 * 28, dtype=dtype)(embedding))
    score = cgan_discriminator_body(dtype)(layers.Concatenate(dtype=dtype)([images, maps]))
    discriminator = keras.Model([images, labels], score)
    model = CGAN(generator, discriminator, latent_dim=NOISE_DIM, num_classes=NUM_CLASSES, seed=0, **options)
    model.compile(d_optimizer=keras.optimizers.Adam(3e-4), g_optimizer=keras.optimizers.Adam(3e-4))
    return model


# === The keras.io WGAN-GP's sizes ===
def wgan_generator(dtype=None):
    z = keras.Input((NOISE_DIM,))
    x = layers.Dense(4 * 4 * 256, use_bias=False, dtype=dtype)(z)
    x = layers.LeakyReLU(0.2, dtype=dtype)(layers.BatchNormalization(dtype=dtype)(x))
    x = layers.Reshape((4, 4, 256), dtype=dtype)(x)
    for channels in (128, 64, 1):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False, dtype=dtype)(layers.UpSampling2D(dtype=dtype)(x))
        last = channels == 1
        x = layers.BatchNormalization(dtype="float32" if last else dtype)(x)
        x = layers.Activation("tanh", dtype="float32")(x) if last else layers.LeakyReLU(0.2, dtype=dtype)(x)
    return keras.Model(z, layers.Cropping2D(2, dtype="float32")(x))


def wgan_critic(dtype=None, activation=layers.LeakyReLU):
    images = keras.Input((28, 28, 1))
    x = layers.ZeroPadding2D(2, dtype=dtype)(images)
    for channels, dropout in ((64, 0.0), (128, 0.3), (256, 0.3), (512, 0.0)):
        x = activation(0.2, dtype=dtype)(layers.Conv2D(channels, 5, strides=2, padding="same", dtype=dtype)(x))
        if dropout:
            x = layers.Dropout(dropout, dtype=dtype)(x)
    x = layers.Dropout(0.2, dtype=dtype)(layers.Flatten(dtype=dtype)(x))
    return keras.Model(images, layers.Dense(1, dtype="float32")(x))


def wgan_optimizer():
    return keras.optimizers.Adam(2e-4, beta_1=0.5, beta_2=0.9)


class ReferenceWGANGP(keras.Model):
    """The keras.io WGAN-GP's train step, in its style: `d_steps` critic updates, each generating its
    batch inside the critic's tape and adding the gradient penalty, then a generator update."""

    def __init__(self, d_steps=3, gp_weight=10.0):
        super().__init__()
        self.generator = wgan_generator()
        self.discriminator = wgan_critic()
        self.d_steps = d_steps
        self.gp_weight = gp_weight
        self.seed_generator = keras.random.SeedGenerator(0)
        self.d_optimizer = wgan_optimizer()
        self.g_optimizer = wgan_optimizer()
        self.d_tracker = keras.metrics.Mean(name="d_loss")
        self.g_tracker = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_tracker, self.g_tracker]

    def penalty(self, real, fake):
        batch = tf.shape(real)[0]
        alpha = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator)
        mixed = real + alpha * (fake - real)
        with tf.GradientTape() as tape:
            tape.watch(mixed)
            scores = self.discriminator(mixed, training=True)
        gradients = tape.gradient(scores, [mixed])[0]
        norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]))
        return tf.reduce_mean((norms - 1.0) ** 2)

    def train_step(self, images):
        batch = tf.shape(images)[0]
        for _ in range(self.d_steps):
            noise = keras.random.normal((batch, NOISE_DIM), seed=self.seed_generator)
            with tf.GradientTape() as tape:
                fake = self.generator(noise, training=True)
                fake_scores = self.discriminator(fake, training=True)
                real_scores = self.discriminator(images, training=True)
                cost = tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)
                d_loss = cost + self.gp_weight * self.penalty(images, fake)
            gradients = tape.gradient(d_loss, self.discriminator.trainable_variables)
            self.d_optimizer.apply_gradients(zip(gradients, self.discriminator.trainable_variables))
        noise = keras.random.normal((batch, NOISE_DIM), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            g_loss = -tf.reduce_mean(self.discriminator(self.generator(noise, training=True), training=True))
        gradients = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(gradients, self.generator.trainable_variables))
        self.d_tracker.update_state(d_loss)
        self.g_tracker.update_state(g_loss)
        return {"d_loss": self.d_tracker.result(), "g_loss": self.g_tracker.result()}


def keras_gen_wgan_gp(dtype=None, **options):
    # keras_gen's critics use MaskedLeakyReLU (the same function and gradient, no wasted work in the penalty).
    critic = wgan_critic(dtype, networks.MaskedLeakyReLU)
    model = WGANGP(wgan_generator(dtype), critic, latent_dim=NOISE_DIM, d_steps=3, gradient_penalty_weight=10.0, seed=0, **options)
    model.compile(d_optimizer=wgan_optimizer(), g_optimizer=wgan_optimizer())
    return model


# === The keras.io DCGAN's sizes (CelebA, 64x64x3) ===
def dcgan_reference_generator():
    """[batch, 128] -> dense 8x8x128 -> three 4x4 stride-2 transposed convolutions -> [batch, 64, 64, 3] in [0, 1]."""
    z = keras.Input((DCGAN_NOISE_DIM,))
    projected = DCGAN_GENERATOR_FILTERS[0]
    x = layers.Reshape((8, 8, projected))(layers.Dense(8 * 8 * projected)(z))
    for channels in DCGAN_GENERATOR_FILTERS:
        x = layers.LeakyReLU(0.2)(layers.Conv2DTranspose(channels, 4, strides=2, padding="same")(x))
    return keras.Model(z, layers.Conv2D(3, 5, padding="same", activation="sigmoid")(x))


def dcgan_reference_discriminator():
    """[batch, 64, 64, 3] -> three 4x4 stride-2 convolutions -> flatten, dropout 0.2 -> a probability [batch, 1]."""
    images = keras.Input(DCGAN_IMAGE_SHAPE)
    x = images
    for channels in DCGAN_DISCRIMINATOR_FILTERS:
        x = layers.LeakyReLU(0.2)(layers.Conv2D(channels, 4, strides=2, padding="same")(x))
    x = layers.Dropout(0.2)(layers.Flatten()(x))
    return keras.Model(images, layers.Dense(1, activation="sigmoid")(x))


class ReferenceDCGAN(keras.Model):
    """The keras.io DCGAN's train step, in its style: one discriminator update on generated and real
    images together, their labels (1 for generated, 0 for real) nudged by 0.05 * uniform noise, then a
    generator update on a fresh batch; probabilities scored with binary cross-entropy."""

    def __init__(self):
        super().__init__()
        self.generator = dcgan_reference_generator()
        self.discriminator = dcgan_reference_discriminator()
        self.seed_generator = keras.random.SeedGenerator(0)
        self.d_optimizer = keras.optimizers.Adam(1e-4)
        self.g_optimizer = keras.optimizers.Adam(1e-4)
        self.cross_entropy = keras.losses.BinaryCrossentropy()
        self.d_tracker = keras.metrics.Mean(name="d_loss")
        self.g_tracker = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_tracker, self.g_tracker]

    def train_step(self, images):
        batch = tf.shape(images)[0]
        noise = keras.random.normal((batch, DCGAN_NOISE_DIM), seed=self.seed_generator)
        combined = tf.concat([self.generator(noise), images], axis=0)
        targets = tf.concat([tf.ones((batch, 1)), tf.zeros((batch, 1))], axis=0)
        targets += 0.05 * keras.random.uniform(tf.shape(targets), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            d_loss = self.cross_entropy(targets, self.discriminator(combined))
        gradients = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(gradients, self.discriminator.trainable_weights))
        noise = keras.random.normal((batch, DCGAN_NOISE_DIM), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            g_loss = self.cross_entropy(tf.zeros((batch, 1)), self.discriminator(self.generator(noise)))
        gradients = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(gradients, self.generator.trainable_weights))
        self.d_tracker.update_state(d_loss)
        self.g_tracker.update_state(g_loss)
        return {"d_loss": self.d_tracker.result(), "g_loss": self.g_tracker.result()}


def keras_gen_dcgan(dtype=None, **options):
    """keras_gen's DCGAN with networks of the keras.io sizes from `keras_gen.networks`."""
    generator = networks.conv_generator(
        DCGAN_IMAGE_SHAPE, DCGAN_NOISE_DIM, filters=DCGAN_GENERATOR_FILTERS, kernel_size=4, output_kernel_size=5, batch_norm=False, dtype=dtype
    )
    convolutions = networks.conv_discriminator(DCGAN_IMAGE_SHAPE, filters=DCGAN_DISCRIMINATOR_FILTERS, kernel_size=4, dtype=dtype)
    # conv_discriminator's dropout follows each convolution; keras.io's one dropout follows the flatten,
    # so the score is re-attached to the flattened features (the layer before the score) with it.
    features = convolutions.layers[-2].output
    score = layers.Dense(1, dtype="float32")(layers.Dropout(0.2, dtype=dtype)(features))
    discriminator = keras.Model(convolutions.inputs, score, name="discriminator")
    model = DCGAN(generator, discriminator, image_shape=DCGAN_IMAGE_SHAPE, latent_dim=DCGAN_NOISE_DIM, loss="non_saturating", seed=0, **options)
    model.compile(d_optimizer=keras.optimizers.Adam(1e-4), g_optimizer=keras.optimizers.Adam(1e-4))
    return model


# === Timing ===
def datasets(batch_size, value_range, labels, image_shape=(28, 28, 1)):
    rng = np.random.default_rng(0)
    low, high = value_range
    images = rng.uniform(low, high, size=(batch_size * 8, *image_shape)).astype("float32")
    classes = rng.integers(0, NUM_CLASSES, size=(batch_size * 8,)).astype("int64")
    dataset = tf.data.Dataset.from_tensor_slices((images, classes) if labels else images)
    return dataset.batch(batch_size, drop_remainder=True).repeat().prefetch(4)


def throughput(entries, batch_size, steps, rounds):
    """{name: ([images/s per round], [CPU seconds per 1000 images per round])} of each (model, dataset)'s
    `fit`, timed in interleaved rounds.

    These shared 2-core machines are often loaded by other jobs, which slows wall-clock rates by up
    to half for seconds at a time. Interleaving gives every model the same conditions; the ratio within
    each round and the process's CPU time per image (work done, whatever the waiting) are the figures
    least touched by the load.
    """
    for model, dataset in entries.values():
        model.fit(dataset, epochs=1, steps_per_epoch=2, verbose=0)  # trace and warm up
    rates = {name: ([], []) for name in entries}
    for _ in range(rounds):
        for name, (model, dataset) in entries.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
            images = batch_size * steps
            rates[name][0].append(images / (time.perf_counter() - start))
            rates[name][1].append(1000 * (time.process_time() - cpu_start) / images)
    return rates


def report(title, rates, reference):
    """Prints each model's best and median rate, its speed relative to the reference (the median over
    rounds of the ratio within a round, robust to the load changing between rounds) and its median
    CPU time per 1000 images."""
    print(title)
    for name, (values, cpu) in rates.items():
        ratios = [mine / theirs for mine, theirs in zip(values, rates[reference][0])]
        cpu_ratio = statistics.median(rates[reference][1]) / statistics.median(cpu)
        print(
            f"  {name:<46} best {max(values):6.0f} images/s, median {statistics.median(values):6.0f}; "
            f"{statistics.median(ratios):.2f}x the reference (per-round ratios {min(ratios):.2f}-{max(ratios):.2f}); "
            f"CPU {statistics.median(cpu):5.2f} s per 1000 images ({cpu_ratio:.2f}x less)"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="cgan,wgan_gp,dcgan_celeba", help="comma-separated: cgan, wgan_gp, dcgan_celeba")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--cgan-steps", type=int, default=30, help="steps per timed round at batch 64")
    parser.add_argument("--wgan-steps", type=int, default=1, help="steps per timed round at batch 512")
    parser.add_argument("--dcgan-steps", type=int, default=2, help="steps per timed round at batch 32 (64x64x3; each takes seconds)")
    args = parser.parse_args()
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores")
    chosen = args.models.split(",")
    if "cgan" in chosen:
        labelled_01 = datasets(64, (0.0, 1.0), labels=True)
        labelled = datasets(64, (-1.0, 1.0), labels=True)
        reference = ReferenceConditionalGAN()
        reference.compile()
        entries = {
            "keras.io conditional GAN step": (reference, labelled_01),
            "keras_gen cgan": (keras_gen_cgan(), labelled),
            "keras_gen cgan, fresh_generator_noise=True": (keras_gen_cgan(fresh_generator_noise=True), labelled),
            "keras_gen cgan, mixed_precision (bfloat16)": (keras_gen_cgan("mixed_bfloat16"), labelled),
        }
        rates = throughput(entries, 64, args.cgan_steps, args.rounds)
        report(f"Conditional GAN, batch 64, {args.cgan_steps} steps x {args.rounds} rounds:", rates, "keras.io conditional GAN step")
    if "wgan_gp" in chosen:
        images = datasets(512, (-1.0, 1.0), labels=False)
        reference = ReferenceWGANGP()
        reference.compile()
        entries = {
            "keras.io WGAN-GP step (3 critic steps)": (reference, images),
            "keras_gen wgan_gp (d_steps=3)": (keras_gen_wgan_gp(), images),
            "keras_gen wgan_gp, fresh_generator_noise=True": (keras_gen_wgan_gp(fresh_generator_noise=True), images),
            "keras_gen wgan_gp, mixed_precision (bfloat16)": (keras_gen_wgan_gp("mixed_bfloat16"), images),
        }
        rates = throughput(entries, 512, args.wgan_steps, args.rounds)
        report(f"WGAN-GP, batch 512, {args.wgan_steps} steps x {args.rounds} rounds:", rates, "keras.io WGAN-GP step (3 critic steps)")
    if "dcgan_celeba" in chosen:
        images_01 = datasets(32, (0.0, 1.0), labels=False, image_shape=DCGAN_IMAGE_SHAPE)
        images = datasets(32, (-1.0, 1.0), labels=False, image_shape=DCGAN_IMAGE_SHAPE)
        reference = ReferenceDCGAN()
        reference.compile()
        entries = {
            "keras.io DCGAN (CelebA 64x64x3) step": (reference, images_01),
            "keras_gen dcgan": (keras_gen_dcgan(), images),
            "keras_gen dcgan, fresh_generator_noise=True": (keras_gen_dcgan(fresh_generator_noise=True), images),
            "keras_gen dcgan, mixed_precision (bfloat16)": (keras_gen_dcgan("mixed_bfloat16"), images),
        }
        rates = throughput(entries, 32, args.dcgan_steps, args.rounds)
        report(f"DCGAN at 64x64x3, batch 32, {args.dcgan_steps} steps x {args.rounds} rounds:", rates, "keras.io DCGAN (CelebA 64x64x3) step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
