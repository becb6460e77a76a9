"""Zoo recipes: TOML files in `zoo/` naming a model, its options, its data and its training budget.

A recipe is data, not code. Every key is checked before anything runs: an unknown key or a value of
the wrong type is a `RecipeError` that lists the valid keys. Model options are checked against the
model's constructor (`models.base.constructor_signature`), so a new model needs no schema.

`[compile]` configures the model's optimizers, each of its `optimizer_names` (a model with one
optimizer calls it `optimizer`), starting from the model's `default_optimizers`:

    [compile.d_optimizer]         # one optimizer: any Keras optimizer and its arguments
    class_name = "RMSprop"        # optional; the default's class (e.g. Adam) when left out
    learning_rate = 5e-5

    [compile]
    learning_rate = 1e-3          # a plain key: that argument of every optimizer whose default takes it
    d_learning_rate = 1e-4        # <prefix>_learning_rate: the learning rate of <prefix>_optimizer

The plain and prefixed keys are the shorthand the zoo's first recipes use; a table may follow them.
"""

import copy
import dataclasses
import inspect
import pathlib
import sys
import tomllib

import keras_gen
from keras_gen import registry
from keras_gen.models.base import resolve_mixed_precision

# Each fixed section: key -> (type, default). float accepts ints too.
DATA_KEYS = {
    "dataset": (str, "fashion_mnist"),  # or "tfds:NAME", "folder:PATH" (keras_gen.data.sources)
    "preprocessing": (str, "scale"),
    "validation_size": (int, 5000),  # held out of train when the source has no validation split
    "test_size": (int, 0),  # held out when the source has no test split (0: a tenth of the images)
    "with_labels": (bool, False),
    "classes": (list, []),  # class indices to keep (e.g. [3]); empty: all classes
    "image_size": (list, []),  # [height, width] to fit the images to; empty: the source's own size
    "center_crop": (list, []),  # [height, width] cut from each image's centre before resizing
    "channels": (int, 0),  # 1 or 3; 0: the source's own
    "label": (str, ""),  # TFDS: the class feature to use as labels ("": `label` when there is one)
    "tfds_dir": (str, ""),  # TFDS data folder ("": TFDS's default; --tfds-dir overrides)
    "cache": (str, "auto"),  # "auto", "yes" or "no": keep decoded images of streamed sources in memory
    "skip_corrupt": (bool, False),  # folders: leave out unreadable image files instead of stopping
    "download": (bool, False),  # TFDS: download and prepare a dataset that is not prepared yet
}
CACHE_CHOICES = {"auto": "auto", "yes": True, "no": False}
TRAIN_KEYS = {
    "epochs": (int, 10),
    "steps_per_epoch": (int, 0),  # 0: one pass over the training set
    "batch_size": (int, 128),
    "seed": (int, 0),
    "jit_compile": (bool, False),
    "summary_samples": (int, 64),
    "strategy": (str, "auto"),  # a keras_gen.distribute.STRATEGIES name (auto: multi-worker under TF_CONFIG, mirrored on 2+ GPUs)
}
TOP_LEVEL_KEYS = ("model", "description", "model_options", "compile", "data", "train", "pipeline")


class RecipeError(ValueError):
    """A recipe that cannot be found or does not validate."""


@dataclasses.dataclass
class Recipe:
    """A validated recipe. `data` and `train` hold every key, defaults filled in."""

    name: str
    model: str
    description: str
    model_options: dict
    compile: dict
    data: dict
    train: dict
    path: pathlib.Path
    # The options of the pipeline the recipe runs (its [pipeline] table without `name`), and that pipeline's name.
    pipeline: dict = dataclasses.field(default_factory=dict)
    pipeline_name: str = "fit"

    def model_class(self):
        return registry.get_model_class(self.model)

    def optimizers(self):
        """{optimizer name: a new Keras optimizer} from the [compile] table."""
        import keras

        return {name: keras.optimizers.get(copy.deepcopy(config)) for name, config in self.compile.items()}

    def compile_model(self, model):
        """Compiles `model` with the recipe's optimizers (`model.compile`, one keyword per optimizer)."""
        optimizers = self.optimizers()
        if model.optimizer_names:
            model.compile(**optimizers)
        else:
            model.compile(optimizer=optimizers["optimizer"])

    def build_model(self, seed=None):
        """The recipe's model, with its seed set from the recipe unless `seed` is given."""
        options = dict(self.model_options)
        options["seed"] = self.train["seed"] if seed is None else seed
        return self.model_class()(**options)


