"""Default networks of the zoo: small convolutional encoders and decoders for [H, W, C] images.

Every model takes its networks as arguments, so these are only the defaults; any Keras model with the
same inputs and outputs can replace them.
"""

import keras_gen  # noqa: F401
import keras
from keras import layers


def _check_downsampling(image_shape, num_strided):
    factor = 2**num_strided
    height, width = image_shape[0], image_shape[1]
    if height % factor or width % factor:
        raise ValueError(
            f"image_shape {tuple(image_shape)} must have height and width divisible by {factor} "
            f"for {num_strided} stride-2 convolutions; pad the images or pass fewer `filters`."
        )
    return height // factor, width // factor


def conv_encoder(image_shape, latent_dim, filters=(32, 64), hidden_units=0, name="encoder"):
    """A Gaussian encoder: images -> [mean, log_variance], each [batch, latent_dim].

    Args:
        image_shape: (height, width, channels) of the input images.
        latent_dim: size of the latent code.
        filters: channels of each stride-2 3x3 convolution.
        hidden_units: width of a dense layer before the two heads (0, the default: the heads read
            the flattened features directly, which is both cheaper and wider than a small hidden layer).
        name: the model's name.

    Example:
    >>> encoder = conv_encoder((28, 28, 1), latent_dim=16)
    """
    _check_downsampling(image_shape, len(filters))
    images = keras.Input(shape=tuple(image_shape), name="images")
    x = images
    for width in filters:
        x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    if hidden_units:
        x = layers.Dense(hidden_units, activation="relu")(x)
    mean = layers.Dense(latent_dim, name="mean")(x)
    log_variance = layers.Dense(latent_dim, name="log_variance")(x)
    return keras.Model(images, [mean, log_variance], name=name)


def conv_decoder(image_shape, latent_dim, filters=(64, 32), hidden_units=0, name="decoder"):
    """A decoder: z [batch, latent_dim] -> logits [batch, height, width, channels].

    The output is unbounded logits; the model's likelihood turns them into pixel probabilities or means.

    Args:
        image_shape: (height, width, channels) of the images to produce.
        latent_dim: size of the latent code.
        filters: channels of each stride-2 3x3 transposed convolution, coarsest first.
        hidden_units: width of the dense layer after the code (0 to skip it).
        name: the model's name.
    """
    height, width = _check_downsampling(image_shape, len(filters))
    z = keras.Input(shape=(latent_dim,), name="z")
    x = z
    if hidden_units:
        x = layers.Dense(hidden_units, activation="relu")(x)
    x = layers.Dense(height * width * filters[0], activation="relu")(x)
    x = layers.Reshape((height, width, filters[0]))(x)
    for channels in filters:
        x = layers.Conv2DTranspose(channels, 3, strides=2, padding="same", activation="relu")(x)
    logits = layers.Conv2DTranspose(image_shape[-1], 3, padding="same", name="logits")(x)
    return keras.Model(z, logits, name=name)
