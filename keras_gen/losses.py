"""Loss helpers shared by the zoo's training steps: pure functions of tensors."""

import keras_gen  # noqa: F401
import tensorflow as tf


def global_batch_mean(per_example):
    """Mean over the global batch of a per-replica vector of per-example losses.

    Under a `tf.distribute` strategy each replica sees `1 / num_replicas` of the batch and the
    optimizer sums gradients across replicas, so each replica divides its sum by the global batch
    size. Without a strategy this is the plain mean.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    local_batch = tf.cast(tf.shape(per_example)[0], per_example.dtype)
    return tf.reduce_sum(per_example) / (local_batch * replicas)
