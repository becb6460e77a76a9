"""Whether the folder and TFDS input pipelines keep up with the `dcgan` train step at 64x64x3.

    .venv/bin/python bench/data_pipeline.py [--images 10000] [--seconds 20] [--steps 10] [--sources folder_celeba,folder_64,tfds_celeba]
    .venv/bin/python bench/data_pipeline.py --quick   # a few seconds per part: checks that it runs; no figures

For each source it prints:

(a) pipeline: the images per second that `data.load_datasets(...)["train"]` alone delivers in batches
    of 128 ("tanh" preprocessing, as the dcgan recipe asks), counted over `--seconds` of wall time after
    a warm-up of a few batches (the train split is repeated, so epoch ends do not show), with the CPU
    cores it kept busy; `validation_size=0`, as only the train split is read (a folder still has a
    tenth of its files carved out as its test split);
(b) train step: the images per second the `dcgan` train step consumes at 64x64x3: `DCGAN` with the
    recipe's model options (zoo/dcgan.toml) and `image_shape=(64, 64, 3)`, so its default networks have
    four stride-2 stages (generator 512-256-128-64, discriminator 64-128-256-512), compiled with
    `Recipe.compile_model` and the recipe's [compile] table, fitted on in-memory random batches in [-1, 1]
    (measured once, not per source);
(c) their ratio, pipeline / train step (the goal: at least 3x, so that the pipeline, which shares the
    CPU with training, does not starve it);
(d) fed: the same train step fed by the pipeline itself (`fit` on the train split), and how that
    compares with (b). Skip it with --no-fed.

Train-step rates are counted from the end of the `--warmup-steps`-th step (tracing and the pipeline's
start-up excluded) to the end of the last. Sources:

- folder_celeba: `--images` CelebA-sized JPEG files (178 wide, 218 high), fitted as CelebA usually is
  (`center_crop=108`, `image_size=64`: crop, antialiased resize);
- folder_64: `--images` 64x64 PNG files (no fitting, decoding only);
- tfds_celeba: `tfds:celeb_a` under `tfds.testing.mock_data(num_examples=--images)`, whose random
  218x178 images are made by TFDS's mock in Python, not read from TFRecords and decoded from JPEG:
  it measures the pipeline's own work (crop, resize, shuffle, batch) plus the mock's, not a real read.
  The mock's own rate (its examples iterated alone) is printed beside (a): the ceiling of (a) here.

The folders are tinted Fashion-MNIST images resized to the size (bench/synthetic_folder.py) in a
temporary folder, removed at the end unless --keep. The pipeline streams with `cache=False` unless
`--cache` says otherwise: the real CelebA (162,770 training images, 2.0 GB at 64x64x3) is over
`data.pipeline.CACHE_AUTO_BYTES`, so `cache="auto"` streams it, while a benchmark-sized folder would be
cached and its later epochs read from memory. On these shared 2-core machines other jobs change the
rates between the parts; run it on a quiet machine. Nothing here is a test; it prints figures.
"""

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_gen import data
from keras_gen import recipes
from keras_gen.models import DCGAN

import synthetic_folder  # bench/synthetic_folder.py, beside this script

IMAGE_SHAPE = (64, 64, 3)
BATCH_SIZE = 128
# CelebA's aligned images are 178 wide and 218 high; 108x108 is the usual face crop.
CELEBA_SIZE = (218, 178)
CELEBA_CROP = (108, 108)
SOURCES = ("folder_celeba", "folder_64", "tfds_celeba")
CACHE = {"no": False, "auto": "auto", "yes": True}
WARMUP_BATCHES = 3


# === Sources ===
@contextlib.contextmanager
def opened(name, workdir, images):
    """(data source, `load_datasets` options, a line saying what it is) for a source name, with its files
    written (folders) or TFDS's mock active (tfds_celeba) while the `with` block runs."""
    if name == "tfds_celeba":
        with tfds.testing.mock_data(num_examples=images):
            yield "tfds:celeb_a", {"center_crop": CELEBA_CROP}, f"tfds:celeb_a under mock_data, {images} random 218x178 images per split"
        return
    folder = os.path.join(workdir, name)
    started = time.perf_counter()
    if name == "folder_celeba":
        size, image_format, options = CELEBA_SIZE, "jpg", {"center_crop": CELEBA_CROP}
    elif name == "folder_64":
        size, image_format, options = IMAGE_SHAPE[:2], "png", {}
    else:
        raise ValueError(f"Unknown source {name!r}; choose from {', '.join(SOURCES)}.")
    written = synthetic_folder.make_folder(folder, images, size, image_format)
    seconds = time.perf_counter() - started
    about = f"{images} {size[1]}x{size[0]} {image_format.upper()} files, {written / images / 1024:.1f} KiB each (written in {seconds:.0f} s)"
    yield f"folder:{folder}", options, about


def mock_rate(seconds):
    """Images/s of TFDS's mock celeb_a examples alone (no keras_gen pipeline), under an active mock."""
    examples = tfds.builder("celeb_a").as_dataset(split="train", shuffle_files=False).repeat()
    rate, _, _ = pipeline_rate(examples.map(lambda example: example["image"]).batch(BATCH_SIZE), seconds)
    return rate


