"""Default networks of the zoo: small convolutional encoders and decoders for [H, W, C] images.

Every model takes its networks as arguments, so these are only the defaults; any Keras model with the
same inputs and outputs can replace them. Each model declares those inputs and outputs (`Interface`s of
`Port`s, its `network_interfaces()`), and `check_network` holds every network it is given to them when
the model is built.

How the default networks scale with the image size: a convolutional network here is a stack of
stride-2 stages, one width (channels) per stage. Each model keeps base widths, the networks it builds
for 28x28 Fashion-MNIST, and `stage_widths` fits them to its image shape:

- n_fit, the stages that fit (`stages_that_fit`), is the largest n for which height and width are both
  divisible by 2^n and the smallest side, divided by 2^n, is still at least `MIN_STAGE_RESOLUTION` (4).
  28 -> 2, 32 -> 3, 48 -> 3, 64 -> 4, 8 -> 1.
- The network has max(len(base), n_fit) stages: a larger image gains stages, a smaller one keeps the
  base, so 28x28 models (and the tests' 8x8 ones) are built exactly from their base widths.
- Each extra stage doubles the width at the coarse end: widths listed finest first (encoders,
  discriminators, critics) gain last * 2 at their end, widths listed coarsest first (decoders,
  generators) gain first * 2 at their start.

So DCGAN's base generator (128, 64) and discriminator (64, 128) become (512, 256, 128, 64) from a 4x4
projection and (64, 128, 256, 512) at 64x64: the four stride-2 stages of Radford et al.'s 64x64 DCGAN
(whose generator projects z to 1024 channels rather than to its first stage's width; see
`keras_gen.models.DCGAN`). Widths given explicitly to a model are used exactly as given.

Mixed precision: every builder with hidden layers takes `dtype`, a Keras dtype policy for them (e.g.
"mixed_float16", what a model's `mixed_precision` option passes, or None for float32); the layers that
make a network's outputs are float32 whatever the policy, so the models' losses see float32.
"""

import math
import re
import typing

import keras_gen  # noqa: F401
import keras
import tensorflow as tf
from keras import layers

from keras_gen import noise

# The smallest feature map, per side, that `stage_widths` lets a network downsample to.
MIN_STAGE_RESOLUTION = 4


