"""Presets (keras_gen.presets): the round trip of every zoo model, what loading checks, and the commands that use them."""

import json
import pathlib
import shutil
import sys
import types
import warnings

import keras_gen
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gen import cli
from keras_gen import pipelines
from keras_gen import presets
from keras_gen import recipes
from keras_gen.models import DCGAN
from keras_gen.models import VAE
from tests import helpers
from tests.zoo_cases import TINY_MODELS

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DATASET = {"name": "fashion_mnist", "source": "fashion_mnist", "image_shape": [28, 28, 1], "class_names": CLASS_NAMES}

TINY_RECIPE = """
model = "{model}"
[model_options]
latent_dim = 2
[data]
preprocessing = "{preprocessing}"
validation_size = 8
[train]
epochs = 1
batch_size = 8
steps_per_epoch = 1
summary_samples = 4
"""


def endpoint_inputs(endpoint, batch=3):
    """Seeds (and labels) 0..batch-1 and seeded images in [0, 1) for `endpoint`'s inputs."""
    rng = np.random.default_rng(0)
    return {
        spec.name: np.arange(batch, dtype="int64") if spec.dtype == tf.int64 else rng.uniform(size=[batch, *spec.shape[1:]]).astype("float32")
        for spec in endpoint.input_signature
    }


def outputs(model, inputs=None):
    """(inputs, outputs) of the model's `sample` endpoint, or its default one where it has none."""
    endpoints = {endpoint.name: endpoint for endpoint in model.serving_endpoints()}
    endpoint = endpoints.get("sample", endpoints[model.default_endpoint])
    inputs = endpoint_inputs(endpoint) if inputs is None else inputs
    return inputs, {key: np.asarray(value) for key, value in endpoint.fn(**inputs).items()}


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_every_zoo_model_round_trips_through_a_preset_with_the_same_outputs(name, tmp_path):
    model, _ = TINY_MODELS[name]()
    inputs, before = outputs(model)
    folder = model.save_to_preset(tmp_path / f"tiny_{name}", recipe=name)
    assert sorted(path.name for path in folder.iterdir()) == sorted(presets.PRESET_FILES)
    loaded = type(model).from_preset(folder)
    assert type(loaded) is type(model) and not loaded.compiled
    assert [tuple(v.shape) for v in loaded.weights] == [tuple(v.shape) for v in model.weights]
    for original, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(restored), np.asarray(original), err_msg=original.path)
    _, after = outputs(loaded, inputs)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)


@pytest.mark.parametrize("name", sorted(presets.shipped_presets()))
def test_every_shipped_preset_loads_and_its_card_gives_its_figures_and_command(name):
    preset = presets.open_preset(name)
    metadata = preset.metadata
    assert metadata["name"] == name and metadata["figures"] and metadata["command"] and preset.dataset is not None
    card = (preset.path / "README.md").read_text()
    assert metadata["command"].split(";")[0] in card
    with warnings.catch_warnings():
        warnings.simplefilter("error", presets.PresetVersionWarning)  # shipped presets are written by this stack
        model = keras_gen.from_preset(name)
    assert list(presets.image_shape(model)) == metadata["dataset"]["image_shape"]
    if preset.is_zoo_model:
        assert f"keras-gen sample {name}" in card and type(model).zoo_name == metadata["model"]
    else:  # the feature classifier: the same weights as the one evaluation reads
        from keras_gen import feature_extractor

        assert metadata["weights_sha256"] == feature_extractor.read_manifest()["sha256"] and f'keras_gen.from_preset("{name}")' in card
        assert model.get_layer(feature_extractor.EMBEDDING_LAYER).output.shape[-1] == feature_extractor.EMBEDDING_DIM


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(presets.shipped_presets()))
def test_shipped_presets_reproduce_their_figures(name):
    """`keras-gen evaluate samples NAME --num-samples 1000`'s figures (seeds 0..999) lie within three standard
    deviations (over disjoint seed blocks, measured when the preset was made) of the card's 1,000-sample mean."""
    from keras_gen import evaluation

    preset = presets.open_preset(name)
    spread = preset.metadata.get("figure_spread")
    if spread is None:
        pytest.skip(f"{name} does not sample, so it has no sample-quality figures")
    quality = evaluation.SampleQuality(evaluation.feature_space("fashion_mnist"), reference="test", dataset=preset.dataset)
    result = quality.evaluate(evaluation.Sampler.load(name), num_samples=spread["num_samples"], first_seed=spread["first_seed"])
    for key in evaluation.SPREAD_FIGURES:
        expected = spread[key]
        assert abs(result[key] - expected["mean"]) <= 3 * expected["std"] + 1e-6, (key, result[key], expected)


