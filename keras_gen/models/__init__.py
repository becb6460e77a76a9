"""The zoo's models. Importing this package registers every model with the registry and Keras."""

from keras_gen.models.base import GenerativeModel
from keras_gen.models.vae import VAE
from keras_gen.models.cvae import CVAE
from keras_gen.models.gmvae import GMVAE
from keras_gen.models.hvae import HVAE
from keras_gen.models.autoencoder import Autoencoder
from keras_gen.models.autoencoder import DenoisingAutoencoder
from keras_gen.models.classifier import SemiSupervisedClassifier
from keras_gen.models.gan import CGAN
from keras_gen.models.gan import DCGAN
from keras_gen.models.gan import GAN
from keras_gen.models.gan import WGANGP
from keras_gen.models.aae import AAE
from keras_gen.models.vae_gan import VAEGAN
from keras_gen.models.ebm import EBM

__all__ = ["GenerativeModel", "VAE", "CVAE", "GMVAE", "HVAE", "Autoencoder", "DenoisingAutoencoder", "SemiSupervisedClassifier"]
__all__ += ["GAN", "DCGAN", "WGANGP", "CGAN"]
__all__ += ["VAEGAN"]
__all__ += ["AAE"]
__all__ += ["EBM"]
