"""Loss helpers shared by the zoo's training steps: pure functions of tensors."""

import keras_gen  # noqa: F401
import keras
import tensorflow as tf

from keras_gen import noise


def global_batch_mean(per_example):
    """Mean over the global batch of a per-replica vector of per-example losses.

    Under a `tf.distribute` strategy each replica sees `1 / num_replicas` of the batch and the
    optimizer sums gradients across replicas, so each replica divides its sum by the global batch
    size. Without a strategy this is the plain mean.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    local_batch = tf.cast(tf.shape(per_example)[0], per_example.dtype)
    return tf.reduce_sum(per_example) / (local_batch * replicas)


# === Reconstruction losses (autoencoders) ===
RECONSTRUCTION_LOSSES = ("bce", "mse")


def reconstruction_loss(kind, images, logits):
    """Per-image reconstruction loss, averaged over pixels, of decoder `logits` against `images` in [0, 1].

    Args:
        kind: "bce" (binary cross-entropy of sigmoid(logits), also right for grey levels in [0, 1]) or
            "mse" (squared error of sigmoid(logits)).
        images: targets, [batch, height, width, channels].
        logits: the decoder's unbounded output, same shape.
    """
    if kind == "bce":
        per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=logits)
    elif kind == "mse":
        per_pixel = tf.square(tf.sigmoid(logits) - images)
    else:
        raise ValueError(f"Unknown reconstruction loss {kind!r}; expected one of {', '.join(RECONSTRUCTION_LOSSES)}.")
    return tf.reduce_mean(per_pixel, axis=tf.range(1, tf.rank(per_pixel)))


# === GAN losses ===
# Each GAN is a pair of pure functions of the discriminator's raw outputs ("logits" for the
# cross-entropy losses, critic values otherwise), [batch] -> per-example losses [batch], so that a
# training step can scale them to the global batch with `global_batch_mean`. They are registered so a
# model's config names them and a `.keras` file restores them.
def _gan_loss(fn):
    return keras.saving.register_keras_serializable(package="keras_gen")(fn)


@_gan_loss
def minimax_discriminator_loss(real_logits, fake_logits):
    """-log D(x) - log(1 - D(G(z))) with D = sigmoid(logits): the discriminator of Goodfellow et al. (2014)."""
    # softplus(-l) = -log sigmoid(l) and softplus(l) = -log(1 - sigmoid(l)), without overflow.
    return tf.nn.softplus(-real_logits) + tf.nn.softplus(fake_logits)


@_gan_loss
def minimax_generator_loss(fake_logits):
    """log(1 - D(G(z))): the generator of the original minimax game (its gradient vanishes while D wins)."""
    return -tf.nn.softplus(fake_logits)


@_gan_loss
def non_saturating_generator_loss(fake_logits):
    """-log D(G(z)): the same fixed point as the minimax loss, with strong gradients early in training."""
    return tf.nn.softplus(-fake_logits)


@_gan_loss
def wasserstein_critic_loss(real_scores, fake_scores):
    """f(G(z)) - f(x): the critic of WGAN (Arjovsky et al., 2017); needs a Lipschitz constraint, e.g. a gradient penalty."""
    return fake_scores - real_scores


@_gan_loss
def wasserstein_generator_loss(fake_scores):
    """-f(G(z)), for both the Wasserstein and the hinge critic."""
    return -fake_scores


@_gan_loss
def hinge_discriminator_loss(real_scores, fake_scores):
    """max(0, 1 - D(x)) + max(0, 1 + D(G(z))) (Lim & Ye, 2017; used by SAGAN and BigGAN)."""
    return tf.nn.relu(1.0 - real_scores) + tf.nn.relu(1.0 + fake_scores)


@_gan_loss
def least_squares_discriminator_loss(real_scores, fake_scores):
    """((D(x) - 1)^2 + D(G(z))^2) / 2: LSGAN (Mao et al., 2017) with targets 1 for real, 0 for generated."""
    return 0.5 * (tf.square(real_scores - 1.0) + tf.square(fake_scores))


@_gan_loss
def least_squares_generator_loss(fake_scores):
    """(D(G(z)) - 1)^2 / 2: the LSGAN generator pulls its samples' scores to the real target."""
    return 0.5 * tf.square(fake_scores - 1.0)


