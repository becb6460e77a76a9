"""The folder source, `folder:PATH`: image files on disk, decoded by TensorFlow in the input pipeline.

Layout:
- `PATH/<class>/...` : one sub-folder per class (sorted names are the class names; files further down
  count for their class); images directly in PATH are then ignored.
- `PATH/*.png` with no sub-folders: unlabeled images.
- `PATH/train/`, and optionally `PATH/validation/` and `PATH/test/`, each laid out as above: the
  source's own splits (the classes are the class folders of all of them). Without them the pipeline carves the held-out
  splits from all the images with fixed seeds.

PNG, JPEG, BMP and GIF files (first frame) are read with `tf.io.decode_image`. Each file's first and
last bytes are checked when the folder is listed, so that a truncated or mislabelled file stops the run
before anything is written; damage further inside a file shows at its first decode, and
`find_unreadable` then names it. With `skip_corrupt`, every file is decoded once up front and the
unreadable ones are left out (`skipped` lists them).
"""

import keras_gen  # noqa: F401

import os
import pathlib

import numpy as np
import tensorflow as tf

from keras_gen.data.info import DataError
from keras_gen.data.pipeline import Examples

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SPLIT_FOLDERS = ("train", "validation", "test")
_SKIP_HINT = "Remove or replace it, or skip unreadable files with --skip-corrupt ([data] skip_corrupt = true)."


def _is_image(name):
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _image_files(folder):
    """Every image file below `folder`, sorted, hidden files and folders left out."""
    found = []
    for parent, folders, files in os.walk(folder, followlinks=True):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found.extend(os.path.join(parent, name) for name in sorted(files) if _is_image(name))
    return found


def _class_folders(folder):
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))


def _list_split(folder, class_names):
    """(paths, labels or None, ignored top-level files) of one split folder; `class_names` are the
    source's (None: unlabeled)."""
    if class_names is None:
        return _image_files(folder), None, 0
    classes = set(_class_folders(folder))
    paths, labels = [], []
    for label, name in enumerate(class_names):
        if name in classes:
            files = _image_files(os.path.join(folder, name))
            paths.extend(files)
            labels.extend([label] * len(files))
    ignored = sum(1 for entry in os.scandir(folder) if entry.is_file() and _is_image(entry.name))
    return paths, np.asarray(labels, np.int64), ignored


