"""Pipelines: recipes name theirs, its options are checked, the one-class pipeline end to end, and model
files that do not import the pipelines that train them."""

import json
import subprocess
import sys
import textwrap

import keras_gen  # noqa: F401
import numpy as np
import pytest

from keras_gen import cli
from keras_gen import pipelines
from keras_gen import recipes
from keras_gen import anomaly
from keras_gen.models import AAE
from keras_gen.models import EBM
from keras_gen.models import VAE
from keras_gen.pipelines import fit
from keras_gen.pipelines import runs
from tests import helpers
from tests.test_cli import TINY_AAE_RECIPE


def write(tmp_path, text, name="r.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# === Recipes name their pipeline ===
def test_recipes_name_their_pipeline_and_old_recipes_keep_their_models(tmp_path):
    assert pipelines.pipeline_names() == ["fit", "one_class", "semi_supervised"]
    semi = recipes.load_recipe("semi_supervised")
    assert semi.pipeline_name == "semi_supervised" and "name" not in semi.pipeline
    assert recipes.load_recipe("vae").pipeline_name == "fit"
    # Written before pipelines had names: the model's `recipe_pipeline` decides, as its model did before.
    old = recipes.load_recipe(write(tmp_path, 'model = "semi_supervised"\n[pipeline]\nlabels_per_class = 5\n'))
    assert old.pipeline_name == "semi_supervised" and old.pipeline == {"labels_per_class": 5}
    one_class = recipes.load_recipe(write(tmp_path, 'model = "aae"\n[pipeline]\nname = "one_class"\nclasses = [1, 0]\nfpr = 1\n'))
    assert one_class.pipeline_name == "one_class" and one_class.pipeline == {"classes": [1, 0], "fpr": 1.0}
    assert pipelines.get_pipeline("fit") is fit.run_recipe


def test_an_unknown_pipeline_name_lists_the_pipelines(tmp_path):
    with pytest.raises(recipes.RecipeError, match=r"\[pipeline\]: Unknown pipeline 'fitt'; the pipelines are: fit, one_class, semi_supervised\."):
        recipes.load_recipe(write(tmp_path, 'model = "vae"\n[pipeline]\nname = "fitt"\n'))
    with pytest.raises(KeyError, match="the pipelines are: fit, one_class, semi_supervised"):
        pipelines.get_pipeline("nope")


@pytest.mark.parametrize(
    "text, message",
    [
        ('model = "vae"\n[pipeline]\nlabels_per_class = 5\n', r"\[pipeline\] of the fit pipeline: unknown key\(s\) labels_per_class; valid keys are: name\."),
        ('model = "vae"\n[pipeline]\nname = 3\n', r"`name` must be str"),
        ('model = "vae"\npipeline = 3\n', r"\[pipeline\] must be a table"),
        ('model = "aae"\n[pipeline]\nname = "one_class"\nfpr = "low"\n', r"\[pipeline\] of the one_class pipeline: `fpr` must be float"),
        ('model = "aae"\n[pipeline]\nname = "one_class"\nclasses = 3\n', r"`classes` must be list"),
        (
            'model = "aae"\n[pipeline]\nname = "one_class"\npretrain_epochs = 3\n',
            r"\[pipeline\] of the one_class pipeline: unknown key\(s\) pretrain_epochs; valid keys are: name, classes, fpr, max_minutes\.",
        ),
        ('model = "semi_supervised"\n[pipeline]\nname = "semi_supervised"\npatience = "long"\n', r"\[pipeline\] of the semi_supervised pipeline: `patience` must be int"),
    ],
)
def test_pipeline_options_are_checked_against_the_named_pipeline(tmp_path, text, message):
    with pytest.raises(recipes.RecipeError, match=message):
        recipes.load_recipe(write(tmp_path, text))


# === Hooks declared on the base class ===
def test_the_optional_hooks_are_declared_on_the_base_class():
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, filters=(4, 8), seed=0)
    assert model.training_classes() is None
    assert model.after_training({"validation": None}) is None
    assert model.summary_histograms({}) == {}
    assert model.recipe_pipeline == "fit"
    one_class = AAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, filters=(4, 8), discriminator_units=(8,), normal_class=3, seed=0)
    assert one_class.training_classes() == [3]


