"""The adversarial autoencoder (Makhzani et al., 2016), and the anomaly score built on it.

A deterministic autoencoder whose aggregated posterior q(z) (the codes of all training images) is
driven toward a prior p(z) by a discriminator on codes. Each training step runs the paper's two
phases: reconstruction (encoder and decoder minimise the reconstruction loss), then regularisation (the
discriminator learns to tell prior samples from codes with the encoder fixed, then the encoder learns
to fool it with the discriminator fixed). Three optimizers, one per update; the adversarial losses are
the GAN family's pure functions (`keras_gen.losses.GAN_LOSSES`).

Because the codes of normal images are pushed into the prior's high-density region, an image is
suspicious when it reconstructs badly or when its code lands where the prior puts little mass:
`anomaly_score` combines the two (see `AAE`).
"""

import keras_gen  # noqa: F401
import keras
import numpy as np
import tensorflow as tf

from keras_gen import distributions
from keras_gen import losses
from keras_gen import networks
from keras_gen import noise
from keras_gen.export import UNIT_INTERVAL
from keras_gen.export import Endpoint
from keras_gen.export import ValueRange
from keras_gen.models.autoencoder import CodeFunctions
from keras_gen.models.base import SERVING_SEED_KEY
from keras_gen.models.base import GenerativeModel
from keras_gen.models.gan import resolve_loss
from keras_gen.registry import register_model

PRIORS = ("gaussian", "mixture")
# Thresholds are stored for the false-positive rates 0, 1/1000, ..., 999/1000 of held-out normal data.
THRESHOLD_LEVELS = 1000
# TensorBoard gets code and prior histograms for at most this many latent dimensions.
MAX_HISTOGRAM_DIMS = 8
NUM_PRIOR_HISTOGRAM_SAMPLES = 1000
# Adam for the reconstruction; DCGAN's Adam(2e-4, beta_1=0.5) for the two adversarial updates.
DEFAULT_AE_LEARNING_RATE = 1e-3
DEFAULT_ADVERSARIAL_LEARNING_RATE = 2e-4
DEFAULT_BETA_1 = 0.5