def stages_that_fit(image_shape):
    """The most stride-2 stages that halve `image_shape` evenly and keep each side at least
    `MIN_STAGE_RESOLUTION` pixels (see the module docstring): 28 -> 2, 32 -> 3, 64 -> 4.

    Example:
    >>> stages_that_fit((64, 48, 3))
    3
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    stages = 0
    while True:
        factor = 2 ** (stages + 1)
        if height % factor or width % factor or min(height, width) // factor < MIN_STAGE_RESOLUTION:
            return stages
        stages += 1


def stage_widths(image_shape, base, coarsest_first=False):
    """The widths of a network's stride-2 stages for `image_shape`, grown from its `base` widths.

    The network gets max(len(base), stages_that_fit(image_shape)) stages; each stage added to the base
    doubles the width at the coarse end (see the module docstring).

    Args:
        image_shape: (height, width, channels) of the images.
        base: one width per stage, at least one: the network for 28x28 images.
        coarsest_first: whether `base` lists the coarsest stage first (decoders and generators) rather
            than the finest (encoders, discriminators and critics).

    Returns:
        A tuple of ints, in the order of `base`.

    Example:
    >>> stage_widths((64, 64, 3), (128, 64), coarsest_first=True)
    (512, 256, 128, 64)
    """
    widths = [int(w) for w in base]
    if not widths:
        raise ValueError("stage_widths needs at least one base width.")
    for _ in range(stages_that_fit(image_shape) - len(widths)):
        if coarsest_first:
            widths.insert(0, widths[0] * 2)
        else:
            widths.append(widths[-1] * 2)
    return tuple(widths)


def resolve_widths(widths, image_shape, base, coarsest_first=False):
    """A model's widths option as built: `widths` as given (as ints), or for None `base` scaled to
    `image_shape` by `stage_widths`."""
    if widths is None:
        return stage_widths(image_shape, base, coarsest_first)
    return tuple(int(w) for w in widths)


def _nearby_multiples(size, factor):
    below = size // factor * factor
    return [str(s) for s in (below, below + factor) if s > 0]


def _check_downsampling(image_shape, num_strided):
    factor = 2**num_strided
    height, width = image_shape[0], image_shape[1]
    if height % factor or width % factor:
        sides = sorted({side for side in (height, width) if side % factor})
        suggestions = " or ".join(size for side in sides for size in _nearby_multiples(side, factor))
        raise ValueError(
            f"image_shape {tuple(image_shape)} cannot be halved evenly by {num_strided} stride-2 stages: its height "
            f"and width must be divisible by {factor}. Choose an image size divisible by {factor}, such as "
            f"{suggestions} ([data] image_size in a recipe, --image-size on the command line), or pass fewer widths "
            "(one per stage) to the model."
        )
    return height // factor, width // factor


def conv_encoder(image_shape, latent_dim, filters=(32, 64), hidden_units=0, dtype=None, name="encoder"):
    """A Gaussian encoder: images -> [mean, log_variance], each [batch, latent_dim].

    Args:
        image_shape: (height, width, channels) of the input images.
        latent_dim: size of the latent code.
        filters: channels of each stride-2 3x3 convolution.
        hidden_units: width of a dense layer before the two heads (0, the default: the heads read
            the flattened features directly, which is both cheaper and wider than a small hidden layer).
        dtype: Keras dtype policy of the hidden layers (the heads are float32).
        name: the model's name.

    Example:
    >>> encoder = conv_encoder((28, 28, 1), latent_dim=16)
    """
    _check_downsampling(image_shape, len(filters))
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for width in filters:
        x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu", dtype=dtype)(x)
    x = layers.Flatten(dtype=dtype)(x)
    if hidden_units:
        x = layers.Dense(hidden_units, activation="relu", dtype=dtype)(x)
    mean = layers.Dense(latent_dim, dtype="float32", name="mean")(x)
    log_variance = layers.Dense(latent_dim, dtype="float32", name="log_variance")(x)
    return keras.Model(images, [mean, log_variance], name=name)


def conv_decoder(image_shape, latent_dim, filters=(64, 32), hidden_units=0, dtype=None, name="decoder"):
    """A decoder: z [batch, latent_dim] -> logits [batch, height, width, channels].

    The output is unbounded logits; the model's likelihood turns them into pixel probabilities or means.

    Args:
        image_shape: (height, width, channels) of the images to produce.
        latent_dim: size of the latent code.
        filters: channels of each stride-2 3x3 transposed convolution, coarsest first.
        hidden_units: width of the dense layer after the code (0 to skip it).
        dtype: Keras dtype policy of the hidden layers (the logits are float32).
        name: the model's name.
    """
    height, width = _check_downsampling(image_shape, len(filters))
    z = keras.Input(shape=(latent_dim,), name="z")
    x = z
    if hidden_units:
        x = layers.Dense(hidden_units, activation="relu", dtype=dtype)(x)
    x = layers.Dense(height * width * filters[0], activation="relu", dtype=dtype)(x)
    x = layers.Reshape((height, width, filters[0]), dtype=dtype)(x)
    for channels in filters:
        x = layers.Conv2DTranspose(channels, 3, strides=2, padding="same", activation="relu", dtype=dtype)(x)
    logits = layers.Conv2DTranspose(image_shape[-1], 3, padding="same", dtype="float32", name="logits")(x)
    return keras.Model(z, logits, name=name)


# === Deterministic autoencoders and classifiers on their codes ===
# Keras' default (0.99) averages over ~100 steps; a classifier trained on 100 labels takes few steps
# per epoch, and its moving statistics would still be mostly their initial values when validated.
AE_BATCH_NORM_MOMENTUM = 0.9


def _conv_bn_relu(x, channels, strides, transpose=False, dtype=None):
    # BatchNorm supplies the bias, and its moving statistics are what a frozen encoder must keep.
    conv = layers.Conv2DTranspose if transpose else layers.Conv2D
    x = conv(channels, 3, strides=strides, padding="same", use_bias=False, dtype=dtype)(x)
    x = GlobalBatchNormalization(momentum=AE_BATCH_NORM_MOMENTUM, dtype=dtype)(x)
    return layers.ReLU(dtype=dtype)(x)


def ae_encoder(image_shape, code_dim, filters=(32, 64), convs_per_stage=2, dtype=None, name="ae_encoder"):
    """A deterministic convolutional encoder: images -> code [batch, code_dim].

    Each stage is `convs_per_stage` 3x3 convolutions with BatchNorm and ReLU, the last of stride 2, so
    `filters` sets the width and the number of stages, and `convs_per_stage` the depth.

    Args:
        image_shape: (height, width, channels) of the input images.
        code_dim: width of the bottleneck code (a linear layer).
        filters: channels of each stage.
        convs_per_stage: convolutions per stage (at least 1).
        dtype: Keras dtype policy of the hidden layers (the code is float32).
        name: the model's name.

    Example:
    >>> encoder = ae_encoder((28, 28, 1), code_dim=32)
    """
    _check_downsampling(image_shape, len(filters))
    if convs_per_stage < 1:
        raise ValueError(f"convs_per_stage must be at least 1, got {convs_per_stage}.")
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for channels in filters:
        for _ in range(convs_per_stage - 1):
            x = _conv_bn_relu(x, channels, strides=1, dtype=dtype)
        x = _conv_bn_relu(x, channels, strides=2, dtype=dtype)
    code = layers.Dense(code_dim, dtype="float32", name="code")(layers.Flatten(dtype=dtype)(x))
    return keras.Model(images, code, name=name)


def ae_decoder(image_shape, code_dim, filters=(64, 32), convs_per_stage=2, dtype=None, name="ae_decoder"):
    """The mirror of `ae_encoder`: code [batch, code_dim] -> logits [batch, height, width, channels].

    Args:
        image_shape: (height, width, channels) of the images to produce.
        code_dim: width of the code.
        filters: channels of each stage, coarsest first; each stage starts with a stride-2 transposed
            convolution, followed by `convs_per_stage - 1` convolutions.
        convs_per_stage: convolutions per stage (at least 1).
        dtype: Keras dtype policy of the hidden layers (the logits are float32).
        name: the model's name.
    """
    height, width = _check_downsampling(image_shape, len(filters))
    if convs_per_stage < 1:
        raise ValueError(f"convs_per_stage must be at least 1, got {convs_per_stage}.")
    code = keras.Input(shape=(code_dim,), name="code")
    x = layers.Dense(height * width * filters[0], activation="relu", dtype=dtype)(code)
    x = layers.Reshape((height, width, filters[0]), dtype=dtype)(x)
    for channels in filters:
        x = _conv_bn_relu(x, channels, strides=2, transpose=True, dtype=dtype)
        for _ in range(convs_per_stage - 1):
            x = _conv_bn_relu(x, channels, strides=1, dtype=dtype)
    logits = layers.Conv2D(image_shape[-1], 3, padding="same", dtype="float32", name="logits")(x)
    return keras.Model(code, logits, name=name)


def code_classifier(code_dim, num_classes, hidden_units=0, dtype=None, name="head"):
    """A shallow classifier head: code [batch, code_dim] -> class logits [batch, num_classes].

    Args:
        code_dim: width of the code it reads.
        num_classes: number of classes.
        hidden_units: width of one ReLU layer before the logits (0: logistic regression on the code).
        dtype: Keras dtype policy of the hidden layer (the logits are float32).
        name: the model's name.
    """
    code = keras.Input(shape=(code_dim,), name="code")
    x = code
    if hidden_units:
        x = layers.Dense(hidden_units, activation="relu", dtype=dtype)(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(code, logits, name=name)


# === Conditional and hierarchical VAE networks ===
def conditional_conv_encoder(image_shape, latent_dim, num_classes=10, filters=(32, 64), hidden_units=0, dtype=None, name="encoder"):
    """A class-conditional Gaussian encoder: [images, labels] -> [mean, log_variance].

    The label enters as one extra image plane (a learned embedding per class, reshaped to the image's
    height and width), so the first convolution already sees pixels and class together.

    Args:
        image_shape: (height, width, channels) of the input images.
        latent_dim: size of the latent code.
        num_classes: number of classes; labels are int64 ids 0..num_classes - 1.
        filters: channels of each stride-2 3x3 convolution.
        hidden_units: width of a dense layer before the two heads (0 to skip it).
        dtype: Keras dtype policy of the hidden layers (the heads are float32).
        name: the model's name.

    Example:
    >>> encoder = conditional_conv_encoder((28, 28, 1), latent_dim=16, num_classes=10)
    """
    _check_downsampling(image_shape, len(filters))
    height, width = image_shape[0], image_shape[1]
    images = keras.Input(shape=tuple(image_shape), name="images")
    labels = keras.Input(shape=(), dtype="int64", name="labels")
    plane = layers.Embedding(num_classes, height * width, dtype=dtype, name="label_plane")(labels)
    x = layers.Concatenate(dtype=dtype)([images, layers.Reshape((height, width, 1), dtype=dtype)(plane)])
    for channels in filters:
        x = layers.Conv2D(channels, 3, strides=2, padding="same", activation="relu", dtype=dtype)(x)
    x = layers.Flatten(dtype=dtype)(x)
    if hidden_units:
        x = layers.Dense(hidden_units, activation="relu", dtype=dtype)(x)
    mean = layers.Dense(latent_dim, dtype="float32", name="mean")(x)
    log_variance = layers.Dense(latent_dim, dtype="float32", name="log_variance")(x)
    return keras.Model([images, labels], [mean, log_variance], name=name)


def conditional_conv_decoder(
    image_shape, latent_dim, num_classes=10, filters=(64, 32), hidden_units=0, label_dim=16, dtype=None, name="decoder"
):
    """A class-conditional decoder: [z, labels] -> logits [batch, height, width, channels].

    Args:
        image_shape: (height, width, channels) of the images to produce.
        latent_dim: size of the latent code.
        num_classes: number of classes; labels are int64 ids 0..num_classes - 1.
        filters: channels of each stride-2 3x3 transposed convolution, coarsest first.
        hidden_units: width of a dense layer after the code (0 to skip it).
        label_dim: width of the learned label embedding concatenated to z.
        dtype: Keras dtype policy of the hidden layers (the logits are float32).
        name: the model's name.
    """
    height, width = _check_downsampling(image_shape, len(filters))
    z = keras.Input(shape=(latent_dim,), name="z")
    labels = keras.Input(shape=(), dtype="int64", name="labels")
    x = layers.Concatenate(dtype=dtype)([z, layers.Embedding(num_classes, label_dim, dtype=dtype, name="label_embedding")(labels)])
    if hidden_units:
        x = layers.Dense(hidden_units, activation="relu", dtype=dtype)(x)
    x = layers.Dense(height * width * filters[0], activation="relu", dtype=dtype)(x)
    x = layers.Reshape((height, width, filters[0]), dtype=dtype)(x)
    for channels in filters:
        x = layers.Conv2DTranspose(channels, 3, strides=2, padding="same", activation="relu", dtype=dtype)(x)
    logits = layers.Conv2DTranspose(image_shape[-1], 3, padding="same", dtype="float32", name="logits")(x)
    return keras.Model([z, labels], logits, name=name)


def ladder_encoder(image_shape, num_groups, hidden_units=256, filters=(32, 64), dtype=None, name="bottom_up"):
    """The bottom-up deterministic path of a hierarchical VAE: images -> one feature vector per group.

    Convolutions and a dense layer give the bottom group's features; each group above reads the
    features below it through one more dense layer, added residually.

    Args:
        image_shape: (height, width, channels) of the input images.
        num_groups: number of latent groups.
        hidden_units: width of every feature vector.
        filters: channels of each stride-2 3x3 convolution.
        dtype: Keras dtype policy of the hidden layers (the feature vectors are float32).
        name: the model's name.

    Returns:
        A Keras model with `num_groups` outputs, [batch, hidden_units] each, top group first.
    """
    _check_downsampling(image_shape, len(filters))
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for channels in filters:
        x = layers.Conv2D(channels, 3, strides=2, padding="same", activation="relu", dtype=dtype)(x)
    # Each group's features are an output (float32) and the input of the group above (cast to the policy there).
    features = [layers.Dense(hidden_units, activation="relu", dtype="float32")(layers.Flatten(dtype=dtype)(x))]
    for _ in range(num_groups - 1):
        below = features[-1]
        features.append(layers.Add(dtype="float32")([below, layers.Dense(hidden_units, activation="relu", dtype=dtype)(below)]))
    return keras.Model(images, features[::-1], name=name)


def gaussian_head(input_dim, latent_dim, name="gaussian_head"):
    """Two linear heads: features [batch, input_dim] -> [mean, log_variance], [batch, latent_dim] each
    (outputs, so float32: it has no hidden layers for a `dtype` policy)."""
    features = keras.Input(shape=(input_dim,), name="features")
    mean = layers.Dense(latent_dim, dtype="float32", name="mean")(features)
    log_variance = layers.Dense(latent_dim, dtype="float32", name="log_variance")(features)
    return keras.Model(features, [mean, log_variance], name=name)


def top_down_block(input_dim, latent_dim, hidden_units=256, dtype=None, name="top_down"):
    """One step of a hierarchical VAE's top-down path: [z above, state above] (concatenated, width
    `input_dim`) -> [state, prior mean, prior log_variance] of the next group down.

    Args:
        input_dim: width of the concatenated input.
        latent_dim: size of the group this block gives a prior for.
        hidden_units: width of the state.
        dtype: Keras dtype policy of the hidden layer (the three outputs are float32).
        name: the model's name.
    """
    above = keras.Input(shape=(input_dim,), name="above")
    state = layers.Dense(hidden_units, activation="relu", dtype=dtype)(above)
    state = layers.Dense(hidden_units, activation="relu", dtype="float32", name="state")(state)
    mean = layers.Dense(latent_dim, dtype="float32", name="prior_mean")(state)
    log_variance = layers.Dense(latent_dim, dtype="float32", name="prior_log_variance")(state)
    return keras.Model(above, [state, mean, log_variance], name=name)


def residual_posterior_head(feature_dim, state_dim, latent_dim, hidden_units=256, dtype=None, name="posterior"):
    """The residual posterior of a lower group (NVAE-style): [bottom-up features, top-down state] ->
    [mean shift, log_variance shift] relative to the group's prior.

    The output layers start at zero, so that training starts with each posterior equal to its prior.

    Args:
        feature_dim: width of the bottom-up features.
        state_dim: width of the top-down state.
        latent_dim: size of the group.
        hidden_units: width of the hidden layer.
        dtype: Keras dtype policy of the hidden layer (the shifts are float32).
        name: the model's name.
    """
    features = keras.Input(shape=(feature_dim,), name="features")
    state = keras.Input(shape=(state_dim,), name="state")
    x = layers.Dense(hidden_units, activation="relu", dtype=dtype)(layers.Concatenate(dtype=dtype)([features, state]))
    mean = layers.Dense(latent_dim, kernel_initializer="zeros", dtype="float32", name="mean_shift")(x)
    log_variance = layers.Dense(latent_dim, kernel_initializer="zeros", dtype="float32", name="log_variance_shift")(x)
    return keras.Model([features, state], [mean, log_variance], name=name)


# === GAN generators and discriminators ===
# Generators map z [batch, latent_dim] (and, when class-conditional, int labels [batch]) to images in
# [-1, 1] (tanh); discriminators map images (and labels) to one raw score per image, [batch, 1]. With
# `num_classes` > 0 a network takes `[inputs, labels]` and reads the labels through a learned embedding.


@keras.saving.register_keras_serializable(package="keras_gen")
class MaskedLeakyReLU(layers.Layer):
    """LeakyReLU whose gradient treats the slope of each unit (1 or `negative_slope`) as a constant.

    The outputs and gradients are Keras' `LeakyReLU`'s. The difference is in second derivatives, which
    are zero for a piecewise-linear function: TensorFlow's own LeakyReLU gradient sends zeros back
    through the whole forward pass when differentiated again, and a gradient penalty (WGAN-GP) does
    exactly that. Here the slope carries no gradient, so the penalty's backward pass skips that work
    (about a third of its time for the keras.io WGAN-GP critic on CPU).

    Args:
        negative_slope: the slope for negative inputs.

    Example:
    >>> y = MaskedLeakyReLU(0.2)(keras.ops.convert_to_tensor([-1.0, 2.0]))  # [-0.2, 2.0]
    """

    def __init__(self, negative_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = float(negative_slope)

    def call(self, inputs):
        slope = keras.ops.where(inputs > 0, 1.0, self.negative_slope)
        return inputs * keras.ops.cast(keras.ops.stop_gradient(slope), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


# === Layers that train the same on one device or many ===
# The recipe's batch is the global batch: under a tf.distribute strategy these two give each example
# what it would get on one device, so a distributed step equals the single-device step.


@keras.saving.register_keras_serializable(package="keras_gen")
class GlobalBatchNormalization(layers.BatchNormalization):
    """Keras' BatchNormalization with the statistics of the global batch in training.

    Under a strategy with several replicas it uses Keras' synchronized statistics (one all-reduce per
    layer and step); on one replica it is Keras' layer unchanged, numerically the same. (Keras'
    `synchronized=True` alone would change single-device numbers: it computes the variance as
    E[x^2] - E[x]^2.) Overrides Keras' `_moments`, the hook both paths share (Keras 3.15).
    """

    def _moments(self, inputs, mask):
        replica = tf.distribute.get_replica_context()
        if mask is None and replica is not None and replica.num_replicas_in_sync > 1:
            return keras.ops.moments(inputs, axes=self._reduction_axes, synchronized=True)
        return super()._moments(inputs, mask)


@keras.saving.register_keras_serializable(package="keras_gen")
class ReplicaInvariantDropout(layers.Dropout):
    """Keras' Dropout whose mask for each example of the global batch is the same however the batch is
    split over replicas (`keras_gen.noise`); its seed comes from the layer's own seed generator, as
    Keras' does. `noise_shape` is not supported."""

    def __init__(self, rate, seed=None, **kwargs):
        if kwargs.get("noise_shape") is not None:
            raise ValueError("ReplicaInvariantDropout drops single units; it has no noise_shape.")
        super().__init__(rate, seed=seed, **kwargs)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        keep = noise.uniform(tf.shape(inputs), tf.cast(self.seed_generator.next(), tf.int32), inputs.dtype) >= self.rate
        return tf.where(keep, inputs / keras.ops.cast(1.0 - self.rate, inputs.dtype), tf.zeros_like(inputs))