def load_train(source, options, cache):
    splits = data.load_datasets(
        source, batch_size=BATCH_SIZE, preprocessing="tanh", validation_size=0, image_size=IMAGE_SHAPE[:2], cache=cache, seed=0, **options
    )
    return splits["train"].repeat(), splits["num_train"]


# === (a) The pipeline alone ===
def pipeline_rate(dataset, seconds):
    """(images/s, CPU cores kept busy, seconds to the first batches) of iterating `dataset` for `seconds`."""
    started = time.perf_counter()
    batches = iter(dataset)
    for _ in range(WARMUP_BATCHES):
        next(batches)
    warmup = time.perf_counter() - started
    images = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        images += int(next(batches).shape[0])
    wall = time.perf_counter() - start
    return images / wall, (time.process_time() - cpu_start) / wall, warmup


# === (b) and (d) The dcgan train step ===
class StepClock(keras.callbacks.Callback):
    """The time at the end of every train step."""

    def __init__(self):
        super().__init__()
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def build_dcgan():
    """The `dcgan` recipe's model at 64x64x3, compiled as the recipe compiles it."""
    recipe = recipes.load_recipe("dcgan")
    model = DCGAN(**{**recipe.model_options, "image_shape": IMAGE_SHAPE, "seed": 0})
    recipe.compile_model(model)
    model.jit_compile = recipe.train["jit_compile"]
    return model


def random_batches():
    images = np.random.default_rng(0).uniform(-1.0, 1.0, size=(BATCH_SIZE * 4, *IMAGE_SHAPE)).astype("float32")
    return tf.data.Dataset.from_tensor_slices(images).batch(BATCH_SIZE, drop_remainder=True).repeat().prefetch(4)


def train_rate(model, dataset, warmup_steps, steps):
    """Images/s of `fit` on `dataset` over `steps` steps, counted after `warmup_steps` steps."""
    clock = StepClock()
    model.fit(dataset, epochs=1, steps_per_epoch=warmup_steps + steps, callbacks=[clock], shuffle=False, verbose=0)
    return BATCH_SIZE * steps / (clock.ends[-1] - clock.ends[warmup_steps - 1])


# === Report ===
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000, help="images per source (files written, or mock examples per split)")
    parser.add_argument("--seconds", type=float, default=20.0, help="wall time the pipeline alone is iterated for")
    parser.add_argument("--steps", type=int, default=10, help="timed train steps (batch 128)")
    parser.add_argument("--warmup-steps", type=int, default=2, help="train steps before the timing starts (at least 1)")
    parser.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated, from {', '.join(SOURCES)}")
    parser.add_argument("--cache", choices=tuple(CACHE), default="no", help="load_datasets' cache: no (default; see the docstring), auto or yes")
    parser.add_argument("--no-fed", action="store_true", help="skip (d), the train step fed by the pipeline")
    parser.add_argument("--keep", action="store_true", help="keep the folders written (their path is printed)")
    parser.add_argument("--quick", action="store_true", help="tiny settings (300 images, 2 s, 1 + 1 steps): a check that it runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.seconds, args.steps, args.warmup_steps = 300, 2.0, 1, 1
    if args.warmup_steps < 1 or args.steps < 1:
        parser.error("--steps and --warmup-steps must be at least 1.")
    names = [name.strip() for name in args.sources.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SOURCES))
    if unknown:
        parser.error(f"unknown sources {unknown}; choose from {', '.join(SOURCES)}.")

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPU cores; batch {BATCH_SIZE}, {'x'.join(map(str, IMAGE_SHAPE))}")
    model = build_dcgan()
    generator, discriminator = model.generator_widths, model.discriminator_widths
    step = train_rate(model, random_batches(), args.warmup_steps, args.steps)
    print(
        f"(b) dcgan train step (generator {'-'.join(map(str, generator))}, discriminator {'-'.join(map(str, discriminator))}), "
        f"in-memory batches: {step:7.1f} images/s ({args.steps} timed steps after {args.warmup_steps})",
        flush=True,
    )

    workdir = tempfile.mkdtemp(prefix="keras_gen_data_pipeline_")
    try:
        for name in names:
            with opened(name, workdir, args.images) as (source, options, about):
                print(f"{name}: {about}; cache={CACHE[args.cache]!r}", flush=True)
                started = time.perf_counter()
                dataset, num_train = load_train(source, options, CACHE[args.cache])
                loaded = time.perf_counter() - started
                rate, cores, warmup = pipeline_rate(dataset, args.seconds)
                print(
                    f"  (a) pipeline alone: {rate:7.1f} images/s over {args.seconds:.0f} s, {cores:.1f} cores busy "
                    f"({num_train} training images; load_datasets {loaded:.1f} s, first {WARMUP_BATCHES} batches {warmup:.1f} s)"
                )
                if name == "tfds_celeba":
                    print(f"      TFDS's mock alone (its examples, batched, no keras_gen pipeline): {mock_rate(args.seconds):7.1f} images/s, the ceiling of (a) here")
                goal = "meets" if rate >= 3 * step else "misses"
                print(f"  (c) pipeline / train step: {rate / step:5.1f}x ({goal} the goal of 3x)", flush=True)
                if not args.no_fed:
                    fed = train_rate(model, dataset, args.warmup_steps, args.steps)
                    print(f"  (d) train step fed by this pipeline: {fed:7.1f} images/s ({fed / step:.2f}x the in-memory rate)", flush=True)
    finally:
        if args.keep:
            print(f"Kept the folders under {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