@pytest.fixture(scope="module")
def vae_preset(tmp_path_factory):
    """(folder, model): a tiny 28x28 VAE written as a preset, with a dataset record and figures."""
    model = VAE(image_shape=(28, 28, 1), latent_dim=2, filters=(4, 8), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))  # its state must stay out of the preset
    model(tf.zeros([1, 28, 28, 1]))
    folder = model.save_to_preset(
        tmp_path_factory.mktemp("presets") / "tiny_vae", recipe="vae", dataset=DATASET, figures={"FD": 1.5, "KID": 0.25}, command="make it"
    )
    return folder, model


def copy_of(vae_preset, tmp_path, name="tiny_vae"):
    return pathlib.Path(shutil.copytree(vae_preset[0], tmp_path / name))


def edit_metadata(folder, **changes):
    metadata = json.loads((folder / presets.METADATA_FILE).read_text())
    metadata.update(changes)
    (folder / presets.METADATA_FILE).write_text(json.dumps(metadata))


def test_the_metadata_says_what_wrote_the_preset_and_what_it_holds(vae_preset):
    folder, model = vae_preset
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["versions"] == {"keras_gen": keras_gen.__version__, "keras": keras.__version__, "tensorflow": tf.__version__}
    assert (metadata["name"], metadata["model"], metadata["class_name"], metadata["recipe"]) == ("tiny_vae", "vae", "VAE", "vae")
    assert metadata["parameter_count"] == sum(int(np.prod(v.shape)) for v in model.weights)
    assert metadata["dataset"]["image_shape"] == [28, 28, 1] and metadata["dataset"]["class_names"] == CLASS_NAMES
    assert metadata["figures"] == {"FD": 1.5, "KID": 0.25} and metadata["command"] == "make it"
    assert metadata["weights_sha256"] == presets.sha256_of(folder / "model.weights.h5")
    config = json.loads((folder / "config.json").read_text())
    assert config["class_name"] == "VAE" and "compile_config" not in config
    import h5py

    with h5py.File(folder / "model.weights.h5") as weights:
        names = []
        weights.visit(names.append)
    assert names and not any("optimizer" in name for name in names), "no optimizer state in a preset"
    card = (folder / "README.md").read_text()
    assert card.startswith("# tiny_vae") and "FD 1.5" in card and 'keras_gen.from_preset("tiny_vae")' in card


def test_keras_gen_from_preset_picks_the_class_and_a_shipped_name_resolves(vae_preset, tmp_path, monkeypatch):
    monkeypatch.setattr(presets, "SHIPPED_DIR", tmp_path)
    copy_of(vae_preset, tmp_path)
    model = keras_gen.from_preset("tiny_vae")
    assert type(model) is VAE
    np.testing.assert_array_equal(outputs(model)[1]["images"], outputs(vae_preset[1])[1]["images"])
    with pytest.raises(presets.PresetError, match=r"No preset 'tiny_vea'.*the package ships: tiny_vae\b.*path of a preset folder"):
        keras_gen.from_preset("tiny_vea")


def test_loading_from_another_class_names_both(vae_preset):
    with pytest.raises(presets.PresetError, match=r"holds a VAE \(zoo model vae\), not a DCGAN.*VAE.from_preset"):
        DCGAN.from_preset(vae_preset[0])


