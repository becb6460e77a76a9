"""The energy-based model: the discriminator that generates.

One network, the energy E(x), scores every image: low for images like the data, high for the rest, and
p(x) is proportional to exp(-E(x)). Generating means finding low-energy images, the "argmax of the
discriminator" that the lectures ask for. It is approximated by Langevin dynamics on the image, noisy
gradient descent on E:

    x <- clip(x - step_size * clip(dE/dx, gradient_clip) + noise_scale * eps, 0, 1),   eps ~ N(0, I)

Training repeats the lectures' loop in one step: draw negatives with K such steps, then lower the energy
of the real batch and raise that of the negatives (the maximum-likelihood gradient of an EBM, whose
normaliser's gradient is estimated by the negatives), plus a small penalty on the energies' magnitude:

    loss = mean E(real) - mean E(negatives) + regularisation_weight * mean(E(real)^2 + E(negatives)^2)

The negatives' chains start from a replay buffer of earlier chains' ends, so chains grow longer across
steps while each step pays for K steps only; a share of them restarts from uniform noise. What follows
which paper:

- Du & Mordatch, 2019 ("Implicit Generation and Modeling with Energy-Based Models"): the replay buffer
  with a small share of restarts from uniform noise (theirs: 5 %, the default `reinit_rate`), the
  squared-energy regulariser, the gradient step and the noise scale set apart (a step of 10 on the
  gradient with noise of 0.005, rather than exact Langevin's sqrt(2 * step) noise), chains that are not
  back-propagated through (the Langevin images enter the loss as constants), images in [0, 1] clipped
  to that range after every step. Not followed: their spectral normalisation and ResNet energy networks
  (a small Swish conv net here, `networks.energy_network`).
- Nijkamp et al., 2019 ("Learning Non-Convergent Non-Persistent Short-Run MCMC Toward Energy-Based
  Model") and 2020 ("On the Anatomy of MCMC-Based Maximum Likelihood Learning of Energy-Based Models"):
  sampling as a short, fixed-length chain from noise, which is what the `sample` endpoint does
  (`sample_steps` from uniform noise) and what `reinit_rate=1` trains with (no persistence); and their
  warning that such chains can give good samples without reaching the model's distribution: an
  energy trained with short chains need not keep good images over much longer ones (`refine` with
  many steps shows it), which depends on the chains' initialisation and noise, both options here.

Images are in [0, 1] everywhere (data preprocessing "scale"), for training and for the endpoints, so
the anomaly score's calibration and the one-class evaluation see the same images as training did.
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf

from keras_gen import networks
from keras_gen import noise
from keras_gen.anomaly import OneClassDetector
from keras_gen.export import UNIT_INTERVAL
from keras_gen.export import Endpoint
from keras_gen.models.base import SERVING_SEED_KEY
from keras_gen.models.base import GenerativeModel
from keras_gen.registry import register_model

# The most Langevin steps a `refine` request, or `sample_steps`, may ask for: a chain of 1,000 steps on
# a batch of 1,024 images already runs for minutes on a CPU.
MAX_LANGEVIN_STEPS = 1000
# Keys mixed into the serving streams' seeds: a `sample` seed and a `refine` image never share noise.
REFINE_SEED_KEY = SERVING_SEED_KEY + 1
# Under float16 the input gradient runs back through float16 layers: the summed energy is scaled by this
# before differentiating (and the gradient unscaled after), so small gradients do not flush to zero.
FLOAT16_GRADIENT_SCALE = 2.0**10
# Frames of the TensorBoard chain strip, from the start to 4K steps.
STRIP_FRAMES = 10


def _whole_number(name, value, minimum, maximum=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum or (maximum is not None and value > maximum):
        bound = f"an int from {minimum} to {maximum}" if maximum is not None else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value!r}.")
    return int(value)


def _real_number(name, value, positive=False, at_most=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    value = float(value)
    if (positive and value <= 0) or (not positive and value < 0) or (at_most is not None and value > at_most):
        wanted = "greater than 0" if positive else "0 or more"
        wanted += f" and at most {at_most:g}" if at_most is not None else ""
        raise ValueError(f"{name} must be {wanted}, got {value!r}.")
    return value


@register_model("ebm")
class EBM(OneClassDetector, GenerativeModel):
    """An energy-based model trained with Langevin negatives and a replay buffer, and an anomaly score.

    `fit` takes images in [0, 1] (data preprocessing "scale"). Each step draws one negative per real
    image: its chain starts from a random entry of the replay buffer, or with probability `reinit_rate`
    from uniform noise, runs `langevin_steps` steps (see the module docstring) and is written back to the
    buffer; then one optimizer step on the contrastive loss updates the energy network, the model's only
    trainable weights. `fit` reports `loss`, `energy_real` and `energy_fake` (mean E of the real batch
    and of the negatives), `langevin_grad_norm` (the mean over chains and steps of each chain's gradient
    norm |dE/dx|, before clipping) and `fresh_share` (the share of chains restarted from noise); the
    validation steps report `energy_real` alone (no chains: they would cost K network passes per image).

    The buffer is a non-trainable weight, `replay_buffer` ([buffer_size, *image_shape], float32,
    buffer_size * pixels * 4 bytes: 31 MB for 10,000 Fashion-MNIST images), so a `.keras` file and
    BackupAndRestore keep it and a resumed run continues with its chains. It starts as uniform noise.

    Endpoints (images in and out in [0, 1]): `energy(images) -> {energy}` (serving_default);
    `sample(seed) -> {images}`, `sample_steps` Langevin steps from uniform noise, both drawn from the
    request's seed alone, so a seed gives the same image in any batch; `refine(images, steps) ->
    {images}`, `steps[i]` (0 to `MAX_LANGEVIN_STEPS`) Langevin steps from `images[i]` (denoising, or
    in-painting an image whose missing part is noise), its noise seeded by the image's own bytes (the
    same image gives the same answer in any batch); and the anomaly endpoints of `OneClassDetector`,
    whose one term is the energy (weight +1: a high energy is anomalous). Train one-class detectors
    with `normal_class` (`keras-gen train ebm --normal-class N`).

    Args:
        energy_network: a Keras model, images -> one energy per image ([batch, 1] or [batch]); defaults
            to `networks.energy_network`.
        image_shape: (height, width, channels) of the images.
        langevin_steps: K, the Langevin steps of each training chain (at least 1).
        step_size: the step on the (clipped) energy gradient, greater than 0.
        noise_scale: the standard deviation of each step's Gaussian noise, 0 or more (0: gradient descent).
        gradient_clip: each pixel's energy gradient is clipped to [-gradient_clip, gradient_clip] before
            the step, so one step moves a pixel by at most step_size * gradient_clip; 0: no clipping.
        buffer_size: chains kept in the replay buffer; at least the global batch size (checked at the first
            step).
        reinit_rate: the probability that a chain restarts from uniform noise instead of the buffer, in
            [0, 1] (1: every chain is a short run from noise, Nijkamp et al.'s non-persistent training).
        regularisation_weight: the weight alpha of the mean squared energies in the loss, 0 or more.
        sample_steps: the Langevin steps of the `sample` endpoint (None: 4 * langevin_steps), 1 to
            `MAX_LANGEVIN_STEPS`.
        filters: channels of the default energy network's stride-2 convolutions; None: (32, 64), with
            stages added for larger images (`networks.stage_widths`).
        hidden_units: width of the default energy network's dense layer (0: none).
        normal_class: the one class the model is trained on as a one-class anomaly detector (recipes then
            keep only that class's images); None: all classes.
        mixed_precision: "bfloat16", "float16" or False, as in `GenerativeModel`.
        seed: seed of all the model's noise (buffer picks, restarts, Langevin noise) and of the buffer's
            initial noise.

    Example:
    >>> ebm = EBM(image_shape=(28, 28, 1), langevin_steps=20, seed=0)
    >>> ebm.compile(optimizer=keras.optimizers.Adam(1e-4, beta_1=0.0))
    >>> ebm.fit(images_in_0_1, epochs=10, batch_size=128)  # doctest: +SKIP
    >>> ebm.sample(tf.constant([0, 1, 2], tf.int64))["images"]  # doctest: +SKIP
    """

    metric_names = ("loss", "energy_real", "energy_fake", "langevin_grad_norm", "fresh_share")
    # Adam without momentum (beta_1 = 0): the negatives, and so the gradient's direction, change every step.
    default_optimizers = {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 1e-4, "beta_1": 0.0, "beta_2": 0.999}}}
    nested_models = ("energy_network",)
    default_endpoint = "energy"
    # The default network's filters for 28x28 images, which None scales with the image size.
    base_filters = (32, 64)

    def __init__(
        self,
        energy_network=None,
        image_shape=(28, 28, 1),
        langevin_steps=60,
        step_size=10.0,
        noise_scale=0.005,
        gradient_clip=0.01,
        buffer_size=10000,
        reinit_rate=0.05,
        regularisation_weight=0.1,
        sample_steps=None,
        filters=None,
        hidden_units=128,
        normal_class=None,
        mixed_precision=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, mixed_precision=mixed_precision, seed=seed, **kwargs)
        # === Config ===
        self.langevin_steps = _whole_number("langevin_steps", langevin_steps, 1, MAX_LANGEVIN_STEPS)
        self.step_size = _real_number("step_size", step_size, positive=True)
        self.noise_scale = _real_number("noise_scale", noise_scale)
        self.gradient_clip = _real_number("gradient_clip", gradient_clip)
        self.buffer_size = _whole_number("buffer_size", buffer_size, 1)
        self.reinit_rate = _real_number("reinit_rate", reinit_rate, at_most=1.0)
        self.regularisation_weight = _real_number("regularisation_weight", regularisation_weight)
        default_sample_steps = min(4 * self.langevin_steps, MAX_LANGEVIN_STEPS)
        self.sample_steps = default_sample_steps if sample_steps is None else _whole_number("sample_steps", sample_steps, 1, MAX_LANGEVIN_STEPS)
        self.filters = networks.resolve_widths(filters, self.image_shape, self.base_filters)
        self.hidden_units = _whole_number("hidden_units", hidden_units, 0)
        if normal_class is not None:
            normal_class = _whole_number("normal_class (a class index, or None)", normal_class, 0)
        self.normal_class = normal_class
        # === Layers ===
        self.energy_network = energy_network or networks.energy_network(
            self.image_shape, self.filters, self.hidden_units, dtype=self.network_dtype, name="energy_network"
        )
        self.check_networks("energy_network")
        # === State ===
        # Every replica holds the whole buffer; each step's writes are the same on all of them (see
        # `write_buffer`), and `only_first_replica` makes the assignment take one replica's copy.
        self.replay_buffer = self.add_weight(
            shape=(self.buffer_size, *self.image_shape),
            initializer=keras.initializers.RandomUniform(0.0, 1.0, seed=seed),
            trainable=False,
            dtype="float32",
            aggregation="only_first_replica",
            name="replay_buffer",
        )
        self.add_calibration_weights(num_terms=1)
        self.built = True

    def network_interfaces(self):
        return {
            "energy_network": networks.Interface(
                networks.Port("images", self.image_shape),
                networks.Port("energy", (1,), alternatives=((),)),
                f"An energy network returns one scalar per image. Build it for image_shape {self.image_shape}.",
            )
        }

    # === Inputs ===
    def check_training_images(self, images):
        """Checks a batch: float images of `image_shape` with values in [0, 1]."""
        return self.check_images_in_range(images, 0.0, 1.0, "use data preprocessing 'scale' (x / 255).")

    # === The energy and its Langevin dynamics ===
    def energies(self, images, training=False):
        """E(x) of each image, float32 [batch]."""
        return tf.reshape(tf.cast(self.energy_network(images, training=training), tf.float32), [-1])

    def energy_gradient(self, images):
        """dE/dx of each image (float32, shaped like `images`), the network's weights held fixed."""
        scale = FLOAT16_GRADIENT_SCALE if self.mixed_precision == "float16" else 1.0
        with tf.GradientTape() as tape:
            tape.watch(images)
            # Each image's energy depends on that image alone, so the gradient of the sum is per image.
            total = tf.reduce_sum(self.energies(images)) * scale
        return tape.gradient(total, images) / scale

    def langevin(self, images, steps, step_noise, first_step=0):
        """Runs Langevin chains from `images` (float32 in [0, 1]).

        Args:
            images: the chains' starts, [batch, *image_shape].
            steps: the steps of every chain (an int), or of each chain (int [batch]: a chain stops
                moving once it has taken its own).
            step_noise: a function (absolute step index, int32 scalar) -> standard-normal noise shaped
                like `images`: the chains' randomness, from wherever the caller draws it.
            first_step: the absolute index of the first step (a chain continued in pieces draws the
                noise it would have drawn in one run).

        Returns:
            (the chains' ends, each chain's mean gradient norm |dE/dx| over its steps, float32 [batch]).
        """
        images = tf.convert_to_tensor(images, tf.float32)
        per_chain = not isinstance(steps, int)
        if per_chain:
            own_steps = tf.cast(steps, tf.int32)
            # max over an empty batch would be the lowest int; the export refuses empty batches anyway.
            count = tf.reduce_max(tf.concat([own_steps, [0]], axis=0))
        else:
            count = tf.constant(steps, tf.int32)
        batch = tf.shape(images)[0]

        def step(index, x, norm_sum):
            gradient = self.energy_gradient(x)
            norm = tf.norm(tf.reshape(gradient, [batch, -1]), axis=1)
            if self.gradient_clip > 0:
                gradient = tf.clip_by_value(gradient, -self.gradient_clip, self.gradient_clip)
            moved = x - self.step_size * gradient
            if self.noise_scale > 0:
                moved += self.noise_scale * step_noise(first_step + index)
            moved = tf.clip_by_value(moved, 0.0, 1.0)
            if per_chain:
                active = index < own_steps
                moved = tf.where(tf.reshape(active, [-1, 1, 1, 1]), moved, x)
                norm = tf.where(active, norm, 0.0)
            return index + 1, moved, norm_sum + norm

        _, ends, norm_sum = tf.while_loop(lambda index, x, norm_sum: index < count, step, (tf.constant(0), images, tf.zeros([batch])))
        taken = tf.cast(own_steps if per_chain else tf.fill([batch], count), tf.float32)
        return ends, norm_sum / tf.maximum(taken, 1.0)

    # === Negatives for training: the replay buffer ===
    def draw_negatives(self, batch):
        """One Langevin negative per row of this replica's share of the batch, and {langevin_grad_norm,
        fresh_share} per row. The chains' ends are written back to the buffer.

        Every draw is made for the global batch from seeds that all replicas share (`keras_gen.noise`),
        so a distributed step picks, restarts and moves each chain as one device would.
        """
        pick_seed, fresh_seed, start_seed, chain_seed = (self.next_seed() for _ in range(4))
        shape = [batch, *self.image_shape]
        replica = tf.distribute.get_replica_context()
        replicas = replica.num_replicas_in_sync if replica is not None else 1
        global_batch = batch * replicas
        message = (
            f"EBM's replay buffer holds {self.buffer_size} chains, fewer than the global batch of images: raise buffer_size "
            "(or lower the batch size); each step needs one distinct chain per image."
        )
        if isinstance(global_batch, int) and global_batch > self.buffer_size:
            raise ValueError(f"{message} The batch holds {global_batch}.")
        check = tf.debugging.assert_less_equal(tf.cast(global_batch, tf.int64), tf.constant(self.buffer_size, tf.int64), message=message)
        with tf.control_dependencies([check]):
            # Distinct entries (the first rows of a random permutation): two chains of a step never share one.
            global_picks = tf.argsort(tf.random.stateless_uniform([self.buffer_size], seed=pick_seed))[:global_batch]
        picks = noise.replica_rows(lambda rows: global_picks[:rows], batch)
        fresh = noise.uniform([batch], fresh_seed) < self.reinit_rate
        starts = tf.where(tf.reshape(fresh, [-1, 1, 1, 1]), noise.uniform(shape, start_seed), tf.gather(self.replay_buffer.value, picks))

        def step_noise(index):
            return noise.normal(shape, tf.random.experimental.stateless_fold_in(chain_seed, index))

        ends, norms = self.langevin(starts, self.langevin_steps, step_noise)
        ends = tf.stop_gradient(ends)
        self.write_buffer(global_picks, ends)
        return ends, {"langevin_grad_norm": norms, "fresh_share": tf.cast(fresh, tf.float32)}

    def write_buffer(self, global_picks, ends):
        """Writes this step's chain ends (this replica's rows) to the buffer entries `global_picks` (those
        of the global batch): on one device in place; under a strategy every replica gathers all rows and
        the whole buffer is assigned, the same value on each (a mirrored variable has no scatter)."""
        buffer = self.replay_buffer.value
        indices = tf.reshape(global_picks, [-1, 1])
        if not isinstance(buffer, tf.distribute.DistributedValues):
            buffer.scatter_nd_update(indices, ends)
            return
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            ends = replica.all_gather(ends, axis=0)
        self.replay_buffer.assign(tf.tensor_scatter_nd_update(tf.convert_to_tensor(buffer), indices, ends))

    # === Losses, shared by train_step and test_step ===
    def compute_losses(self, real, negatives=None, training=False):
        """Per-example terms: {energy_real}, and with `negatives` (held constant) {loss, energy_fake}."""
        energy_real = self.energies(real, training=training)
        if negatives is None:
            return {"energy_real": energy_real}
        energy_fake = self.energies(tf.stop_gradient(negatives), training=training)
        penalty = tf.square(energy_real) + tf.square(energy_fake)
        return {
            "loss": energy_real - energy_fake + self.regularisation_weight * penalty,
            "energy_real": energy_real,
            "energy_fake": energy_fake,
        }

    # === Training ===
    def train_step(self, data):
        images, _ = self.unpack(data)
        real = self.check_training_images(images)
        batch = real.shape[0] if real.shape[0] is not None else tf.shape(real)[0]
        negatives, chain_terms = self.draw_negatives(batch)
        self.update_metrics(chain_terms)
        return self.gradient_step(lambda: self.compute_losses(real, negatives, training=True), "loss")

    def test_step(self, data):
        images, _ = self.unpack(data)
        return self.update_metrics(self.compute_losses(self.check_training_images(images)), only_given=True)

    def call(self, images, training=False):
        """The energy of each image (float32 [batch])."""
        return self.energies(self.check_images(images), training=training)

    # === Serving: every chain's noise comes from its own seed ===
    @staticmethod
    def _row_seeds(seeds, key):
        """int64 [batch, 2] stateless seeds, one per row, from int64 [batch] values and a stream key."""
        seeds = tf.cast(tf.reshape(seeds, [-1]), tf.int64)
        return tf.stack([seeds, tf.fill(tf.shape(seeds), tf.constant(key, tf.int64))], axis=1)

    def _row_noise(self, row_seeds, index, uniform=False):
        """Noise of one image's shape per row seed, for step `index` (None: the chain's start): a row's
        noise depends on its seed alone, never on the rest of the batch."""

        def one(row_seed):
            seed = row_seed if index is None else tf.random.experimental.stateless_fold_in(row_seed, index)
            draw = tf.random.stateless_uniform if uniform else tf.random.stateless_normal
            return draw(self.image_shape, seed=seed)

        return tf.map_fn(one, row_seeds, fn_output_signature=tf.float32)

    def chains_from_seeds(self, row_seeds, images, steps, first_step=0):
        """`langevin` from `images` with each row's noise drawn from its row seed; returns the ends."""
        ends, _ = self.langevin(images, steps, lambda index: self._row_noise(row_seeds, index), first_step)
        return ends

    def energy(self, images):
        return {"energy": self.energies(images)}

    def sample(self, seed):
        row_seeds = self._row_seeds(seed, SERVING_SEED_KEY)
        starts = self._row_noise(row_seeds, None, uniform=True)
        return {"images": self.chains_from_seeds(row_seeds, starts, self.sample_steps)}

    def refine(self, images, steps):
        steps = tf.cast(steps, tf.int64)
        message = f"refine: steps must be from 0 to {MAX_LANGEVIN_STEPS} Langevin steps per image."
        checks = [
            tf.debugging.assert_non_negative(steps, message=message),
            tf.debugging.assert_less_equal(steps, tf.constant(MAX_LANGEVIN_STEPS, tf.int64), message=message),
        ]
        with tf.control_dependencies(checks):
            steps = tf.identity(steps)
        # The seed of a row is a hash of its image's bytes (tf.fingerprint hashes each row).
        fingerprints = tf.bitcast(tf.fingerprint(images), tf.int64)
        return {"images": self.chains_from_seeds(self._row_seeds(fingerprints, REFINE_SEED_KEY), images, steps)}

    # === The anomaly score's one term (the score itself is OneClassDetector's) ===
    def score_terms(self, images):
        """{energy} per image: E(x) is -log p(x) up to a constant."""
        return {"energy": self.energies(images)}

    def score_weights(self):
        return (1.0,)

    def serving_endpoints(self):
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        return [
            Endpoint("energy", self.energy, [images], {"images": UNIT_INTERVAL}),
            Endpoint("sample", self.sample, [tf.TensorSpec([None], tf.int64, name="seed")]),
            Endpoint("refine", self.refine, [images, tf.TensorSpec([None], tf.int64, name="steps")], {"images": UNIT_INTERVAL}),
            *self.anomaly_endpoints(),
        ]

    # === TensorBoard ===
    def summary_inputs(self, validation_images, num_samples=64, seed=0):
        del validation_images
        return {"seed": tf.range(num_samples, dtype=tf.int64) + int(seed) * num_samples}

    def summary_images(self, fixed):
        """Samples from one fixed start after K and after 4K steps, and one chain's strip from its noise to
        4K steps: how far the energy's own "argmax" has come this epoch."""
        k = self.langevin_steps
        row_seeds = self._row_seeds(fixed["seed"], SERVING_SEED_KEY)
        starts = self._row_noise(row_seeds, None, uniform=True)
        after_k = self.chains_from_seeds(row_seeds, starts, k)
        after_4k = self.chains_from_seeds(row_seeds, after_k, 3 * k, first_step=k)
        # The first chain again, stopped at STRIP_FRAMES points from step 0 to 4K (the same chain as above).
        frames, frame = [starts[:1]], starts[:1]
        marks = np.round(np.linspace(0, 4 * k, STRIP_FRAMES)).astype(int)
        for done, target in zip(marks[:-1], marks[1:]):
            if target > done:
                frame = self.chains_from_seeds(row_seeds[:1], frame, int(target - done), first_step=int(done))
            frames.append(frame)
        columns = min(8, int(starts.shape[0]))
        return {
            "samples_after_k_steps": (after_k, columns),
            "samples_after_4k_steps": (after_4k, columns),
            "chain": (tf.concat(frames, axis=0), STRIP_FRAMES),
        }

    # === Serialisation ===
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "langevin_steps": self.langevin_steps,
                "step_size": self.step_size,
                "noise_scale": self.noise_scale,
                "gradient_clip": self.gradient_clip,
                "buffer_size": self.buffer_size,
                "reinit_rate": self.reinit_rate,
                "regularisation_weight": self.regularisation_weight,
                "sample_steps": self.sample_steps,
                "filters": list(self.filters),
                "hidden_units": self.hidden_units,
                "normal_class": self.normal_class,
            }
        )
        return config
