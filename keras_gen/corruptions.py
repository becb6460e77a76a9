"""Input corruptions for denoising autoencoders: pure functions of (images, strength, seed).

Each takes float images, a strength and a stateless seed (int32 [2]) and returns images of the same
shape. The strength means what Vincent et al. (2010) call the corruption level:

- `gaussian`: additive N(0, strength^2) noise on every pixel (not clipped, so its statistics are exact);
- `salt_and_pepper`: each pixel, with probability `strength`, is set to 0 or 1 by a fair coin flip;
- `masking`: each pixel, with probability `strength`, is set to 0.

Example:
>>> noisy = corrupt("masking", images, 0.25, seed=tf.constant([1, 2]))
"""

import keras_gen  # noqa: F401
import tensorflow as tf

from keras_gen import noise

CORRUPTIONS = ("gaussian", "salt_and_pepper", "masking")


def gaussian(images, strength, seed):
    """`images` plus independent Gaussian noise of standard deviation `strength`."""
    return images + strength * noise.normal(tf.shape(images), seed, images.dtype)


def salt_and_pepper(images, strength, seed):
    """`images` with a `strength` fraction of pixels (in expectation) set to 0 or 1, half each."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    hit = noise.uniform(tf.shape(images), seeds[0], images.dtype) < strength
    salt = tf.cast(noise.uniform(tf.shape(images), seeds[1], images.dtype) < 0.5, images.dtype)
    return tf.where(hit, salt, images)


def masking(images, strength, seed):
    """`images` with a `strength` fraction of pixels (in expectation) set to 0."""
    keep = noise.uniform(tf.shape(images), seed, images.dtype) >= strength
    return tf.where(keep, images, tf.zeros_like(images))


def check(kind, strength):
    """Raises a ValueError that says what is valid for an unknown `kind` or an out-of-range `strength`."""
    if kind not in CORRUPTIONS:
        raise ValueError(f"Unknown corruption {kind!r}; expected one of {', '.join(CORRUPTIONS)}.")
    if kind == "gaussian" and not strength >= 0.0:
        raise ValueError(f"The gaussian corruption's strength is a standard deviation, >= 0; got {strength}.")
    if kind != "gaussian" and not 0.0 <= strength <= 1.0:
        raise ValueError(f"The {kind} corruption's strength is a fraction of pixels in [0, 1]; got {strength}.")


def corrupt(kind, images, strength, seed):
    """Applies the corruption named `kind` (one of `CORRUPTIONS`) with `strength` and `seed`."""
    check(kind, strength)
    return {"gaussian": gaussian, "salt_and_pepper": salt_and_pepper, "masking": masking}[kind](images, strength, seed)
