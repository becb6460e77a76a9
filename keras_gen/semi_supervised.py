"""Moved: the semi-supervised pipeline is `keras_gen.pipelines.semi_supervised`. This module keeps the old
names importable; new code imports from `keras_gen.pipelines.semi_supervised`."""

from keras_gen.pipelines.semi_supervised import MODE_TITLES  # noqa: F401
from keras_gen.pipelines.semi_supervised import MODES  # noqa: F401
from keras_gen.pipelines.semi_supervised import check_propagation_rounds  # noqa: F401
from keras_gen.pipelines.semi_supervised import codes_of  # noqa: F401
from keras_gen.pipelines.semi_supervised import compare_modes  # noqa: F401
from keras_gen.pipelines.semi_supervised import decoder_of  # noqa: F401
from keras_gen.pipelines.semi_supervised import encoder_of  # noqa: F401
from keras_gen.pipelines.semi_supervised import evaluate_accuracy  # noqa: F401
from keras_gen.pipelines.semi_supervised import fit_classifier  # noqa: F401
from keras_gen.pipelines.semi_supervised import format_table  # noqa: F401
from keras_gen.pipelines.semi_supervised import fresh_copy  # noqa: F401
from keras_gen.pipelines.semi_supervised import labeled_splits  # noqa: F401
from keras_gen.pipelines.semi_supervised import load_splits  # noqa: F401
from keras_gen.pipelines.semi_supervised import neighbour_graph  # noqa: F401
from keras_gen.pipelines.semi_supervised import pretrain_autoencoder  # noqa: F401
from keras_gen.pipelines.semi_supervised import pretrain_encoder  # noqa: F401
from keras_gen.pipelines.semi_supervised import propagate_labels  # noqa: F401
from keras_gen.pipelines.semi_supervised import pseudo_labeled_stream  # noqa: F401
from keras_gen.pipelines.semi_supervised import run_recipe  # noqa: F401
from keras_gen.pipelines.semi_supervised import select_per_class  # noqa: F401
from keras_gen.pipelines.semi_supervised import uses_unlabeled_images  # noqa: F401
from keras_gen.pipelines.semi_supervised import weight_copy  # noqa: F401
from keras_gen.pipelines.semi_supervised import with_unlabeled_batches  # noqa: F401
