"""Test set-up: two logical CPU devices (for tf.distribute tests) and the zoo's tiny test models."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras_gen  # noqa: E402,F401
import tensorflow as tf  # noqa: E402

# Must happen before TensorFlow initialises its devices, i.e. before any test runs an op. Under
# pytest-xdist (setup.cfg's `-n`) every worker is its own process and runs this for itself.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(_cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
# On a GPU machine the xdist workers share the GPUs: each takes memory as it needs it, not all at once.
for _gpu in tf.config.list_physical_devices("GPU"):
    tf.config.experimental.set_memory_growth(_gpu, True)


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def two_cpu_strategy():
    """One MirroredStrategy over the two logical CPUs for the whole session: strategies created one
    after another in a process can hand out clashing collective-op keys ("Shape mismatch in the
    collective instance"), so every distributed test shares this one."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture
def eager_steps(monkeypatch):
    """Every zoo model compiled during the test runs its steps eagerly (`run_eagerly=True` unless the
    compile call says otherwise), for the pipeline tests whose subject is what a run writes, resumes or
    refuses: their few steps take a fraction of the seconds that tracing each model's steps takes. Each
    zoo model's traced step is checked in tests/test_zoo.py and tests/test_distributed_zoo.py, and the
    `keras-gen train` subprocess tests run the pipelines traced, as users do."""
    from keras_gen.models.base import GenerativeModel

    compile_traced = GenerativeModel.compile

    def compile_eagerly(self, *args, **kwargs):
        kwargs.setdefault("run_eagerly", True)
        compile_traced(self, *args, **kwargs)

    monkeypatch.setattr(GenerativeModel, "compile", compile_eagerly)