def test_model_files_import_no_pipeline_and_the_registry_imports_the_zoo_on_request():
    script = textwrap.dedent(
        """
        import json, sys
        from keras_gen import registry
        before = "keras_gen.models" in sys.modules
        registry.import_zoo()
        import keras
        import keras_gen.models.classifier
        loaded = sorted(name for name in sys.modules if name.startswith("keras_gen."))
        print(json.dumps({"before": before, "loaded": loaded, "registered": keras.saving.get_registered_object("keras_gen>VAE") is not None}))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert not found["before"] and found["registered"] and "keras_gen.models.classifier" in found["loaded"]
    pipeline_modules = {"keras_gen.pipelines", "keras_gen.training", "keras_gen.semi_supervised", "keras_gen.recipes"}
    assert not pipeline_modules & set(found["loaded"]), "a model file imports a pipeline"


# === The shared run helper ===
def test_runs_never_share_a_folder_and_save_before_they_export(tmp_path):
    first = runs.RunFolders.create("tiny", tmp_path / "logs", tmp_path / "ckpt")
    second = runs.RunFolders.create("tiny", tmp_path / "logs", tmp_path / "ckpt")
    assert first.logdir != second.logdir and first.checkpoints != second.checkpoints
    assert first.logdir.is_dir() and first.checkpoints.parent == tmp_path / "ckpt" / "tiny"
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, filters=(4, 8), seed=0)
    checkpoint, exported = first.save_and_export(model, tmp_path / "exports", "tiny", export=False)
    assert checkpoint == first.checkpoints / "model.keras" and checkpoint.is_file() and exported is None
    with pytest.raises(ValueError, match="steps_per_epoch must be 0"):
        runs.train_settings(recipes.load_recipe("vae"), steps_per_epoch=-1)
    assert runs.train_settings(recipes.load_recipe("vae"), epochs=2)["epochs"] == 2


# === The one-class pipeline ===
def test_term_aucs_read_the_terms_each_model_declares_one_or_many():
    images = helpers.tiny_images(40, seed=3, binary=False)
    labels = np.arange(40) % 4
    is_anomaly = labels != 1
    aae = AAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, filters=(4, 8), discriminator_units=(8,), anomaly_weight=0.5, normal_class=1, seed=0)
    aae.calibrate(images[labels == 1])
    terms = aae.score_terms(images)
    error, log_density = (np.asarray(terms[name], np.float64) for name in ("reconstruction_error", "log_density"))
    (mean_error, std_error), (mean_density, std_density) = np.asarray(aae.score_statistics, np.float64).reshape(2, 2)
    aucs = pipelines.one_class.term_aucs(aae, images, labels, 1, batch_size=16)
    # The adversarial autoencoder's three columns, as before: each term ranked as anomalous-high, and both
    # standardised with weight 1 whatever its anomaly_weight.
    assert list(aucs) == ["reconstruction_error alone", "-log_density alone", "sum of the standardised terms, weights +-1"]
    assert aucs["reconstruction_error alone"] == pytest.approx(anomaly.roc_auc(error, is_anomaly))
    assert aucs["-log_density alone"] == pytest.approx(anomaly.roc_auc(-log_density, is_anomaly))
    weight_one = (error - mean_error) / std_error - (log_density - mean_density) / std_density
    assert aucs["sum of the standardised terms, weights +-1"] == pytest.approx(anomaly.roc_auc(weight_one, is_anomaly))
    # The EBM's one term, the energy: its column alone, and it is the model's score's ROC-AUC.
    ebm = EBM(image_shape=helpers.IMAGE_SHAPE, filters=(4, 8), hidden_units=8, buffer_size=16, normal_class=1, seed=0)
    ebm.calibrate(images[labels == 1])
    aucs = pipelines.one_class.term_aucs(ebm, images, labels, 1, batch_size=16)
    assert list(aucs) == ["energy alone"]
    assert aucs["energy alone"] == pytest.approx(anomaly.roc_auc(np.asarray(ebm.anomaly_score(images)["score"]), is_anomaly))
    records = [{"normal_class": 1, "terms": aucs}, {"normal_class": 2, "terms": {"energy alone": 0.25}}]
    table = pipelines.one_class.format_terms_table(records, ("T-shirt/top", "Trouser", "Pullover"))
    assert table.splitlines() == [
        "| normal class | energy alone |",
        "|---|---|",
        f"| 1 Trouser | {aucs['energy alone']:.4f} |",
        "| 2 Pullover | 0.2500 |",
        f"| mean | {(aucs['energy alone'] + 0.25) / 2:.4f} |",
    ]
    # Each class's line ends with its first validation metric, whatever the model calls it.
    result = {"history": {"loss": [0.5, 0.25], "val_energy_real": [0.0, -0.125]}, "train_seconds": 12.0}
    line = pipelines.one_class.class_line({"normal_class": 1, "row": {"auroc": 0.75}, "result": result, "seconds": 14.0}, ("T-shirt/top", "Trouser"))
    assert line == "class 1 (Trouser): ROC-AUC 0.7500, 2 epoch(s) in 12 s, 14 s with scoring; val energy real -0.1250"
    with pytest.raises(TypeError, match="one-class detector"):
        pipelines.one_class.term_aucs(VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2), images, labels, 1)


# The CLI's tiny one-class aae, run by the one_class pipeline for two normal classes.
TINY_ONE_CLASS = TINY_AAE_RECIPE + '[pipeline]\nname = "one_class"\nclasses = [0, 1]\nfpr = 0.1\n'


@pytest.mark.usefixtures("eager_steps")
def test_keras_gen_train_runs_the_one_class_pipeline_of_its_recipe(tmp_path, capsys):
    # 400 images: classes 0 and 1 keep more than a batch each after the held-out carve of 100.
    helpers.make_fake_source(tmp_path / "idx", seed=0, num_train=400, num_test=60)
    recipe = write(tmp_path, TINY_ONE_CLASS, "tiny.toml")
    where = ["--data-dir", str(tmp_path / "idx"), "--tfds-dir", str(tmp_path / "tfds"), "--image-size", "8"]
    dirs = ["--logdir", str(tmp_path / "logs"), "--export-dir", str(tmp_path / "exports"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    assert cli.main(["train", str(recipe), *where, *dirs]) == 0
    out = capsys.readouterr().out
    assert "class 0 (T-shirt/top): ROC-AUC" in out and "class 1 (Trouser): ROC-AUC" in out
    assert "threshold (FPR 0.1)" in out and "mean of 2" in out
    assert "Trained tiny: 2 one-class detector(s)" in out
    for normal_class in (0, 1):
        # Each class is a fit run of its own: its folders, its calibrated checkpoint, its export.
        checkpoint = next((tmp_path / "ckpt" / f"tiny_class{normal_class}").glob("*/model.keras"))
        assert str(checkpoint) in out
        assert (tmp_path / "exports" / f"tiny_class{normal_class}" / "1" / "saved_model.pb").is_file()
        assert not (tmp_path / "ckpt" / f"tiny_class{normal_class}" / "backup").exists()
    assert "Reprint the table from the checkpoints: keras-gen evaluate " in out and "--anomaly --fpr 0.1" in out
    table = [line for line in out.splitlines() if line.startswith(("0 T-shirt", "1 Trouser"))]
    assert len(table) == 2 and "n/a" not in " ".join(table), "each model was calibrated on its held-out images"


@pytest.mark.usefixtures("eager_steps")
def test_one_class_protocol_returns_one_record_per_class_and_refuses_models_without_a_normal_class(tmp_path):
    helpers.make_fake_source(tmp_path / "idx", seed=1, num_train=200, num_test=60)
    recipe = recipes.validate(
        {"model": "aae", "model_options": {"latent_dim": 2, "filters": [4, 8], "discriminator_units": [8]},
         "data": {"validation_size": 100, "image_size": [8, 8]}, "train": {"batch_size": 4, "summary_samples": 4}},
        name="protocol",
    )
    images = np.random.default_rng(0).uniform(size=(30, 8, 8, 1)).astype("float32")
    labels = np.arange(30) % 3
    train = runs.train_settings(recipe, epochs=1, steps_per_epoch=1)
    run = runs.run_settings(logdir=tmp_path / "logs", checkpoint_dir=tmp_path / "ckpt", source_dir=tmp_path / "idx", data_dir=tmp_path / "tfds", export=False, verbose=0)
    seen = []
    outcome = pipelines.one_class.evaluate_classes(recipe, [2], images, labels, train, run, fpr=0.2, on_class=seen.append)
    (record,) = outcome["records"]
    assert seen == [record] and outcome["skipped"] == []
    assert record["normal_class"] == 2 and record["row"]["num_normal"] == 10 and record["row"]["num_anomalies"] == 20
    assert np.isfinite(record["row"]["threshold"]) and all(0.0 <= auc <= 1.0 for auc in record["terms"].values())
    assert record["result"]["checkpoint"].parent.parent == tmp_path / "ckpt" / "protocol_class2"
    assert "| 2 Pullover | " in pipelines.one_class.format_terms_table([record], ("T-shirt/top", "Trouser", "Pullover"))
    vae = recipes.validate({"model": "vae"}, name="not_one_class")
    with pytest.raises(recipes.RecipeError, match="has no normal_class option"):
        pipelines.one_class.evaluate_classes(vae, [0], images, labels, train, run)