def _gan_inputs(main, num_classes, embedding_dim, dtype):
    """The network's inputs and the label embedding [batch, embedding_dim] (None when unconditional)."""
    if not num_classes:
        return [main], None
    labels = keras.Input(shape=(), dtype="int64", name="label")
    embedding = layers.Embedding(num_classes, embedding_dim, dtype=dtype, name="label_embedding")(labels)
    return [main, labels], embedding


def _gan_model(inputs, outputs, name):
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=name)


def mlp_generator(image_shape, latent_dim, hidden_units=(256, 512), num_classes=0, embedding_dim=10, dtype=None, name="generator"):
    """A fully connected generator, as in the original GAN: z -> ReLU layers -> tanh pixels.

    Args:
        image_shape: (height, width, channels) of the images to produce.
        latent_dim: size of z.
        hidden_units: width of each hidden layer.
        num_classes: number of classes to condition on (0: unconditional).
        embedding_dim: size of the label embedding concatenated to z.
        dtype: Keras dtype policy of the hidden layers.
        name: the model's name.

    Example:
    >>> generator = mlp_generator((28, 28, 1), latent_dim=64)
    """
    z = keras.Input(shape=(latent_dim,), name="z")
    inputs, embedding = _gan_inputs(z, num_classes, embedding_dim, dtype)
    x = z if embedding is None else layers.Concatenate(dtype=dtype)([z, embedding])
    for units in hidden_units:
        x = layers.Dense(units, activation="relu", dtype=dtype)(x)
    pixels = layers.Dense(math.prod(image_shape), activation="tanh", dtype="float32", name="pixels")(x)
    return _gan_model(inputs, layers.Reshape(tuple(image_shape), dtype="float32")(pixels), name)


