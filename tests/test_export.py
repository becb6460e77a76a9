import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import keras_gen  # noqa: F401
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import export
from keras_gen.models import AAE
from keras_gen.models import VAE
from tests import helpers

# The bound of the module's shared export (`loaded`), small so that a batch above it is cheap.
BOUND = 16


@pytest.fixture(scope="module")
def trained_vae():
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    model.compile(optimizer="adam")
    helpers.fit_steps(model, helpers.tiny_images(32), steps=3)
    return model


@pytest.fixture(scope="module")
def loaded(trained_vae, tmp_path_factory):
    """The module's one export of `trained_vae` (max_serving_batch=BOUND), loaded with TensorFlow."""
    path = export.export_model(trained_vae, tmp_path_factory.mktemp("shared"), max_serving_batch=BOUND)
    restored = tf.saved_model.load(str(path))
    restored.path = path
    return restored


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
        "metadata": {},
    }
    # Rank 3 images aborted the whole process (SIGABRT in oneDNN's kernels) before the export checked
    # shapes; in this fresh process an abort fails the test instead of killing pytest.
    flat = np.full([2, *helpers.IMAGE_SHAPE[:2]], 0.5, "float32")
    refusals = {
        "reconstruct rank 3": ("reconstruct", {"images": flat}),
        "encode rank 3": ("encode", {"images": flat}),
        "serving_default rank 3": ("serving_default", {"images": flat}),
        "reconstruct rank 5": ("reconstruct", {"images": images[..., None]}),
        "sample above the default bound": ("sample", {"seed": np.arange(1025)}),
    }
    path, result = helpers.export_and_call(trained_vae, calls, tmp_path, refusals)
    assert path == tmp_path / "exports" / "vae" / "1"
    assert set(calls) <= set(result["signatures"])
    for label, got in [("reconstruct rank 3", "[2, 8, 8]"), ("encode rank 3", "[2, 8, 8]"), ("serving_default rank 3", "[2, 8, 8]"), ("reconstruct rank 5", "[5, 8, 8, 1, 1]")]:
        refusal = result["refusals"][label]
        assert refusal["error"] == "InvalidArgumentError", (label, refusal)
        assert f"input `images` must have shape [batch, 8, 8, 1] (float32), got {got}." in refusal["message"], (label, refusal)
    assert "holds a batch of 1025; a request holds 1 to 1024" in result["refusals"]["sample above the default bound"]["message"]
    assert result["metadata"]["max_serving_batch"] == export.DEFAULT_MAX_SERVING_BATCH == 1024
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


def test_sample_is_deterministic_per_seed_whatever_the_batch(loaded):
    sample = loaded.signatures["sample"]
    alone = sample(seed=tf.constant([7], tf.int64))["images"].numpy()
    mixed = sample(seed=tf.constant([3, 7, 11, 7], tf.int64))["images"].numpy()
    np.testing.assert_allclose(mixed[1], alone[0], atol=1e-6)
    np.testing.assert_allclose(mixed[3], alone[0], atol=1e-6)
    assert not np.allclose(mixed[0], mixed[1])


def test_signatures_refuse_wrong_shapes_and_dtypes(loaded):
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        loaded.signatures["reconstruct"](images=tf.zeros([1, 9, 9, 1]))
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        loaded.signatures["sample"](seed=tf.constant([1.5]))


# === Every request is checked before the model sees it (shapes, batch, values) ===
IMAGES = np.full([2, *helpers.IMAGE_SHAPE], 0.5, "float32")
Z = np.zeros([2, 2], "float32")
T = np.array([0.0, 1.0], "float32")


def with_values(array, *values):
    """A copy of `array` with its first elements set to `values`."""
    array = array.copy()
    array.flat[: len(values)] = values
    return array


