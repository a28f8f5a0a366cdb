"""The ``skvae`` command line."""

import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skvae.cli import _read_table, main


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
    assert (
        "178 rows x 13 columns (first line read as column names) -> 3 latent "
        "dimensions" in capsys.readouterr().out
    )


def test_embed_takes_a_csv_with_categories_and_gaps(tmp_path):
    source = tmp_path / "table.csv"
    source.write_text("kind,size\nsmall,1.5\nlarge,\nsmall,1.1\n,9.0\nlarge,8.5\n")
    out = tmp_path / "codes.npy"
    assert main(["embed", str(source), "--out", str(out), "--epochs", "2"]) == 0
    codes = np.load(out)
    assert codes.shape == (5, 2) and np.all(np.isfinite(codes))


def test_embed_reads_npy_without_header_and_reports_bad_data(tmp_path, capsys):
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
    code = main(
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
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("skvae embed: error: Column 0: likelihood='bernoulli'")
    assert "MinMaxScaler" in err


TABLE = "small,1.5\nlarge,\nsmall,1.1\n,9.0\nlarge,8.5\n"


def _embed(tmp_path, text, *options):
    """The codes ``skvae embed`` writes for a CSV holding ``text``."""
    source, out = tmp_path / "table.csv", tmp_path / "codes.npy"
    source.write_text(text)
    args = ["embed", str(source), "--out", str(out), "--epochs", "2", *options]
    assert main(args) == 0
    return np.load(out)


@pytest.mark.parametrize("first", ["small,1.5\n", "small,\n"])
def test_embed_keeps_a_first_row_of_text_or_gaps_without_a_header(tmp_path, first):
    text = first + TABLE
    headed = _embed(tmp_path, "kind,size\n" + text)
    # The same rows, as many codes and the same ones, with or without names.
    assert_array_equal(_embed(tmp_path, text), headed)
    assert_array_equal(_embed(tmp_path, text, "--no-header"), headed)
    assert headed.shape == (6, 2)


def test_embed_asks_which_it_is_when_the_first_line_may_be_either(tmp_path, capsys):
    source = tmp_path / "table.csv"
    # No number, no value seen again below, no name over a column of numbers.
    source.write_text("red,\nblue,2\ngreen,3\n")
    assert main(["embed", str(source), "--out", str(tmp_path / "z.npy")]) == 1
    assert capsys.readouterr().err == (
        f"skvae embed: error: cannot tell whether the first line of "
        f"{str(source)!r} holds column names or data: pass --header or "
        "--no-header.\n"
    )
    text = source.read_text()
    assert _embed(tmp_path, text, "--header").shape == (2, 2)
    assert _embed(tmp_path, text, "--no-header").shape == (3, 2)


@pytest.mark.parametrize(
    "text, header",
    [
        ("1,2\n3,4\n", False),  # a number: data
        (",a,b\n0,1,2\n1,3,4\n", True),  # names over numbers (an index column)
        ("red,\nblue,2\nred,3\n", False),  # a value that comes back below
        (",\n1,2\n", False),  # only gaps: no names
    ],
)
def test_the_first_line_of_a_csv_is_a_header_when_it_names_columns(
    tmp_path, text, header
):
    source = tmp_path / "table.csv"
    source.write_text(text)
    X, read_header = _read_table(source)
    assert read_header is header
    assert len(X) == text.count("\n") - header


@pytest.mark.parametrize("scale", ["standard", "minmax"])
def test_embed_scales_the_numbers_of_a_table_with_text_columns(tmp_path, scale):
    codes = _embed(tmp_path, "kind,size\n" + TABLE, "--scale", scale)
    assert codes.shape == (5, 2) and np.all(np.isfinite(codes))


def test_a_missing_input_file_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["embed", str(tmp_path / "nope.csv")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"skvae embed: error: argument input: no such file: "
        f"{str(tmp_path / 'nope.csv')!r}"
    )
    assert "Traceback" not in err


@pytest.mark.parametrize("command", [[], ["embed"], ["demo"]])
def test_help_is_plain_text(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out and "usage: skvae" in out