def mlp_discriminator(image_shape, hidden_units=(512, 256), dropout=0.0, num_classes=0, embedding_dim=10, dtype=None, name="discriminator"):
    """A fully connected discriminator: images -> LeakyReLU(0.2) layers -> one score.

    Args:
        image_shape: (height, width, channels) of the input images.
        hidden_units: width of each hidden layer.
        dropout: dropout rate after each hidden layer (0: none).
        num_classes: number of classes to condition on (0: unconditional).
        embedding_dim: size of the label embedding concatenated to the pixels.
        dtype: Keras dtype policy of the hidden layers.
        name: the model's name.
    """
    images = keras.Input(shape=tuple(image_shape), name="images")
    inputs, embedding = _gan_inputs(images, num_classes, embedding_dim, dtype)
    x = layers.Flatten(dtype=dtype)(images)
    if embedding is not None:
        x = layers.Concatenate(dtype=dtype)([x, embedding])
    for units in hidden_units:
        x = MaskedLeakyReLU(0.2, dtype=dtype)(layers.Dense(units, dtype=dtype)(x))
        if dropout:
            x = ReplicaInvariantDropout(dropout, dtype=dtype)(x)
    return _gan_model(inputs, layers.Dense(1, dtype="float32", name="score")(x), name)


def conv_generator(
    image_shape,
    latent_dim,
    filters=(128, 64),
    kernel_size=4,
    output_kernel_size=3,
    batch_norm=True,
    num_classes=0,
    embedding_dim=10,
    dtype=None,
    name="generator",
):
    """A DCGAN-style generator: a dense projection, stride-2 transposed convolutions, a tanh convolution.

    z is projected to a [height / 2^n, width / 2^n, filters[0]] map (n = len(filters)); each transposed
    convolution doubles the resolution; a last stride-1 convolution makes the tanh pixels.

    Args:
        image_shape: (height, width, channels); height and width divisible by 2^len(filters).
        latent_dim: size of z.
        filters: channels of each stride-2 transposed convolution, coarsest first.
        kernel_size: kernel size of the transposed convolutions.
        output_kernel_size: kernel size of the output convolution.
        batch_norm: BatchNorm (and ReLU) after the projection and each transposed convolution, as in
            DCGAN; False uses LeakyReLU(0.2) without normalisation.
        num_classes: number of classes to condition on (0: unconditional).
        embedding_dim: size of the label embedding concatenated to z.
        dtype: Keras dtype policy of the hidden layers.
        name: the model's name.

    Example:
    >>> generator = conv_generator((28, 28, 1), latent_dim=100, filters=(128, 64))
    """
    height, width = _check_downsampling(image_shape, len(filters))
    z = keras.Input(shape=(latent_dim,), name="z")
    inputs, embedding = _gan_inputs(z, num_classes, embedding_dim, dtype)
    x = z if embedding is None else layers.Concatenate(dtype=dtype)([z, embedding])

    def activate(x):
        if batch_norm:
            return layers.ReLU(dtype=dtype)(GlobalBatchNormalization(dtype=dtype)(x))
        return layers.LeakyReLU(0.2, dtype=dtype)(x)

    # No biases before BatchNorm: its offset replaces them.
    x = activate(layers.Dense(height * width * filters[0], use_bias=not batch_norm, dtype=dtype)(x))
    x = layers.Reshape((height, width, filters[0]), dtype=dtype)(x)
    for channels in filters:
        x = layers.Conv2DTranspose(channels, kernel_size, strides=2, padding="same", use_bias=not batch_norm, dtype=dtype)(x)
        x = activate(x)
    images = layers.Conv2D(image_shape[-1], output_kernel_size, padding="same", activation="tanh", dtype="float32", name="pixels")(x)
    return _gan_model(inputs, images, name)