@pytest.mark.parametrize(
    "signature, inputs, message",
    [
        # Wrong fixed sizes: the image size, the channels, the code size.
        ("reconstruct", {"images": np.zeros([2, 16, 16, 1], "float32")}, "reconstruct: input `images` must have shape [batch, 8, 8, 1] (float32), got [2, 16, 16, 1]."),
        ("encode", {"images": np.zeros([2, 8, 8, 3], "float32")}, "encode: input `images` must have shape [batch, 8, 8, 1] (float32), got [2, 8, 8, 3]."),
        ("decode", {"z": np.zeros([2, 3], "float32")}, "decode: input `z` must have shape [batch, 2] (float32), got [2, 3]."),
        ("sample", {"seed": np.zeros([2, 1], "int64")}, "sample: input `seed` must have shape [batch] (int64), got [2, 1]."),
        # Batches: above the bound, empty, or disagreeing between the inputs of one request.
        ("sample", {"seed": np.arange(BOUND + 1)}, f"sample: input `seed` holds a batch of {BOUND + 1}; a request holds 1 to {BOUND} (the max_serving_batch"),
        ("decode", {"z": np.zeros([0, 2], "float32")}, "decode: input `z` holds a batch of 0; a request holds 1 to"),
        ("interpolate", {"z_start": Z, "z_end": Z, "t": T[:1]}, "interpolate: inputs `z_start`, `z_end`, `t` are one batch and must have the same batch size, got 2, 2, 1."),
        # Values: NaN and infinities in any float input, and the declared ranges.
        ("reconstruct", {"images": np.full_like(IMAGES, np.nan)}, "reconstruct: input `images` holds 128 NaN or infinite values; every value must be finite."),
        ("decode", {"z": with_values(Z, np.nan)}, "decode: input `z` holds 1 NaN or infinite values"),
        ("interpolate", {"z_start": Z, "z_end": with_values(Z, np.inf, -np.inf), "t": T}, "interpolate: input `z_end` holds 2 NaN or infinite values"),
        ("interpolate", {"z_start": Z, "z_end": Z, "t": with_values(T, np.nan)}, "interpolate: input `t` holds 1 NaN or infinite values"),
        ("reconstruct", {"images": with_values(IMAGES, -0.25)}, "reconstruct: input `images` must lie in [0, 1], got values from -0.25 to 0.5."),
        ("encode", {"images": with_values(IMAGES, 255.0)}, "encode: input `images` must lie in [0, 1], got values from 0.5 to 255."),
        ("interpolate", {"z_start": Z, "z_end": Z, "t": np.array([0.5, 1.5], "float32")}, "interpolate: input `t` must lie in [0, 1], got values from 0.5 to 1.5."),
        # The first failed check is the one reported: shape before batch before values.
        ("interpolate", {"z_start": np.zeros([3, 3], "float32"), "z_end": Z, "t": np.array([np.nan], "float32")}, "interpolate: input `z_start` must have shape [batch, 2]"),
    ],
    ids=lambda value: value if isinstance(value, str) and " " not in value else "",
)
def test_bad_requests_get_invalid_argument_naming_the_input(loaded, signature, inputs, message):
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        loaded.signatures[signature](**{name: tf.constant(value) for name, value in inputs.items()})
    assert message in error.value.message


def test_requests_at_the_bounds_are_answered(loaded):
    assert loaded.signatures["sample"](seed=tf.range(BOUND, dtype=tf.int64))["images"].shape[0] == BOUND
    images = with_values(IMAGES, 0.0, 1.0)
    assert np.isfinite(loaded.signatures["reconstruct"](images=tf.constant(images))["reconstruction"].numpy()).all()
    t = tf.constant([0.0, 1.0])
    assert loaded.signatures["interpolate"](z_start=tf.constant(Z), z_end=tf.constant(Z), t=t)["images"].shape[0] == 2


def test_the_bound_is_recorded_in_the_metadata_signature_and_shown_by_saved_model_cli(loaded, capsys):
    from tensorflow.python.tools import saved_model_cli

    assert int(loaded.signatures["metadata"]()["max_serving_batch"]) == BOUND
    saved_model_cli._show_all(str(loaded.path))  # what `saved_model_cli show --dir PATH --all` prints
    shown = capsys.readouterr().out
    assert "signature_def['metadata']" in shown and "outputs['max_serving_batch']" in shown
    metadata_function = shown.split("Function Name: 'metadata'")[1].split("Function Name:")[0]
    assert f"Value: {BOUND}" in metadata_function


def test_endpoint_declarations_are_checked_at_export(trained_vae, tmp_path):
    images = tf.TensorSpec([None, *helpers.IMAGE_SHAPE], tf.float32, name="images")
    seed = tf.TensorSpec([None], tf.int64, name="seed")
    with pytest.raises(ValueError, match=r"value ranges for pixels, which are not among its inputs \['images'\]"):
        export.checked_endpoint(export.Endpoint("e", trained_vae.reconstruct, [images], {"pixels": export.UNIT_INTERVAL}))
    with pytest.raises(ValueError, match="'seed', which is not a float input"):
        export.checked_endpoint(export.Endpoint("e", trained_vae.sample, [seed], {"seed": export.UNIT_INTERVAL}))
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(export.ExportError, match="max_serving_batch must be a positive integer"):
            export.export_model(trained_vae, tmp_path, max_serving_batch=bad)
    assert not (tmp_path / "vae").exists()


def test_keras_gen_export_sets_the_bound(trained_vae, tmp_path, capsys):
    from keras_gen import cli

    checkpoint = tmp_path / "model.keras"
    trained_vae.save(checkpoint)
    assert cli.main(["export", str(checkpoint), "--export-dir", str(tmp_path), "--max-serving-batch", "0"]) == 2
    assert "max_serving_batch must be a positive integer, got 0" in capsys.readouterr().err
    assert cli.main(["export", str(checkpoint), "--export-dir", str(tmp_path), "--max-serving-batch", "8"]) == 0
    signature = tf.saved_model.load(str(tmp_path / "vae" / "1")).signatures["metadata"]
    assert int(signature()["max_serving_batch"]) == 8


