"""Input validation of the estimators: parameters beyond
``_parameter_constraints``, X and its missing-value marker.

Each check raises a ``ValueError`` before any training, naming the parameter
or column and what to do.
"""

from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.utils.validation import validate_data

from ._data import is_file_backed, observed_entries
from ._scan import CATEGORICAL, is_numeric
from ._utils import plain


def check_hidden_layer_sizes(hidden_layer_sizes):
    """Return ``hidden_layer_sizes`` as a non-empty tuple of positive ints."""
    sizes = hidden_layer_sizes
    if isinstance(sizes, Integral):
        sizes = (sizes,)
    sizes = tuple(sizes)
    if not sizes or not all(
        isinstance(s, Integral) and not isinstance(s, bool) and s > 0 for s in sizes
    ):
        raise ValueError(
            "hidden_layer_sizes must be a positive int or a non-empty sequence of "
            f"positive ints, got {hidden_layer_sizes!r}."
        )
    return tuple(int(s) for s in sizes)


def check_module_class(module):
    """``module``, a torch.nn.Module subclass."""
    if not issubclass(module, torch.nn.Module):
        raise ValueError(
            f"module must be a torch.nn.Module subclass (for example a "
            f"subclass of skvae.VAEModule), got {module!r}."
        )
    return module


def check_n_samples(n_samples):
    """``n_samples`` of ``sample``, a positive int."""
    if not isinstance(n_samples, Integral) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {plain(n_samples)!r}.")
    return int(n_samples)


def check_missing_values(value):
    """Refuse a boolean ``missing_values`` (a number that is not a marker)."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(
            f"missing_values must be np.nan, a number or None, got {value!r}."
        )


def check_input(estimator, X, reset, schema=None):
    """Validated X: a DataFrame as given (the schema checks its columns),
    else a numeric array, CSR/CSC matrix or memory-mapped array, with
    missing entries as NaN.

    ``estimator`` is the one that validates (``validate_data``: its
    ``n_features_in_`` and ``feature_names_in_``); ``schema`` is its fitted
    column schema when ``reset`` is False.
    """
    marker = estimator.missing_values
    check_missing_values(marker)
    if isinstance(X, pd.DataFrame):
        validate_data(estimator, X, skip_check_array=True, reset=reset)
        for axis, what in enumerate(("sample(s)", "feature(s)")):
            if X.shape[axis] == 0:
                raise ValueError(
                    f"Found array with 0 {what} (shape={X.shape}) while a "
                    "minimum of 1 is required."
                )
        return mark_missing(X, marker)
    if _wants_categorical(estimator.likelihood, schema) and not sp.issparse(X):
        X = validate_data(
            estimator, X, dtype=None, ensure_all_finite=False, reset=reset
        )
        return mark_missing(pd.DataFrame(X).infer_objects(), marker)
    nan_marker = marker is not None and np.isnan(marker)
    finite = "allow-nan" if nan_marker else True
    if nan_marker and schema is not None and schema.identity:
        # The rows go to the encoder as they are, and the gap check on
        # their way there (_dataset, has_nan) refuses infinity too: one
        # pass over X instead of two.
        finite = False
    if is_file_backed(X):
        validate_data(estimator, X[:1], ensure_all_finite=finite, reset=reset)
        return X
    return mark_missing(_numeric_array(estimator, X, finite, reset), marker)


def _numeric_array(estimator, X, finite, reset):
    """X validated as a float array or CSR/CSC matrix."""
    try:
        return validate_data(
            estimator,
            X,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            ensure_all_finite=finite,
            reset=reset,
        )
    except ValueError as exc:
        if "could not convert string" not in str(exc):
            raise
        raise ValueError(
            f"{exc}. For columns of categories, pass a pandas DataFrame (its "
            "object, string, category and bool columns are modelled as "
            "categorical) or name them in likelihood, for example "
            "likelihood={0: 'categorical'}."
        ) from None


def _wants_categorical(likelihood, schema):
    """Whether some column is to be modelled as categorical: by the fitted
    ``schema``, or else by the ``likelihood`` parameter."""
    if schema is not None:
        return any(c.categorical for c in schema.columns)
    if isinstance(likelihood, dict):
        return CATEGORICAL in likelihood.values()
    return likelihood == CATEGORICAL


def mark_missing(X, marker):
    """X with entries equal to a numeric ``marker`` set to NaN."""
    if marker is None or np.isnan(marker):
        return X
    if sp.issparse(X):
        if marker == 0:
            raise ValueError(
                "missing_values=0 cannot mark gaps in a sparse matrix, whose "
                "implicit zeros would all be missing; use a dense array."
            )
        X = X.copy()
        X.data = np.where(observed_entries(X.data, marker), X.data, np.nan)
        return X
    if isinstance(X, pd.DataFrame):
        X = X.copy()
        for i, dtype in enumerate(X.dtypes):
            if is_numeric(dtype):
                X.isetitem(i, _with_gaps(X.iloc[:, i], marker))
        return X
    return np.where(observed_entries(X, marker), X, np.nan).astype(X.dtype, copy=False)


def _with_gaps(values, marker):
    """A numeric Series with its entries equal to ``marker`` made missing.

    A NumPy integer column becomes the nullable integer dtype of its width,
    which holds gaps without turning the integers into floats.
    """
    gaps = (values == marker).to_numpy(dtype=bool, na_value=False)
    if not gaps.any():
        return values
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iu":
        values = values.astype(dtype.name.replace("uint", "UInt").replace("int", "Int"))
    return values.mask(gaps)


@torch.no_grad()
def check_decoder_width(module, device):
    """Raise a ValueError unless the decoder of a (custom) ``module`` gives
    each code as many outputs as the likelihood has parameters."""
    expected = module.likelihood.n_params
    training = module.training
    module.eval()  # no dropout draws, no batch-norm statistics updated
    try:
        out = module.decoder(torch.zeros(2, module.n_components, device=device))
    finally:
        module.train(training)
    if out.shape != (2, expected):
        got = out.shape[-1] if out.dim() == 2 else f"shape {tuple(out.shape[1:])}"
        raise ValueError(
            f"The decoder of module={type(module).__name__} outputs {got} values "
            f"per code, but its likelihood takes {expected} (likelihood.n_params, "
            f"for {module.likelihood.n_features} features). End the decoder "
            "with a layer of self.likelihood.n_params outputs."
        )
