"""The ``skvae`` command line."""

import subprocess
import sys

import numpy as np
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


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_embed_writes_the_codes_of_a_table(tmp_path, capsys, suffix):
    from sklearn.datasets import load_wine

    X = load_wine().data
    source = tmp_path / "wine.csv"
    header = ",".join(f"c{i}" for i in range(X.shape[1]))
    np.savetxt(source, X, delimiter=",", header=header, comments="")
    out = tmp_path / f"codes{suffix}"
    args = ["embed", str(source), "--out", str(out), "--epochs", "5"]
    assert main([*args, "--n-components", "3"]) == 0
    if suffix == ".npy":
        codes = np.load(out)
    else:
        codes = np.loadtxt(out, delimiter=",", skiprows=1)
        assert out.read_text().startswith("vaetransformer0,vaetransformer1")
    assert codes.shape == (len(X), 3) and np.all(np.isfinite(codes))
    assert "178 rows x 13 columns -> 3 latent dimensions" in capsys.readouterr().out


def test_embed_takes_a_csv_with_categories_and_gaps(tmp_path):
    source = tmp_path / "table.csv"
    source.write_text("kind,size\nsmall,1.5\nlarge,\nsmall,1.1\n,9.0\nlarge,8.5\n")
    out = tmp_path / "codes.npy"
    assert main(["embed", str(source), "--out", str(out), "--epochs", "2"]) == 0
    codes = np.load(out)
    assert codes.shape == (5, 2) and np.all(np.isfinite(codes))


def test_embed_reads_npy_without_header_and_reports_bad_data(tmp_path):
    source = tmp_path / "X.npy"
    np.save(source, np.random.RandomState(0).rand(30, 4))
    assert (
        main(
            [
                "embed",
                str(source),
                "--out",
                str(tmp_path / "z.npy"),
                "--epochs",
                "2",
                "--scale",
                "none",
                "--likelihood",
                "bernoulli",
            ]
        )
        == 0
    )
    np.save(source, np.random.RandomState(0).rand(30, 4) * 5)
    with pytest.raises(ValueError, match="MinMaxScaler"):
        main(
            [
                "embed",
                str(source),
                "--epochs",
                "1",
                "--scale",
                "none",
                "--likelihood",
                "bernoulli",
                "--out",
                str(tmp_path / "z.npy"),
            ]
        )
