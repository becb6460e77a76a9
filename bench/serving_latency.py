"""Serving latency of the `vae`, `dcgan` and `cgan` exports beside Keras `predict_on_batch` on the live model.

    .venv/bin/python bench/serving_latency.py [--recipes vae dcgan cgan] [--batch-sizes 1 8 64] [--repeats 200] [--rounds 10]

Each recipe's model (its sizes, untrained: latency does not depend on the weights) is exported with
`keras_gen.export`; a separate Python that imports only TensorFlow loads the SavedModel and times every
signature (checks included, as TF Serving runs them) at each batch size. This process then times the
same work on the live model: each endpoint wrapped as a Keras model and called with `predict_on_batch`.
Both use the same inputs (`keras_gen.serving.example_inputs`), call once per batch size before timing
(tracing, as TF Serving's warm-up does), then `--repeats` calls each, in `--rounds` alternations (so
load from other processes falls on both alike); p50 and p99 are in milliseconds, and
the ratio is export p50 / Keras p50 (the goal is at most 1.0). Nothing here is a test; it prints figures.
`keras-gen serving-config --batching` measures the same kind of curve to size the batching parameters.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import textwrap
import time

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf

from keras_gen import export
from keras_gen import recipes
from keras_gen import serving

# Runs in a fresh Python: TensorFlow only, as in TF Serving. Reads {path, cases: [[signature, {input:
# list}]]}, calls each case once (tracing), prints "ready", then answers each stdin line "CASE REPEATS"
# with a JSON list of that many call times in seconds.
TF_ONLY_TIMER = textwrap.dedent(
    """
    import json, sys, time
    import tensorflow as tf
    job = json.load(open(sys.argv[1]))
    loaded = tf.saved_model.load(job["path"])
    calls = []
    for signature, inputs in job["cases"]:
        function = loaded.signatures[signature]
        specs = function.structured_input_signature[1]
        values = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()}
        {k: v.numpy() for k, v in function(**values).items()}
        calls.append((function, values))
    # (TensorFlow's own import puts a lazy `keras` entry into sys.modules, so that is not checked.)
    assert "keras_gen" not in sys.modules and "tensorflow_probability" not in sys.modules, "the timer must import TensorFlow only"
    print("ready", flush=True)
    for line in sys.stdin:
        case, repeats = map(int, line.split())
        function, values = calls[case]
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            {k: v.numpy() for k, v in function(**values).items()}
            times.append(time.perf_counter() - started)
        print(json.dumps(times), flush=True)
    """
)


class EndpointModel(keras.Model):
    """One endpoint of a zoo model as a Keras model, so that `predict_on_batch` runs it."""

    def __init__(self, endpoint, **kwargs):
        super().__init__(**kwargs)
        self.endpoint = endpoint

    def call(self, inputs):
        return self.endpoint.fn(**inputs)


def percentiles(times):
    milliseconds = np.asarray(times) * 1e3
    return float(np.percentile(milliseconds, 50)), float(np.percentile(milliseconds, 99))


class KerasTimer:
    """Times one endpoint of the live model through `predict_on_batch` (traced on construction)."""

    def __init__(self, endpoint, values):
        self.model, self.values = EndpointModel(endpoint), values
        self.model.predict_on_batch(values)

    def __call__(self, repeats):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            self.model.predict_on_batch(self.values)
            times.append(time.perf_counter() - started)
        return times


def measure(recipe_name, batch_sizes, repeats, rounds, workdir):
    """Rows (model, signature, batch, export p50/p99, Keras p50/p99). The two are timed in alternating
    rounds of repeats / rounds calls, so that load from other processes falls on both alike."""
    model = recipes.load_recipe(recipe_name).build_model()
    endpoints = {endpoint.name: endpoint for endpoint in model.serving_endpoints()}
    path = export.export_model(model, workdir / "exports", model_name=recipe_name)
    num_classes = getattr(model, "num_classes", None) or None
    cases = [
        (name, batch, serving.example_inputs(serving.endpoint_inputs(endpoint), batch, seed=batch, num_classes=num_classes))
        for name, endpoint in endpoints.items()
        for batch in batch_sizes
    ]
    job = workdir / f"{recipe_name}-job.json"
    job.write_text(json.dumps({"path": str(path), "cases": [[name, {k: v.tolist() for k, v in values.items()}] for name, _, values in cases]}))
    script = workdir / "tf_only_timer.py"
    script.write_text(TF_ONLY_TIMER)
    timer = subprocess.Popen(
        [sys.executable, str(script), str(job)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    )
    try:
        assert timer.stdout.readline().strip() == "ready", "the TensorFlow-only timer did not start"
        rows = []
        for index, (name, batch, values) in enumerate(cases):
            keras_timer = KerasTimer(endpoints[name], values)
            served, live = [], []
            for _ in range(rounds):
                timer.stdin.write(f"{index} {max(1, repeats // rounds)}\n")
                timer.stdin.flush()
                served += json.loads(timer.stdout.readline())
                live += keras_timer(max(1, repeats // rounds))
            rows.append((recipe_name, name, batch, percentiles(served), percentiles(live)))
        return rows
    finally:
        timer.stdin.close()
        timer.wait(timeout=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["vae", "dcgan", "cgan"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 64])
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per signature and batch size, each way")
    parser.add_argument("--rounds", type=int, default=10, help="alternations between the export and Keras")
    args = parser.parse_args()
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, devices: {[d.name for d in tf.config.list_physical_devices()]}")
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for recipe_name in args.recipes:
            rows += measure(recipe_name, args.batch_sizes, args.repeats, args.rounds, pathlib.Path(workdir))
    print()
    print("| model | signature | batch | export p50 / p99 ms | Keras predict_on_batch p50 / p99 ms | export / Keras (p50) |")
    print("|---|---|---|---|---|---|")
    for recipe_name, name, batch, (served_p50, served_p99), (keras_p50, keras_p99) in rows:
        print(f"| {recipe_name} | {name} | {batch} | {served_p50:.2f} / {served_p99:.2f} | {keras_p50:.2f} / {keras_p99:.2f} | {served_p50 / keras_p50:.2f}x |")
    worst = max(rows, key=lambda row: row[3][0] / row[4][0])
    print()
    print(f"Slowest export relative to Keras: {worst[0]} {worst[1]} at batch {worst[2]}, {worst[3][0] / worst[4][0]:.2f}x (goal: at most 1.0x everywhere).")


if __name__ == "__main__":
    main()