def conv_discriminator(
    image_shape,
    filters=(64, 128),
    kernel_size=4,
    batch_norm=False,
    dropout=0.0,
    pooling="flatten",
    num_classes=0,
    embedding_dim=10,
    dtype=None,
    name="discriminator",
):
    """A DCGAN-style discriminator (or WGAN critic): stride-2 convolutions with LeakyReLU(0.2), one score.

    Args:
        image_shape: (height, width, channels) of the input images.
        filters: channels of each stride-2 convolution.
        kernel_size: kernel size of the convolutions.
        batch_norm: BatchNorm after every convolution but the first, as in DCGAN. Leave it off for a
            critic with a gradient penalty, which is defined per example (WGAN-GP).
        dropout: dropout rate after each convolution (0: none).
        pooling: "flatten" (a dense score over all features) or "global_max" (over positions).
        num_classes: number of classes to condition on (0: unconditional); the label embedding is
            broadcast to every pixel and concatenated to the image channels.
        embedding_dim: size of the label embedding.
        dtype: Keras dtype policy of the hidden layers.
        name: the model's name.
    """
    if pooling not in ("flatten", "global_max"):
        raise ValueError(f"Unknown pooling {pooling!r}; expected 'flatten' or 'global_max'.")
    images = keras.Input(shape=tuple(image_shape), name="images")
    inputs, embedding = _gan_inputs(images, num_classes, embedding_dim, dtype)
    x = images
    if embedding is not None:
        height, width = image_shape[0], image_shape[1]
        maps = layers.RepeatVector(height * width, dtype=dtype)(embedding)
        maps = layers.Reshape((height, width, embedding_dim), dtype=dtype)(maps)
        x = layers.Concatenate(dtype=dtype)([images, maps])
    for index, channels in enumerate(filters):
        x = layers.Conv2D(channels, kernel_size, strides=2, padding="same", dtype=dtype)(x)
        if batch_norm and index > 0:
            x = GlobalBatchNormalization(dtype=dtype)(x)
        x = MaskedLeakyReLU(0.2, dtype=dtype)(x)
        if dropout:
            x = ReplicaInvariantDropout(dropout, dtype=dtype)(x)
    x = layers.Flatten(dtype=dtype)(x) if pooling == "flatten" else layers.GlobalMaxPooling2D(dtype=dtype)(x)
    return _gan_model(inputs, layers.Dense(1, dtype="float32", name="score")(x), name)


