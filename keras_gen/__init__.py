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
