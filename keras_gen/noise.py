"""Training noise that does not depend on how a batch is split over replicas.

Under a tf.distribute strategy each replica runs the step on its share of the global batch (replica r
takes the r-th block of rows, on one host or across workers). Noise drawn for the local shape would
differ from what one device draws for the whole batch, so a run on two devices would not be the run
on one. Here every draw is made for the global batch from the step's seed (the same on every
replica) and each replica keeps its own rows: example i of a global batch gets the same noise on any
number of devices, and a distributed step equals the single-device step on the same global batch.
The cost is drawing the whole batch's noise on each replica, small beside the networks.

Every replica must hold the same number of rows (full batches, as `fit` gives when the global batch
divides evenly; the recipes' training batches are always full). Outside a strategy these are plain
stateless draws.

Example:
>>> eps = noise.normal([batch, latent_dim], seed)  # inside a train_step, under any strategy
"""

import keras_gen  # noqa: F401
import tensorflow as tf


def replica_rows(draw, rows):
    """This replica's `rows` rows of `draw(n)`, a function returning n rows ([n, ...]) from a fixed seed.

    With R replicas in sync, `draw(R * rows)` is called and replica r keeps rows r * rows to
    (r + 1) * rows - 1; with one replica (or outside any replica context) `draw(rows)` is returned.
    """
    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        return draw(rows)
    rows = tf.cast(rows, tf.int32)
    everything = draw(rows * replica.num_replicas_in_sync)
    start = tf.cast(replica.replica_id_in_sync_group, tf.int32) * rows
    return everything[start : start + rows]


def _draw(sampler, shape, seed, dtype):
    shape = tf.cast(tf.stack(shape) if isinstance(shape, (list, tuple)) else shape, tf.int32)
    rows = replica_rows(lambda count: sampler(tf.concat([[count], shape[1:]], axis=0), seed=seed, dtype=dtype), shape[0])
    return tf.reshape(rows, shape)


def normal(shape, seed, dtype=tf.float32):
    """Standard normal noise of `shape` ([batch, ...]; a list or a shape tensor) from the stateless `seed`."""
    return _draw(tf.random.stateless_normal, shape, seed, dtype)


def uniform(shape, seed, dtype=tf.float32):
    """Uniform [0, 1) noise of `shape` ([batch, ...]) from the stateless `seed`."""
    return _draw(tf.random.stateless_uniform, shape, seed, dtype)


def interleave(tensors):
    """Rows a_0, b_0, ..., a_1, b_1, ... of equally long [batch, ...] tensors a, b, ...: the layout in
    which several batches can share one network call and its per-row noise stays replica-invariant
    (example i's rows form the i-th block, as `replica_rows` assumes; stacking the batches one after
    the other would not)."""
    stacked = tf.stack(tensors, axis=1)
    return tf.reshape(stacked, [-1, *_row_shape(stacked, 2)])


def deinterleave(rows, count):
    """The `count` tensors that `interleave` combined into `rows`."""
    grouped = tf.reshape(rows, [-1, count, *_row_shape(rows, 1)])
    return tf.unstack(grouped, num=count, axis=1)


def _row_shape(tensor, start):
    """The shape of `tensor` from axis `start` on: static sizes where known, so layers keep them."""
    dynamic = tf.shape(tensor)
    return [size if size is not None else dynamic[axis] for axis, size in enumerate(tensor.shape[start:], start=start)]