def check_file(path):
    """Why the image file at `path` is unreadable (magic number, truncation), or None if it looks whole."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as file:
            head = file.read(16)
            file.seek(max(0, size - 64))
            tail = file.read()
    except OSError as error:
        return f"cannot be read: {error}"
    if size == 0:
        return "the file is empty"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return None if b"IEND" in tail[-12:] else "truncated PNG (no IEND chunk at the end)"
    if head.startswith(b"\xff\xd8"):
        return None if b"\xff\xd9" in tail else "truncated JPEG (no end-of-image marker)"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return None if b"\x3b" in tail[-16:] else "truncated GIF (no trailer byte)"
    if head.startswith(b"BM") and len(head) >= 6:
        declared = int.from_bytes(head[2:6], "little")
        return None if declared <= size else f"truncated BMP (the header declares {declared} bytes, the file has {size})"
    return f"not a PNG, JPEG, BMP or GIF file (it starts with {head[:8].hex()})"


def decode(path):
    """uint8 [h, w, c] of the image file at `path` (c as stored: 1 to 4; a GIF's first frame)."""
    return tf.io.decode_image(tf.io.read_file(path), channels=0, expand_animations=False, dtype=tf.uint8)


def find_unreadable(paths):
    """The paths among `paths` that TensorFlow cannot decode (each file decoded once, in parallel)."""
    paths = list(paths)
    if not paths:
        return []
    dataset = tf.data.Dataset.from_tensor_slices((np.arange(len(paths), dtype=np.int64), paths))
    dataset = dataset.map(lambda index, path: (index, tf.shape(decode(path))), num_parallel_calls=tf.data.AUTOTUNE)
    readable = np.zeros(len(paths), bool)
    for index, _ in dataset.ignore_errors():
        readable[int(index)] = True
    return [path for path, ok in zip(paths, readable) if not ok]


class FolderSource:
    """A folder of image files as a source of the pipeline (see the module docstring).

    Args:
        path: the folder.
        skip_corrupt: leave out files that cannot be decoded (each file is decoded once up front) instead
            of stopping with an error that names the first.
    """

    def __init__(self, path, skip_corrupt=False):
        self.root = pathlib.Path(path).expanduser()
        self.name = f"folder:{path}"
        if not self.root.is_dir():
            raise DataError(f"{self.name}: {self.root} is not a folder. Pass a folder of images (PNG, JPEG, BMP or GIF), e.g. --data folder:~/faces.")
        split_roots = {split: self.root / split for split in SPLIT_FOLDERS if (self.root / split).is_dir()}
        if split_roots and "train" not in split_roots:
            raise DataError(f"{self.name} has {', '.join(split_roots)} folders but no train/ folder; add train/ or lay the images out without split folders.")
        if not split_roots:
            split_roots = {"train": self.root}
        self.splits = tuple(split_roots)
        class_folders = {split: _class_folders(folder) for split, folder in split_roots.items()}
        labeled = [split for split, names in class_folders.items() if names]
        if labeled and len(labeled) < len(split_roots):
            flat = next(split for split in split_roots if split not in labeled)
            raise DataError(f"{split_roots[flat]} has no class folders, but {split_roots[labeled[0]]} has; lay out every split the same way.")
        # The classes of every split together, sorted: a class may be missing from one split.
        self.class_names = tuple(sorted(set().union(*class_folders.values()))) if labeled else None
        self._listing = {}
        self.ignored_files = 0
        self.skipped = []
        for split, folder in split_roots.items():
            paths, labels, ignored = _list_split(folder, self.class_names)
            if not paths:
                where = f"{folder}" + (f" or its class folders ({', '.join(class_folders[split])})" if class_folders[split] else "")
                raise DataError(f"{self.name}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in {where}. Put the images there, one sub-folder per class if they have labels.")
            self.ignored_files += ignored
            paths, labels = self._checked(paths, labels, skip_corrupt)
            self._listing[split] = (paths, labels)
        self.image_shape = self._first_image_shape()

    def _checked(self, paths, labels, skip_corrupt):
        problems = [(index, path, why) for index, path in enumerate(paths) if (why := check_file(path)) is not None]
        if problems and not skip_corrupt:
            _, path, why = problems[0]
            others = f" ({len(problems) - 1} more files have problems too)" if len(problems) > 1 else ""
            raise DataError(f"{path} is not a readable image: {why}{others}. {_SKIP_HINT}")
        bad = {index for index, _, _ in problems}
        if skip_corrupt:
            candidates = [(index, path) for index, path in enumerate(paths) if index not in bad]
            undecodable = set(find_unreadable([path for _, path in candidates]))
            bad |= {index for index, path in candidates if path in undecodable}
        if not bad:
            return paths, labels
        self.skipped.extend(paths[index] for index in sorted(bad))
        keep = [index for index in range(len(paths)) if index not in bad]
        if not keep:
            raise DataError(f"{self.name}: every image file is unreadable (e.g. {paths[0]}).")
        return [paths[index] for index in keep], None if labels is None else labels[keep]

    def _first_image_shape(self):
        path = self._listing["train"][0][0]
        try:
            shape = tuple(int(d) for d in decode(path).shape)
        except tf.errors.InvalidArgumentError as error:
            raise DataError(f"{path} cannot be decoded ({error.message.splitlines()[0]}). {_SKIP_HINT}") from None
        return shape[0], shape[1], 1 if shape[2] < 3 else 3

    def examples(self, split):
        paths, labels = self._listing[split]
        keys_labels = labels if labels is not None else np.full(len(paths), -1, np.int64)
        keys = tf.data.Dataset.from_tensor_slices((paths, keys_labels))
        return Examples(keys, len(paths), load=decode, labels=keys_labels, small_keys=True, source=self.name)

    def unreadable(self, split):
        """The files of `split` that cannot be decoded (a full pass over them)."""
        return find_unreadable(self._listing[split][0])

    def notes(self):
        """What the listing left out, for the user."""
        notes = []
        if self.ignored_files:
            notes.append(f"{self.ignored_files} images directly in a split folder were ignored (they belong in a class folder)")
        if self.skipped:
            notes.append(f"skipped {len(self.skipped)} unreadable image files (first: {self.skipped[0]})")
        return notes
