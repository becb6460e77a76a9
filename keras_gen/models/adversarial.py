"""What the zoo's adversarial models share: a discriminator judged by a pair of GAN loss functions.

GAN (and its variants), the adversarial autoencoder and VAE-GAN each train a discriminator against
something that generates (images, codes, reconstructions). They take the same `loss` option, a name in
`keras_gen.losses.GAN_LOSSES` or a pair of registered (discriminator_loss, generator_loss) functions,
report D the same way and save the loss the same way; this mixin holds that once.
"""

import keras_gen  # noqa: F401
import keras
import tensorflow as tf

from keras_gen import losses


class Adversarial:
    """Mixin for a `GenerativeModel` trained against a discriminator (put it first among the bases).

    Call `set_adversarial_loss(loss)` in the constructor; it sets `loss_name` (None for a pair of
    functions), `d_loss_fn` and `g_loss_fn`. `get_config` then writes `loss` back as it was given.
    """

    def set_adversarial_loss(self, loss):
        """Resolves the `loss` option (`keras_gen.losses.resolve_gan_loss`)."""
        self.loss_name = loss if isinstance(loss, str) else None
        self.d_loss_fn, self.g_loss_fn = losses.resolve_gan_loss(loss)

    def probabilities(self, scores):
        """What `d_real`/`d_fake` report: D = sigmoid(logits) for the cross-entropy losses, else the raw scores."""
        return tf.sigmoid(scores) if self.loss_name in losses.PROBABILITY_GAN_LOSSES else scores

    def get_config(self):
        config = super().get_config()
        config["loss"] = self.loss_name or [keras.saving.get_registered_name(fn) for fn in (self.d_loss_fn, self.g_loss_fn)]
        return config