# === VAE-GAN discriminator ===
def feature_discriminator(
    image_shape, filters=(32, 64, 128), kernel_size=5, feature_block=-1, hidden_units=256, layer_norm=True, dtype=None, name="discriminator"
):
    """A discriminator that also shows what it sees: images -> [features, score].

    Stride-2 convolutions with LeakyReLU(0.2); `features` are the flattened outputs of the convolution
    block `feature_block` (the learned similarity metric of a VAE-GAN, Larsen et al., 2016), and the
    score, one raw logit per image ([batch, 1]), reads the last block through an optional dense layer.
    LayerNorm rather than the paper's BatchNorm: it gives the features a fixed scale, which a unit-variance
    feature likelihood needs (unnormalised features start tiny, and the VAE then ignores its code), and
    an image's features do not depend on the rest of its batch.

    Args:
        image_shape: (height, width, channels) of the input images.
        filters: channels of each stride-2 convolution.
        kernel_size: kernel size of the convolutions.
        feature_block: index into `filters` of the block whose output is `features` (-1: the last).
        hidden_units: width of a LeakyReLU dense layer between the last block and the score (0: none).
        layer_norm: LayerNorm (over channels) after every convolution but the first.
        dtype: Keras dtype policy of the hidden layers (the features and the score are float32).
        name: the model's name.

    Example:
    >>> discriminator = feature_discriminator((28, 28, 1))
    >>> features, score = discriminator(images)  # doctest: +SKIP
    """
    if not filters:
        raise ValueError("feature_discriminator needs at least one convolution in `filters`.")
    if not -len(filters) <= feature_block < len(filters):
        raise ValueError(f"feature_block {feature_block} is not a block of filters {tuple(filters)}; use 0..{len(filters) - 1} or -1 for the last.")
    feature_block %= len(filters)
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for index, channels in enumerate(filters):
        x = layers.Conv2D(channels, kernel_size, strides=2, padding="same", dtype=dtype)(x)
        if layer_norm and index > 0:
            x = layers.LayerNormalization(dtype=dtype)(x)
        x = MaskedLeakyReLU(0.2, dtype=dtype)(x)
        if index == feature_block:
            features = layers.Flatten(dtype="float32", name="features")(x)
    x = features if feature_block == len(filters) - 1 else layers.Flatten(dtype=dtype)(x)
    if hidden_units:
        x = MaskedLeakyReLU(0.2, dtype=dtype)(layers.Dense(hidden_units, dtype=dtype)(x))
    return keras.Model(images, [features, layers.Dense(1, dtype="float32", name="score")(x)], name=name)


