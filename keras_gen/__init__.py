"""keras_gen: generative models that train with `model.fit`, log to TensorBoard and export for TF Serving."""

import os

# keras_gen is built on the TensorFlow backend (tf.data, tf.distribute, TFP, SavedModel). Set it before
# Keras is first imported so that a user's ~/.keras/keras.json cannot pick another backend.
if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    raise ImportError(
        f"keras_gen needs the TensorFlow backend, but KERAS_BACKEND={os.environ['KERAS_BACKEND']!r}. "
        "Unset KERAS_BACKEND or set it to 'tensorflow'."
    )
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


def from_preset(handle):
    """The zoo model of a preset, its class taken from the preset (see `keras_gen.presets`): a shipped name
    (`keras-gen list`), a preset folder, or an hf:// or kaggle:// handle.

    Example:
    >>> model = keras_gen.from_preset("vae_fashion_mnist")  # doctest: +SKIP
    """
    from keras_gen import presets

    return presets.load_preset(handle)
