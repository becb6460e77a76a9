"""Time and peak memory of scoring generated samples with `--features inception` (Inception-v3 pool
features at 299x299, the FID's): feature extraction of the samples plus FD, KID and precision/recall.

    .venv/bin/python bench/inception_speed.py [--num-samples 10000] [--weights FILE | --random-weights] [--batch-size 50]

The samples come from an untrained `dcgan_cifar10` model (32x32x3; what is timed does not depend on how
good they are), and the reference set is `--num-samples` images of uniform noise at the same size, so
that the benchmark runs offline without CIFAR-10; the reference set's features are timed separately
(the command computes them once per run). `--random-weights` uses a randomly initialised InceptionV3
when Keras' ImageNet weights are not on the machine: the time and memory are those of the real
network, the metric values are meaningless. Peak memory is the process's peak resident set. Feature
extraction is batched (`--batch-size` images of 299x299x3 at a time), so memory does not grow with the
number of samples. Nothing here is a test.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf

from keras_gen import evaluation
from keras_gen import recipes

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from throughput import peak_mib  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-samples", type=int, default=evaluation.DEFAULT_METRIC_SAMPLES)
    parser.add_argument("--weights", help="Inception-v3 (no top) weights file (default: Keras' cache)")
    parser.add_argument("--random-weights", action="store_true", help="a random initialisation (offline; meaningless metric values)")
    parser.add_argument("--batch-size", type=int, default=50, help="images per Inception forward pass")
    args = parser.parse_args(argv)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores, {args.num_samples} samples, batch {args.batch_size}")

    weights = args.weights
    if args.random_weights:
        keras.utils.set_random_seed(0)
        weights = os.path.join(tempfile.mkdtemp(), "random_inception.weights.h5")
        keras.applications.InceptionV3(include_top=False, pooling="avg", weights=None, input_shape=(299, 299, 3)).save_weights(weights)
        print("Random Inception-v3 weights: the time and memory are real, the metric values meaningless.")
    started = time.perf_counter()
    space = evaluation.feature_space("inception", weights=weights, batch_size=args.batch_size)
    load_seconds = time.perf_counter() - started
    reference = np.random.default_rng(0).integers(0, 256, (args.num_samples, 32, 32, 3), dtype=np.uint8)
    started = time.perf_counter()
    quality = evaluation.SampleQuality(space, reference_images=reference, dataset={"source": "uniform noise (benchmark)"})
    reference_seconds = time.perf_counter() - started
    sampler = evaluation.Sampler.from_model(untrained_dcgan(), name="dcgan (untrained)")
    result = quality.evaluate(sampler, num_samples=args.num_samples)

    print(evaluation.format_quality_table({sampler.name: result}))
    print()
    print(f"Features: {space.summary()}")
    print(f"Inception-v3 built and weights loaded: {load_seconds:.1f} s")
    print(f"Reference set ({args.num_samples} images) through Inception-v3: {reference_seconds:.1f} s ({args.num_samples / reference_seconds:.1f} images/s)")
    print(
        f"Scoring {args.num_samples} generated samples (feature extraction + FD, KID, precision/recall): {result['seconds']:.1f} s "
        f"({args.num_samples / result['seconds']:.1f} images/s)"
    )
    print(f"Drawing them from the model (not part of the above): {result['sampling_seconds']:.1f} s")
    print(f"Peak resident memory of the process: {peak_mib():.0f} MiB")
    return 0


def untrained_dcgan():
    """The `dcgan_cifar10` recipe's model at CIFAR-10's 32x32x3 (the data would set the shape in training)."""
    recipe = recipes.load_recipe("dcgan_cifar10")
    return recipe.model_class()(**{**recipe.model_options, "image_shape": [32, 32, 3], "seed": 0})


if __name__ == "__main__":
    sys.exit(main())