def with_data(recipe, overrides):
    """A copy of `recipe` whose [data] table has the keys of `overrides` replaced (checked as in a file),
    e.g. from `keras-gen train --data folder:DIR --image-size 64`."""
    where = f"recipe {recipe.name!r} with command-line data options"
    table = dict(recipe.data)
    _check_keys(overrides, DATA_KEYS, where)
    for key, value in overrides.items():
        table[key] = _check_type(value, DATA_KEYS[key][0], where, key)
    return dataclasses.replace(recipe, data=check_data(table, f"{where} [data]"))


def zoo_dirs():
    """Folders searched for recipes: the checkout's `zoo/`, then the one a wheel installs."""
    here = pathlib.Path(keras_gen.__file__).resolve().parent
    return [here.parent / "zoo", pathlib.Path(sys.prefix) / "share" / "keras_gen" / "zoo"]


def recipe_paths():
    """{recipe name: path} of every recipe in the zoo (earlier folders win)."""
    found = {}
    for folder in reversed(zoo_dirs()):
        if folder.is_dir():
            found.update({path.stem: path for path in folder.glob("*.toml")})
    return dict(sorted(found.items()))


def load_recipe(name_or_path):
    """Loads and validates a zoo recipe by name (`vae`) or a recipe file by path."""
    text = str(name_or_path)
    path = pathlib.Path(text)
    if not (text.endswith(".toml") or path.is_file()):
        paths = recipe_paths()
        if text not in paths:
            raise RecipeError(f"Unknown recipe {text!r}. The zoo has: {', '.join(paths) or '(none)'}; or pass a path to a .toml file.")
        path = paths[text]
    if not path.is_file():
        raise RecipeError(f"Recipe file {path} does not exist.")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"Recipe {path} is not valid TOML: {error}.") from None
    return validate(raw, name=path.stem, path=path)


def validate(raw, name, path=None):
    """Checks a parsed recipe dict and returns a `Recipe` with defaults filled in."""
    where = f"recipe {name!r}"
    _check_keys(raw, TOP_LEVEL_KEYS, where)
    if "model" not in raw:
        raise RecipeError(f"{where} needs a `model` key; the zoo's models are: {', '.join(registry.model_names())}.")
    model = _check_type(raw["model"], str, where, "model")
    try:
        model_class = registry.get_model_class(model)
    except KeyError as error:
        raise RecipeError(f"{where}: {error.args[0]}") from None

    sections = {}
    for section in ("model_options", "compile", "data", "train"):
        value = raw.get(section, {})
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: [{section}] must be a table, got {type(value).__name__}.")
        sections[section] = value

    model_options = _check_against_signature(
        sections["model_options"], model_class.__init__, f"{where} [model_options] of {model_class.__name__}", skip=("self", "seed", "kwargs", *model_class.nested_models)
    )
    compile_options = check_compile(sections["compile"], model_class, f"{where} [compile] of {model_class.__name__}")
    pipeline_name, pipeline = check_pipeline(raw.get("pipeline", {}), model_class, where)
    data = check_data(_check_fixed(sections["data"], DATA_KEYS, f"{where} [data]"), f"{where} [data]")
    train = _check_fixed(sections["train"], TRAIN_KEYS, f"{where} [train]")
    for key in ("epochs", "batch_size"):
        if train[key] < 1:
            raise RecipeError(f"{where} [train] {key} must be at least 1, got {train[key]}.")
    from keras_gen.distribute import STRATEGIES

    if train["strategy"] not in STRATEGIES:
        raise RecipeError(f"{where} [train] strategy must be one of {', '.join(STRATEGIES)}, got {train['strategy']!r}.")
    return Recipe(
        name=name,
        model=model,
        description=_check_type(raw.get("description", ""), str, where, "description"),
        model_options=model_options,
        compile=compile_options,
        data=data,
        train=train,
        path=path,
        pipeline=pipeline,
        pipeline_name=pipeline_name,
    )