def test_a_changed_weights_file_is_named(vae_preset, tmp_path):
    folder = copy_of(vae_preset, tmp_path)
    weights = folder / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(presets.PresetError, match=rf"{weights} does not match its preset: its sha256 is [0-9a-f]{{64}}, metadata.json records"):
        VAE.from_preset(folder)


def test_a_truncated_weights_file_is_a_clear_error(vae_preset, tmp_path):
    folder = copy_of(vae_preset, tmp_path)
    weights = folder / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(presets.PresetError, match="does not match its preset"):
        VAE.from_preset(folder)
    # With its checksum rewritten to match, the cut file itself is reported, not a crash of h5py.
    edit_metadata(folder, weights_sha256=presets.sha256_of(weights))
    with pytest.raises(presets.PresetError, match=rf"{weights} could not be loaded into its VAE \(truncated or corrupt"):
        VAE.from_preset(folder)


def test_a_folder_that_is_no_preset_says_what_it_lacks(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(presets.PresetError, match="is not a preset folder: it lacks model.weights.h5, metadata.json"):
        keras_gen.from_preset(tmp_path)


def test_other_versions_load_with_a_warning_and_the_same_ones_without(vae_preset, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", presets.PresetVersionWarning)
        VAE.from_preset(vae_preset[0])
    folder = copy_of(vae_preset, tmp_path)
    edit_metadata(folder, versions={"keras_gen": "0.0.9", "keras": keras.__version__, "tensorflow": "2.99.0"})
    with pytest.warns(presets.PresetVersionWarning, match=rf"written by keras_gen 0.0.9 \(now {keras_gen.__version__}\), tensorflow 2.99.0"):
        model = VAE.from_preset(folder)
    np.testing.assert_array_equal(outputs(model)[1]["images"], outputs(vae_preset[1])[1]["images"])


def test_hub_handles_say_what_to_install_or_where_to_put_the_folder(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # not installed
    with pytest.raises(presets.PresetError, match=r"hf://owner/vae is on the Hugging Face Hub: install huggingface_hub \(pip install huggingface_hub\).*pass its path"):
        keras_gen.from_preset("hf://owner/vae")

    def offline(**kwargs):
        raise OSError("could not connect to huggingface.co")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=offline))
    with pytest.raises(presets.PresetError, match=r"hf://owner/vae could not be downloaded \(OSError: could not connect.*offline, download the preset folder"):
        keras_gen.from_preset("hf://owner/vae")
    monkeypatch.setitem(sys.modules, "kagglehub", None)
    with pytest.raises(presets.PresetError, match=r"install kagglehub \(pip install kagglehub\)"):
        keras_gen.from_preset("kaggle://owner/vae/keras/tiny")


def test_a_preset_is_written_whole_or_not_at_all_and_never_over_another(vae_preset, tmp_path, monkeypatch):
    folder, model = vae_preset
    before = sorted((path.name, path.stat().st_mtime_ns) for path in folder.iterdir())
    with pytest.raises(presets.PresetError, match="exists already and a preset is never written over another"):
        model.save_to_preset(folder)
    assert sorted((path.name, path.stat().st_mtime_ns) for path in folder.iterdir()) == before

    def failing(model, path):
        pathlib.Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(presets, "save_weights", failing)
    with pytest.raises(OSError, match="disk full"):
        model.save_to_preset(tmp_path / "broken")
    assert list(tmp_path.iterdir()) == [], "no folder, no staging folder left"


def test_a_model_with_a_nan_weight_is_never_saved_as_a_preset(tmp_path):
    model, _ = TINY_MODELS["vae"]()
    kernel = model.encoder.trainable_weights[0]
    kernel.assign(tf.fill(kernel.shape, float("nan")))
    with pytest.raises(presets.PresetError, match=rf"was not saved as a preset: its weight {kernel.path} holds .* NaN.*an earlier checkpoint"):
        model.save_to_preset(tmp_path / "nan_vae")
    assert list(tmp_path.iterdir()) == []


# === The commands ===
def test_list_shows_the_presets_beside_the_recipes_with_their_figures(vae_preset, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(presets, "SHIPPED_DIR", tmp_path)
    assert cli.main(["list"]) == 0
    assert "none shipped yet" in capsys.readouterr().out
    copy_of(vae_preset, tmp_path)
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    recipes_at, presets_at = out.index("Recipes"), out.index("Presets")
    assert recipes_at < out.index("  dcgan ") < presets_at
    assert any(line.split() == ["tiny_vae", "vae", "FD", "1.5,", "KID", "0.25"] for line in out[presets_at:].splitlines())


def test_sample_export_and_a_tensorflow_only_process_give_the_preset_s_images(vae_preset, tmp_path, monkeypatch, capsys):
    folder, model = vae_preset
    monkeypatch.setattr(presets, "SHIPPED_DIR", folder.parent)
    assert cli.main(["sample", "tiny_vae", "--seeds", "0..3", "--out", str(tmp_path / "preset.png")]) == 0
    assert cli.main(["export", "tiny_vae", "--export-dir", str(tmp_path / "exports")]) == 0
    version = tmp_path / "exports" / "tiny_vae" / "1"
    assert json.loads((version / "assets.extra" / "dataset.json").read_text())["class_names"] == CLASS_NAMES
    assert cli.main(["sample", str(tmp_path / "exports" / "tiny_vae"), "--seeds", "0..3", "--out", str(tmp_path / "export.png")]) == 0
    grids = [tf.io.decode_png(tf.io.read_file(str(tmp_path / name))).numpy() for name in ("preset.png", "export.png")]
    assert grids[0].shape == (56, 56, 1) and grids[0].std() > 0
    np.testing.assert_array_equal(grids[0], grids[1])
    result = helpers.call_export_in_fresh_process(version, {"sample": {"seed": np.arange(4)}}, tmp_path)
    assert "keras_gen" not in result["imported"]
    np.testing.assert_allclose(result["sample"]["images"], outputs(model, {"seed": np.arange(4)})[1]["images"], atol=1e-5)
    capsys.readouterr()
    assert cli.main(["sample", "tiny_vea", "--out", str(tmp_path / "none.png")]) == 2
    assert "No preset 'tiny_vea'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("fine_tune")
    helpers.make_fake_source(root / "idx", seed=0)
    for model, preprocessing in (("vae", "binarize"), ("dcgan", "tanh")):
        (root / f"tiny_{model}.toml").write_text(TINY_RECIPE.format(model=model, preprocessing=preprocessing))
    return root


class WeightsAtStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = [np.asarray(v) for v in self.model.weights]
        self.iterations = int(self.model.optimizer.iterations)


def test_training_from_a_preset_starts_from_its_weights_with_fresh_optimizers(vae_preset, fake_data, tmp_path):
    folder, model = vae_preset
    start = WeightsAtStart()
    result = pipelines.train_recipe(
        recipes.load_recipe(fake_data / "tiny_vae.toml"), logdir=tmp_path / "logs", checkpoint_dir=tmp_path / "checkpoints",
        source_dir=fake_data / "idx", data_dir=tmp_path / "tfds", export=False, verbose=0, callbacks=[start], from_preset=folder,
    )
    assert start.iterations == 0
    for original, at_start in zip(model.weights, start.weights):
        np.testing.assert_array_equal(at_start, np.asarray(original))
    assert int(result["model"].optimizer.iterations) == 1
    assert result["fine_tuned_from"]["name"] == "tiny_vae"
    run = json.loads((result["logdir"] / "run.json").read_text())
    assert run["fine_tuned_from"] == {"name": "tiny_vae", "handle": str(folder), "model": "vae", "weights_sha256": presets.sha256_of(folder / "model.weights.h5")}


def test_train_from_a_preset_of_another_model_or_pipeline_fails_cleanly(vae_preset, fake_data, tmp_path, capsys):
    folder = str(vae_preset[0])
    common = ["--data-dir", str(fake_data / "idx"), "--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    assert cli.main(["train", str(fake_data / "tiny_dcgan.toml"), "--from-preset", folder, *common]) == 2
    assert "Recipe 'tiny_dcgan' trains a DCGAN (dcgan), but preset tiny_vae holds a VAE (vae); fine-tune it with a vae recipe" in capsys.readouterr().err
    assert cli.main(["train", "semi_supervised", "--from-preset", folder, *common]) == 2
    assert "only recipes of the fit pipeline start from a preset" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists() and not (tmp_path / "ckpt").exists(), "nothing is written"


CARD = """# vae

<!-- train_zoo:begin -->
## Trained by bench/train_zoo.py (2026-12-01)

- **Command:** `.venv/bin/python bench/train_zoo.py --recipes vae --epochs 3 --max-minutes 3`
- **Test set (the model's own metrics, per image):** kl 18.141, loss 244.177, reconstruction 226.036

```
                                    FD       KID (mean ± std) precision  recall  samples
----------------------------------------------------------------------------------------
vae (this run)                  30.464        0.5712 ± 0.0424     0.701   0.293    10000
real train vs test               0.052       -0.0014 ± 0.0059     0.890   0.893    10000
```

![samples](vae-samples.png)
<!-- train_zoo:end -->
"""


def test_make_presets_turns_a_train_zoo_run_and_its_card_into_a_preset(tmp_path, capsys):
    import importlib.util
    import os

    spec = importlib.util.spec_from_file_location("make_presets", pathlib.Path(__file__).resolve().parent.parent / "bench" / "make_presets.py")
    make_presets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_presets)
    run = tmp_path / "work" / "checkpoints" / "vae" / "20261201-000000"
    run.mkdir(parents=True)
    # 28x28x1, the shipped classifier's images: the preset's 1,000-sample check (here 40 samples, 2 blocks) is scored in its
    # features, against the test split of the recorded source (here a small Fashion-MNIST-shaped one, for speed).
    model = VAE(image_shape=(28, 28, 1), latent_dim=2, filters=(4, 8), seed=0)
    model(tf.zeros([1, 28, 28, 1]))
    model.save(run / "model.keras")
    helpers.make_fake_source(tmp_path / "idx", seed=0, num_test=60)
    (run / "dataset.json").write_text(json.dumps(dict(DATASET, source_dir=str(tmp_path / "idx"))))
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "vae.md").write_text(CARD)
    (cards / "vae-samples.png").write_bytes(tf.io.encode_png(tf.zeros([8, 8, 1], tf.uint8)).numpy())
    argv = ["--recipes", "vae", "--work-dir", str(tmp_path / "work"), "--cards-dir", str(cards), "--out-dir", str(tmp_path / "presets")]
    argv += ["--spread-samples", "40", "--spread-blocks", "2"]
    os.utime(run / "model.keras", (0, 2e9))  # a checkpoint newer than the card: the card is of another run
    with pytest.raises(SystemExit, match="vae.md is older than .*model.keras, so its figures are of another run"):
        make_presets.main(argv)
    os.utime(run / "model.keras", (0, 1e9))
    assert make_presets.main(argv) == 0
    folder = tmp_path / "presets" / "vae_fashion_mnist"
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["figures"] == {"FD": 30.464, "KID": 0.5712, "precision": 0.701, "recall": 0.293, "test loss": 244.177}
    assert metadata["command"].startswith(".venv/bin/python bench/train_zoo.py --recipes vae --epochs 3 --max-minutes 3; then .venv/bin/python bench/make_presets.py")
    assert metadata["dataset"]["source"] == "fashion_mnist" and metadata["recipe"] == "vae"
    card = (folder / "README.md").read_text()
    assert "keras-gen sample vae_fashion_mnist" in card and "![samples](samples.png)" in card and "vae (this run)" in card
    assert (folder / "samples.png").is_file()
    loaded = keras_gen.from_preset(folder)
    np.testing.assert_array_equal(outputs(loaded)[1]["images"], outputs(model)[1]["images"])
    with pytest.raises(SystemExit, match="exists already"):
        make_presets.main(argv)
    # The check the card states: `keras-gen evaluate samples PRESET` on the first block's seeds gives its figures again.
    spread = metadata["figure_spread"]
    assert (spread["num_samples"], spread["blocks"], spread["first_seed"]) == (40, 2, 0)
    fd = spread["frechet_distance"]
    assert fd["std"] > 0 and abs(fd["first_block"] - fd["mean"]) <= fd["std"]  # two blocks: each lies std / sqrt(2) from their mean
    assert f"keras-gen evaluate samples vae_fashion_mnist --num-samples 40` scores seeds 0..39" in card
    assert f"FD {fd['first_block']:.4g}," in card.replace("\n", " ")
    capsys.readouterr()
    assert cli.main(["evaluate", "samples", str(folder), "--num-samples", "40", "--no-reference-rows"]) == 0
    out = capsys.readouterr().out
    assert f"vae_fashion_mnist from {folder}: 40 samples (seeds 0..39) against 60 Fashion-MNIST test images" in out
    row = next(line.split() for line in out.splitlines() if line.startswith("vae_fashion_mnist ") and " from " not in line)
    assert float(row[1]) == pytest.approx(fd["first_block"], rel=1e-4) and float(row[6]) == pytest.approx(spread["recall"]["first_block"], abs=5e-4)


def test_a_plain_keras_model_round_trips_and_the_zoo_commands_say_what_its_preset_is_for(tmp_path, monkeypatch, capsys):
    inputs = keras.Input([8, 8, 1])
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)), name="tiny_classifier")
    folder = presets.save_to_preset(model, tmp_path / "plain", figures={"test accuracy": 0.5}, command="make it")
    metadata = json.loads((folder / presets.METADATA_FILE).read_text())
    assert metadata["model"] is None and metadata["class_name"] == "Functional" and metadata["dataset"]["image_shape"] == [8, 8, 1]
    loaded = keras_gen.from_preset(folder)
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype("float32")
    np.testing.assert_array_equal(np.asarray(loaded(images)), np.asarray(model(images)))
    with pytest.raises(presets.PresetError, match=r"holds a plain Keras model \(Functional\), not a zoo model"):
        VAE.from_preset(folder)
    with pytest.raises(presets.PresetError, match="not a zoo model"):
        presets.fine_tuning_start(folder, VAE, {"image_shape": [8, 8, 1]}, "Recipe 'vae'")
    monkeypatch.setattr(presets, "SHIPPED_DIR", tmp_path)
    for argv in (["sample", "plain", "--out", str(tmp_path / "grid.png")], ["export", "plain", "--export-dir", str(tmp_path / "exports")], ["evaluate", "samples", "plain"]):
        assert cli.main(argv) == 2, argv
        assert "holds a plain Keras model (Functional), not a zoo model" in capsys.readouterr().err
    assert not (tmp_path / "exports").exists() and not (tmp_path / "grid.png").exists()
    assert cli.main(["list"]) == 0
    assert any(line.split()[:2] == ["plain", "(keras)"] for line in capsys.readouterr().out.splitlines())


def test_fine_tuning_on_data_of_another_shape_says_how_to_fit_it(vae_preset):
    with pytest.raises(presets.PresetError, match=r"takes 28x28x1 images, but Recipe 'mine''s data gives 32x32x3: fit the data to it with --image-size 28x28 --channels 1"):
        presets.fine_tuning_start(vae_preset[0], VAE, {"image_shape": [32, 32, 3]}, "Recipe 'mine'")