# === What is never published ===
def test_a_model_with_a_nan_weight_is_not_exported(tmp_path):
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    kernel = model.decoder.weights[0]
    kernel.assign(with_values(np.asarray(kernel), np.nan, np.inf))
    with pytest.raises(export.ExportError, match=rf"its weight {kernel.path} holds 2 NaN or infinite values.*export an earlier checkpoint"):
        export.export_model(model, tmp_path)
    assert not (tmp_path / "vae").exists()


def test_uncalibrated_anomaly_thresholds_may_be_nan_but_not_partly(tmp_path):
    model = AAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, filters=(4, 8), discriminator_units=(8,), seed=0)
    assert np.isnan(np.asarray(model.score_thresholds)).all()
    export.check_finite_weights(model)  # NaN means "not calibrated yet": exported, and the threshold says so
    model.score_thresholds.assign(with_values(np.zeros(model.score_thresholds.shape, "float32"), np.nan))
    with pytest.raises(export.ExportError, match="score_thresholds holds 1 NaN"):
        export.check_finite_weights(model)


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

    monkeypatch.setattr(export, "build_archive", lambda model, max_serving_batch: FailingArchive())
    with pytest.raises(OSError, match="disk full"):
        export.export_model(trained_vae, tmp_path, model_name="m")
    assert list((tmp_path / "m").iterdir()) == []


def test_latest_version_dir_explains_a_wrong_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="version folders"):
        export.latest_version_dir(tmp_path)


# === Staging folders left by killed exports ===
def test_a_later_export_removes_the_staging_folders_of_dead_writers_only(trained_vae, tmp_path):
    model_dir = tmp_path / "vae"
    finished = subprocess.Popen(["true"])
    finished.wait()
    writer = subprocess.Popen(["sleep", "60"])
    try:
        start = export._process_start(os.getpid())
        folders = {
            "dead writer": export.staging_name(1, pid=finished.pid),
            "live writer": export.staging_name(1, pid=writer.pid),
            # This process's PID and host, but another start time: an earlier process that had the PID.
            "reused pid": f"{export.STAGING_PREFIX}1-00000000.{os.getpid()}.{start + 1}.{export._HOST}",
            "other host": f"{export.STAGING_PREFIX}1-00000000.{finished.pid}.0.elsewhere.example",
            "old, no owner": f"{export.STAGING_PREFIX}1-0123abcd",
            "new, no owner": f"{export.STAGING_PREFIX}1-4567cdef",
        }
        for name in folders.values():
            (model_dir / name).mkdir(parents=True)
            (model_dir / name / "saved_model.pb").write_text("half written")
        an_hour_ago = time.time() - export.UNOWNED_STAGING_MAX_AGE_S - 60
        os.utime(model_dir / folders["old, no owner"], (an_hour_ago, an_hour_ago))
        assert export.staging_owner(folders["live writer"]) == (export._HOST, writer.pid, export._process_start(writer.pid))

        assert export.export_model(trained_vae, tmp_path).name == "1"
        kept = {label for label, name in folders.items() if (model_dir / name).exists()}
        assert kept == {"live writer", "other host", "new, no owner"}
        assert sorted(p.name for p in model_dir.iterdir() if not p.name.startswith(export.STAGING_PREFIX)) == ["1"]
    finally:
        writer.kill()
        writer.wait()
    # Once its writer is gone, the folder goes too.
    assert export.remove_abandoned_staging(model_dir) == [model_dir / folders["live writer"]]


_KILLED_EXPORT = textwrap.dedent(
    """
    import os, signal, sys
    from keras_gen import export
    from tests import helpers
    from keras_gen.models import VAE

    class KilledWhileWriting:
        def write_out(self, path, verbose=False):
            os.makedirs(path)
            open(os.path.join(path, "saved_model.pb"), "w").write("half written")
            os.kill(os.getpid(), signal.SIGKILL)

    export.build_archive = lambda model, max_serving_batch: KilledWhileWriting()
    export.export_model(VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0), sys.argv[1])
    """
)


@pytest.mark.slow
def test_a_kill_during_export_leaves_a_folder_that_the_next_export_removes(trained_vae, tmp_path):
    root = pathlib.Path(__file__).resolve().parents[1]
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_EXPORT, str(tmp_path)], cwd=root, env=dict(os.environ, PYTHONPATH=str(root)), capture_output=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    [left] = (tmp_path / "vae").iterdir()
    assert left.name.startswith(export.STAGING_PREFIX + "1-")
    assert export.export_model(trained_vae, tmp_path).name == "1"
    assert [p.name for p in (tmp_path / "vae").iterdir()] == ["1"]