def check_pipeline(table, model_class, where):
    """The [pipeline] table's `name` (default: the model's `recipe_pipeline`, "fit" for most) and the
    pipeline's options (the other keys), checked against that pipeline's signature."""
    from keras_gen import pipelines

    if not isinstance(table, dict):
        raise RecipeError(f"{where}: [pipeline] must be a table, got {type(table).__name__}.")
    options = dict(table)
    name = _check_type(options.pop("name", model_class.recipe_pipeline), str, f"{where} [pipeline]", "name")
    try:
        pipeline = pipelines.get_pipeline(name)
    except KeyError as error:
        raise RecipeError(f"{where} [pipeline]: {error.args[0]}") from None
    # `name` is listed among the valid keys, beside the pipeline's own options.
    parameters = inspect.signature(pipeline).parameters
    valid = ("name", *(key for key in parameters if key not in ("recipe", "train", "run")))
    _check_keys(table, valid, f"{where} [pipeline] of the {name} pipeline")
    return name, _check_against_signature(options, pipeline, f"{where} [pipeline] of the {name} pipeline", skip=("recipe", "train", "run"))


def _recipe_optimizers():
    """{class name: class} of the Keras optimizers a recipe can name: those that build from their arguments
    alone (not the base class, nor wrappers such as LossScaleOptimizer that need an inner optimizer)."""
    import keras

    def standalone(value):
        if not (isinstance(value, type) and issubclass(value, keras.optimizers.Optimizer)) or value is keras.optimizers.Optimizer:
            return False
        parameters = list(inspect.signature(value.__init__).parameters.values())[1:]
        return not any(p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)

    return {name: value for name, value in sorted(vars(keras.optimizers).items()) if name[0].isupper() and standalone(value)}


def _check_optimizer(config, where):
    """Checks an optimizer config against its Keras class's constructor, without building it: a recipe is
    checked before a distribution strategy is made, and building an optimizer would start TensorFlow."""
    optimizers = _recipe_optimizers()
    optimizer_class = optimizers.get(config["class_name"])
    if optimizer_class is None:
        raise RecipeError(f"{where}: {config['class_name']!r} is not a Keras optimizer; use one of {', '.join(optimizers)}.")
    parameters = [name for name in inspect.signature(optimizer_class.__init__).parameters if name not in ("self", "kwargs", "name")]
    _check_keys(config["config"], parameters, f"{where} ({config['class_name']})")


def check_compile(table, model_class, where):
    """The [compile] table as {optimizer name: Keras optimizer config} (see the module docstring), each
    config checked against its optimizer's constructor."""
    names = model_class.optimizer_names or ("optimizer",)
    defaults = {name: copy.deepcopy(model_class.default_optimizers[name]) for name in names}
    prefixed = {f"{name[: -len('_optimizer')]}_learning_rate": name for name in names if name.endswith("_optimizer")}
    tables = {key: value for key, value in table.items() if key in names}
    plain = {key: value for key, value in table.items() if key not in names and key not in prefixed}
    for key, value in tables.items():
        if not isinstance(value, dict):
            raise RecipeError(f"{where}: {key} names an optimizer and must be a table ([compile.{key}]) of its class_name and arguments, got {value!r}.")
    configs = {}
    for name in names:
        config, own = defaults[name], dict(tables.get(name, {}))
        class_name = _check_type(own.pop("class_name", config["class_name"]), str, f"{where} [compile.{name}]", "class_name")
        if class_name != config["class_name"]:
            config = {"class_name": class_name, "config": {}}
        for key, value in plain.items():
            if key in config["config"]:
                config["config"][key] = value
        for key, target in prefixed.items():
            if target == name and key in table:
                config["config"]["learning_rate"] = table[key]
        config["config"].update(own)
        _check_optimizer(config, f"{where} [compile.{name}]")
        configs[name] = config
    unused = sorted(key for key in plain if not any(key in defaults[name]["config"] for name in names))
    if unused:
        raise RecipeError(
            f"{where}: {', '.join(unused)} is an argument of none of the default optimizers ({', '.join(names)}); "
            f"name the optimizer, e.g. [compile.{names[0]}] {unused[0]} = ..., or use one of: {', '.join([*names, *prefixed])}."
        )
    return configs