# Loss name -> (discriminator loss, generator loss).
GAN_LOSSES = {
    "minimax": (minimax_discriminator_loss, minimax_generator_loss),
    "non_saturating": (minimax_discriminator_loss, non_saturating_generator_loss),
    "wasserstein": (wasserstein_critic_loss, wasserstein_generator_loss),
    "hinge": (hinge_discriminator_loss, wasserstein_generator_loss),
    "least_squares": (least_squares_discriminator_loss, least_squares_generator_loss),
}
# The losses whose discriminator outputs are logits of D(x) = P(x is real).
PROBABILITY_GAN_LOSSES = ("minimax", "non_saturating")


def resolve_gan_loss(loss):
    """(discriminator loss, generator loss) from a name in `GAN_LOSSES` or a pair of registered functions (or
    their registered names); a ValueError that says what is accepted otherwise."""
    if isinstance(loss, str):
        if loss not in GAN_LOSSES:
            raise ValueError(f"Unknown GAN loss {loss!r}; expected one of {', '.join(GAN_LOSSES)}, or a pair of functions.")
        return GAN_LOSSES[loss]
    if not isinstance(loss, (tuple, list)) or len(loss) != 2:
        raise ValueError(f"loss must be one of {', '.join(GAN_LOSSES)} or a pair (discriminator_loss, generator_loss), got {loss!r}.")
    pair = []
    for fn in loss:
        name = fn if isinstance(fn, str) else keras.saving.get_registered_name(fn)
        found = keras.saving.get_registered_object(name)
        if found is None or (callable(fn) and found is not fn):
            raise ValueError(
                f"GAN loss {fn!r} is not registered, so a saved model could not find it again: decorate it with "
                "@keras.saving.register_keras_serializable(package=...)."
            )
        pair.append(found)
    return tuple(pair)


def gradient_penalty(critic, real, fake, seed, loss_scale=1.0):
    """Per-example (||grad_x f(x)||_2 - 1)^2 at random points between real and generated images.

    The soft 1-Lipschitz constraint of WGAN-GP (Gulrajani et al., 2017). Call it inside the critic's
    gradient tape: its gradient reaches the critic's weights through the inner gradient.

    Args:
        critic: a callable, images -> scores [batch] or [batch, 1] (close over labels for a conditional critic).
        real: real images [batch, ...].
        fake: generated images, the same shape.
        seed: a shape-[2] integer tensor seeding the interpolation weights (stateless, so that the
            caller's seed generator owns all randomness).
        loss_scale: the factor the critic's output is multiplied by before the inner gradient, which is
            divided by it again before its norm is taken in float32: under float16 mixed precision the
            critic optimizer's dynamic loss scale (`GenerativeModel.loss_scale`), so that small inner
            gradients do not underflow in float16 layers (an overflow makes the penalty, and so the
            critic's gradient, non-finite, and the LossScaleOptimizer skips the step).

    Returns:
        The penalty per example, [batch].
    """
    real = tf.convert_to_tensor(real)
    fake = tf.cast(fake, real.dtype)
    # One mixing weight per example, broadcast over the image axes.
    weight_shape = tf.concat([tf.shape(real)[:1], tf.ones([tf.rank(real) - 1], tf.int32)], axis=0)
    epsilon = noise.uniform(weight_shape, seed, real.dtype)
    between = real + epsilon * (fake - real)
    loss_scale = tf.stop_gradient(tf.cast(loss_scale, tf.float32))
    with tf.GradientTape() as tape:
        tape.watch(between)
        total = tf.reduce_sum(tf.cast(critic(between), tf.float32)) * loss_scale
    gradients = tf.cast(tape.gradient(total, between), tf.float32) / loss_scale
    # A tiny constant keeps the square root differentiable where a gradient vanishes.
    norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=tf.range(1, tf.rank(gradients))) + 1e-12)
    return tf.square(norms - 1.0)
