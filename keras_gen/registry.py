"""The zoo's model registry: zoo names -> model classes, read by the CLI and the recipes."""

import keras_gen  # noqa: F401
import keras

_MODELS = {}


def register_model(name):
    """Class decorator: registers a model under `name` and as a Keras serialisable (package keras_gen)."""

    def decorate(cls):
        if name in _MODELS:
            raise ValueError(f"A model is already registered as {name!r}: {_MODELS[name].__name__}.")
        cls = keras.saving.register_keras_serializable(package="keras_gen")(cls)
        cls.zoo_name = name
        _MODELS[name] = cls
        return cls

    return decorate


def model_names():
    """The registered zoo names, sorted."""
    import_zoo()
    return sorted(_MODELS)


def get_model_class(name):
    """The model class registered as `name`; a KeyError listing the valid names otherwise."""
    import_zoo()
    if name not in _MODELS:
        raise KeyError(f"Unknown model {name!r}; the zoo has: {', '.join(sorted(_MODELS))}.")
    return _MODELS[name]


def import_zoo():
    """Registers every zoo model, with Keras too (`keras.saving.get_registered_object`), by importing
    `keras_gen.models`: what a caller needs before Keras rebuilds a saved zoo model. Idempotent."""
    # Importing the package runs every @register_model in it.
    import keras_gen.models  # noqa: F401
