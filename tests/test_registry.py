"""keras_gen.registry: zoo names -> model classes, registered once, found by name (or a clear error)."""

import keras_gen  # noqa: F401
import keras
import pytest

from keras_gen import registry
from keras_gen.models import DCGAN
from keras_gen.models import VAE


def test_every_zoo_name_finds_its_class_and_keras_finds_it_too():
    names = registry.model_names()
    assert names == sorted(names) and {"vae", "dcgan", "aae", "hvae"} <= set(names)
    for name in names:
        cls = registry.get_model_class(name)
        assert cls.zoo_name == name
        assert keras.saving.get_registered_object(f"keras_gen>{cls.__name__}") is cls
    assert registry.get_model_class("vae") is VAE and registry.get_model_class("dcgan") is DCGAN


def test_an_unknown_name_lists_the_zoo():
    with pytest.raises(KeyError, match=r"Unknown model 'vea'; the zoo has: .*vae"):
        registry.get_model_class("vea")


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="A model is already registered as 'vae': VAE"):

        @registry.register_model("vae")
        class AnotherVAE(VAE):
            pass
