"""Moved: the fit pipeline is `keras_gen.pipelines.fit`, and `train_recipe` (which runs a recipe's own
pipeline) is `keras_gen.pipelines.train_recipe`. This module keeps the old names importable; new code
imports from `keras_gen.pipelines`."""

from keras_gen.pipelines import train_recipe  # noqa: F401
from keras_gen.pipelines.fit import data_classes  # noqa: F401
from keras_gen.pipelines.fit import data_model_options  # noqa: F401
from keras_gen.pipelines.fit import last_good_state  # noqa: F401
from keras_gen.pipelines.fit import load_datasets  # noqa: F401
from keras_gen.pipelines.fit import naming_unreadable_files  # noqa: F401
from keras_gen.pipelines.fit import open_data  # noqa: F401
from keras_gen.pipelines.runs import run_name  # noqa: F401
from keras_gen.pipelines.runs import unique_dir  # noqa: F401