@register_model("aae")
class AAE(CodeFunctions, GenerativeModel):
    """An adversarial autoencoder with a Gaussian or a fixed Gaussian-mixture prior, and an anomaly score.

    `fit` takes images in [0, 1] (data preprocessing "scale"). Each step makes three updates: the encoder
    and decoder on the reconstruction loss (`ae_optimizer`), the discriminator on prior samples ("real")
    against the batch's codes ("fake") with the encoder fixed (`d_optimizer`), and the encoder on the
    adversarial generator loss with the discriminator fixed (`g_optimizer`). `fit` reports
    `reconstruction` (the training loss per pixel), `mse` (squared error per pixel), `d_loss`, `g_loss`,
    `d_real` and `d_fake` (mean D on prior samples and on codes: probabilities for the cross-entropy
    losses), and the gradient norms `ae_grad_norm`, `d_grad_norm`, `g_grad_norm`.

    Prior. `prior="gaussian"`: N(0, I). `prior="mixture"`: `num_components` equally weighted Gaussians,
    standard deviation 0.5, means on a circle of radius 4 in the first two code dimensions
    (`distributions.ring_mixture`; needs latent_dim >= 2).

    Anomaly score. For an image x with code z = encoder(x) and reconstruction x' = sigmoid(decoder(z)):
    e = mean over pixels of (S(x') - S(x))^2, the reconstruction error, where S is the mean over each
    pixel's `error_smoothing` x `error_smoothing` neighbourhood (the part of it inside the image; 1:
    no smoothing), and l = log p(z), the code's log density under the prior. Smoothing makes the error
    count differences of shape more than the fine texture that the decoder misses on every image,
    normal or not. The score is

        score = (e - mean_e) / std_e - anomaly_weight * (l - mean_l) / std_l

    higher meaning more anomalous. The means and standard deviations are those of held-out normal images,
    set by `calibrate(images)` (0 and 1 until then), so the two terms are on one scale whatever the
    image size or latent dimension. The default weight, 1, weighs the two standardised terms equally;
    `anomaly_weight=0` scores by reconstruction error alone. How much the density term adds depends on
    how well the regularisation phase has shaped the codes: zoo/cards/aae.md gives each term's ROC-AUC
    alone and combined. `calibrate` also stores the thresholds at which the held-out images'
    false-positive rate is 0, 0.001, ..., 0.999
    (`keras_gen.anomaly.threshold_at_fpr`); `anomaly_threshold(fpr)` reads them back (an image is flagged
    when its score is above the threshold). A recipe run calibrates on its validation split, which the
    model never trains on.

    Args:
        encoder: a Keras model, images -> code [batch, latent_dim]; defaults to `networks.ae_encoder`.
        decoder: a Keras model, code -> logits shaped like the images; defaults to `networks.ae_decoder`.
        discriminator: a Keras model, code -> one raw score per code [batch, 1]; defaults to
            `networks.code_discriminator`.
        image_shape: (height, width, channels) of the images.
        latent_dim: width of the code.
        prior: "gaussian" or "mixture".
        num_components: components of the mixture prior.
        reconstruction_loss: "bce" or "mse" (`keras_gen.losses.reconstruction_loss`).
        loss: the adversarial loss: a name in `keras_gen.losses.GAN_LOSSES` or a pair of registered
            (discriminator_loss, generator_loss) functions.
        filters: channels of the default encoder's stages, finest first (the decoder mirrors them); None:
            `base_filters`, (32, 64), with stages added for larger images (`networks.stage_widths`).
        convs_per_stage: 3x3 convolutions per stage of the default encoder and decoder.
        discriminator_units: hidden layer widths of the default discriminator.
        anomaly_weight: weight of the standardised log density in the anomaly score (0: reconstruction
            error alone).
        error_smoothing: odd width of the mean filter applied to the image and its reconstruction
            before the anomaly score's squared error (1: per-pixel error).
        normal_class: the one class of the data the model is trained on when it is a one-class anomaly
            detector (recipes then keep only that class's images); None: trained on all classes.
        mixed_precision: "bfloat16", "float16" or False, as in `GenerativeModel`.
        seed: seed of all the model's noise (the prior samples).

    Example:
    >>> aae = AAE(image_shape=(28, 28, 1), latent_dim=8, prior="gaussian", seed=0)
    >>> aae.compile()
    >>> aae.fit(images_in_0_1, epochs=10, batch_size=128)  # doctest: +SKIP
    >>> aae.calibrate(held_out_normal_images)  # doctest: +SKIP
    >>> aae.anomaly_score(images)["score"]  # doctest: +SKIP
    """

    metric_names = ("reconstruction", "mse", "d_loss", "g_loss", "d_real", "d_fake", "ae_grad_norm", "d_grad_norm", "g_grad_norm")
    optimizer_names = ("ae_optimizer", "d_optimizer", "g_optimizer")
    nested_models = ("encoder", "decoder", "discriminator")
    default_endpoint = "reconstruct"
    nan_sentinel_weights = ("score_thresholds",)
    # The default networks' filters for 28x28 images, which None scales with the image size.
    base_filters = (32, 64)

    def __init__(
        self,
        encoder=None,
        decoder=None,
        discriminator=None,
        image_shape=(28, 28, 1),
        latent_dim=8,
        prior="gaussian",
        num_components=10,
        reconstruction_loss="bce",
        loss="non_saturating",
        filters=None,
        convs_per_stage=1,
        discriminator_units=(256, 256),
        anomaly_weight=1.0,
        error_smoothing=1,
        normal_class=None,
        mixed_precision=False,
        seed=None,
        **kwargs,
    ):
        super().__init__(image_shape=image_shape, mixed_precision=mixed_precision, seed=seed, **kwargs)
        if prior not in PRIORS:
            raise ValueError(f"Unknown prior {prior!r}; expected one of {', '.join(PRIORS)}.")
        if reconstruction_loss not in losses.RECONSTRUCTION_LOSSES:
            raise ValueError(f"Unknown reconstruction_loss {reconstruction_loss!r}; expected one of {', '.join(losses.RECONSTRUCTION_LOSSES)}.")
        if normal_class is not None and (isinstance(normal_class, bool) or not isinstance(normal_class, (int, np.integer)) or normal_class < 0):
            raise ValueError(f"normal_class must be a class index (an int >= 0) or None, got {normal_class!r}.")
        if float(anomaly_weight) < 0:
            raise ValueError(f"anomaly_weight must be 0 or more, got {anomaly_weight}.")
        if isinstance(error_smoothing, bool) or not isinstance(error_smoothing, (int, np.integer)) or error_smoothing < 1 or error_smoothing % 2 == 0:
            raise ValueError(f"error_smoothing must be an odd int >= 1 (1: no smoothing), got {error_smoothing!r}.")
        # === Config ===
        self.latent_dim = int(latent_dim)
        self.prior_kind = prior
        self.num_components = int(num_components)
        self.reconstruction_loss = reconstruction_loss
        self.loss_name = loss if isinstance(loss, str) else None
        self.d_loss_fn, self.g_loss_fn = resolve_loss(loss)
        self.filters = networks.resolve_widths(filters, self.image_shape, self.base_filters)
        self.convs_per_stage = int(convs_per_stage)
        self.discriminator_units = tuple(int(u) for u in discriminator_units)
        self.anomaly_weight = float(anomaly_weight)
        self.error_smoothing = int(error_smoothing)
        self.normal_class = None if normal_class is None else int(normal_class)
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be at least 1, got {latent_dim}.")
        self.prior()  # fails early for a prior that cannot be built (e.g. a mixture on a 1-d code)
        # === Layers ===
        dtype = self.network_dtype
        self.encoder = encoder or networks.ae_encoder(self.image_shape, self.latent_dim, self.filters, self.convs_per_stage, dtype=dtype, name="encoder")
        self.decoder = decoder or networks.ae_decoder(self.image_shape, self.latent_dim, self.filters[::-1], self.convs_per_stage, dtype=dtype, name="decoder")
        self.discriminator = discriminator or networks.code_discriminator(self.latent_dim, self.discriminator_units, dtype=dtype, name="discriminator")
        self.check_networks("encoder", "decoder", "discriminator")
        # === Calibration (set by `calibrate`, saved and exported with the weights) ===
        self.score_statistics = self.add_weight(
            shape=(4,), initializer=keras.initializers.Constant([0.0, 1.0, 0.0, 1.0]), trainable=False, name="score_statistics"
        )
        # NaN until calibrated, so that an uncalibrated threshold can never pass for a real one.
        self.score_thresholds = self.add_weight(
            shape=(THRESHOLD_LEVELS,), initializer=keras.initializers.Constant(float("nan")), trainable=False, name="score_thresholds"
        )
        self.built = True

    def network_interfaces(self):
        images, code = networks.Port("images", self.image_shape), networks.Port("code", (self.latent_dim,))
        sizes = f"Build it for image_shape {self.image_shape} and latent_dim {self.latent_dim}."
        return {
            "encoder": networks.Interface(images, code, sizes),
            "decoder": networks.Interface(code, networks.Port("logits", self.image_shape), sizes),
            "discriminator": networks.Interface(code, networks.SCORE, f"A discriminator returns one score per code. {sizes}"),
        }

    # === The prior ===
    def prior(self):
        """p(z), a tfd distribution over [latent_dim] codes."""
        if self.prior_kind == "gaussian":
            return distributions.standard_normal(self.latent_dim)
        return distributions.ring_mixture(self.num_components, self.latent_dim)

    def prior_samples(self, count, seed):
        """`count` codes drawn from the prior with one stateless seed (int32 [2]), the same for each example
        of the global batch however it is split over replicas (`noise.replica_rows`)."""
        prior = self.prior()
        return noise.replica_rows(lambda rows: prior.sample(rows, seed=seed), count)

    # === Inputs ===
    def check_training_images(self, images):
        """Checks a batch: float images of `image_shape` with values in [0, 1]."""
        images = self.check_images(images)
        message = f"{type(self).__name__} works on images in [0, 1]; use data preprocessing 'scale' (x / 255)."
        checks = [
            tf.debugging.assert_greater_equal(tf.reduce_min(images), -1e-3, message=message),
            tf.debugging.assert_less_equal(tf.reduce_max(images), 1.0 + 1e-3, message=message),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(images)

    # === Loss terms, shared by the phases, train_step and test_step ===
    def probabilities(self, scores):
        """What `d_real`/`d_fake` report: sigmoid(logits) for the cross-entropy losses, else the raw scores."""
        return tf.sigmoid(scores) if self.loss_name in losses.PROBABILITY_GAN_LOSSES else scores

    def discriminate(self, codes, training=False):
        """The discriminator's raw score of each code, float32 [batch]."""
        return tf.reshape(tf.cast(self.discriminator(codes, training=training), tf.float32), [-1])

    def reconstruction_terms(self, images, training=False):
        """(codes, per-example {reconstruction, mse}) of autoencoding `images`."""
        codes = self.encoder(images, training=training)
        logits = self.decoder(codes, training=training)
        terms = {
            "reconstruction": losses.reconstruction_loss(self.reconstruction_loss, images, logits),
            "mse": tf.reduce_mean(tf.square(tf.sigmoid(logits) - images), axis=[1, 2, 3]),
        }
        return codes, terms

    def discriminator_terms(self, prior_codes, codes, training=False):
        """Per-example {d_loss, d_real, d_fake}: prior samples are the real data, codes the generated."""
        real_scores = self.discriminate(prior_codes, training=training)
        fake_scores = self.discriminate(codes, training=training)
        return {
            "d_loss": self.d_loss_fn(real_scores, fake_scores),
            "d_real": self.probabilities(real_scores),
            "d_fake": self.probabilities(fake_scores),
        }

    def generator_terms(self, codes, training=False):
        """Per-example {g_loss}: the encoder, as the generator of codes, wants them taken for prior samples."""
        return {"g_loss": self.g_loss_fn(self.discriminate(codes, training=training))}

    def compute_losses(self, images, training=False):
        """Every per-example term of one step, without updates (what `test_step` reports)."""
        codes, terms = self.reconstruction_terms(images, training=training)
        prior_codes = self.prior_samples(tf.shape(codes)[0], self.next_seed())
        terms.update(self.discriminator_terms(prior_codes, codes, training=training))
        terms.update(self.generator_terms(codes, training=training))
        return terms

    # === Training ===
    def compile(self, ae_optimizer=None, d_optimizer=None, g_optimizer=None, run_eagerly=False, jit_compile="auto", steps_per_execution=1):
        """Configures the three optimizers (Keras' own `optimizer`, `loss` and `metrics` have no use here).

        Args:
            ae_optimizer: the reconstruction phase's optimizer, for the encoder and decoder (an instance,
                a name or a config); defaults to Adam(1e-3).
            d_optimizer: the discriminator's; defaults to Adam(2e-4, beta_1=0.5).
            g_optimizer: the encoder's in the regularisation phase; defaults to Adam(2e-4, beta_1=0.5).
            run_eagerly: as in `keras.Model.compile`.
            jit_compile: as in `keras.Model.compile` ("auto": XLA on GPUs, not on CPUs).
            steps_per_execution: as in `keras.Model.compile`.
        """
        self.compile_optimizers(
            {"ae_optimizer": ae_optimizer, "d_optimizer": d_optimizer, "g_optimizer": g_optimizer},
            run_eagerly=run_eagerly,
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
        )

    def optimizer_variables(self, name):
        if name == "ae_optimizer":
            return self.encoder.trainable_variables + self.decoder.trainable_variables
        if name == "d_optimizer":
            return self.discriminator.trainable_variables
        return self.encoder.trainable_variables

    def default_optimizer(self, name):
        if name == "ae_optimizer":
            return keras.optimizers.Adam(DEFAULT_AE_LEARNING_RATE)
        return keras.optimizers.Adam(DEFAULT_ADVERSARIAL_LEARNING_RATE, beta_1=DEFAULT_BETA_1)

    def compile_recipe(
        self,
        ae_learning_rate=DEFAULT_AE_LEARNING_RATE,
        d_learning_rate=DEFAULT_ADVERSARIAL_LEARNING_RATE,
        g_learning_rate=DEFAULT_ADVERSARIAL_LEARNING_RATE,
        beta_1=DEFAULT_BETA_1,
    ):
        """Compiles the model as the zoo's recipes do: Adam for each update, `beta_1` for the adversarial two."""
        self.compile(
            ae_optimizer=keras.optimizers.Adam(ae_learning_rate),
            d_optimizer=keras.optimizers.Adam(d_learning_rate, beta_1=beta_1),
            g_optimizer=keras.optimizers.Adam(g_learning_rate, beta_1=beta_1),
        )

    def reconstruction_step(self, images):
        """Reconstruction phase: one update of the encoder and decoder; returns its terms."""
        weights = self.encoder.trainable_weights + self.decoder.trainable_weights
        with tf.GradientTape() as tape:
            _, terms = self.reconstruction_terms(images, training=True)
            scaled = self.ae_optimizer.scale_loss(losses.global_batch_mean(terms["reconstruction"]))
        terms["ae_grad_norm"] = self.minimise(self.ae_optimizer, tape.gradient(scaled, weights), weights)
        return terms

    def discriminator_step(self, codes):
        """One update of the discriminator: fresh prior samples against `codes`, which are held fixed."""
        codes = tf.stop_gradient(codes)
        prior_codes = self.prior_samples(tf.shape(codes)[0], self.next_seed())
        with tf.GradientTape() as tape:
            terms = self.discriminator_terms(prior_codes, codes, training=True)
            scaled = self.d_optimizer.scale_loss(losses.global_batch_mean(terms["d_loss"]))
        weights = self.discriminator.trainable_weights
        terms["d_grad_norm"] = self.minimise(self.d_optimizer, tape.gradient(scaled, weights), weights)
        return terms

    def regularisation_step(self, images):
        """Regularisation phase: the discriminator update, then the encoder's, judged by the updated discriminator."""
        with tf.GradientTape() as tape:
            codes = self.encoder(images, training=True)
            # The encoder's tape sleeps while the discriminator learns on the same codes.
            with tape.stop_recording():
                terms = self.discriminator_step(codes)
            generator = self.generator_terms(codes, training=True)
            scaled = self.g_optimizer.scale_loss(losses.global_batch_mean(generator["g_loss"]))
        weights = self.encoder.trainable_weights
        generator["g_grad_norm"] = self.minimise(self.g_optimizer, tape.gradient(scaled, weights), weights)
        return {**terms, **generator}

    def train_step(self, data):
        self.require_optimizers()
        images, _ = self.unpack(data)
        images = self.check_training_images(images)
        terms = self.reconstruction_step(images)
        terms.update(self.regularisation_step(images))
        return self.update_metrics(terms)

    def test_step(self, data):
        images, _ = self.unpack(data)
        terms = self.compute_losses(self.check_training_images(images))
        return self.update_metrics(terms, only_given=True)

    # === Serving: encode, decode and reconstruct come from CodeFunctions ===
    def sample_codes(self, seed):
        """One prior sample per int64 seed, whatever else is in the batch (for either prior)."""
        prior = self.prior()

        def one(request_seed):
            # A full-range int32 pair hashed from the int64 seed: TFP's stateless samplers take int32 seeds.
            pair = tf.random.stateless_uniform(
                [2], seed=tf.stack([request_seed, tf.constant(SERVING_SEED_KEY, tf.int64)]), minval=None, maxval=None, dtype=tf.int32
            )
            return prior.sample(seed=pair)

        return tf.map_fn(one, tf.cast(seed, tf.int64), fn_output_signature=tf.float32)

    def sample(self, seed):
        return self.decode(self.sample_codes(seed))

    def anomaly_terms(self, images, statistics=None):
        """{score, reconstruction_error, log_density} per image (see the class docstring for the formula)."""
        statistics = self.score_statistics if statistics is None else statistics
        codes = self.encoder(images, training=False)
        reconstruction = self.decode(codes)["images"]
        error = tf.reduce_mean(tf.square(self.smooth(reconstruction) - self.smooth(images)), axis=[1, 2, 3])
        log_density = self.prior().log_prob(codes)
        mean_error, std_error, mean_log_density, std_log_density = tf.unstack(tf.cast(statistics, tf.float32))
        score = (error - mean_error) / std_error - self.anomaly_weight * (log_density - mean_log_density) / std_log_density
        return {"score": score, "reconstruction_error": error, "log_density": log_density}

    def smooth(self, images):
        """Each pixel's mean over the pixels of its error_smoothing x error_smoothing neighbourhood that lie
        inside the image."""
        if self.error_smoothing == 1:
            return images
        return tf.nn.avg_pool2d(images, ksize=self.error_smoothing, strides=1, padding="SAME")

    def anomaly_score(self, images):
        return self.anomaly_terms(images)

    def anomaly_threshold(self, fpr):
        """The calibrated score threshold for each false-positive rate in [0, 1) (linear between the levels
        stored at 0, 0.001, ..., 0.999; a rate above 0.999 gets that level's; NaN before `calibrate`), and
        the model's normal class (-1: all classes)."""
        fpr = tf.cast(fpr, tf.float32)
        finite = tf.debugging.assert_all_finite(fpr, "fpr must be a false-positive rate in [0, 1), not NaN or infinite.")
        with tf.control_dependencies([finite]):
            fpr = tf.identity(fpr)
        position = tf.clip_by_value(fpr, 0.0, (THRESHOLD_LEVELS - 1) / THRESHOLD_LEVELS) * THRESHOLD_LEVELS
        below = tf.floor(position)
        above = tf.minimum(below + 1.0, THRESHOLD_LEVELS - 1)
        thresholds = tf.cast(self.score_thresholds, tf.float32)
        low = tf.gather(thresholds, tf.cast(below, tf.int32))
        high = tf.gather(thresholds, tf.cast(above, tf.int32))
        normal_class = -1 if self.normal_class is None else self.normal_class
        return {
            "threshold": low + (position - below) * (high - low),
            "normal_class": tf.fill(tf.shape(fpr), tf.constant(normal_class, tf.int64)),
        }

    def serving_endpoints(self):
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        return [
            Endpoint("reconstruct", self.reconstruct, [images], {"images": UNIT_INTERVAL}),
            Endpoint("encode", self.encode, [images], {"images": UNIT_INTERVAL}),
            Endpoint("decode", self.decode, [tf.TensorSpec([None, self.latent_dim], tf.float32, name="code")]),
            Endpoint("sample", self.sample, [tf.TensorSpec([None], tf.int64, name="seed")]),
            Endpoint("anomaly_score", self.anomaly_score, [images], {"images": UNIT_INTERVAL}),
            # A rate in [0, 1), as `anomaly.threshold_at_fpr` and `keras-gen evaluate --fpr` take it; rates
            # above the last stored level (0.999) get that level's threshold.
            Endpoint(
                "anomaly_threshold",
                self.anomaly_threshold,
                [tf.TensorSpec([None], tf.float32, name="fpr")],
                {"fpr": ValueRange(0.0, 1.0, high_exclusive=True)},
            ),
        ]

    # === Anomaly detection: calibration on held-out normal images ===
    def calibrate(self, images, batch_size=500):
        """Sets the score's standardisation and thresholds from held-out normal images.

        Args:
            images: float images in [0, 1] that the model was not trained on, all of the normal class:
                an array, or a `tf.data.Dataset` of batches (of images, or of (images, labels)).
            batch_size: images scored at a time (for an array).

        Returns:
            {"num_images", "mean_error", "std_error", "mean_log_density", "std_log_density"}.
        """
        from keras_gen import anomaly

        if isinstance(images, tf.data.Dataset):
            batches = (self.unpack(batch)[0] for batch in images)
        else:
            images = np.asarray(images)
            batches = (images[start : start + batch_size] for start in range(0, len(images), batch_size))
        raw = tf.constant([0.0, 1.0, 0.0, 1.0])
        scored = [self.anomaly_terms(self.check_training_images(batch), raw) for batch in batches]
        if not scored:
            raise ValueError("calibrate needs held-out normal images; it got none.")
        error = np.concatenate([np.asarray(terms["reconstruction_error"], np.float64) for terms in scored])
        log_density = np.concatenate([np.asarray(terms["log_density"], np.float64) for terms in scored])
        if len(error) < 2:
            raise ValueError(f"calibrate needs at least 2 held-out normal images to estimate a spread, got {len(error)}.")
        # A floor on the spreads keeps a degenerate term (e.g. a constant code density) from dividing by 0.
        statistics = [error.mean(), max(error.std(), 1e-12), log_density.mean(), max(log_density.std(), 1e-12)]
        scores = (error - statistics[0]) / statistics[1] - self.anomaly_weight * (log_density - statistics[2]) / statistics[3]
        levels = np.arange(THRESHOLD_LEVELS) / THRESHOLD_LEVELS
        self.score_statistics.assign(np.asarray(statistics, np.float32))
        self.score_thresholds.assign(anomaly.threshold_at_fpr(scores, levels).astype(np.float32))
        names = ("mean_error", "std_error", "mean_log_density", "std_log_density")
        return {"num_images": len(error), **{name: float(value) for name, value in zip(names, statistics)}}

    def training_classes(self):
        """The classes a recipe trains on: the normal class of a one-class detector, else all (None)."""
        return None if self.normal_class is None else [self.normal_class]

    def after_training(self, datasets):
        """Called by `keras_gen.training.train_recipe` after `fit`: calibrates on the validation split."""
        if datasets.get("validation") is not None:
            self.calibrate(datasets["validation"])

    # === TensorBoard ===
    def summary_inputs(self, validation_images, num_samples=64, seed=0):
        images = self.check_images(validation_images)
        seeds = tf.range(num_samples, dtype=tf.int64) + int(seed) * num_samples
        return {
            "z": self.sample_codes(seeds),
            "images": images,
            "prior_codes": self.prior_samples(NUM_PRIOR_HISTOGRAM_SAMPLES, tf.constant([int(seed), 1], tf.int32)),
        }

    def summary_images(self, fixed):
        images = fixed["images"][:8]
        # Originals on one row, their reconstructions on the row below.
        pairs = tf.concat([images, self.reconstruct(images)["reconstruction"]], axis=0)
        return {"samples": (self.decode(fixed["z"])["images"], 8), "reconstructions": (pairs, int(images.shape[0]))}

    def summary_histograms(self, fixed):
        """{name: values}: per code dimension, the validation images' codes beside samples of the prior,
        so TensorBoard shows how far the aggregated posterior is from p(z)."""
        codes = self.encode(fixed["images"])["code"]
        histograms = {}
        for dim in range(min(self.latent_dim, MAX_HISTOGRAM_DIMS)):
            histograms[f"latent_{dim}/codes"] = codes[:, dim]
            histograms[f"latent_{dim}/prior"] = fixed["prior_codes"][:, dim]
        return histograms

    # === Serialisation ===
    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "latent_dim": self.latent_dim,
                "prior": self.prior_kind,
                "num_components": self.num_components,
                "reconstruction_loss": self.reconstruction_loss,
                "loss": self.loss_name or [keras.saving.get_registered_name(fn) for fn in (self.d_loss_fn, self.g_loss_fn)],
                "filters": list(self.filters),
                "convs_per_stage": self.convs_per_stage,
                "discriminator_units": list(self.discriminator_units),
                "anomaly_weight": self.anomaly_weight,
                "error_smoothing": self.error_smoothing,
                "normal_class": self.normal_class,
            }
        )
        return config
