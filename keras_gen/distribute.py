"""Choosing a `tf.distribute` strategy for a recipe, and what each worker of a cluster writes.

`make_strategy(name)` builds the strategy a recipe's `[train] strategy` (or `--strategy`) names:

- "auto": `MultiWorkerMirroredStrategy` when `TF_CONFIG` names a cluster of more than one task,
  `MirroredStrategy` when more than one GPU is visible, otherwise TensorFlow's default strategy;
- "default": TensorFlow's default strategy (one device, no distribution);
- "one_device": `OneDeviceStrategy` on the first GPU, or the CPU;
- "mirrored": `MirroredStrategy` over this host's GPUs (or its CPU);
- "multi_worker": `MultiWorkerMirroredStrategy` over the cluster in `TF_CONFIG`;
- "tpu": `TPUStrategy` on the TPU that `TPUClusterResolver` finds.

A multi-worker strategy must exist before TensorFlow runs anything, so a recipe makes it first.
In a cluster only the chief (task "chief", or worker 0 when there is none) writes TensorBoard logs,
checkpoints and exports; the other workers write theirs to a temporary folder that is removed
(`Role.scratch`), and each worker keeps its own resume state (`Role.resume_dir`), so that all of them
resume together after a restart.
"""

import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import tempfile

import keras_gen  # noqa: F401
import tensorflow as tf

from keras_gen.models.base import in_multi_worker_mode

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")


def cluster_size():
    """How many tasks `TF_CONFIG` names (0 when it is not set)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    return sum(len(tasks) for tasks in config.get("cluster", {}).values())


def make_strategy(name="auto"):
    """The `tf.distribute.Strategy` that `name` (one of `STRATEGIES`) stands for; see the module docstring."""
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")
    if name == "auto":
        if cluster_size() > 1:
            name = "multi_worker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if cluster_size() < 1:
            raise ValueError(
                "--strategy multi_worker needs TF_CONFIG naming the cluster and this task, e.g. "
                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}.'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as error:
        raise ValueError(f"--strategy tpu found no TPU ({error}); run on a TPU host or choose another strategy.") from None
    return tf.distribute.TPUStrategy(resolver)


def describe(strategy, batch_size):
    """One line: the strategy, its replicas and the global and per-replica batch."""
    replicas = strategy.num_replicas_in_sync
    # MultiWorkerMirroredStrategy's class is called CollectiveAllReduceStrategy.
    name = "MultiWorkerMirroredStrategy" if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) else type(strategy).__name__
    workers = f", {cluster_size()} workers" if in_multi_worker_mode(strategy) else ""
    return (
        f"Strategy: {name}, {replicas} replica(s){workers}; global batch {batch_size}, "
        f"{batch_size / replicas:g} per replica"
    )


@dataclasses.dataclass
class Role:
    """This process's part in a (possibly one-process) training run."""

    chief: bool
    index: int

    def resume_dir(self, backup_dir):
        """Where this worker keeps its resume state: `backup_dir` for the chief, a sibling per worker else."""
        backup_dir = pathlib.Path(backup_dir)
        return backup_dir if self.chief else backup_dir.with_name(f"{backup_dir.name}-worker-{self.index}")

    @contextlib.contextmanager
    def scratch(self, *folders):
        """Yields `folders` for the chief; for another worker, as many fresh temporary folders, removed after."""
        if self.chief:
            yield folders
            return
        temporary = pathlib.Path(tempfile.mkdtemp(prefix=f"keras_gen-worker-{self.index}-"))
        try:
            yield tuple(temporary / str(number) for number in range(len(folders)))
        finally:
            shutil.rmtree(temporary, ignore_errors=True)


def role(strategy):
    """This process's `Role` under `strategy`: the chief unless it is a non-chief task of a cluster."""
    if not in_multi_worker_mode(strategy):
        return Role(chief=True, index=0)
    resolver = strategy.cluster_resolver
    index = int(resolver.task_id or 0)
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    chief = resolver.task_type == "chief" or (not has_chief and resolver.task_type == "worker" and index == 0)
    return Role(chief=chief, index=index)


def shard(dataset, strategy):
    """`dataset` with the sharding that is right for every source under a multi-worker strategy: by data
    (each worker reads the whole pipeline and keeps its share of every global batch), which works for
    in-memory arrays, folders and TFDS's few record files alike; by file would need at least one file
    per worker. Elsewhere `dataset` is returned unchanged."""
    if not in_multi_worker_mode(strategy):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def barrier(strategy):
    """Waits until every worker gets here (a tiny all-reduce); nothing to wait for in one process."""
    if in_multi_worker_mode(strategy):
        tf.function(lambda: strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None))()


def agreed_epoch(strategy, finished):
    """The fewest `finished` epochs of any worker (this process's own count outside a cluster): after a
    kill, workers' resume states may be an epoch apart, and all must resume from the same one."""
    if not in_multi_worker_mode(strategy):
        return finished

    @tf.function
    def fewest():
        counts = strategy.run(lambda: tf.constant([finished], tf.int64))
        return tf.reduce_min(strategy.gather(counts, axis=0))

    return int(fewest())
