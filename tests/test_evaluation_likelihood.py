"""keras_gen.evaluation.likelihood: the IWAE bound for every VAE of the zoo, on any dataset, and `keras-gen evaluate likelihood`."""

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import cli
from keras_gen import evaluation
from keras_gen.models import GMVAE
from keras_gen.models import VAE
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


# === Any dataset: the checkpoint's record, dequantisation and bits per dimension ===
def test_dequantisation_fills_each_pixel_bin_and_bits_per_dim_of_a_uniform_density_is_eight():
    images = np.array([[[[0], [255]], [[17], [128]]]] * 3, np.uint8)  # [3, 2, 2, 1]
    batches = list(evaluation.dequantised_dataset(images, np.zeros(3), "scale", batch_size=2, seed=4))
    values = np.concatenate([x.numpy() for x, _ in batches])
    assert np.all(values >= images / 256.0) and np.all(values < (images + 1.0) / 256.0)
    assert not np.allclose(values[0], values[1]), "each image draws its own noise"
    again = np.concatenate([x.numpy() for x, _ in evaluation.dequantised_dataset(images, np.zeros(3), "scale", batch_size=3, seed=4)])
    np.testing.assert_array_equal(values, again)
    tanh = np.concatenate([x.numpy() for x, _ in evaluation.dequantised_dataset(images, np.zeros(3), "tanh", batch_size=3, seed=4)])
    np.testing.assert_allclose(tanh, 2.0 * values - 1.0, atol=1e-6)
    # A uniform density on the data range spends exactly 8 bits on each 8-bit value.
    assert evaluation.bits_per_dim(0.0, 100, "scale") == pytest.approx(8.0)
    assert evaluation.bits_per_dim(100 * np.log(2.0), 100, "tanh") == pytest.approx(8.0)


def test_the_recorded_fashion_mnist_test_set_is_the_one_scored_before(tmp_path):
    from keras_gen import data

    helpers.make_fake_source(tmp_path / "idx", seed=0)
    model = VAE(image_shape=(28, 28, 1), latent_dim=2, seed=0)
    where = {"source_dir": str(tmp_path / "idx"), "data_dir": str(tmp_path / "tfds")}
    before = evaluation.fashion_mnist_test_set("binarize", batch_size=4, num_images=7, seed=3, **where)
    now, how = evaluation.likelihood_test_set(model, data.record_for_source("fashion_mnist", **where), batch_size=4, num_images=7, seed=3)
    assert how == "binarised once with seed 3"
    for (images_before, labels_before), (images_now, labels_now) in zip(before, now, strict=True):
        np.testing.assert_array_equal(np.reshape(images_before, images_now.shape), images_now)
        np.testing.assert_array_equal(labels_before, labels_now)


def test_likelihood_of_a_continuous_vae_on_its_recorded_folder_gives_bits_per_dim(tmp_path, capsys):
    from keras_gen import data

    folder = tmp_path / "colour"
    helpers.write_image_folder(folder, per_class=1, rgb=True)
    (tmp_path / "run").mkdir()
    checkpoint = tmp_path / "run" / "model.keras"
    VAE(image_shape=(28, 28, 3), latent_dim=2, likelihood="gaussian", seed=0).save(checkpoint)
    argv = ["evaluate", "likelihood", str(checkpoint), "--iwae-k", "2", "--num-images", "4", "--batch-size", "2"]
    # No record and not Fashion-MNIST's shape: the error says what to pass.
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "records no dataset" in err and "--data SOURCE" in err
    assert cli.main([*argv, "--data", f"folder:{folder}"]) == 0
    by_flag = capsys.readouterr().out
    data.write_record(data.record_for_source(f"folder:{folder}", [28, 28, 3]), tmp_path / "run")
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2:4] == by_flag.splitlines()[2:4], "the record and --data name the same images: the same ELBO and IWAE"
    assert f"folder:{folder} test set: 4 images, dequantised to [0, 1]: (k + u) / 256" in out
    nll = float(next(line for line in out.splitlines() if line.startswith("IWAE")).split("test NLL <= ")[1].split()[0])
    bits = float(next(line for line in out.splitlines() if line.startswith("Bits per dim")).split()[3])
    assert bits == pytest.approx(evaluation.bits_per_dim(nll, 28 * 28 * 3), abs=2e-3)
    # The old spelling still works, with a note naming the new one.
    assert cli.main(argv[:1] + argv[2:]) == 0
    assert "say the mode: `keras-gen evaluate likelihood" in capsys.readouterr().err
