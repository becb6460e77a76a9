import keras_gen  # noqa: F401
import pytest

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
        ('model = "vae"\n[model_options]\nlatent = 3\n', r"\[model_options\] of VAE: unknown key\(s\) latent; valid keys are: image_shape, latent_dim"),
        ('model = "vae"\n[model_options]\nlatent_dim = 2.5\n', r"`latent_dim` must be int"),
        ('model = "vae"\n[compile]\nlr = 0.1\n', r"\[compile\] of VAE: unknown key\(s\) lr; valid keys are: learning_rate"),
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
