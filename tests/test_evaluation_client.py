"""keras_gen.evaluation.client: one client for live and exported models, shared by `Sampler` and
`keras_gen.anomaly.AnomalyScorer`, carrying the model's dataset record."""

import keras_gen  # noqa: F401
import numpy as np
import pytest

from keras_gen import anomaly
from keras_gen import data
from keras_gen import evaluation
from keras_gen import export
from keras_gen.models import VAE
from tests import helpers


def test_sampler_from_model_and_from_its_export_draw_the_same_images(tmp_path):
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    live = evaluation.Sampler.from_model(model)
    seeds = np.arange(5)
    exported = evaluation.Sampler.from_export(export.export_model(model, tmp_path / "exports"))
    np.testing.assert_allclose(exported(seeds), live(seeds), atol=1e-6)
    assert not live.conditional and exported.name == "vae"
    with pytest.raises(FileNotFoundError, match="neither a .keras checkpoint, an export folder .* nor a preset"):
        evaluation.Sampler.load(tmp_path / "missing")




def test_the_client_calls_endpoints_by_name_and_carries_the_dataset_record(tmp_path):
    model = VAE(image_shape=helpers.IMAGE_SHAPE, latent_dim=2, seed=0)
    record = {"source": "folder:/data/tiny", "image_shape": [8, 8, 1], "class_names": ["a", "b"]}
    path = export.export_model(model, tmp_path / "exports", dataset=record)
    assert data.read_record(path) == record
    exported, live = evaluation.ModelClient.from_export(path.parent), evaluation.ModelClient.from_model(model)
    assert exported.dataset == record and live.dataset is None and exported.name == live.name == "vae"
    images = helpers.tiny_images(3, binary=False)
    np.testing.assert_allclose(exported("encode", images=images)["mean"], live("encode", images=images)["mean"], atol=1e-5)
    with pytest.raises(ValueError, match="encode endpoint takes images, not pictures"):
        live("encode", pictures=images)
    # The anomaly scorer is built from the same client, and says what the model lacks.
    with pytest.raises(ValueError, match=r"has no anomaly_score or anomaly_threshold endpoint, so it cannot score anomalies.*its endpoints: .*sample"):
        anomaly.AnomalyScorer.from_client(exported)
    # A checkpoint's record lies beside it.
    model.save(tmp_path / "model.keras")
    data.write_record(record, tmp_path)
    assert evaluation.ModelClient.load(tmp_path / "model.keras").dataset == record
