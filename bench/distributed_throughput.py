"""What distribution costs here: train-step images/s under MirroredStrategy and on two local workers.

    .venv/bin/python bench/distributed_throughput.py [--recipes vae,dcgan] [--steps 20] [--rounds 3] [--mirrored-only]

1. One process, two logical CPU devices: the default strategy (one device) beside `mirrored` over both.
   On a 2-core machine mirrored cannot be faster; the figure says how much slower it is.
2. Two worker processes on localhost (MultiWorkerMirroredStrategy through TF_CONFIG, one thread pool
   each) beside one process alone on the same global batch, and the share of the step spent in the
   all-reduce: the time of one all-reduce of tensors shaped like the model's trainable weights (one
   per optimizer step, as the step makes it) divided by the step time.

Models are built from their recipes at 28x28x1 and trained with `fit` on random batches
(bench/throughput.py's `random_batches`), with a warm-up before timing; medians of `--rounds`.
Nothing here is a test.
"""

import argparse
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def rate(model, dataset, batch_size, steps, rounds):
    from throughput import median_rates

    return median_rates({"one": model}, dataset, batch_size, steps, rounds, warm_up=3)["one"]


def build(name, strategy):
    import keras

    from keras_gen import recipes

    recipe = recipes.load_recipe(name)
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = recipe.build_model()
        recipe.compile_model(model)
    return recipe, model


def all_reduce_seconds(model, strategy, repeats):
    """Median seconds of one all-reduce of gradient-shaped tensors across the strategy's replicas."""
    import tensorflow as tf

    names = model.optimizer_names or ("optimizer",)
    groups = [model.trainable_weights if name == "optimizer" else model.optimizer_variables(name) for name in names]
    shapes = [[tuple(v.shape) for v in group] for group in groups]

    @tf.function
    def reduce():
        def one():
            context = tf.distribute.get_replica_context()
            return [context.all_reduce("SUM", [tf.ones(shape) for shape in group]) for group in shapes]

        return strategy.run(one)

    reduce()
    timed = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, strategy.experimental_local_results(reduce()))
        timed.append(time.perf_counter() - start)
    return statistics.median(timed)


def mirrored_table(names, steps, rounds):
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    from throughput import random_batches

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print("1. One process, two logical CPUs")
    print(f"{'recipe':<10} {'batch':>5} {'default img/s':>14} {'mirrored img/s':>15} {'ratio':>6}")
    for name in names:
        figures = {}
        for label, strategy in (("default", tf.distribute.get_strategy()), ("mirrored", mirrored)):
            recipe, model = build(name, strategy)
            batch = recipe.train["batch_size"]
            figures[label] = rate(model, random_batches(recipe, batch, model), batch, steps, rounds)
        print(f"{name:<10} {batch:>5} {figures['default']:>14.0f} {figures['mirrored']:>15.0f} {figures['mirrored'] / figures['default']:>6.2f}", flush=True)


def worker(index, ports, name, steps, rounds):
    """One process of part 2 (index -1: alone, without TF_CONFIG); prints a JSON line of its figures."""
    if index >= 0:
        cluster = {"worker": [f"localhost:{port}" for port in ports.split(",")]}
        os.environ["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
    import keras_gen  # noqa: F401
    import tensorflow as tf
    from throughput import random_batches

    strategy = tf.distribute.MultiWorkerMirroredStrategy() if index >= 0 else tf.distribute.get_strategy()
    recipe, model = build(name, strategy)
    batch = recipe.train["batch_size"]
    figures = {"rate": rate(model, random_batches(recipe, batch, model), batch, steps, rounds)}
    if index >= 0:
        figures["all_reduce_s"] = all_reduce_seconds(model, strategy, repeats=20)
    print("FIGURES " + json.dumps(figures), flush=True)


def run_workers(name, steps, rounds):
    sockets = [socket.socket() for _ in range(2)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = ",".join(str(sock.getsockname()[1]) for sock in sockets)
    for sock in sockets:
        sock.close()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_NUM_INTEROP_THREADS="1", TF_NUM_INTRAOP_THREADS="1")

    def start(index):
        command = [sys.executable, __file__, "--worker", str(index), "--ports", ports, "--recipes", name, "--steps", str(steps), "--rounds", str(rounds)]
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def figures(process):
        output = process.communicate(timeout=900)[0]
        lines = [line for line in output.splitlines() if line.startswith("FIGURES ")]
        if process.returncode or not lines:
            raise RuntimeError(output[-3000:])
        return json.loads(lines[-1][len("FIGURES "):])

    alone = figures(start(-1))
    processes = [start(0), start(1)]
    pair = [figures(process) for process in processes]
    return alone, pair[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", default="vae,dcgan")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mirrored-only", action="store_true", help="part 1 only (no worker processes)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.recipes.split(",")]
    if args.worker is not None:
        return worker(args.worker, args.ports, names[0], args.steps, args.rounds)
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}; median of {args.rounds} rounds of {args.steps} steps; 28x28x1 random batches")
    if args.mirrored_only:
        mirrored_table(names, args.steps, args.rounds)
        return 0
    # Part 2 runs in child processes; part 1 needs this process's devices split, so it comes last.
    print("2. Two worker processes on localhost (one thread pool each) beside one process alone (same thread pools)")
    print(f"{'recipe':<10} {'alone img/s':>12} {'2 workers img/s':>16} {'ratio':>6} {'all-reduce share':>17}")
    rows = []
    for name in names:
        alone, chief = run_workers(name, args.steps, args.rounds)
        from keras_gen import recipes

        batch = recipes.load_recipe(name).train["batch_size"]
        step_s = batch / chief["rate"]
        rows.append(f"{name:<10} {alone['rate']:>12.0f} {chief['rate']:>16.0f} {chief['rate'] / alone['rate']:>6.2f} {chief['all_reduce_s'] / step_s:>16.0%}")
        print(rows[-1], flush=True)
    mirrored_table(names, args.steps, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