# === Adversarial autoencoder: a discriminator on latent codes ===
def code_discriminator(code_dim, hidden_units=(256, 256), dtype=None, name="code_discriminator"):
    """A fully connected discriminator on codes: code [batch, code_dim] -> one raw logit per code, [batch, 1].

    The regulariser of an adversarial autoencoder (Makhzani et al., 2016): it tells prior samples from
    encoded images, and the encoder learns to make them indistinguishable.

    Args:
        code_dim: width of the codes.
        hidden_units: width of each LeakyReLU(0.2) hidden layer.
        dtype: Keras dtype policy of the hidden layers (the score is float32).
        name: the model's name.

    Example:
    >>> discriminator = code_discriminator(8, hidden_units=(128, 128))
    """
    code = keras.Input(shape=(code_dim,), name="code")
    x = code
    for units in hidden_units:
        x = MaskedLeakyReLU(0.2, dtype=dtype)(layers.Dense(units, dtype=dtype)(x))
    return keras.Model(code, layers.Dense(1, dtype="float32", name="score")(x), name=name)


# === Energy-based model: one scalar energy per image ===
def energy_network(image_shape, filters=(32, 64), hidden_units=128, kernel_size=3, dtype=None, name="energy_network"):
    """An energy network: images -> one scalar energy per image, [batch, 1] (low: like the data).

    Stride-2 convolutions of `filters` channels, a dense layer of `hidden_units`, then a linear energy;
    every hidden layer uses Swish (SiLU, x * sigmoid(x)). The energy-based model's sampler follows dE/dx,
    so the activations are smooth: ReLU's and LeakyReLU's input gradients jump at every kink, which makes
    the Langevin steps noisier. No normalisation layer, so an image's energy never depends on the rest of
    its batch (a sampler chain must not move because of its neighbours).

    Args:
        image_shape: (height, width, channels) of the images; height and width divisible by 2^len(filters).
        filters: channels of each stride-2 convolution, finest first.
        hidden_units: width of the dense Swish layer before the energy (0: none).
        kernel_size: kernel size of the convolutions.
        dtype: Keras dtype policy of the hidden layers (the energy is float32).
        name: the model's name.

    Example:
    >>> network = energy_network((28, 28, 1), filters=(32, 64))
    >>> energies = network(images)  # [batch, 1]  # doctest: +SKIP
    """
    _check_downsampling(image_shape, len(filters))
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for channels in filters:
        x = layers.Conv2D(channels, kernel_size, strides=2, padding="same", activation="silu", dtype=dtype)(x)
    x = layers.Flatten(dtype=dtype)(x)
    if hidden_units:
        x = layers.Dense(hidden_units, activation="silu", dtype=dtype)(x)
    return keras.Model(images, layers.Dense(1, dtype="float32", name="energy")(x), name=name)


# === What a model feeds its networks and needs back ===
class Port(typing.NamedTuple):
    """One input or output of a network, as a model declares it for `check_network`.

    `shape` is the shape of one example, without the batch axis: None in it stands for any size, and
    None for the whole shape for any shape of at least one axis. `dtype` is what the model feeds an
    input (outputs' dtypes are not checked: the models cast them). `alternatives` are other example
    shapes accepted in place of `shape` (a score may be [batch, 1] or [batch]).
    """

    name: str
    shape: typing.Optional[tuple]
    dtype: str = "float32"
    alternatives: tuple = ()

    def describe(self):
        shapes = " or ".join(_shape_text(shape) for shape in (self.shape, *self.alternatives))
        return f"{self.name} {shapes}" + ("" if self.dtype == "float32" else f" {self.dtype}")


class Interface(typing.NamedTuple):
    """What a model calls one of its networks with and what it needs back.

    `inputs` and `outputs` are each one `Port` (one tensor) or a list of them (a list of tensors, in
    that order); `hint` says what to do when a network does not fit.
    """

    inputs: object
    outputs: object
    hint: str = ""