def check_data(data, where):
    """Checks the values of a filled-in [data] table (the kinds of value are checked already)."""
    from keras_gen import data as data_lib

    try:
        data_lib.check_source_name(data["dataset"])
        data_lib.pipeline.check_preprocessing(data["preprocessing"])
        for key in ("image_size", "center_crop"):
            data[key] = list(data_lib.pipeline.check_image_size(data[key], key) or [])
        data_lib.pipeline.check_channels(data["channels"])
        if data["classes"] and not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in data["classes"]):
            raise data_lib.DataError(f"classes must be a list of class indices (integers from 0), got {data['classes']!r}.")
        data["classes"] = sorted(set(data["classes"]))
    except data_lib.DataError as error:
        raise RecipeError(f"{where} {error}") from None
    if data["cache"] not in CACHE_CHOICES:
        raise RecipeError(f"{where} cache must be one of {', '.join(CACHE_CHOICES)}, got {data['cache']!r}.")
    for key in ("validation_size", "test_size"):
        if data[key] < 0:
            raise RecipeError(f"{where} {key} must be 0 or more, got {data[key]}.")
    return data


def data_options(data):
    """`keras_gen.data.load_datasets` keyword arguments from a checked [data] table (all but `dataset`)."""
    return {
        "preprocessing": data["preprocessing"],
        "validation_size": data["validation_size"],
        "test_size": data["test_size"] or None,
        "with_labels": data["with_labels"],
        "classes": data["classes"] or None,
        "image_size": data["image_size"] or None,
        "center_crop": data["center_crop"] or None,
        "channels": data["channels"] or None,
        "label": data["label"] or None,
        "data_dir": data["tfds_dir"] or None,
        "cache": CACHE_CHOICES[data["cache"]],
        "skip_corrupt": data["skip_corrupt"],
        "download": data["download"],
    }


def _check_keys(table, valid, where):
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys are: {', '.join(valid)}.")


def _check_type(value, expected, where, key):
    ok = isinstance(value, expected) and not (expected in (int, float) and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise RecipeError(f"{where}: `{key}` must be {expected.__name__}, got {value!r} ({type(value).__name__}).")
    return value


def _check_fixed(table, schema, where):
    _check_keys(table, schema, where)
    return {key: _check_type(table.get(key, default), kind, where, key) for key, (kind, default) in schema.items()}


# Options whose values no default's type describes, checked by the function that reads them (a ValueError
# becomes a RecipeError): `mixed_precision` takes false, true or a dtype name.
VALUE_CHECKS = {"mixed_precision": resolve_mixed_precision}


def _check_against_signature(table, function, where, skip):
    parameters = {n: p for n, p in inspect.signature(function).parameters.items() if n not in skip and p.kind is not p.VAR_KEYWORD}
    _check_keys(table, parameters, where)
    checked = {}
    for key, value in table.items():
        default = parameters[key].default
        if key in VALUE_CHECKS:
            try:
                VALUE_CHECKS[key](value)
            except ValueError as error:
                raise RecipeError(f"{where}: {error}") from None
            checked[key] = value
        elif default is None or default is inspect.Parameter.empty:
            checked[key] = value
        elif isinstance(default, (tuple, list)):
            checked[key] = list(_check_type(value, list, where, key))
        else:
            checked[key] = _check_type(value, type(default), where, key)
    return checked
