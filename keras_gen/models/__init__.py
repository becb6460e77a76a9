"""The zoo's models. Importing this package registers every model with the registry and Keras."""

from keras_gen.models.base import GenerativeModel
from keras_gen.models.vae import VAE

__all__ = ["GenerativeModel", "VAE"]
