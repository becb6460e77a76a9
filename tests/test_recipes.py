import keras_gen  # noqa: F401
import pytest

from keras_gen import pipelines
from keras_gen import recipes
from keras_gen.models import VAE


def write(tmp_path, text, name="r.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_zoo_recipe_validates_and_builds_its_model():
    paths = recipes.recipe_paths()
    assert "vae" in paths
    for name, path in paths.items():
        recipe = recipes.load_recipe(name)
        assert recipe.path == path and recipe.description
        assert recipe.build_model().zoo_name == recipe.model
        # Each names its pipeline (or runs its model's `recipe_pipeline`); only semi_supervised is not a single fit.
        assert recipe.pipeline_name == ("semi_supervised" if name == "semi_supervised" else "fit")
        assert recipe.pipeline_name in pipelines.PIPELINES


def test_vae_recipe_fills_defaults_and_builds_the_configured_model(tmp_path):
    recipe = recipes.load_recipe(write(tmp_path, 'model = "vae"\n[model_options]\nlatent_dim = 3\nbeta = 2\n'))
    assert recipe.train["batch_size"] == 128 and recipe.data["preprocessing"] == "scale"
    model = recipe.build_model(seed=5)
    assert isinstance(model, VAE) and model.latent_dim == 3 and model.beta == 2.0 and model.seed == 5


def test_unknown_recipe_name_lists_the_zoo():
    with pytest.raises(recipes.RecipeError, match=r"Unknown recipe 'vea'.*vae"):
        recipes.load_recipe("vea")


@pytest.mark.parametrize(
    "text, message",
    [
        ('model = "vae"\nepochs = 3\n', r"unknown key\(s\) epochs; valid keys are: model, description"),
        ('model = "vae"\n[train]\nepoch = 3\n', r"\[train\]: unknown key\(s\) epoch; valid keys are: epochs, steps_per_epoch"),
        ('model = "vae"\n[train]\nepochs = "3"\n', r"`epochs` must be int, got '3'"),
        ('model = "vae"\n[train]\nepochs = true\n', r"`epochs` must be int"),
        ('model = "vae"\n[train]\nbatch_size = 0\n', r"batch_size must be at least 1"),
        ('model = "vae"\n[model_options]\nlatent = 3\n', r"\[model_options\] of VAE: unknown key\(s\) latent; valid keys are: image_shape, likelihood, .*latent_dim"),
        ('model = "vae"\n[model_options]\nlatent_dim = 2.5\n', r"`latent_dim` must be int"),
        ('model = "vae"\n[compile]\nlr = 0.1\n', r"\[compile\] of VAE: lr is an argument of none of the default optimizers \(optimizer\); name the optimizer"),
        ('model = "vea"\n', r"Unknown model 'vea'; the zoo has: .*vae"),
        ('description = "no model"\n', r"needs a `model` key"),
        ('model = "vae"\n[data]\npreprocessing = "sharpen"\n', r"Unknown preprocessing 'sharpen'; valid modes are scale, binarize, tanh"),
        ('model = "vae"\n[data]\ndataset = "mnist"\n', r"Unknown data source 'mnist'; use fashion_mnist, tfds:NAME \(e.g. tfds:cifar10\) or folder:PATH"),
        ('model = "vae"\ntrain = 3\n', r"\[train\] must be a table"),
        ('model = "vae"\n[data]\nclasses = [-1]\n', r"\[data\] classes must be a list of class indices \(integers from 0\)"),
        ('model = "vae"\n[data]\nimage_size = [0, 8]\n', r"\[data\] image_size must be \[height, width\]"),
        ('model = "vae"\n[data]\nchannels = 2\n', r"\[data\] channels must be 1 \(greyscale\) or 3"),
        ('model = "vae"\n[data]\ncache = "always"\n', r"\[data\] cache must be one of auto, yes, no"),
        ('model = "vae"\n[data]\nclasses = 3\n', r"`classes` must be list"),
        ('model = "vae\n', r"not valid TOML"),
    ],
)
def test_bad_recipes_say_what_is_wrong(tmp_path, text, message):
    with pytest.raises(recipes.RecipeError, match=message):
        recipes.load_recipe(write(tmp_path, text))


def test_missing_recipe_file(tmp_path):
    with pytest.raises(recipes.RecipeError, match="does not exist"):
        recipes.load_recipe(tmp_path / "nope.toml")


def test_networks_are_not_recipe_options(tmp_path):
    for model, network in (("vae", "encoder"), ("gan", "generator"), ("hvae", "top_down")):
        with pytest.raises(recipes.RecipeError, match=f"unknown key\\(s\\) {network}"):
            recipes.load_recipe(write(tmp_path, f'model = "{model}"\n[model_options]\n{network} = 3\n'))


def test_data_classes_are_validated_and_sorted(tmp_path):
    recipe = recipes.load_recipe(write(tmp_path, 'model = "vae"\n[data]\nclasses = [7, 2, 7]\n'))
    assert recipe.data["classes"] == [2, 7]
    assert recipes.load_recipe(write(tmp_path, 'model = "vae"\n', name="plain.toml")).data["classes"] == []


# === [compile]: any Keras optimizer per optimizer, and the shorthand of the first recipes ===
def test_compile_tables_name_any_keras_optimizer_and_its_arguments(tmp_path):
    text = 'model = "dcgan"\n[compile.d_optimizer]\nclass_name = "RMSprop"\nlearning_rate = 5e-5\nrho = 0.8\n[compile.g_optimizer]\nbeta_1 = 0.3\n'
    recipe = recipes.load_recipe(write(tmp_path, text))
    model = recipe.build_model()
    recipe.compile_model(model)
    assert type(model.d_optimizer).__name__ == "RMSprop" and model.d_optimizer.rho == 0.8
    assert abs(float(model.d_optimizer.learning_rate) - 5e-5) < 1e-9
    # The generator's table changes one argument of the default, DCGAN's Adam(2e-4, beta_1=0.5).
    assert type(model.g_optimizer).__name__ == "Adam" and model.g_optimizer.beta_1 == 0.3
    assert abs(float(model.g_optimizer.learning_rate) - 2e-4) < 1e-9


def test_compile_shorthand_sets_what_the_defaults_name_as_the_first_recipes_meant(tmp_path):
    # AAE: beta_1 was the adversarial optimizers' (their default names it), not the reconstruction's.
    text = 'model = "aae"\n[compile]\nae_learning_rate = 0.002\nd_learning_rate = 0.0003\nbeta_1 = 0.4\n'
    configs = recipes.load_recipe(write(tmp_path, text)).compile
    assert configs["ae_optimizer"] == {"class_name": "Adam", "config": {"learning_rate": 0.002}}
    assert configs["d_optimizer"]["config"] == {"learning_rate": 0.0003, "beta_1": 0.4, "beta_2": 0.999}
    assert configs["g_optimizer"]["config"] == {"learning_rate": 2e-4, "beta_1": 0.4, "beta_2": 0.999}
    # The zoo's WGAN-GP recipe still compiles to the paper's Adam(1e-4, beta_1=0, beta_2=0.9) for both networks.
    for name, config in recipes.load_recipe("wgan_gp").compile.items():
        assert config == {"class_name": "Adam", "config": {"learning_rate": 1e-4, "beta_1": 0.0, "beta_2": 0.9}}, name


@pytest.mark.parametrize(
    "text, message",
    [
        ('model = "dcgan"\n[compile.d_optimizer]\nclass_name = "Adamm"\n', r"\[compile.d_optimizer\]: 'Adamm' is not a Keras optimizer; use one of .*RMSprop"),
        ('model = "dcgan"\n[compile.d_optimizer]\nbetaa = 0.5\n', r"\[compile.d_optimizer\] \(Adam\): unknown key\(s\) betaa; valid keys are: learning_rate, beta_1"),
        ('model = "dcgan"\n[compile]\nrho = 0.5\n', r"rho is an argument of none of the default optimizers \(d_optimizer, g_optimizer\)"),
        ('model = "dcgan"\n[compile]\nd_optimizer = "adam"\n', r"d_optimizer names an optimizer and must be a table"),
        ('model = "vae"\n[compile.optimizer]\nclass_name = 3\n', r"`class_name` must be str"),
        # A wrapper needs an inner optimizer, which a recipe cannot give it.
        ('model = "vae"\n[compile.optimizer]\nclass_name = "LossScaleOptimizer"\n', r"'LossScaleOptimizer' is not a Keras optimizer; use one of Adadelta, .*SGD"),
    ],
)
def test_bad_compile_tables_say_what_is_wrong(tmp_path, text, message):
    with pytest.raises(recipes.RecipeError, match=message):
        recipes.load_recipe(write(tmp_path, text))


def test_checking_a_recipe_starts_no_tensorflow_so_a_strategy_can_still_be_made():
    import subprocess
    import sys

    code = (
        "from tensorflow.python.eager import context\n"
        "from keras_gen import recipes\n"
        "for name in recipes.recipe_paths(): recipes.load_recipe(name)\n"
        "assert not context.context()._initialized, 'checking recipes initialised TensorFlow'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)


def test_model_options_are_checked_against_the_merged_constructor(tmp_path):
    # A variant's own options and its parents' are all recipe options; an option its parents take but it
    # derives (HVAE's latent_dim is the sum of latent_dims) is not.
    recipe = recipes.load_recipe(write(tmp_path, 'model = "cgan"\n[model_options]\nnum_classes = 4\nlatent_dim = 3\nd_steps = 2\n'))
    model = recipe.build_model()
    assert (model.num_classes, model.latent_dim, model.d_steps, model.loss_name) == (4, 3, 2, "non_saturating")
    with pytest.raises(recipes.RecipeError, match=r"\[model_options\] of HVAE: unknown key\(s\) latent_dim"):
        recipes.load_recipe(write(tmp_path, 'model = "hvae"\n[model_options]\nlatent_dim = 3\n'))
