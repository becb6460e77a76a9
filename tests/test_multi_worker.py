"""Multi-worker training: two worker processes on localhost under MultiWorkerMirroredStrategy.

Keras 3.15 fails a custom `train_step`'s scalar logs on the first multi-worker step;
`keras_gen.models.base.multi_worker_reducible` works around it in one place. These tests train zoo
models on a two-worker cluster and check that Keras still needs the work-around.
"""

import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def train_on_two_workers(model_name, tmp_path):
    """Runs both workers to the end and returns what each wrote."""
    ports = ",".join(map(str, free_ports(2)))
    # One thread pool each: the two processes share this machine's cores.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_NUM_INTEROP_THREADS="1", TF_NUM_INTRAOP_THREADS="1")
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.multi_worker_worker", str(index), ports, model_name, str(tmp_path / f"worker-{index}.npz")],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for index in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=240)[0])
    finally:
        for worker in workers:
            worker.kill()
    for index, (worker, output) in enumerate(zip(workers, outputs)):
        assert worker.returncode == 0, f"worker {index} failed:\n{output[-4000:]}"
    return [dict(np.load(tmp_path / f"worker-{index}.npz")) for index in range(2)]


@pytest.mark.parametrize("model_name", ["vae", "wgan_gp"])
def test_two_workers_train_a_zoo_model_to_the_same_weights(model_name, tmp_path):
    first, second = train_on_two_workers(model_name, tmp_path)
    weights = sorted(key for key in first if not key.startswith("history/") and key != "upstream_fails")
    assert weights and weights == sorted(key for key in second if not key.startswith("history/") and key != "upstream_fails")
    for key in weights:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    losses = [key for key in first if key.startswith("history/") and "loss" in key]
    assert losses
    for key in losses:
        assert first[key].shape == (2,) and np.isfinite(first[key]).all(), key
        np.testing.assert_allclose(first[key], second[key], rtol=1e-6, err_msg=key)
    # When this fails, Keras reduces scalar logs across workers itself: remove `multi_worker_reducible`.
    assert bool(first["upstream_fails"]), "Keras no longer needs keras_gen's multi-worker work-around"
