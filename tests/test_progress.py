"""What ``verbose`` prints: a live bar in a terminal, plain lines elsewhere."""

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

from skvae import VAEImputer, VAETransformer

# 100 rows, 10 of them held out: 90 training rows, 6 batches of 16.
FIT = """
import numpy as np
from skvae import VAETransformer
X = np.random.RandomState(0).rand(100, 6)
VAETransformer(
    n_components=2, hidden_layer_sizes=(8,), batch_size=16, early_stopping=True,
    random_state=0, {params}
).fit(X)
"""
COLUMNS = ["epoch", "train_loss", "train_reconstruction", "train_kl"]
COLUMNS += ["valid_loss", "valid_reconstruction", "valid_kl", "dur"]


def run_in_pipe(params):
    """stdout and stderr of a fit in a child process, read through pipes."""
    code = FIT.format(params=params)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


def run_in_terminal(params):
    """What a fit in a child process writes to its pseudo-terminal."""
    pty = pytest.importorskip("pty")  # POSIX only
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    # A terminal 120 columns wide: without a size, tqdm draws an empty bar.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    code = FIT.format(params=params)
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # Linux: EIO once the child has closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    output = b"".join(chunks).decode()
    assert child.wait(timeout=60) == 0, output
    return output


def table_rows(text):
    """The epoch numbers of the table's rows, in order."""
    return [int(n) for n in re.findall(r"^ *(\d+) +-?\d+\.\d{4} ", text, re.M)]


def test_a_pipe_gets_plain_lines_one_per_epoch():
    # verbose=2 adds nothing here. No improvement by tol=10 after the first
    # epoch: training stops after the third.
    out, err = run_in_pipe("max_epochs=20, tol=10, n_iter_no_change=2, verbose=2")
    assert err == ""
    assert "\r" not in out and "\x1b[" not in out
    lines = out.splitlines()
    assert lines[0].split() == COLUMNS
    assert set(lines[1]) == {"-", " "}
    assert table_rows(out) == [1, 2, 3]
    assert len(lines) == 7  # header, rule, 3 rows, 2 convergence messages
    assert lines[5:] == [
        "Stopping since valid_loss has not improved in the last 2 epochs.",
        "Restoring best model from epoch 1.",
    ]


def test_a_terminal_gets_a_live_bar_over_the_epochs_and_the_table():
    out = run_in_terminal("max_epochs=5, verbose=1")
    # The bar redraws its line: carriage returns that do not end a line.
    assert re.search(r"\r(?!\n)", out)
    bar = (
        r"training: .*\| 3/5 \[\d\d:\d\d<\d\d:\d\d.*train_loss=-?\d+\.\d+, valid_loss="
    )
    assert re.search(bar, out)  # epochs, time left, the last losses
    assert "5/5" in out
    assert table_rows(out.replace("\r", "\n")) == [1, 2, 3, 4, 5]
    assert " ".join(COLUMNS) in " ".join(out.split())
    assert not re.search(r"\x1b\[[\d;]*m", out)  # no colours


def test_the_batch_bar_knows_the_length_of_the_first_epoch():
    out = run_in_terminal("max_epochs=2, verbose=2")
    n_batches = math.ceil((100 - 10) / 16)  # the held-out rows left out
    assert re.search(rf"epoch 1: +0%\|.*\| 0/{n_batches} ", out)
    assert table_rows(out.replace("\r", "\n")) == [1, 2]


IMPUTER_NOTE = """\
note: loss is the importance-weighted bound of 10 draws of z per row (IWAE), not the sum
of its terms: the reconstruction and kl columns average the ELBO's terms over the draws,
and reconstruction + kl is at least the loss
"""


@pytest.mark.parametrize(
    "estimator, note",
    [
        (VAETransformer(), ""),
        (VAETransformer(beta=2.0), "note: loss = reconstruction + 2 x kl\n"),
        (
            VAETransformer(beta=0.5, kl_warmup_epochs=4),
            "note: loss = reconstruction + 0.5 x kl (in training, x a factor rising "
            "from 0 to 1 over 4 epochs)\n",
        ),
        (VAEImputer(), IMPUTER_NOTE),
    ],
)
def test_the_table_says_what_its_loss_is_when_not_the_sum_of_its_terms(
    capsys, estimator, note
):
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    X[rng.rand(*X.shape) < 0.2] = np.nan
    model = estimator.set_params(max_epochs=3, verbose=1, random_state=0)
    imputer = isinstance(model, VAEImputer)
    model.fit(X if imputer else np.nan_to_num(X))
    out = capsys.readouterr().out
    assert out.startswith(note + "epoch ")
    loss, reconstruction, kl = (
        np.array(model.history_[:, f"train_{key}"])
        for key in ("loss", "reconstruction", "kl")
    )
    beta = model.beta
    if imputer:  # Jensen: the ELBO is below the IWAE bound
        assert np.all(reconstruction + beta * kl >= loss)
    elif not model.kl_warmup_epochs:
        assert_allclose(loss, reconstruction + beta * kl, rtol=1e-5)
