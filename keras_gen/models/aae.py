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
import numpy as np
import tensorflow as tf

from keras_gen import distributions
from keras_gen import losses
from keras_gen import networks
from keras_gen import noise
from keras_gen.anomaly import OneClassDetector
from keras_gen.export import UNIT_INTERVAL
from keras_gen.export import Endpoint
from keras_gen.models.adversarial import Adversarial
from keras_gen.models.autoencoder import CodeFunctions
from keras_gen.models.base import SERVING_SEED_KEY
from keras_gen.models.base import GenerativeModel
from keras_gen.models.gan import DCGAN_ADAM
from keras_gen.registry import register_model

PRIORS = ("gaussian", "mixture")
# TensorBoard gets code and prior histograms for at most this many latent dimensions.
MAX_HISTOGRAM_DIMS = 8
NUM_PRIOR_HISTOGRAM_SAMPLES = 1000


@register_model("aae")
class AAE(Adversarial, OneClassDetector, CodeFunctions, GenerativeModel):
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
    alone and combined. Calibration, thresholds and the anomaly endpoints are
    `keras_gen.anomaly.OneClassDetector`'s (an image is flagged when its score is above the threshold).

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
    # Adam for the reconstruction; DCGAN's Adam(2e-4, beta_1=0.5) for the two adversarial updates.
    default_optimizers = {"ae_optimizer": {"class_name": "Adam", "config": {"learning_rate": 1e-3}}, "d_optimizer": DCGAN_ADAM, "g_optimizer": DCGAN_ADAM}
    nested_models = ("encoder", "decoder", "discriminator")
    default_endpoint = "reconstruct"
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
        self.set_adversarial_loss(loss)
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
        # One mean and spread per score term (set by `calibrate`, saved and exported with the weights).
        self.add_calibration_weights(num_terms=2)
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
        return self.check_images_in_range(images, 0.0, 1.0, "use data preprocessing 'scale' (x / 255).")

    # === Loss terms, shared by the phases, train_step and test_step ===
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
    def optimizer_variables(self, name):
        if name == "ae_optimizer":
            return self.encoder.trainable_variables + self.decoder.trainable_variables
        if name == "d_optimizer":
            return self.discriminator.trainable_variables
        return self.encoder.trainable_variables

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

    # === The anomaly score's terms (the score itself is OneClassDetector's) ===
    def score_terms(self, images):
        """{reconstruction_error, log_density} per image (see the class docstring)."""
        codes = self.encoder(images, training=False)
        reconstruction = self.decode(codes)["images"]
        return {
            "reconstruction_error": tf.reduce_mean(tf.square(self.smooth(reconstruction) - self.smooth(images)), axis=[1, 2, 3]),
            "log_density": self.prior().log_prob(codes),
        }

    def score_weights(self):
        return (1.0, -self.anomaly_weight)

    def smooth(self, images):
        """Each pixel's mean over the pixels of its error_smoothing x error_smoothing neighbourhood that lie
        inside the image."""
        if self.error_smoothing == 1:
            return images
        return tf.nn.avg_pool2d(images, ksize=self.error_smoothing, strides=1, padding="SAME")

    def serving_endpoints(self):
        images = tf.TensorSpec([None, *self.image_shape], tf.float32, name="images")
        return [
            Endpoint("reconstruct", self.reconstruct, [images], {"images": UNIT_INTERVAL}),
            Endpoint("encode", self.encode, [images], {"images": UNIT_INTERVAL}),
            Endpoint("decode", self.decode, [tf.TensorSpec([None, self.latent_dim], tf.float32, name="code")]),
            Endpoint("sample", self.sample, [tf.TensorSpec([None], tf.int64, name="seed")]),
            *self.anomaly_endpoints(),
        ]

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
                "filters": list(self.filters),
                "convs_per_stage": self.convs_per_stage,
                "discriminator_units": list(self.discriminator_units),
                "anomaly_weight": self.anomaly_weight,
                "error_smoothing": self.error_smoothing,
                "normal_class": self.normal_class,
            }
        )
        return config
