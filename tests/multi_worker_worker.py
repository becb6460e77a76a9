"""One worker of tests/test_multi_worker.py: trains a zoo model under MultiWorkerMirroredStrategy.

Run as `python -m tests.multi_worker_worker INDEX PORTS MODEL OUT` from the repository root: INDEX is
this worker's task index, PORTS the comma-separated localhost ports of the cluster. Writes OUT (.npz)
with the trainable weights and the logged history, and whether Keras still fails on a plain custom
`train_step` that returns scalars (the failure `models.base.multi_worker_reducible` works around).
"""

import json
import os
import sys


def fit_tiny(model_name, strategy, run_eagerly=False):
    """Trains the tiny `model_name` (its recipe's options and optimizers, 8x8 images, latent 2) for two
    epochs of four global batches of 8 under `strategy`; returns (model, history). The test runs it in
    one process too, to compare with the workers (eagerly: that reference need not be traced)."""
    import keras_gen  # noqa: F401
    import keras
    import tensorflow as tf

    from keras_gen import recipes
    from tests import helpers

    recipe = recipes.load_recipe(model_name)
    options = {**recipe.model_options, "image_shape": helpers.IMAGE_SHAPE, "latent_dim": 2, "seed": 0}
    options.pop("mixed_precision", None)
    keras.utils.set_random_seed(0)  # the same initial weights in every process
    with strategy.scope():
        model = recipe.model_class()(**options)
        recipe.compile_model(model)
    tanh = recipe.data["preprocessing"] == "tanh"
    images = helpers.tiny_images(32) * (2.0 if tanh else 1.0) - (1.0 if tanh else 0.0)
    # Under two workers each worker's replica takes its half of every global batch.
    dataset = tf.data.Dataset.from_tensor_slices(images.astype("float32")).batch(8, drop_remainder=True)
    model.run_eagerly = run_eagerly
    return model, model.fit(dataset, epochs=2, verbose=0).history


def main(index, ports, model_name, out):
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": [f"localhost:{port}" for port in ports.split(",")]}, "task": {"type": "worker", "index": int(index)}}
    )
    import keras_gen  # noqa: F401
    import keras
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    model, history = fit_tiny(model_name, strategy)

    class Plain(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.tracker = keras.metrics.Mean(name="loss")

        def call(self, inputs):
            return self.dense(inputs)

        def train_step(self, data):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(self.dense(data)))
            self.optimizer.apply(tape.gradient(loss, self.trainable_weights), self.trainable_weights)
            self.tracker.update_state(loss)
            return {"loss": self.tracker.result()}

    with strategy.scope():
        plain = Plain()
        plain.compile(optimizer="sgd")
    try:
        plain.fit(tf.data.Dataset.from_tensor_slices(np.ones((16, 3), "float32")).batch(8), epochs=1, verbose=0)
        upstream_fails = False
    except ValueError as error:
        upstream_fails = "Invalid reduction dimension 0" in str(error)
    # Numbered: layer names depend on what else the process built, the order does not.
    weights = {f"{index:03d}:{weight.path}": keras.ops.convert_to_numpy(weight) for index, weight in enumerate(model.trainable_weights)}
    np.savez(out, **weights, **{f"history/{key}": np.asarray(values) for key, values in history.items()}, upstream_fails=upstream_fails)


if __name__ == "__main__":
    main(*sys.argv[1:])
