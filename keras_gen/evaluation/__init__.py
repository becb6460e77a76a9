"""Evaluation of trained models, one module per concern:

- `likelihood`: the ELBO and the importance-weighted bound (IWAE) of the zoo's VAEs, on the model's own
  dataset (binarised, or dequantised with bits per dimension for continuous decoders);
- `metrics`: pure functions on feature vectors: Fréchet distance, KID, precision/recall, and the
  streaming statistics they read;
- `features`: feature spaces by name: `inception` (standard FID features), `classifier:DIR` (the
  project's classifier trained on any labeled dataset), `fashion_mnist` (the shipped one);
- `sample_quality`: generated images against a reference split of the model's dataset, with reference
  rows and the printed table;
- `client`: one client of a model's serving endpoints, live or exported (`ModelClient`, `Sampler`),
  which `keras_gen.anomaly.AnomalyScorer` uses too.

ROC-AUC and the one-class protocol stay in `keras_gen.anomaly`. The names below are importable from
`keras_gen.evaluation` itself.

Example:
>>> from keras_gen import evaluation
>>> space = evaluation.feature_space("inception", weights="inception_v3_notop.h5")  # doctest: +SKIP
>>> sampler = evaluation.Sampler.load("exports/dcgan_cifar10")
>>> evaluation.SampleQuality(space, dataset=sampler.dataset).evaluate(sampler)  # doctest: +SKIP
"""

from keras_gen.evaluation.client import ClientBuilt
from keras_gen.evaluation.client import ModelClient
from keras_gen.evaluation.client import Sampler
from keras_gen.evaluation.features import FEATURE_SPACES
from keras_gen.evaluation.features import INCEPTION_SIZE
from keras_gen.evaluation.features import INCEPTION_WEIGHTS_NAME
from keras_gen.evaluation.features import FeatureSpace
from keras_gen.evaluation.features import InceptionFeatures
from keras_gen.evaluation.features import classifier_space
from keras_gen.evaluation.features import feature_space
from keras_gen.evaluation.features import inception_weights_path
from keras_gen.evaluation.features import keras_cache_dir
from keras_gen.evaluation.likelihood import DEFAULT_CHUNK_SIZE
from keras_gen.evaluation.likelihood import DEFAULT_NUM_SAMPLES
from keras_gen.evaluation.likelihood import bits_per_dim
from keras_gen.evaluation.likelihood import check_latent_variable_model
from keras_gen.evaluation.likelihood import dequantised_dataset
from keras_gen.evaluation.likelihood import evaluate_likelihood
from keras_gen.evaluation.likelihood import fashion_mnist_test_set
from keras_gen.evaluation.likelihood import importance_weighted_bound
from keras_gen.evaluation.likelihood import likelihood_preprocessing
from keras_gen.evaluation.likelihood import likelihood_test_set
from keras_gen.evaluation.likelihood import log_importance_weights
from keras_gen.evaluation.likelihood import mixture_components
from keras_gen.evaluation.likelihood import seeded_noise
from keras_gen.evaluation.metrics import DEFAULT_METRIC_SAMPLES
from keras_gen.evaluation.metrics import KID_MIN_SUBSET_SIZE
from keras_gen.evaluation.metrics import KID_SUBSET_SIZE
from keras_gen.evaluation.metrics import KID_SUBSETS
from keras_gen.evaluation.metrics import PR_NEIGHBOURS
from keras_gen.evaluation.metrics import FeatureStatistics
from keras_gen.evaluation.metrics import frechet_distance
from keras_gen.evaluation.metrics import frechet_distance_of_vectors
from keras_gen.evaluation.metrics import kernel_inception_distance
from keras_gen.evaluation.metrics import kid_subset_size
from keras_gen.evaluation.metrics import nearest_neighbour_radii
from keras_gen.evaluation.metrics import precision_recall
from keras_gen.evaluation.sample_quality import REFERENCE_SPLITS
from keras_gen.evaluation.sample_quality import SPREAD_FIGURES
from keras_gen.evaluation.sample_quality import SampleQuality
from keras_gen.evaluation.sample_quality import format_quality_table