# One raw score per example: what discriminators and critics return.
SCORE = Port("score", (1,), alternatives=((),))


def _shape_text(shape):
    return "(None, ...)" if shape is None else str((None, *shape))


def _describe(ports):
    if isinstance(ports, list):
        return "[" + ", ".join(port.describe() for port in ports) + "]"
    return ports.describe()


def _tensors_text(tensors, several_expected=False):
    if isinstance(tensors, keras.KerasTensor):
        return f"one tensor {tuple(tensors.shape)}" if several_expected else str(tuple(tensors.shape))
    if isinstance(tensors, (list, tuple)):
        count = f"{len(tensors)} tensor" + ("" if len(tensors) == 1 else "s")
        return f"{count} [" + ", ".join(_tensors_text(tensor) for tensor in tensors) + "]"
    if isinstance(tensors, dict):
        return "a dict {" + ", ".join(f"{key!r}: {_tensors_text(value)}" for key, value in tensors.items()) + "}"
    return repr(tensors)


def _fits(tensor, port):
    """Whether a symbolic output `tensor` has one of `port`'s example shapes (unknown sizes pass)."""
    if not isinstance(tensor, keras.KerasTensor):
        return False
    shape = tuple(tensor.shape)
    for wanted in (port.shape, *port.alternatives):
        if wanted is None:
            if len(shape) >= 2:
                return True
        elif len(shape) == len(wanted) + 1 and all(w is None or s is None or w == s for w, s in zip(wanted, shape[1:])):
            return True
    return False


def _takes(declared, fed):
    """Whether a functional network's declared input accepts what the model feeds it: the same sizes
    where both are known, with Keras' adjustment of a trailing axis of 1 (labels [batch] for an
    Input of shape (1,), and back)."""
    declared, fed = tuple(declared.shape), tuple(fed.shape)
    if len(declared) == len(fed) + 1 and declared[-1] == 1:
        declared = declared[:-1]
    elif len(fed) == len(declared) + 1 and fed[-1] == 1:
        fed = fed[:-1]
    return len(declared) == len(fed) and all(d is None or f is None or d == f for d, f in zip(declared, fed))


def check_network(network, role, interface, owner="The model"):
    """Checks that `network` takes what a model feeds it and returns what the model needs back.

    The check is symbolic, with no computation: a functional (or Sequential) network's declared
    inputs are compared with `interface.inputs`, then `network.compute_output_spec` on Keras tensors
    of the inputs' shapes (batch axis None) gives the output structure and shapes, compared with
    `interface.outputs`. Cheap enough for every construction, `from_config` included. An unbuilt
    Sequential network is built for the inputs' shapes first, as its first call would.

    Args:
        network: the Keras model (or layer) to check.
        role: what the model calls it ("encoder", "top_down[0]"), for messages.
        interface: an `Interface`: the `Port`s it is fed and the `Port`s it must return.
        owner: the model, for messages (its class name).

    Returns:
        The network's symbolic outputs (Keras tensors, structured as the network returns them).

    Raises:
        ValueError: `network` is not a Keras layer, or does not take or return what `interface` says;
            the message names the network, what it is fed, what it must return and what it returns.

    Example:
    >>> check_network(conv_decoder((8, 8, 1), 2, (4,)), "decoder", Interface(Port("z", (2,)), Port("logits", (8, 8, 1))))  # doctest: +SKIP
    """
    if not isinstance(network, keras.layers.Layer):
        raise ValueError(f"{owner}'s {role} must be a Keras model (or None for the default), got {network!r}.")
    several_inputs = isinstance(interface.inputs, list)
    ports = interface.inputs if several_inputs else [interface.inputs]
    fed = [keras.KerasTensor((None, *port.shape), dtype=port.dtype, name=port.name) for port in ports]
    wanted = f"{owner}'s {role} must map {_describe(interface.inputs)} to {_describe(interface.outputs)}"
    hint = f" {interface.hint}" if interface.hint else ""

    def failed(error):
        # Whatever a network's own code raises on these inputs, after what was expected of it (without
        # the terminal colours Keras puts in its messages).
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
        return ValueError(f"{wanted}, but calling it on such inputs fails.{hint} The error: {type(error).__name__}: {text}")

    try:
        if isinstance(network, keras.Sequential) and not network.built and len(fed) == 1:
            network.build(fed[0].shape)  # Keras' symbolic output spec of a Sequential needs it built
        declared = getattr(network, "inputs", None)  # a functional network's Input tensors; None otherwise
    except Exception as error:
        raise failed(error) from error
    if declared and (len(declared) != len(fed) or not all(map(_takes, declared, fed))):
        raise ValueError(f"{wanted}, but it takes {_tensors_text(declared[0] if len(declared) == 1 else declared)}.{hint}")
    try:
        outputs = network.compute_output_spec(fed if several_inputs else fed[0])
    except Exception as error:
        raise failed(error) from error
    several_outputs = isinstance(interface.outputs, list)
    expected = interface.outputs if several_outputs else [interface.outputs]
    returned = list(outputs) if several_outputs and isinstance(outputs, (list, tuple)) else [outputs]
    if (several_outputs and not isinstance(outputs, (list, tuple))) or len(returned) != len(expected) or not all(map(_fits, returned, expected)):
        raise ValueError(f"{wanted}, but it outputs {_tensors_text(outputs, several_outputs)}.{hint}")
    return outputs
