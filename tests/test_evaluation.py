"""The IWAE bound for every VAE of the zoo, and `keras-gen evaluate`."""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import cli
from keras_gen import evaluation
from keras_gen.models import GMVAE
from keras_gen.models.base import GenerativeModel
from tests import helpers
from tests import zoo_cases

VAES = ("vae", "cvae", "gmvae", "hvae")


def corner_images(count, seed):
    """Binary 8x8 images with a bright 4x4 block in one of four corners, and labels unrelated to the
    corner: the code has something to carry, so q(z | x) is informative and the bounds differ."""
    rng = np.random.default_rng(seed)
    probabilities = np.full((count, *helpers.IMAGE_SHAPE), 0.05, "float32")
    for index in range(count):
        row, column = divmod(index % 4, 2)
        probabilities[index, 4 * row : 4 * row + 4, 4 * column : 4 * column + 4] = 0.95
    images = (rng.uniform(size=probabilities.shape) < probabilities).astype("float32")
    labels = ((np.arange(count) // 4) % 10).astype("int64")
    return images, labels


@pytest.fixture(scope="module", params=VAES)
def trained_vae(request):
    keras.utils.set_random_seed(0)  # the networks' initial weights, whatever ran before
    model, _ = zoo_cases.TINY_MODELS[request.param]()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    images, labels = corner_images(256, seed=2)
    model.fit(tf.data.Dataset.from_tensor_slices((images, labels)).batch(32), epochs=8, verbose=0)
    return model


def per_image_elbo(model, images, labels, repeats=10):
    """The ELBO of each image from the model's own loss (analytic KL where it has one), averaged over draws."""
    return -np.mean([np.asarray(model.compute_losses(images, labels)["loss"]) for _ in range(repeats)], axis=0)


def mean_and_stderr(values):
    return values.mean(), values.std(ddof=1) / np.sqrt(len(values))


def test_iwae_equals_the_elbo_at_k_1_and_tightens_as_k_grows(trained_vae):
    model = trained_vae
    images, labels = corner_images(256, seed=1)
    elbo = per_image_elbo(model, images, labels)
    repeats = 10
    one = evaluation.importance_weighted_bound(
        model, np.tile(images, [repeats, 1, 1, 1]), np.tile(labels, repeats), num_samples=1, seed=3
    )["iwae"]
    one = one.reshape(repeats, -1).mean(axis=0)
    # Averaging five draws of the k = 10 bound per image keeps its noise below the gain from 10 to 100.
    ten = evaluation.importance_weighted_bound(
        model, np.tile(images, [5, 1, 1, 1]), np.tile(labels, 5), num_samples=10, seed=4
    )["iwae"]
    ten = ten.reshape(5, -1).mean(axis=0)
    hundred = evaluation.importance_weighted_bound(model, images, labels, num_samples=100, chunk_size=30, seed=5)["iwae"]
    # Paired over images, so that the spread between images cancels.
    gap, stderr = mean_and_stderr(one - elbo)
    assert abs(gap) < 4 * stderr + 1e-3, f"k = 1 is the ELBO in expectation: off by {gap:.3f} +- {stderr:.3f}"
    gap, stderr = mean_and_stderr(ten - elbo)
    assert gap > 4 * stderr, f"IWAE (k = 10) must lie above the ELBO: {gap:.3f} +- {stderr:.3f}"
    gain, stderr = mean_and_stderr(hundred - ten)
    assert gain > 2 * stderr, f"k = 100 must be tighter than k = 10: {gain:.3f} +- {stderr:.3f}"


class LogNormalWeights(GenerativeModel):
    """A stand-in whose log importance weights are N(0, 1) draws: E[w] = exp(1/2), so the bound tends to
    1/2 as k grows while the ELBO (the mean log-weight) stays at 0."""

    class Flat:
        def log_prob(self, images):
            return tf.zeros(tf.shape(images)[:1])

    def latent_terms(self, images, labels=None, training=False):
        z = self.normal(tf.shape(images)[:1])
        return z, {"log_ratio": z}

    def likelihood(self, z, labels=None, training=False):
        return self.Flat()


@pytest.mark.parametrize("chunk_size", [1000, 7])
def test_chunks_combine_into_the_log_mean_of_all_weights(chunk_size):
    model = LogNormalWeights(image_shape=helpers.IMAGE_SHAPE, seed=0)
    images = np.zeros((64, *helpers.IMAGE_SHAPE), "float32")
    bounds = evaluation.importance_weighted_bound(model, images, num_samples=1000, chunk_size=chunk_size, seed=1)
    # Per image, the k = 1000 bound has a standard deviation near sqrt((e - 1) / 1000) = 0.04.
    assert bounds["iwae"].mean() == pytest.approx(0.5, abs=0.02)
    assert bounds["elbo"].mean() == pytest.approx(0.0, abs=0.02)


def test_seeded_evaluation_repeats_and_leaves_the_training_noise_alone():
    model, data = zoo_cases.TINY_MODELS["vae"]()
    state = np.asarray(model.seed_generator.state)
    first = evaluation.evaluate_likelihood(model, data, num_samples=5, chunk_size=2, seed=9)
    again = evaluation.evaluate_likelihood(model, data, num_samples=5, chunk_size=2, seed=9)
    np.testing.assert_array_equal(first["per_image_iwae"], again["per_image_iwae"])
    np.testing.assert_array_equal(np.asarray(model.seed_generator.state), state)
    assert first["num_images"] == 32 and first["nll_bound"] == -first["iwae"]
    assert first["nll_bound"] <= first["negative_elbo"]


def test_models_without_a_likelihood_are_refused():
    with pytest.raises(ValueError, match="not a latent-variable model"):
        evaluation.check_latent_variable_model(GenerativeModel())


def test_mixture_components_count_every_image_once():
    model, _ = zoo_cases.TINY_MODELS["gmvae"]()
    images, labels = corner_images(24, seed=0)
    counts = evaluation.mixture_components(model, tf.data.Dataset.from_tensor_slices((images, labels)).batch(10))
    assert counts.shape == (model.num_components, 10)
    np.testing.assert_array_equal(counts.sum(axis=0), np.bincount(labels, minlength=10))


def test_evaluate_command_prints_elbo_iwae_and_mixture_components(tmp_path, capsys):
    helpers.make_fake_source(tmp_path / "idx", seed=0)
    model = GMVAE(image_shape=(28, 28, 1), latent_dim=2, num_components=3, seed=0)
    model.save(tmp_path / "gmvae.keras")
    argv = ["evaluate", str(tmp_path / "gmvae.keras"), "--iwae-k", "3", "--num-images", "5", "--batch-size", "2"]
    argv += ["--data-dir", str(tmp_path / "idx"), "--tfds-dir", str(tmp_path / "tfds")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "5 images, binarised once with seed 0; k = 3 importance samples" in out
    elbo_line = next(line for line in out.splitlines() if line.startswith("ELBO"))
    iwae_line = next(line for line in out.splitlines() if line.startswith("IWAE bound"))
    elbo, iwae = float(elbo_line.split()[1]), float(iwae_line.split()[2])
    assert iwae >= elbo  # from the same draws, log-mean-exp >= mean
    assert f"test NLL <= {-iwae:.2f}" in iwae_line
    table = out.split("Mixture components")[1].splitlines()[2:]
    assert len(table) == 3 and sum(int(line.split()[2]) for line in table) == 5


def test_evaluate_command_explains_bad_arguments(tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "missing.keras")]) == 2
    assert "No checkpoint at" in capsys.readouterr().err
    (tmp_path / "any.keras").write_text("")
    assert cli.main(["evaluate", str(tmp_path / "any.keras"), "--iwae-k", "0"]) == 2
    assert "--iwae-k must be at least 1" in capsys.readouterr().err
