"""keras_gen's data layer: sources (Fashion-MNIST, TensorFlow Datasets, folders of images), one input
pipeline for all of them, and the descriptor (`DatasetInfo`) that travels with a prepared dataset.

Example:

>>> from keras_gen import data
>>> splits = data.load_datasets("folder:~/faces", batch_size=64, image_size=(64, 64), preprocessing="tanh")
>>> splits["info"].image_shape
(64, 64, 3)
>>> model.fit(splits["train"], validation_data=splits["validation"], epochs=10)
"""

from keras_gen.data.info import DataError
from keras_gen.data.info import DatasetInfo
from keras_gen.data.info import check_classes
from keras_gen.data.pipeline import PREPROCESSING
from keras_gen.data.pipeline import NUM_PREVIEW_IMAGES
from keras_gen.data.pipeline import NON_FINITE_PIXELS
from keras_gen.data.pipeline import Examples
from keras_gen.data.pipeline import fit_image
from keras_gen.data.pipeline import keep_classes
from keras_gen.data.pipeline import make_dataset
from keras_gen.data.pipeline import preprocess
from keras_gen.data.pipeline import split_train_validation
from keras_gen.data.pipeline import stream_dataset
from keras_gen.data.sources import SOURCES
from keras_gen.data.sources import check_source_name
from keras_gen.data.sources import load_datasets
from keras_gen.data.sources import load_split_arrays
from keras_gen.data.sources import open_source
from keras_gen.data.sources import target_shape
from keras_gen.data.fashion_mnist import CLASS_NAMES
from keras_gen.data.fashion_mnist import DEFAULT_SOURCE_DIR
from keras_gen.data.fashion_mnist import SOURCE_DIR_ENV
from keras_gen.data.fashion_mnist import SOURCE_FILES
from keras_gen.data.fashion_mnist import FashionMnistIdx
from keras_gen.data.fashion_mnist import find_source_dir
from keras_gen.data.fashion_mnist import load_fashion_mnist
from keras_gen.data.fashion_mnist import read_idx
from keras_gen.data.record import RECORD_NAME
from keras_gen.data.record import dataset_record
from keras_gen.data.record import load_record_split
from keras_gen.data.record import read_record
from keras_gen.data.record import record_for_source
from keras_gen.data.record import write_record


def fashion_mnist_datasets(*, batch_size, source_dir=None, data_dir=None, **options):
    """Fashion-MNIST as ready-to-fit datasets: `load_datasets("fashion_mnist", ...)`, kept for its users."""
    return load_datasets("fashion_mnist", batch_size=batch_size, source_dir=source_dir, data_dir=data_dir, **options)
