"""Test NLL of the zoo's VAEs (IWAE bound, k importance samples, nats) against training epochs, on
dynamically binarised Fashion-MNIST.

    nice -n 10 .venv/bin/python bench/vae_likelihood.py [--models vae cvae gmvae hvae] [--max-epochs 40]
        [--minutes-per-model 8] [--curve-epochs 1,3,10] [--curve-images 100] [--final-images 500]
        [--iwae-k 1000] [--out-dir /tmp/vae_likelihood]

Each model trains from its zoo recipe (its options, optimizer, batch size and data pipeline) until
--max-epochs or until its training time passes --minutes-per-model, whichever comes first (checked
after each epoch, so the last epoch may overrun by one epoch's time; evaluation time is not counted).
At each epoch in --curve-epochs, and after the last one, the IWAE bound is evaluated on the first
--curve-images test images; the final model also on the first --final-images. The test images are
binarised once with seed 0, as `keras-gen evaluate` does, and each final model is saved to
<out-dir>/<model>.keras so that `keras-gen evaluate` can repeat the figure. Nothing here is a test;
it prints figures (and a Markdown table at the end).
"""

import argparse
import os
import pathlib
import platform
import time

import keras_gen  # noqa: F401
import keras

from keras_gen import evaluation
from keras_gen import recipes
from keras_gen import training


class LikelihoodCurve(keras.callbacks.Callback):
    """Evaluates the IWAE bound at chosen epochs and stops training when the time budget is spent."""

    def __init__(self, test, curve_epochs, num_samples, budget_seconds, max_epochs):
        super().__init__()
        self.test = test
        self.curve_epochs = set(curve_epochs)
        self.num_samples = num_samples
        self.budget_seconds = budget_seconds
        self.max_epochs = max_epochs
        self.train_seconds = 0.0
        self.points = []  # (epoch, train seconds, validation loss, negative ELBO, NLL bound, stderr)

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += time.perf_counter() - self._started
        epoch += 1
        last = self.train_seconds >= self.budget_seconds or epoch >= self.max_epochs
        if epoch in self.curve_epochs or last:
            result = evaluation.evaluate_likelihood(self.model, self.test, num_samples=self.num_samples, chunk_size=100)
            point = (epoch, self.train_seconds, logs.get("val_loss"), result["negative_elbo"], result["nll_bound"], result["iwae_stderr"])
            self.points.append(point)
            print(
                f"  epoch {epoch:3d}  train {self.train_seconds:6.0f} s  val -ELBO {point[2]:7.2f}  "
                f"test -ELBO {point[3]:7.2f}  NLL <= {point[4]:7.2f} +- {point[5]:.2f}",
                flush=True,
            )
        if last:
            self.model.stop_training = True


def run(name, args):
    recipe = recipes.load_recipe(name)
    train = recipe.train
    keras.utils.set_random_seed(train["seed"])
    datasets = training.load_datasets(recipe, train["batch_size"], train["seed"])
    model = recipe.build_model()
    recipe.compile_model(model)
    preprocessing = evaluation.likelihood_preprocessing(model)
    curve_test = evaluation.fashion_mnist_test_set(preprocessing, batch_size=20, num_images=args.curve_images)
    final_test = evaluation.fashion_mnist_test_set(preprocessing, batch_size=20, num_images=args.final_images)
    curve = LikelihoodCurve(curve_test, args.curve_epochs, args.iwae_k, 60 * args.minutes_per_model, args.max_epochs)
    print(f"{name}: {model.count_params():,} parameters, batch {train['batch_size']}, options {recipe.model_options}", flush=True)
    model.fit(
        datasets["train"],
        validation_data=datasets["validation"],
        epochs=args.max_epochs,
        callbacks=[*model.recipe_callbacks(), curve],
        verbose=0,
    )
    started = time.perf_counter()
    final = evaluation.evaluate_likelihood(model, final_test, num_samples=args.iwae_k, chunk_size=100)
    seconds = time.perf_counter() - started
    path = pathlib.Path(args.out_dir) / f"{name}.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    epochs, train_seconds = curve.points[-1][0], curve.points[-1][1]
    print(
        f"{name} final, {epochs} epochs ({train_seconds / 60:.1f} min of training): first {final['num_images']} test images, "
        f"k = {args.iwae_k}: -ELBO {final['negative_elbo']:.2f}, NLL <= {final['nll_bound']:.2f} +- {final['iwae_stderr']:.2f} "
        f"({seconds:.0f} s to evaluate); saved {path}",
        flush=True,
    )
    return {"name": name, "epochs": epochs, "minutes": train_seconds / 60, "final": final, "curve": curve.points}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["vae", "cvae", "gmvae", "hvae"])
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--minutes-per-model", type=float, default=8.0)
    parser.add_argument("--curve-epochs", type=lambda text: [int(e) for e in text.split(",")], default=[1, 3, 10])
    parser.add_argument("--curve-images", type=int, default=100)
    parser.add_argument("--final-images", type=int, default=500)
    parser.add_argument("--iwae-k", type=int, default=1000)
    parser.add_argument("--out-dir", default="/tmp/vae_likelihood")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} CPU cores; {vars(args)}", flush=True)
    results = [run(name, args) for name in args.models]

    print()
    print(f"| model | epochs (training time) | test -ELBO | test NLL <= (IWAE, k = {args.iwae_k}) | images |")
    print("|---|---|---|---|---|")
    for result in results:
        final = result["final"]
        print(
            f"| {result['name']} | {result['epochs']} ({result['minutes']:.1f} min) | {final['negative_elbo']:.1f} | "
            f"{final['nll_bound']:.1f} +- {final['iwae_stderr']:.1f} | first {final['num_images']} |"
        )
    print()
    print(f"NLL bound (k = {args.iwae_k}) on the first {args.curve_images} test images against epochs:")
    for result in results:
        print(f"  {result['name']}: " + ", ".join(f"epoch {p[0]}: {p[4]:.1f}" for p in result["curve"]))


if __name__ == "__main__":
    main()
