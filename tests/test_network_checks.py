"""Every zoo model holds every network it is given to what it feeds it and needs back, at construction."""

import functools
import math
import re

import keras_gen  # noqa: F401
import keras
import numpy as np
import pytest
from keras import layers

from keras_gen import networks
from keras_gen import registry
from keras_gen.models import VAE
from tests import helpers
from tests.zoo_cases import TINY_MODELS

LATENT = 2


def ports(declared):
    return declared if isinstance(declared, list) else [declared]


def example_shapes(interface):
    """One example shape per declared output (3 features where any shape will do)."""
    return [(3,) if port.shape is None else port.shape for port in ports(interface.outputs)]


def network_for(interface, shapes=None, name="network"):
    """A functional network that takes `interface.inputs` and returns one tensor per example shape in
    `shapes` (default: the interface's outputs; a single shape, not a list: one tensor)."""
    if shapes is None:
        shapes = example_shapes(interface) if isinstance(interface.outputs, list) else example_shapes(interface)[0]
    inputs = [keras.Input(port.shape, dtype=port.dtype, name=port.name) for port in ports(interface.inputs)]
    # Integer inputs (labels) go through an embedding, so that every input reaches every output.
    flat = [layers.Flatten()(layers.Embedding(16, 1)(x) if "int" in x.dtype else x) for x in inputs]
    hidden = flat[0] if len(flat) == 1 else layers.Concatenate()(flat)
    outputs = [layers.Reshape(shape)(layers.Dense(math.prod(shape))(hidden)) for shape in (shapes if isinstance(shapes, list) else [shapes])]
    return keras.Model(inputs if isinstance(interface.inputs, list) else inputs[0], outputs if isinstance(shapes, list) else outputs[0], name=name)


def wrong_count(interface):
    """The interface's inputs, but one output too many (for one output) or one only (for several)."""
    first = example_shapes(interface)[0]
    return network_for(interface, first if isinstance(interface.outputs, list) else [first, first])


def wrong_shape(interface):
    """The interface's inputs and output structure, the first output of a known shape one wider."""
    shapes = example_shapes(interface)
    index = next(i for i, port in enumerate(ports(interface.outputs)) if port.shape is not None)
    shapes[index] = (*shapes[index][:-1], shapes[index][-1] + 1)
    return network_for(interface, shapes if isinstance(interface.outputs, list) else shapes[0])


# (zoo name, role) for every network a zoo model takes as a constructor argument.
GIVEN_NETWORKS = [(name, role) for name in sorted(TINY_MODELS) for role in registry.get_model_class(name).nested_models]


@functools.cache
def tiny_model(name):
    """One tiny model per zoo name for this module's tests, which only read it."""
    return TINY_MODELS[name]()[0]


@pytest.mark.parametrize("name, role", GIVEN_NETWORKS)
def test_a_network_that_does_not_fit_is_refused_at_construction_naming_it(name, role):
    model = tiny_model(name)
    owner = type(model).__name__
    # The model's arguments with its own networks (shared, not copied): only `role` changes.
    arguments = {**model.get_config(), **{network: getattr(model, network) for network in type(model).nested_models}}
    interfaces = model.network_interfaces()
    assert role in interfaces, f"{owner} takes a {role} but declares no interface for it"
    several = isinstance(interfaces[role], list)
    # For a list of networks (the HVAE's), the first one is on trial and the others are the model's.
    interface = interfaces[role][0] if several else interfaces[role]
    label = re.escape(f"{owner}'s {role}[0]" if several else f"{owner}'s {role}")

    def build(network):
        return type(model)(**{**arguments, role: [network, *getattr(model, role)[1:]] if several else network})

    fitting = network_for(interface)
    rebuilt = build(fitting)  # a user's own network with the declared inputs and outputs is accepted
    assert (getattr(rebuilt, role)[0] if several else getattr(rebuilt, role)) is fitting
    for wrong in (wrong_count(interface), wrong_shape(interface)):
        with pytest.raises(ValueError, match=rf"^{label} must map .* to .*, but it outputs ") as error:
            build(wrong)
        assert ports(interface.inputs)[0].describe() in str(error.value), "the message says what the network is fed"
    if not several:
        with pytest.raises(ValueError, match=rf"^{label} must be a Keras model"):
            build("a network")


def test_a_vae_encoder_with_one_output_of_twice_the_latent_size_is_refused_before_fit():
    """The common convention Dense(2 * latent_dim) used to fail inside fit with OperatorNotAllowedInGraphError."""
    encoder = keras.Sequential([keras.Input(helpers.IMAGE_SHAPE), layers.Flatten(), layers.Dense(2 * LATENT)])
    with pytest.raises(ValueError) as error:
        VAE(encoder=encoder, image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT)
    message = str(error.value)
    expected = "VAE's encoder must map images (None, 8, 8, 1) to [mean (None, 2), log_variance (None, 2)], but it outputs one tensor (None, 4)."
    assert message.startswith(expected)
    assert "Dense(2 * latent_dim) output is not split" in message


def test_networks_built_for_other_shapes_or_that_fail_on_their_inputs_say_so():
    bigger = networks.conv_encoder((16, 16, 1), LATENT, filters=(4,))
    message = r"^VAE's encoder must map images \(None, 8, 8, 1\) .*, but it takes \(None, 16, 16, 1\)\. Build it for image_shape \(8, 8, 1\)"
    with pytest.raises(ValueError, match=message):
        VAE(encoder=bigger, image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT)
    narrower = networks.conv_decoder(helpers.IMAGE_SHAPE, LATENT + 1, filters=(4,))
    with pytest.raises(ValueError, match=r"^VAE's decoder must map z \(None, 2\) to logits \(None, 8, 8, 1\), but it takes \(None, 3\)\."):
        VAE(decoder=narrower, image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT)
    # An unbuilt Sequential cannot reshape 2 numbers into an 8x8 image: its own error follows the explanation.
    reshape_only = keras.Sequential([layers.Reshape(helpers.IMAGE_SHAPE)])
    message = r"^VAE's decoder must map z .*, but calling it on such inputs fails\. Build it .* The error: ValueError: .* Reshape\.call"
    with pytest.raises(ValueError, match=message) as error:
        VAE(decoder=reshape_only, image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT)
    assert "The total size of the tensor must be unchanged" in str(error.value) and "\x1b[" not in str(error.value)


class SplitEncoder(keras.Model):
    """A subclassed Gaussian encoder: the check traces its `call` symbolically."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flatten = layers.Flatten()
        self.mean = layers.Dense(LATENT)
        self.log_variance = layers.Dense(LATENT)

    def call(self, images):
        x = self.flatten(images)
        return [self.mean(x), self.log_variance(x)]


def test_subclassed_and_unbuilt_networks_that_fit_are_accepted_and_train():
    decoder = keras.Sequential([layers.Dense(64), layers.Reshape(helpers.IMAGE_SHAPE)])
    model = VAE(encoder=SplitEncoder(), decoder=decoder, image_shape=helpers.IMAGE_SHAPE, latent_dim=LATENT, seed=0)
    assert decoder.built, "the check builds an unbuilt Sequential for the codes it is fed"
    model.compile(optimizer="adam")
    history = helpers.fit_steps(model, helpers.tiny_images(16), steps=2)
    assert all(np.isfinite(history[key][0]) for key in model.metric_names)
