"""Whether a folder of 100,000 64x64 images streams with bounded memory under `cache="auto"`.

    .venv/bin/python bench/data_memory.py [--images 100000] [--dir /tmp] [--keep]
    .venv/bin/python bench/data_memory.py --quick   # 2,000 images: checks that it runs; no figures
                                                    # (so few images are small enough for "auto" to cache)

Writes `--images` 64x64 RGB PNG files (tinted Fashion-MNIST, bench/synthetic_folder.py: 500 distinct
images, each written under many names) into a new folder under `--dir`, then streams one full epoch of

    data.load_datasets("folder:DIR", batch_size=256, image_size=64, cache="auto")["train"]

(validation_size 5000, the default, or a tenth of the images when fewer than 50,000) in this process, which holds nothing else but TensorFlow, and prints:

- what `cache="auto"` decided: the train split's decoded size against `data.pipeline.CACHE_AUTO_BYTES`
  (256 MiB), and whether the dataset's graph has a cache op;
- the epoch's images/s;
- resident memory: the current RSS before the pipeline is built, the highest RSS sampled every 20 ms
  during the epoch (psutil, or /proc/self/statm), and the process's lifetime peak (`ru_maxrss`) before
  and after, beside what a full in-memory copy would take (train split, and all the images:
  100,000 * 64 * 64 * 3 bytes = 1.2 GB).

The folder is removed at the end unless --keep. Nothing here is a test; it prints figures.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
import time

import keras_gen  # noqa: F401
import tensorflow as tf

from keras_gen import data
from keras_gen.data import pipeline

import synthetic_folder  # bench/synthetic_folder.py, beside this script

IMAGE_SIZE = 64
BATCH_SIZE = 256
MIB = 2**20


# === Memory ===
def current_rss():
    """This process's resident memory in bytes."""
    try:
        import psutil
    except ImportError:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return psutil.Process().memory_info().rss


def lifetime_peak_rss():
    """The process's peak resident memory so far, in bytes (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakSampler:
    """The highest `current_rss()` seen while the `with` block runs, sampled every `interval` seconds."""

    def __init__(self, interval=0.02):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss())
            self._stop.wait(self.interval)

    def __enter__(self):
        self.peak = current_rss()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss())


# === The pipeline ===
def has_cache_op(dataset):
    """Whether the dataset's graph holds a cache op (True/False), or None when it cannot be read."""
    try:
        graph = tf.compat.v1.GraphDef.FromString(dataset._as_serialized_graph().numpy())  # noqa: SLF001  (no public API for this)
    except Exception:  # noqa: BLE001  (a private API: any failure means "cannot tell")
        return None
    return any(node.op.startswith("CacheDataset") for node in graph.node)


def stream_epoch(dataset):
    """(images, seconds) of one pass over `dataset`."""
    images = 0
    started = time.perf_counter()
    for batch in dataset:
        images += int(batch.shape[0])
    return images, time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000, help="PNG files to write")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the folder is made (default: the temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the folder (its path is printed)")
    parser.add_argument("--quick", action="store_true", help="2,000 images: a check that it runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.images = 2_000

    folder = tempfile.mkdtemp(prefix="keras_gen_data_memory_", dir=args.dir)
    try:
        started = time.perf_counter()
        written = synthetic_folder.make_folder(folder, args.images, (IMAGE_SIZE, IMAGE_SIZE), "png")
        print(f"Wrote {args.images} 64x64 PNG files ({written / MIB:.0f} MiB) to {folder} in {time.perf_counter() - started:.0f} s", flush=True)

        before, peak_before = current_rss(), lifetime_peak_rss()
        started = time.perf_counter()
        # load_datasets' default validation_size, 5000, unless that leaves too few images (--quick).
        validation_size = min(5000, args.images // 10)
        splits = data.load_datasets(f"folder:{folder}", batch_size=BATCH_SIZE, image_size=IMAGE_SIZE, validation_size=validation_size, cache="auto")
        train, count = splits["train"], splits["num_train"]
        image_bytes = IMAGE_SIZE * IMAGE_SIZE * 3
        decoded = count * image_bytes
        rule = "caches" if decoded <= pipeline.CACHE_AUTO_BYTES else "streams"
        cached = {True: "has a cache op", False: "has no cache op", None: "could not be inspected"}[has_cache_op(train)]
        print(
            f"load_datasets: {splits['info'].summary()} in {time.perf_counter() - started:.1f} s. cache='auto' {rule} the train split "
            f"({decoded / MIB:.0f} MiB decoded vs CACHE_AUTO_BYTES {pipeline.CACHE_AUTO_BYTES / MIB:.0f} MiB); its graph {cached}",
            flush=True,
        )

        with PeakSampler() as sampler:
            images, seconds = stream_epoch(train)
        after, peak_after = current_rss(), lifetime_peak_rss()
        print(f"One epoch: {images} images in {seconds:.1f} s, {images / seconds:.0f} images/s")
        print(
            f"Resident memory: {before / MIB:.0f} MiB before the pipeline, highest {sampler.peak / MIB:.0f} MiB during the epoch "
            f"(+{(sampler.peak - before) / MIB:.0f} MiB), {after / MIB:.0f} MiB after; lifetime peak (ru_maxrss) "
            f"{peak_before / MIB:.0f} MiB before, {peak_after / MIB:.0f} MiB after"
        )
        print(
            f"A full in-memory copy would take {decoded / MIB:.0f} MiB for the train split, "
            f"{args.images * image_bytes / MIB:.0f} MiB ({args.images * image_bytes / 1e9:.2f} GB) for all {args.images} images"
        )
    finally:
        if args.keep:
            print(f"Kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
