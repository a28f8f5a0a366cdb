"""The ``skvae`` command line."""

import subprocess
import sys

import pytest

from skvae.cli import main


def test_demo_prints_scores_and_writes_pictures(tmp_path, capsys):
    assert (
        main(["demo", "--epochs", "3", "--verbose", "0", "--out", str(tmp_path)]) == 0
    )
    out = capsys.readouterr().out
    assert "held-out log-likelihood" in out
    assert "5-NN accuracy, VAE 2-d codes" in out and "PCA(2)" in out
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {
        "latent_space.png",
        "reconstructions.png",
        "samples.png",
        "loss_curve.png",
        "latent_grid.png",
    }
    for path in tmp_path.iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_with_a_larger_latent_space_skips_the_2d_grid(tmp_path, capsys):
    args = ["demo", "--epochs", "2", "--n-components", "4", "--verbose", "0"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    assert "PCA(4)" in capsys.readouterr().out
    assert not (tmp_path / "latent_grid.png").exists()


def test_python_dash_m_shows_help():
    result = subprocess.run(
        [sys.executable, "-m", "skvae", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--epochs" in result.stdout and "--device" in result.stdout


def test_unknown_command_is_an_error():
    with pytest.raises(SystemExit) as info:
        main(["fly"])
    assert info.value.code == 2
