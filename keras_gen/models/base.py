"""What every model of the zoo shares: seeded noise, input checks, metric trackers, endpoint hooks."""

import copy
import functools
import inspect

import keras_gen  # noqa: F401
import keras
import tensorflow as tf

from keras_gen import losses
from keras_gen import networks
from keras_gen import noise

# Mixed into stateless seeds so that a serving request's seed never collides with training's stream.
SERVING_SEED_KEY = 0x5EED

# What the `mixed_precision` option accepts besides False: the compute dtype of the default networks' hidden layers.
MIXED_PRECISION_DTYPES = ("bfloat16", "float16")

# What `compile` takes besides the optimizers of a model with several.
MULTI_OPTIMIZER_COMPILE_ARGUMENTS = ("run_eagerly", "jit_compile", "steps_per_execution")


def resolve_mixed_precision(mixed_precision):
    """The `mixed_precision` option as models store it: "bfloat16", "float16" or False (float32).

    True means "bfloat16", what the option meant when it was a switch (older configs and recipes); None
    means False. Anything else raises a ValueError that lists what is accepted.
    """
    if mixed_precision is None or mixed_precision is False:
        return False
    if mixed_precision is True:
        return "bfloat16"
    if isinstance(mixed_precision, str) and mixed_precision in MIXED_PRECISION_DTYPES:
        return mixed_precision
    raise ValueError(f"mixed_precision must be \"bfloat16\", \"float16\" or False (float32; false in a recipe), got {mixed_precision!r}.")


def mixed_precision_policy(mixed_precision):
    """The Keras dtype policy of the default networks' hidden layers for a `mixed_precision` option:
    "mixed_bfloat16", "mixed_float16" or None (float32). The networks' outputs stay float32."""
    resolved = resolve_mixed_precision(mixed_precision)
    return f"mixed_{resolved}" if resolved else None


def in_multi_worker_mode(strategy=None):
    """Whether `strategy` (default: the current one) all-reduces across several workers (processes)."""
    strategy = strategy or tf.distribute.get_strategy()
    # The same test Keras' trainer makes before it takes its multi-worker reduction path.
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def multi_worker_reducible(logs):
    """A step's logs in the form Keras can reduce across workers.

    Keras 3.15's `fit`/`evaluate` reduce what a step returns with `strategy.reduce("MEAN", value, axis=0)`
    when the strategy spans several workers, which fails for the scalar metrics every custom
    `train_step` returns ("Invalid reduction dimension 0 for input with 0 dimensions";
    keras-team/keras#20585, tensorflow/tensorflow#72388). Under such a strategy each scalar goes out as
    a [1] vector, which that reduction turns back into a scalar (the mean over the replicas); elsewhere
    `logs` is returned as it is. This is the work-around's one place: `update_metrics` applies it to
    every model's steps, and tests/test_multi_worker.py says when Keras no longer needs it.
    """
    if not in_multi_worker_mode():
        return logs
    return {name: tf.reshape(value, [1]) if value.shape.rank == 0 else value for name, value in logs.items()}


