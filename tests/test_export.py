import pathlib

import keras_gen  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import export
from keras_gen.models import VAE
from tests import helpers


@pytest.fixture(scope="module")
def trained_vae():
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    model.compile(optimizer="adam")
    helpers.fit_steps(model, helpers.tiny_images(32), steps=3)
    return model


def test_vae_export_reloads_with_tensorflow_alone_and_matches_the_model(trained_vae, tmp_path):
    images = helpers.tiny_images(5, seed=3)
    z = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
    seeds = np.array([0, 1, 2, 3], np.int64)
    calls = {
        "serving_default": {"images": images},
        "reconstruct": {"images": images},
        "encode": {"images": images},
        "decode": {"z": z},
        "sample": {"seed": seeds},
        "interpolate": {"z_start": z, "z_end": z[::-1], "t": np.array([0.0, 0.25, 0.75, 1.0], "float32")},
    }
    path, result = helpers.export_and_call(trained_vae, calls, tmp_path)
    assert path == tmp_path / "exports" / "vae" / "1"
    assert set(calls) <= set(result["signatures"])
    expected_reconstruction = trained_vae.reconstruct(images)["reconstruction"]
    np.testing.assert_allclose(result["reconstruct"]["reconstruction"], expected_reconstruction, atol=1e-5)
    np.testing.assert_allclose(result["serving_default"]["reconstruction"], expected_reconstruction, atol=1e-5)
    encoded = trained_vae.encode(images)
    np.testing.assert_allclose(result["encode"]["mean"], encoded["mean"], atol=1e-5)
    np.testing.assert_allclose(result["encode"]["log_variance"], encoded["log_variance"], atol=1e-5)
    np.testing.assert_allclose(result["decode"]["images"], trained_vae.decode(z)["images"], atol=1e-5)
    np.testing.assert_allclose(result["sample"]["images"], trained_vae.sample(seeds)["images"], atol=1e-5)
    interpolated = result["interpolate"]
    np.testing.assert_allclose(interpolated["z"][0], z[0], atol=1e-6)
    np.testing.assert_allclose(interpolated["z"][3], z[0], atol=1e-6)  # t = 1 lands on z_end = z[::-1]
    np.testing.assert_allclose(interpolated["images"][1], trained_vae.decode(0.75 * z[1:2] + 0.25 * z[2:3])["images"][0], atol=1e-5)
    for outputs in (result["reconstruct"]["reconstruction"], result["sample"]["images"]):
        assert outputs.shape[1:] == helpers.IMAGE_SHAPE
        assert outputs.min() >= 0.0 and outputs.max() <= 1.0


def test_sample_is_deterministic_per_seed_whatever_the_batch(trained_vae, tmp_path):
    loaded = tf.saved_model.load(str(export.export_model(trained_vae, tmp_path)))
    sample = loaded.signatures["sample"]
    alone = sample(seed=tf.constant([7], tf.int64))["images"].numpy()
    mixed = sample(seed=tf.constant([3, 7, 11, 7], tf.int64))["images"].numpy()
    np.testing.assert_allclose(mixed[1], alone[0], atol=1e-6)
    np.testing.assert_allclose(mixed[3], alone[0], atol=1e-6)
    assert not np.allclose(mixed[0], mixed[1])


def test_signatures_refuse_wrong_shapes_and_dtypes(trained_vae, tmp_path):
    loaded = tf.saved_model.load(str(export.export_model(trained_vae, tmp_path)))
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        loaded.signatures["reconstruct"](images=tf.zeros([1, 9, 9, 1]))
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        loaded.signatures["sample"](seed=tf.constant([1.5]))


def test_versions_count_up_and_are_never_overwritten(trained_vae, tmp_path):
    first = export.export_model(trained_vae, tmp_path, model_name="m")
    second = export.export_model(trained_vae, tmp_path, model_name="m")
    assert (first.name, second.name) == ("1", "2")
    marker = first / "assets" / "mine.txt"
    marker.parent.mkdir(exist_ok=True)
    marker.write_text("keep me")
    with pytest.raises(export.ExportError, match="never overwritten.*next free one is 3"):
        export.export_model(trained_vae, tmp_path, model_name="m", version=1)
    assert marker.read_text() == "keep me"
    assert export.existing_versions(tmp_path / "m") == [1, 2]
    assert export.export_model(trained_vae, tmp_path, model_name="m", version=10).name == "10"
    assert export.latest_version_dir(tmp_path / "m") == tmp_path / "m" / "10"
    for bad in (0, -1, "3", 2.0):
        with pytest.raises(export.ExportError, match="positive integer"):
            export.export_model(trained_vae, tmp_path, model_name="m", version=bad)


def test_failed_export_leaves_no_version_and_no_partial_folder(trained_vae, tmp_path, monkeypatch):
    class FailingArchive:
        def write_out(self, path, verbose=False):
            pathlib.Path(path).mkdir(parents=True)
            (pathlib.Path(path) / "saved_model.pb").write_text("half written")
            raise OSError("disk full")

    monkeypatch.setattr(export, "build_archive", lambda model: FailingArchive())
    with pytest.raises(OSError, match="disk full"):
        export.export_model(trained_vae, tmp_path, model_name="m")
    assert list((tmp_path / "m").iterdir()) == []


def test_latest_version_dir_explains_a_wrong_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="version folders"):
        export.latest_version_dir(tmp_path)
