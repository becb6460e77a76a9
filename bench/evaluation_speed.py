"""Time and memory of scoring 10,000 generated samples: feature extraction plus every metric.

    .venv/bin/python bench/evaluation_speed.py [--num-samples 10000] [--export exports/vae]

The samples come from `--export` (a SavedModel with a `sample` signature) or, by default, from an
untrained `vae`-recipe model: what is timed does not depend on how good the samples are. Sampling is
timed separately, since it is the model's cost, not the evaluation's. Peak memory is the process's
peak resident set (TensorFlow, the classifier and the data included). Nothing here is a test.
"""

import argparse
import os
import pathlib
import sys
import time

import keras_gen  # noqa: F401
import keras
import tensorflow as tf

from keras_gen import evaluation
from keras_gen import recipes

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from throughput import peak_mib  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-samples", type=int, default=evaluation.DEFAULT_METRIC_SAMPLES)
    parser.add_argument("--export", help="an export folder with a `sample` signature (default: an untrained vae)")
    args = parser.parse_args(argv)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores, {args.num_samples} samples")

    started = time.perf_counter()
    quality = evaluation.SampleQuality(reference="test")
    setup = time.perf_counter() - started
    if args.export:
        sampler = evaluation.Sampler.from_export(args.export)
    else:
        sampler = evaluation.Sampler.from_model(recipes.load_recipe("vae").build_model(seed=0), name="vae (untrained)")
    result = quality.evaluate(sampler, num_samples=args.num_samples)
    started = time.perf_counter()
    rows = quality.reference_rows(args.num_samples)
    reference_seconds = time.perf_counter() - started

    print(evaluation.format_quality_table({sampler.name: result, **rows}))
    print()
    print(f"Classifier loaded and {len(quality.reference_stats.kept)} real test images embedded: {setup:.1f} s (once per process)")
    print(f"Scoring {args.num_samples} generated samples (feature extraction + FD, KID, precision/recall): {result['seconds']:.1f} s")
    print(f"Drawing them from the model (not part of the above): {result['sampling_seconds']:.1f} s")
    print(f"Both reference rows (real train vs test, uniform noise): {reference_seconds:.1f} s")
    print(f"Peak resident memory of the process: {peak_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