def constructor_signature(cls):
    """The signature of `cls(...)` for a model class: every option it takes, with its own default.

    A variant's `__init__` lists only the options it adds (keyword-only) and passes the rest on with
    `**kwargs`; its `option_defaults` (a dict) change the defaults of options its parents take. This
    merges the constructors along the class's ancestry, the most derived default winning, down to
    `GenerativeModel` (whose own `**kwargs` go to `keras.Model`: name, dtype, trainable). It is what
    `inspect.signature(cls.__init__)` shows, what recipes validate `[model_options]` against, and what a
    variant's constructor binds its arguments with.
    """
    # Parameters in the order the constructors list them (the most derived first); each default is
    # the one its most derived class gives, in `option_defaults` or in its own constructor.
    parameters, defaults, var_keyword = {}, {}, None
    for klass in cls.__mro__:
        for name, value in vars(klass).get("option_defaults", {}).items():
            defaults.setdefault(name, value)
        init = vars(klass).get("__init__")
        init = getattr(init, "own_init", init)
        if init is None:
            continue
        own = list(inspect.signature(init).parameters.values())[1:]
        for parameter in own:
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                var_keyword = var_keyword or parameter
            elif parameter.name not in parameters:
                parameters[parameter.name] = parameter
                defaults.setdefault(parameter.name, parameter.default)
        if klass is GenerativeModel or not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own):
            break
    unknown = sorted(set(defaults) - set(parameters))
    if unknown:
        raise TypeError(f"{cls.__name__}.option_defaults names {', '.join(unknown)}, which no constructor of its ancestry takes.")
    parameters = {name: parameter.replace(default=defaults[name]) for name, parameter in parameters.items()}
    ordered = sorted(parameters.values(), key=lambda parameter: parameter.kind)  # stable: positional first
    self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Signature([self_parameter, *ordered, *([var_keyword] if var_keyword else [])])


def _constructor_binding(cls):
    """A constructor for `cls` that binds its arguments with `constructor_signature(cls)` and hands them on,
    by keyword, to `cls`'s own `__init__` (or its parent's when it has none)."""
    own = vars(cls).get("__init__")
    signature = constructor_signature(cls)
    var_keyword = next((p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD), None)

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop("self")
        extra = arguments.pop(var_keyword, {}) if var_keyword else {}
        if own is not None:
            own(self, **arguments, **extra)
        else:
            super(cls, self).__init__(**arguments, **extra)

    if own is not None:
        functools.update_wrapper(__init__, own)
        del __init__.__wrapped__  # inspect must read __signature__, not the own constructor's
    __init__.__signature__ = signature
    __init__.own_init = own
    return __init__


