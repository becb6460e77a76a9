"""What travels with a prepared dataset: its descriptor (`DatasetInfo`) and the data layer's error."""

import contextlib
import dataclasses
import logging

import numpy as np


class DataError(ValueError):
    """A problem with the training data: missing or corrupt files, bad options, or arrays of the wrong shape."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A prepared dataset as recipes, training, callbacks, evaluation and exports see it.

    Args:
        name: the source as the user spelled it, e.g. "fashion_mnist", "tfds:cifar10", "folder:/data/faces".
        image_shape: (height, width, channels) of every image the pipeline yields.
        class_names: one name per class index; None for an unlabeled source.
        split_sizes: images per split ("train", "validation", "test") after class filtering.

    Example:
    >>> info = DatasetInfo("tfds:cifar10", (32, 32, 3), ("airplane", ...), {"train": 45000, ...})
    >>> info.num_classes, info.labeled
    (10, True)
    """

    name: str
    image_shape: tuple
    class_names: tuple = None
    split_sizes: dict = dataclasses.field(default_factory=dict)

    @property
    def labeled(self):
        return self.class_names is not None

    @property
    def num_classes(self):
        """The number of classes, or None for an unlabeled source."""
        return None if self.class_names is None else len(self.class_names)

    def class_name(self, index):
        return self.class_names[index] if self.labeled and 0 <= index < len(self.class_names) else str(index)

    def summary(self):
        """One line for the user: name, image shape, split sizes and classes."""
        sizes = ", ".join(f"{split} {count}" for split, count in sorted(self.split_sizes.items(), key=lambda item: ("train", "validation", "test").index(item[0])))
        labels = f"{self.num_classes} classes" if self.labeled else "unlabeled"
        return f"{self.name}: {'x'.join(map(str, self.image_shape))} images ({sizes}), {labels}"

    def to_dict(self):
        return {
            "name": self.name,
            "image_shape": list(self.image_shape),
            "class_names": None if self.class_names is None else list(self.class_names),
            "split_sizes": dict(self.split_sizes),
        }

    @classmethod
    def from_dict(cls, config):
        names = config.get("class_names")
        return cls(config["name"], tuple(config["image_shape"]), None if names is None else tuple(names), dict(config.get("split_sizes", {})))


def check_classes(classes, class_names):
    """`classes` as a sorted tuple of distinct class indices of `class_names`; a DataError otherwise.

    Args:
        classes: an index or a list of indices.
        class_names: the dataset's class names (None: the dataset is unlabeled, so no class can be kept).
    """
    if class_names is None:
        raise DataError(f"classes {classes!r} were asked for, but the dataset has no labels; remove `classes` or use a labeled source.")
    if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
        classes = [classes]
    try:
        values = list(classes)
    except TypeError:
        values = None
    valid = values and all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in values)
    if not valid or not all(0 <= c < len(class_names) for c in values):
        listed = ", ".join(f"{i} {name}" for i, name in enumerate(class_names[:20]))
        more = f", ... ({len(class_names)} in all)" if len(class_names) > 20 else ""
        raise DataError(f"classes must be a non-empty list of class indices 0..{len(class_names) - 1} ({listed}{more}), got {classes!r}.")
    return tuple(sorted(set(int(c) for c in values)))


@contextlib.contextmanager
def quiet_absl():
    """TFDS warns through absl about every version folder it looks for and does not find (an unprepared
    dataset, or the metadata-only datasets of `tfds.testing.mock_data`); keras_gen says itself what is missing."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