class GenerativeModel(keras.Model):
    """Base class of the zoo's models (subclass it; it is not a model on its own).

    Subclasses set `metric_names` and implement `train_step`/`test_step`, `serving_endpoints()`,
    `summary_inputs()` and `summary_images()`, and declare what they feed their networks and need back
    in `network_interfaces()`, which `check_networks` holds given networks to. All randomness comes
    from the model's own `keras.random.SeedGenerator`, so a seeded model trains the same way every time.

    A variant lists only the options it adds (keyword-only, the rest passed on with `**kwargs`) and sets
    the defaults it changes in `option_defaults`; its constructor then shows and checks every option
    (`constructor_signature`). A model with several optimizers names them in `optimizer_names`, says
    which variables each updates (`optimizer_variables`) and gives their `default_optimizers`; the
    one `compile` takes each by name.

    Every model takes `mixed_precision`: "bfloat16" or "float16" computes the default networks' hidden
    layers in that dtype (weights, losses and network outputs stay float32; networks you pass keep their
    own policies); with "float16" each optimizer is wrapped in a `keras.optimizers.LossScaleOptimizer`,
    whose dynamic loss scale every step applies, and a step whose gradients overflow is skipped. float16
    is for GPUs: TensorFlow's float16 convolutions on CPU are hundreds of times slower than float32.

    Args:
        image_shape: (height, width, channels) of the images the model works on.
        mixed_precision: "bfloat16", "float16" or False (float32); True means "bfloat16".
        seed: integer seed of the model's noise (None for a random one).
    """

    metric_names = ()
    # The endpoint that TF Serving calls when a request names no signature.
    default_endpoint = None
    # Names of the model's own weights that are NaN by design until a later step sets them (e.g. an
    # anomaly detector's thresholds before calibration): export's finite-weights check lets them be all NaN.
    nan_sentinel_weights = ()
    # Constructor arguments that are Keras models (or lists of them): `get_config` serialises them
    # whole and `from_config` rebuilds them, so subclasses list only their plain arguments.
    nested_models = ()
    # {option: default} that a variant changes from its parents' constructors (see `constructor_signature`).
    option_defaults = {}
    # Class labels 0..num_classes - 1 that a class-conditional model reads (0: none; see `check_labels`).
    num_classes = 0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A variant that lists only its own options (or changes defaults) gets a constructor with the
        # merged signature, so `cls(...)`, `inspect.signature` and recipes see every option.
        if constructor_signature(cls) != inspect.signature(cls.__init__):
            cls.__init__ = _constructor_binding(cls)

    def __init__(self, image_shape=(28, 28, 1), mixed_precision=False, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.mixed_precision = resolve_mixed_precision(mixed_precision)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
        # Set by `compile_optimizers`; None until the model is compiled.
        for name in self.optimizer_names:
            setattr(self, name, None)

    @property
    def metrics(self):
        # Listing the trackers lets Keras reset them at the start of each epoch.
        return list(self.trackers.values())

    def update_metrics(self, values, only_given=False):
        """Feeds each per-example (or scalar) value to its tracker and returns every tracker's result, or
        with `only_given` only those of `values` (so that, e.g., `val_*` logs leave out the gradient
        norms that only training computes, rather than report meaningless zeros)."""
        for name, value in values.items():
            if name in self.trackers:
                self.trackers[name].update_state(value)
        results = {name: tracker.result() for name, tracker in self.trackers.items() if not only_given or name in values}
        return multi_worker_reducible(results)

    @property
    def network_dtype(self):
        """The dtype policy of the default networks' hidden layers (None: float32)."""
        return mixed_precision_policy(self.mixed_precision)

    # === Training ===
    def loss_scaled(self, optimizer):
        """`optimizer` as this model's steps use it: under float16 mixed precision wrapped in a
        `keras.optimizers.LossScaleOptimizer` (once), otherwise as it is. The one place where optimizers
        get loss scaling: `compile` (one optimizer) and `compile_optimizers` (several) call it."""
        if self.mixed_precision == "float16" and optimizer is not None and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    def compile(self, optimizer=None, **kwargs):
        """As `keras.Model.compile`, each optimizer passed through `loss_scaled`.

        A model with several optimizers (`optimizer_names`, e.g. a GAN's `d_optimizer` and `g_optimizer`)
        takes each by its name instead of `optimizer`, as an instance, a name ("adam") or a config dict,
        its entry in `default_optimizers` when left out; besides them only Keras' `run_eagerly`,
        `jit_compile` and `steps_per_execution` (its steps have no use for Keras' `loss` and `metrics`).
        A model with one optimizer takes Keras' arguments; `optimizer` defaults to Keras' "rmsprop".

        Example:
        >>> gan.compile(d_optimizer=keras.optimizers.RMSprop(5e-5), g_optimizer="adam")  # doctest: +SKIP
        """
        if not self.optimizer_names:
            optimizer = keras.optimizers.get("rmsprop" if optimizer is None else optimizer)
            super().compile(optimizer=self.loss_scaled(optimizer), **kwargs)
            return
        optimizers = {name: kwargs.pop(name) for name in self.optimizer_names if name in kwargs}
        unknown = (["optimizer"] if optimizer is not None else []) + sorted(set(kwargs) - set(MULTI_OPTIMIZER_COMPILE_ARGUMENTS))
        if unknown:
            arguments = ", ".join(f"{name}=..." for name in self.optimizer_names)
            raise ValueError(
                f"{type(self).__name__} has several optimizers and takes each by its name, compile({arguments}), with "
                f"{', '.join(MULTI_OPTIMIZER_COMPILE_ARGUMENTS)}; it does not take {', '.join(unknown)}."
            )
        self.compile_optimizers(optimizers, **kwargs)

    def make_train_function(self, force=False):
        """Keras' train function, with a single optimizer built before the step is first traced.

        Without a distribution strategy Keras (3.15, TensorFlow) builds the optimizer inside that first
        trace; the slot variables it creates there make TensorFlow trace the whole step a second time
        (a VAE's first `fit` paid two traces). Building it here, on the variables Keras would give it,
        saves one. A model with a layer not yet built keeps Keras' way, as the variables are not all there.
        """
        # (Models with several optimizers build theirs in `compile_optimizers`; Keras' `optimizer` is None there.)
        unbuilt_optimizer = self.optimizer is not None and not self.optimizer.built
        if unbuilt_optimizer and all(layer.built for layer in self._flatten_layers()):
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        return super().make_train_function(force)

    def gradient_step(self, loss_terms, objective="loss"):
        """One optimizer step for single-optimizer models' `train_step`s.

        Calls `loss_terms()` (per-example terms) under a tape, minimises the global-batch mean of
        `terms[objective]` and returns every tracker's result.
        """
        with tf.GradientTape() as tape:
            terms = loss_terms()
            scaled = self.optimizer.scale_loss(losses.global_batch_mean(terms[objective]))
        self.minimise(self.optimizer, tape.gradient(scaled, self.trainable_weights), self.trainable_weights)
        return self.update_metrics(terms)

    def minimise(self, optimizer, gradients, weights):
        """Applies `gradients` (of a scaled loss) to `weights` and returns their unscaled global norm.

        The norm is taken before the update, because a `LossScaleOptimizer` changes its scale in `apply`
        (halved after an overflow, which it skips; doubled after a run of finite steps).
        """
        norm = self.gradient_norm(gradients, optimizer)
        optimizer.apply(gradients, weights)
        return norm

    # === Several optimizers (GANs and the adversarial hybrids) ===
    # Names of the optimizers a model with more than one keeps as attributes (e.g. ("d_optimizer",
    # "g_optimizer")); empty for models with Keras' one `optimizer`.
    optimizer_names = ()

    def optimizer_variables(self, name):
        """The variables that the optimizer called `name` updates (models with `optimizer_names`)."""
        raise NotImplementedError(f"{type(self).__name__} must say which variables {name} updates.")

    # {optimizer name: Keras optimizer config}: what `compile` uses for an optimizer it is not given, and
    # what a recipe's [compile] section starts from. Models with one optimizer name it "optimizer" (for
    # recipes only: their `compile` keeps Keras' default).
    default_optimizers = {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 1e-3}}}

    def default_optimizer(self, name):
        """A new optimizer for `name` from `default_optimizers`."""
        return keras.optimizers.get(copy.deepcopy(self.default_optimizers[name]))

    def compile_optimizers(self, optimizers, run_eagerly=False, jit_compile="auto", steps_per_execution=1):
        """Compiles a model with several optimizers: `optimizers` maps each of `optimizer_names` to an
        optimizer (an instance, a name, a config, or None for `default_optimizer(name)`).

        Each optimizer is built here on its `optimizer_variables`, under the caller's distribution
        strategy, so that loading a `.keras` file restores its state before the first step.
        """
        unknown = sorted(set(optimizers) - set(self.optimizer_names))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no optimizer {', '.join(unknown)}; its optimizers are {', '.join(self.optimizer_names)}.")
        # Keras' own `optimizer`, `loss` and `metrics` have no use in these models' steps.
        keras.Model.compile(self, optimizer=None, run_eagerly=run_eagerly, jit_compile=jit_compile, steps_per_execution=steps_per_execution)
        resolved = []
        for name in self.optimizer_names:
            optimizer = optimizers.get(name)
            optimizer = self.default_optimizer(name) if optimizer is None else keras.optimizers.get(optimizer)
            if any(optimizer is other for other in resolved):
                raise ValueError(f"Pass one optimizer instance per network ({', '.join(self.optimizer_names)}): each needs its own state.")
            resolved.append(optimizer)
        for name, optimizer in zip(self.optimizer_names, resolved):
            optimizer = self.loss_scaled(optimizer)
            setattr(self, name, optimizer)
            optimizer.build(self.optimizer_variables(name))
        self._optimizers_compile_config = {"run_eagerly": run_eagerly, "jit_compile": jit_compile, "steps_per_execution": steps_per_execution}

    def require_optimizers(self):
        """Raises a ValueError that says what to do when a model with `optimizer_names` was not compiled."""
        if any(getattr(self, name, None) is None for name in self.optimizer_names):
            arguments = ", ".join(f"{name}=..." for name in self.optimizer_names)
            raise ValueError(f"{type(self).__name__} has no optimizers: call compile({arguments}) before fit.")

    def get_compile_config(self):
        if not self.optimizer_names:
            return super().get_compile_config()
        if not self.compiled or any(getattr(self, name, None) is None for name in self.optimizer_names):
            return None
        config = {name: keras.saving.serialize_keras_object(getattr(self, name)) for name in self.optimizer_names}
        config.update(self._optimizers_compile_config)
        return config

    def compile_from_config(self, config):
        if not self.optimizer_names:
            # Keras' own lines (3.15): its version refuses to call an overridden `compile`, as ours is.
            self.compile(**keras.saving.deserialize_keras_object(config))
            if self.built:
                self.optimizer.build(self.trainable_variables)
            return
        config = dict(config)
        for name in self.optimizer_names:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        # `compile` builds the optimizers, so loading a .keras file then restores their state.
        self.compile(**config)

    @staticmethod
    def loss_scale(optimizer):
        """The factor by which `optimizer.scale_loss` multiplies a loss now: a `LossScaleOptimizer`'s
        dynamic scale (float32), 1 for any other optimizer (or None)."""
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return tf.cast(optimizer.dynamic_scale if optimizer.built else optimizer.initial_scale, tf.float32)
        return tf.constant(1.0)

    @classmethod
    def gradient_norm(cls, gradients, optimizer):
        """The global norm of a network's gradient, of the loss before `optimizer` scaled it (call it before
        `optimizer.apply`, which may change the scale); under a tf.distribute strategy, of the sum over
        replicas that the optimizer applies (one extra all-reduce). Infinite for an overflowing step."""
        gradients = [tf.convert_to_tensor(g) for g in gradients if g is not None]
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            gradients = replica.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        return tf.linalg.global_norm(gradients) / cls.loss_scale(optimizer)

    # === Noise ===
    def next_seed(self):
        """A fresh stateless seed (int32 [2], as TFP's samplers want) from the model's generator.

        Under a tf.distribute strategy every replica gets the same seed: draws made with it go through
        `keras_gen.noise`, which gives each example of the global batch its own noise, the same on any
        number of replicas.
        """
        return tf.cast(self.seed_generator.next(), tf.int32)

    def normal(self, shape, dtype=tf.float32):
        """Standard normal noise of `shape` ([batch, ...]) from the model's seed generator, the same for
        each example of the global batch however it is split over replicas (`noise.normal`)."""
        return noise.normal(shape, self.next_seed(), dtype=dtype)

    @staticmethod
    def normal_from_seeds(seeds, size):
        """One standard-normal vector of `size` per int64 seed: the same seed gives the same vector
        whatever else is in the batch (what serving signatures promise)."""

        def one(seed):
            return tf.random.stateless_normal([size], seed=tf.stack([seed, tf.constant(SERVING_SEED_KEY, tf.int64)]))

        return tf.map_fn(one, tf.cast(seeds, tf.int64), fn_output_signature=tf.float32)

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config.update({"image_shape": list(self.image_shape), "mixed_precision": self.mixed_precision, "seed": self.seed})
        for name in self.nested_models:
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                config[name] = [keras.saving.serialize_keras_object(item) for item in value]
            else:
                config[name] = keras.saving.serialize_keras_object(value)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in cls.nested_models:
            value = config.get(name)
            if isinstance(value, list):
                config[name] = [keras.saving.deserialize_keras_object(item) for item in value]
            elif isinstance(value, dict):
                config[name] = keras.saving.deserialize_keras_object(value)
        return cls(**config)

    # === Presets (keras_gen.presets) ===
    def save_to_preset(self, preset_dir, **metadata):
        """Writes the model as a preset folder (see `keras_gen.presets.save_to_preset` for `metadata`)."""
        from keras_gen import presets

        return presets.save_to_preset(self, preset_dir, **metadata)

    @classmethod
    def from_preset(cls, handle):
        """The model of a preset: a shipped name, a folder, or an hf:// or kaggle:// handle (see
        `keras_gen.presets`); a PresetError when it holds another class than this one (or a subclass)."""
        from keras_gen import presets

        return presets.load_preset(handle, expected_class=cls)

    # Keras saves a layer's weights but not its seed generators' states; keeping the state in the
    # .keras file (and in BackupAndRestore's weights) makes a resumed run draw the noise it would have drawn.
    _SEED_STATE_KEY = "seed_generator_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self._SEED_STATE_KEY] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        keys = list(store.keys())
        if self._SEED_STATE_KEY in keys:
            self.seed_generator.state.assign(store[self._SEED_STATE_KEY])
            store = {key: store[key] for key in keys if key != self._SEED_STATE_KEY}
        super().load_own_variables(store)

    # === Networks ===
    def network_interfaces(self):
        """{attribute: networks.Interface}, or a list of Interfaces for an attribute holding a list of
        networks: what the model feeds each of its networks and needs back (see `check_networks`)."""
        return {}

    def check_networks(self, *roles):
        """Holds the networks in the attributes `roles` (None: no network, skipped) to their
        `network_interfaces()`, symbolically (`networks.check_network`), so that a network that does not
        fit fails here, at construction, with a ValueError that names it, rather than deep inside `fit`.

        Each constructor calls it for the networks it sets, once they are set.
        """
        interfaces = self.network_interfaces()
        owner = type(self).__name__
        for role in roles:
            network, interface = getattr(self, role), interfaces[role]
            if isinstance(interface, list):
                for index, (one, expected) in enumerate(zip(network, interface)):
                    networks.check_network(one, f"{role}[{index}]", expected, owner)
            elif network is not None:
                networks.check_network(network, role, interface, owner)

    # === Inputs ===
    def check_images(self, images):
        """Checks a batch of images against `image_shape` and returns it as float32.

        Raises a ValueError that says what was wrong and what to do, at trace time.
        """
        images = tf.convert_to_tensor(images)
        if images.dtype.is_integer or images.dtype == tf.bool:
            raise ValueError(
                f"{type(self).__name__} expects float images scaled to [0, 1], got dtype {images.dtype.name}. "
                "Scale them first, e.g. keras_gen.data.preprocess(images, 'scale') or images / 255."
            )
        if images.shape.rank != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"{type(self).__name__} was built for images of shape [batch, {', '.join(map(str, self.image_shape))}], "
                f"got {images.shape}. Resize/reshape the data (grayscale images need a channel axis: "
                "images[..., None]) or build the model with a matching image_shape."
            )
        return tf.cast(images, tf.float32)

    def check_images_in_range(self, images, low, high, hint):
        """`check_images`, and a run-time check that every value lies in [low, high] (to within 1e-3).

        Args:
            images: a batch of images.
            low, high: the range the model trains on ([0, 1], or [-1, 1] for a tanh generator).
            hint: what to do about it, e.g. "use data preprocessing 'scale' (x / 255)."
        """
        images = tf.convert_to_tensor(images)
        if images.dtype.is_integer or images.dtype == tf.bool:
            raise ValueError(f"{type(self).__name__} trains on float images scaled to [{low:g}, {high:g}], got dtype {images.dtype.name}; {hint}")
        images = self.check_images(images)
        message = f"{type(self).__name__} trains on images in [{low:g}, {high:g}]; {hint}"
        checks = [
            tf.debugging.assert_greater_equal(tf.reduce_min(images), low - 1e-3, message=message),
            tf.debugging.assert_less_equal(tf.reduce_max(images), high + 1e-3, message=message),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(images)

    def check_labels(self, labels):
        """Class labels as int64 [batch]: the one check of every model that reads labels (`num_classes`).

        Labels are integer class indices 0..num_classes - 1, shaped [batch] (or [batch, 1]). A missing,
        float or misshapen label is a ValueError at trace time; an index out of range fails the step (or
        the serving call) with an InvalidArgumentError naming the range.
        """
        name = type(self).__name__
        if labels is None:
            raise ValueError(
                f"{name} needs a class label per image: fit it on (images, labels) batches (in a recipe, "
                "[data] with_labels = true) and pass `label` to its endpoints."
            )
        labels = tf.convert_to_tensor(labels)
        if not labels.dtype.is_integer:
            raise ValueError(
                f"{name} labels must be integer class indices 0..{self.num_classes - 1}, got dtype {labels.dtype.name} "
                "(one-hot labels: take their argmax)."
            )
        rank = labels.shape.rank
        if rank is not None and not (rank == 1 or (rank == 2 and labels.shape[-1] == 1)):
            raise ValueError(f"{name} labels must have shape [batch] (one class index per image), got {labels.shape}.")
        labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
        message = f"{name} labels must be class indices in [0, {self.num_classes}); check the labels or num_classes."
        checks = [
            tf.debugging.assert_non_negative(labels, message=message),
            tf.debugging.assert_less(labels, tf.constant(self.num_classes, tf.int64), message=message),
        ]
        with tf.control_dependencies(checks):
            return tf.identity(labels)

    @staticmethod
    def unpack(data):
        """(images, labels) from what `fit` passes: images alone, (images,) or (images, labels)."""
        if isinstance(data, (tuple, list)):
            images = data[0]
            labels = data[1] if len(data) > 1 else None
            return images, labels
        return data, None

    # === Hooks for training recipes, TensorBoard and export ===
    def recipe_callbacks(self):
        """Callbacks that the model's own options call for (e.g. KL warm-up)."""
        return []

    def serving_endpoints(self):
        """[export.Endpoint]: the SavedModel signatures of this model."""
        raise NotImplementedError(f"{type(self).__name__} declares no serving endpoints.")

    def summary_inputs(self, validation_images, num_samples=64, seed=0):
        """Fixed inputs for the TensorBoard image callback (the same every epoch)."""
        raise NotImplementedError

    def summary_images(self, fixed):
        """{name: (images [n, h, w, c] in [0, 1], columns)} to show in TensorBoard."""
        raise NotImplementedError

    def summary_histograms(self, fixed):
        """{name: values [n]} to show as TensorBoard histograms each epoch, from the same `fixed` inputs as
        `summary_images` (e.g. the adversarial autoencoder's codes beside prior samples); none by default."""
        return {}

    # The pipeline (`keras_gen.pipelines.PIPELINES`) that a recipe of this model runs when its [pipeline]
    # table names none: recipes written before pipelines had names keep running what they ran.
    recipe_pipeline = "fit"

    def training_classes(self):
        """The classes the fit pipeline trains this model on when the recipe's [data] keeps all: a list of
        class indices (e.g. a one-class detector's normal class), or None for all classes (the default)."""
        return None

    def after_training(self, datasets):
        """Called by the fit pipeline after `fit` and before the test set is evaluated; does nothing by default.

        A model that sets state from held-out data overrides it (e.g. an anomaly detector calibrates its
        score on `datasets["validation"]`, which it never trained on).

        Args:
            datasets: the run's `data.load_datasets` dict ("train", "validation", "test", "info", ...).
        """
