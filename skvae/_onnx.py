"""ONNX export of fitted estimators, alone or as steps of scikit-learn pipelines.

skl2onnx converts a pipeline step by step, each step by the converter
registered for its class. skvae's converters embed graphs that
``torch.onnx.export`` makes of small PyTorch modules, which do from the raw
input rows what the estimators' methods do:

- ``_Prepare``: the encoder's input, as ``_inference_data`` builds it. Gaps
  (``missing_values``) become zeros and give the observation mask, columns
  with no observed value in ``fit`` are left out, and transformed numeric
  columns go through their ``ColumnTransform`` (the cubic Hermite pieces and
  linear tails, evaluated in float64 as NumPy does) before the cast to
  float32.
- ``_EncodeGraph``: ``transform``, the posterior means of the encoder.
- ``_ScoreGraph`` and ``_ImputeGraph``: ``score_samples`` and the imputer's
  fills, by importance sampling with the draws of ``row_keyed_normal``. The
  hashing of each row's float32 bits into uniforms (SplitMix64 on uint64) is
  written directly in ONNX operators (``_uniform_graph``); the inverse normal
  CDF that turns them into draws is Wichura's AS241 (``_ndtri``), accurate to
  about 1e-16, so that the draws are those of skvae.

onnx and skl2onnx are imported only here, and only when a function that
needs them is called: skvae imports without them. Registration with skl2onnx
happens in ``register_onnx_converters`` (which ``to_onnx`` calls); without
it, skl2onnx finds the converters through the estimators' ``onnx_parser``,
``onnx_shape_calculator`` and ``onnx_converter`` hooks.
"""

import logging
import math
import threading
import warnings

import numpy as np
import torch
from torch import nn

from ._importance import importance_draws, marginal_of_draws, posterior_mean
from ._likelihoods import (
    BernoulliLikelihood,
    ContinuousBernoulliLikelihood,
    GaussianLikelihood,
    HeteroscedasticGaussianLikelihood,
)
from ._modules import VAEModule
from ._utils import _MIX1, _MIX2, _golden_steps, _seed_key

# The torch exporter writes opset 18 and newer.
MIN_OPSET = 18
# Likelihoods whose log-density the exported graphs compute. Poisson and
# negative binomial need lgamma of the data, which ONNX has no operator for.
_SCORED = (
    BernoulliLikelihood,
    ContinuousBernoulliLikelihood,
    GaussianLikelihood,
    HeteroscedasticGaussianLikelihood,
)
_INSTALL_HINT = (
    "ONNX export needs onnx, onnxruntime, skl2onnx and onnxscript: "
    "pip install 'skvae[onnx]'."
)


class ExportError(ValueError):
    """Raised at conversion when an estimator or option cannot be exported."""


def _require():
    """Import and return ``(onnx, skl2onnx)``, with a clear error if absent."""
    try:
        import onnx
        import skl2onnx
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from exc
    return onnx, skl2onnx


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------
def to_onnx(model, X=None, *, target_opset=None, options=None, **kwargs):
    """Convert a fitted skvae estimator, or a pipeline holding some, to ONNX.

    Registers skvae's converters with skl2onnx (see
    :func:`register_onnx_converters`) and calls :func:`skl2onnx.to_onnx`.
    The graph runs with onnxruntime alone, without PyTorch or skvae.

    What the graphs compute, for an input of float32 or float64 (as
    ``X[:1]`` has, or as ``initial_types`` says):

    - :class:`VAETransformer`: ``transform`` (output ``variable``); with the
      option ``{VAETransformer: {"score_samples": True}}``, also
      ``score_samples`` (output ``score_samples``).
    - :class:`VAEOutlierDetector`: ``predict`` (``label``, -1 or 1) and
      ``decision_function`` (``scores``), as skl2onnx writes
      ``IsolationForest``; with the option ``score_samples``, also
      ``score_samples``.
    - :class:`VAEImputer`: ``transform``, the filled matrix (followed by the
      missing indicator with ``add_indicator=True``).

    Parameters
    ----------
    model : estimator or Pipeline
        A fitted skvae estimator, or a scikit-learn pipeline (or other
        composite that skl2onnx converts) containing fitted skvae estimators.
    X : ndarray, DataFrame or None, default=None
        A row or a few rows of the input, from which skl2onnx takes the
        input's dtype and width; or None with ``initial_types``. A DataFrame
        of numeric columns counts as its array (the graph takes one tensor).
    target_opset : int, dict or None, default=None
        The ONNX opset (skl2onnx's default when None). skvae's graphs need
        opset 18 or newer.
    options : dict or None, default=None
        skl2onnx's conversion options, by class or by ``id(estimator)``.
    **kwargs
        Passed to :func:`skl2onnx.to_onnx` (``initial_types``,
        ``final_types``, ...).

    Returns
    -------
    onx : onnx.ModelProto
        The model; ``onx.SerializeToString()`` gives the bytes to write to a
        ``.onnx`` file or to pass to ``onnxruntime.InferenceSession``.

    Raises
    ------
    ValueError
        When an estimator or option cannot be exported: categorical columns,
        ``score_samples`` with Poisson or negative binomial likelihoods,
        ``VAEImputer(sample_posterior=True)``, or a custom ``module`` that
        ``torch.onnx.export`` cannot export.
    """
    _, skl2onnx = _require()
    register_onnx_converters()
    if hasattr(X, "to_numpy") and hasattr(X, "columns"):  # a DataFrame
        X = X.to_numpy()
    return skl2onnx.to_onnx(
        model, X, target_opset=target_opset, options=options, **kwargs
    )


_registered = False
_lock = threading.Lock()


def register_onnx_converters():
    """Register skvae's parsers, shape calculators and converters with skl2onnx.

    After this call, :func:`skl2onnx.to_onnx` and
    :func:`skl2onnx.convert_sklearn` convert skvae's estimators and
    pipelines that contain them, with skvae's conversion options.
    :func:`to_onnx` calls it; calling it again does nothing. Without it,
    skl2onnx still converts skvae's estimators (they carry the hooks it
    looks for), but without options.
    """
    global _registered
    _, skl2onnx = _require()
    from skl2onnx import update_registered_converter

    from ._imputer import VAEImputer
    from ._outliers import VAEOutlierDetector
    from ._transformer import VAETransformer

    with _lock:
        if _registered:
            return
        for cls, options in (
            (VAETransformer, {"score_samples": [False, True]}),
            (VAEOutlierDetector, {"score_samples": [False, True]}),
            (VAEImputer, None),
        ):
            update_registered_converter(
                cls,
                f"Skvae{cls.__name__}",
                shape_calculator,
                converter,
                parser=parser,
                options=options,
            )
        _registered = True


# --------------------------------------------------------------------------
# skl2onnx: parser, shape calculator, converter
# --------------------------------------------------------------------------
def _options(scope_or_container, model):
    """The conversion options given for ``model`` (defaults where none)."""
    # fail=False: a model converted through the estimator's hooks, not
    # registered with options, has none (skl2onnx has already refused any
    # option given for it).
    options = scope_or_container.get_options(model, fail=False) or {}
    return {"score_samples": options.get("score_samples", False)}


def _tensor_type(variable):
    """The skl2onnx tensor type class of ``variable``, float or double only."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    if isinstance(variable.type, (FloatTensorType, DoubleTensorType)):
        return type(variable.type)
    raise ExportError(
        f"skvae's ONNX graphs take float or double input, got {variable.type} for "
        f"input {variable.onnx_name!r}. Convert with float32 or float64 rows (for "
        "example X[:1].astype(np.float32)), or with initial_types="
        "[('X', FloatTensorType([None, n_features]))]."
    )


def parser(scope, model, inputs, custom_parsers=None):
    """Declare a skvae estimator and its outputs in skl2onnx's topology."""
    from skl2onnx._supported_operators import _get_sklearn_operator_name

    alias = _get_sklearn_operator_name(type(model))
    operator = scope.declare_local_operator(alias, model)
    operator.inputs = inputs
    operator.outputs.extend(_declare_outputs(scope, model, inputs))
    return operator.outputs


def _declare_outputs(scope, model, inputs):
    """The output variables of a skvae estimator's graph."""
    from skl2onnx.common.data_types import Int64TensorType
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    if len(inputs) != 1:
        raise ExportError(
            f"skvae's ONNX graphs take one input tensor, got {len(inputs)} inputs "
            "(skl2onnx makes one per column of a DataFrame). Convert with an "
            "array, for example X[:1].to_numpy(dtype=np.float32)."
        )
    float_type = _tensor_type(inputs[0])
    kind = _kind(model)
    if kind == "detector":
        outputs = [
            scope.declare_local_variable("label", Int64TensorType()),
            scope.declare_local_variable("scores", float_type()),
        ]
    else:
        outputs = [scope.declare_local_variable("variable", float_type())]
    if _options(scope, model)["score_samples"]:
        outputs.append(scope.declare_local_variable("score_samples", float_type()))
    return outputs


def hook_parser(model):
    """The parser that ``model.onnx_parser()`` gives skl2onnx: the outputs
    of an estimator whose operator skl2onnx has declared."""

    def declare(scope=None, inputs=None):
        return _declare_outputs(scope, model, inputs)

    return declare


def shape_calculator(operator):
    """Output types and shapes of a skvae estimator's graph."""
    from skl2onnx.common.data_types import Int64TensorType

    model = operator.raw_operator
    float_type = _tensor_type(operator.inputs[0])
    n_rows = operator.inputs[0].get_first_dimension()
    n_columns = operator.inputs[0].get_second_dimension()
    if n_columns is not None and n_columns != model.n_features_in_:
        raise ExportError(
            f"{type(model).__name__} was fitted on {model.n_features_in_} features, "
            f"but the ONNX input has {n_columns}."
        )
    kind = _kind(model)
    outputs = list(operator.outputs)
    if kind == "detector":
        outputs[0].type = Int64TensorType([n_rows, 1])
        outputs[1].type = float_type([n_rows, 1])
        outputs = outputs[2:]
    elif kind == "imputer":
        outputs[0].type = float_type([n_rows, len(model.get_feature_names_out())])
        outputs = outputs[1:]
    else:
        outputs[0].type = float_type([n_rows, model.n_components])
        outputs = outputs[1:]
    for output in outputs:  # score_samples
        output.type = float_type([n_rows, 1])


def converter(scope, operator, container):
    """Write the graph of a skvae estimator into skl2onnx's container."""
    model = operator.raw_operator
    opset = container.target_opset_any_domain("") or MIN_OPSET
    if opset < MIN_OPSET:
        raise ExportError(
            f"skvae's ONNX graphs need target_opset >= {MIN_OPSET}, got {opset}."
        )
    float_type = _tensor_type(operator.inputs[0])
    dtype = (
        torch.float64 if float_type.__name__ == "DoubleTensorType" else torch.float32
    )
    source = operator.inputs[0].full_name
    outputs = [o.full_name for o in operator.outputs]
    kind = _kind(model)
    options = _options(container, model)
    score = kind == "detector" or options.get("score_samples", False)
    plan = _Plan(model, dtype, score=score, impute=kind == "imputer")
    graphs = _Graphs(scope, container, opset, plan)
    prepared = graphs.prepare(source, slopes=score)
    if kind == "transformer" and score:
        graphs.score(prepared, outputs[1], codes=outputs[0])
    elif kind == "transformer":
        graphs.run(_EncodeGraph(plan), prepared[:2], [outputs[0]], "encode")
    elif kind == "detector":
        if len(outputs) > 2:
            score_name = outputs[2]
        else:
            score_name = scope.get_unique_variable_name("skvae_score_samples")
        graphs.score(prepared, score_name)
        graphs.decide(score_name, outputs[0], outputs[1], model.offset_)
    else:
        graphs.impute(source, prepared, outputs[0])


def _kind(model):
    from ._imputer import VAEImputer
    from ._outliers import VAEOutlierDetector

    if isinstance(model, VAEOutlierDetector):
        return "detector"
    if isinstance(model, VAEImputer):
        return "imputer"
    return "transformer"


# --------------------------------------------------------------------------
# What can be exported
# --------------------------------------------------------------------------
class _Plan:
    """What the graphs of a fitted estimator need, checked for export.

    Raises ``ExportError`` for what the graphs cannot compute.
    """

    def __init__(self, model, dtype, score=False, impute=False):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(model)
        name = type(model).__name__
        self.model = model
        self.dtype = dtype
        schema = model._schema
        categorical = [c.name for c in schema.columns if c.categorical]
        if categorical:
            raise ExportError(
                f"{name} models categorical columns ({categorical[:5]}), which the "
                "ONNX export does not support: its graphs take one numeric tensor. "
                "Encode the categories as numbers before the model (for example "
                "with OneHotEncoder in the pipeline) to export it."
            )
        module = model.net_.module_
        if not isinstance(module, VAEModule):
            raise ExportError(
                f"{name}'s module is a {type(module).__name__}, not a VAEModule "
                "subclass, which the ONNX export needs."
            )
        self.module = module
        if score:
            names = {
                _likelihood_name(part)
                for part in getattr(module.likelihood, "parts", [module.likelihood])
                if not isinstance(part, _SCORED)
            }
            if names:
                raise ExportError(
                    f"score_samples of {name} cannot be exported with the "
                    f"{', '.join(sorted(names))} likelihood: its log-probability "
                    "needs lgamma of the data, which has no ONNX operator. "
                    "Supported for score_samples: bernoulli, continuous_bernoulli, "
                    "gaussian, gaussian_heteroscedastic. transform exports with "
                    "every likelihood."
                )
        if impute:
            if model.sample_posterior:
                raise ExportError(
                    "VAEImputer(sample_posterior=True) cannot be exported: its "
                    "fills are random draws from a generator seeded at each call, "
                    "which an ONNX graph cannot reproduce. Export the model with "
                    "sample_posterior=False (the expected values), for example "
                    "imputer.set_params(sample_posterior=False)."
                )
            for column in schema.columns:
                transform = column.transform
                if transform is not None and len(transform.x_knots) > 2:
                    raise ExportError(
                        f"Column {column.name!r} of {name} has a normal-score "
                        "transform, whose inverse the ONNX export does not "
                        "support; VAEImputer's own columns are standardised."
                    )
        n_features = schema.n_features
        if score or impute:
            if n_features > 2**21:
                raise ExportError(
                    f"{name} has {n_features} features; the ONNX draws support at "
                    f"most {2**21}."
                )
        self.n_draws = None
        if score:
            self.n_draws = model.n_score_samples
        if impute:
            self.n_draws = model.n_impute_samples


def _likelihood_name(part):
    from ._likelihoods import _LIKELIHOODS

    for name, cls in _LIKELIHOODS.items():
        if type(part) is cls:
            return name
    return type(part).__name__


# --------------------------------------------------------------------------
# PyTorch modules exported to ONNX
# --------------------------------------------------------------------------
class _Splines(nn.Module):
    """The ``ColumnTransform`` of several columns, on float64 tensors.

    Each column's cubic pieces are padded to the same number of segments. A
    value's segment is the last one that starts at or below it (SciPy's
    ``searchsorted(side="right")``), found by a binary search of a fixed
    number of steps; its piece is then evaluated as SciPy's ``PPoly`` does,
    or the linear tails beyond the end knots.
    """

    def __init__(self, transforms):
        super().__init__()
        pieces = []
        for t in transforms:
            if t._spline is None:  # a constant column: x - x0 (+ s0)
                x0 = float(t.x_knots[0])
                breaks = np.array([x0, x0])
                coef = np.array([[0.0], [0.0], [1.0], [float(t.s_knots[0])]])
            else:
                breaks = np.asarray(t._spline.x, dtype=np.float64)
                coef = np.asarray(t._spline.c, dtype=np.float64)
            pieces.append((breaks, coef, t._ends))
        n_segments = max(len(b) - 1 for b, _, _ in pieces)
        n = len(pieces)
        # Per column and segment: its start (+inf past the column's last
        # segment, where the search never goes) and its 4 coefficients.
        table = np.zeros((n, n_segments, 5))
        table[:, :, 0] = np.inf
        ends = np.zeros((6, n))
        for i, (t, (breaks, coef, slopes)) in enumerate(zip(transforms, pieces)):
            m = len(breaks) - 1
            table[i, :m, 0] = breaks[:-1]
            table[i, :m, 1:] = coef.T
            (x0, xn), (s0, sn) = t.x_knots[[0, -1]], t.s_knots[[0, -1]]
            ends[:, i] = [x0, xn, s0, sn, slopes[0], slopes[1]]
        self.n_segments = n_segments
        self.steps = [2**p for p in range(int(n_segments - 1).bit_length())][::-1]
        offsets = np.arange(n, dtype=np.int64) * n_segments
        self.register_buffer("offsets", torch.from_numpy(offsets))
        self.register_buffer("starts", torch.from_numpy(table[:, :, 0].ravel()))
        self.register_buffer("table", torch.from_numpy(table.reshape(-1, 5)))
        self.register_buffer("ends", torch.from_numpy(ends))

    def forward(self, x):
        """Internal values and log-slopes of ``x`` (float64, one column each)."""
        segment = torch.zeros_like(x, dtype=torch.int64)
        top = self.n_segments - 1
        for step in self.steps:
            # Both bounds, so that the exported Clip omits no input.
            candidate = torch.clamp(segment + step, 0, top)
            index = candidate + self.offsets
            # index_select keeps one copy of the table in the graph, where
            # indexing would store one per step.
            starts = self.starts.index_select(0, index.reshape(-1))
            take = starts.reshape(index.shape) <= x
            segment = torch.where(take, candidate, segment)
        start, c0, c1, c2, c3 = self.table[segment + self.offsets].unbind(-1)
        dx = x - start
        # As SciPy's PPoly: sum of c[k] dx^(3 - k), from the constant up.
        inside = c3 + c2 * dx
        power = dx * dx
        inside = inside + c1 * power
        inside = inside + c0 * (power * dx)
        x0, xn, s0, sn, e0, e1 = self.ends
        below, above = x < x0, x > xn
        value = torch.where(
            below, s0 + (x - x0) * e0, torch.where(above, sn + (x - xn) * e1, inside)
        )
        slope = torch.where(
            below, e0, torch.where(above, e1, c2 + (2 * c1 + 3 * c0 * dx) * dx)
        )
        return value, torch.log(slope)


class _Prepare(nn.Module):
    """Raw rows to the encoder's input, as ``_inference_data`` builds it.

    Returns the float32 rows (zeros in the gaps), the observation mask (all
    True without ``missing_values``) and, per row, the sum of the log-slopes
    of the transformed columns at their observed entries (float64).
    """

    def __init__(self, model, slopes=True):
        super().__init__()
        self.slopes = slopes
        schema = model._schema
        kept = [i for i, c in enumerate(schema.columns) if c.width]
        self.drop = len(kept) < len(schema.columns)
        self.register_buffer("kept", torch.tensor(kept, dtype=torch.int64))
        transformed = [
            (j, schema.columns[i].transform)
            for j, i in enumerate(kept)
            if schema.columns[i].transform is not None
        ]
        self.splines = None
        if transformed:
            self.splines = _Splines([t for _, t in transformed])
            positions = [j for j, _ in transformed]
            order = list(range(len(kept)))
            for k, j in enumerate(positions):
                order[j] = len(kept) + k
            self.register_buffer("positions", torch.tensor(positions))
            self.register_buffer("order", torch.tensor(order))
        marker = model.missing_values
        self.missing = marker is not None
        self.marker = None if marker is None or np.isnan(marker) else float(marker)

    def forward(self, X):
        if self.missing:
            observed = ~torch.isnan(X)
            if self.marker is not None:
                observed = observed & (X != self.marker)
        else:
            observed = torch.ones_like(X, dtype=torch.bool)
        if self.drop:
            X = X.index_select(1, self.kept)
            observed = observed.index_select(1, self.kept)
        log_slope = torch.zeros_like(X[:, 0], dtype=torch.float64)
        if self.splines is not None:
            x64 = X.to(torch.float64)
            values, slopes = self.splines(x64.index_select(1, self.positions))
            X = torch.cat([x64, values], dim=1).index_select(1, self.order)
            if self.slopes:
                seen = observed.index_select(1, self.positions)
                log_slope = torch.where(seen, slopes, 0.0).sum(dim=1)
        x = X.to(torch.float32)
        if self.missing:
            x = torch.where(observed, x, 0.0)
        return x, observed, log_slope


class _EncodeGraph(nn.Module):
    """``transform``: the posterior means of prepared rows."""

    def __init__(self, plan):
        super().__init__()
        self.module = plan.module
        self.missing = plan.model.missing_values is not None
        self.dtype = plan.dtype

    def forward(self, x, observed):
        z_mean, _ = self.module.encode(x, observed if self.missing else None)
        return z_mean.to(self.dtype)


class _Draws(nn.Module):
    """Importance draws of prepared rows: skvae's own functions, on standard
    normal draws made from the uniforms of ``row_keyed_normal``."""

    def __init__(self, plan):
        super().__init__()
        self.module = plan.module
        self.missing = plan.model.missing_values is not None
        self.n_draws = plan.n_draws

    def inputs(self, x, observed, uniform):
        """The standard normal draws, shape ``(n_draws, n_rows,
        n_components)``, and the mask of observed entries (None for a model
        without missing values): the arguments of skvae's functions."""
        n_components = self.module.n_components
        eps = _ndtri(uniform).to(torch.float32)
        eps = eps.reshape(x.shape[0], self.n_draws, n_components)
        return eps.transpose(0, 1), observed if self.missing else None


class _ScoreGraph(_Draws):
    """``score_samples``: ``log_marginal_likelihood`` plus the log-slopes;
    with ``codes``, the posterior means (``transform``) first, from the same
    run of the encoder."""

    def __init__(self, plan, codes=False):
        super().__init__(plan)
        self.dtype = plan.dtype
        self.codes = codes

    def forward(self, x, observed, uniform, log_slope):
        eps, mask = self.inputs(x, observed, uniform)
        draws = importance_draws(self.module, x, eps, mask)
        log_px = marginal_of_draws(draws)
        score = log_px.to(torch.float64) + log_slope
        score = score.to(self.dtype).unsqueeze(1)
        if self.codes:
            return draws.z_mean.to(self.dtype), score
        return score


class _ImputeGraph(_Draws):
    """``VAEImputer.transform``: the posterior means (``posterior_mean``)
    decoded to the columns' units, in the gaps of the input."""

    def __init__(self, plan):
        super().__init__(plan)
        model = plan.model
        schema = model._schema
        self.dtype = plan.dtype
        columns = schema.columns
        kept = [i for i, c in enumerate(columns) if c.width]
        n_columns = len(columns)
        # Back to the columns' units: x = offset + scale * s per column, then
        # rounding for integer columns of a DataFrame.
        offset = np.zeros(len(kept))
        scale = np.ones(len(kept))
        for j, i in enumerate(kept):
            t = columns[i].transform
            if t is None:
                continue
            if t._spline is None:
                offset[j], scale[j] = t.x_knots[0] - t.s_knots[0], 1.0
            else:
                slope = t._ends[0]
                offset[j] = t.x_knots[0] - t.s_knots[0] / slope
                scale[j] = 1.0 / slope
        self.register_buffer("offset", torch.from_numpy(offset))
        self.register_buffer("scale", torch.from_numpy(scale))
        rounded, low, high = [], [], []
        single = []
        # Float columns recorded to few decimals: rounded to them (scaled by
        # 10**decimals, as NumPy's round) and clipped to the range of fit.
        tenths, scales, tenth_low, tenth_high = [], [], [], []
        for j, i in enumerate(kept):
            kind = _restored_kind(columns[i], schema)
            if kind == "int":
                rounded.append(j)
                low.append(columns[i].low)
                high.append(columns[i].high)
                continue
            if columns[i].decimals is not None:
                tenths.append(j)
                scales.append(10.0 ** columns[i].decimals)
                tenth_low.append(columns[i].low)
                tenth_high.append(columns[i].high)
            if kind == "float32":
                single.append(j)
        self.register_buffer("rounded", torch.tensor(rounded, dtype=torch.int64))
        self.register_buffer("low", torch.tensor(low, dtype=torch.float64))
        self.register_buffer("high", torch.tensor(high, dtype=torch.float64))
        self.register_buffer("single", torch.tensor(single, dtype=torch.int64))
        self.register_buffer("tenths", torch.tensor(tenths, dtype=torch.int64))
        self.register_buffer("powers", torch.tensor(scales, dtype=torch.float64))
        self.register_buffer("tenth_low", torch.tensor(tenth_low, dtype=torch.float64))
        self.register_buffer(
            "tenth_high", torch.tensor(tenth_high, dtype=torch.float64)
        )
        self.schema_single = not schema.dataframe and schema.dtype == np.float32
        # Scatter the kept columns back among all, with zeros in empty ones.
        where = np.full(n_columns, len(kept), dtype=np.int64)
        where[kept] = np.arange(len(kept))
        self.register_buffer("where", torch.from_numpy(where))
        empty = np.array([not c.width for c in columns])
        self.register_buffer("empty", torch.from_numpy(empty))
        keep = [bool(c.width) or model.keep_empty_features for c in columns]
        self.register_buffer("keep", torch.tensor(np.flatnonzero(keep)))
        self.indicator = model.indicator_ is not None
        if self.indicator:
            features = np.asarray(model.indicator_.features_, dtype=np.int64)
            self.register_buffer("features", torch.from_numpy(features))
        self.missing_marker = model.missing_values
        self.drop = not all(keep)

    def forward(self, X, x, observed, uniform):
        eps, mask = self.inputs(x, observed, uniform)
        fills = posterior_mean(self.module, x, eps, mask)
        decoded = self.offset + self.scale * fills.to(torch.float64)
        if len(self.rounded):
            values = decoded.index_select(1, self.rounded)
            values = torch.minimum(
                torch.maximum(torch.round(values), self.low), self.high
            )
            decoded = decoded.index_copy(1, self.rounded, values)
        if len(self.tenths):
            values = decoded.index_select(1, self.tenths)
            values = torch.round(values * self.powers) / self.powers
            values = torch.minimum(
                torch.maximum(values, self.tenth_low), self.tenth_high
            )
            decoded = decoded.index_copy(1, self.tenths, values)
        if len(self.single):
            values = decoded.index_select(1, self.single)
            values = values.to(torch.float32).to(torch.float64)
            decoded = decoded.index_copy(1, self.single, values)
        if self.schema_single:
            decoded = decoded.to(torch.float32).to(torch.float64)
        padded = torch.cat([decoded, torch.zeros_like(decoded[:, :1])], dim=1)
        full = padded.index_select(1, self.where).to(X.dtype)
        missing = torch.isnan(X)
        marker = self.missing_marker
        if not np.isnan(marker):
            missing = missing | (X == marker)
        out = torch.where(missing, full, X)
        out = torch.where(self.empty, torch.zeros_like(out), out)
        if self.drop:
            out = out.index_select(1, self.keep)
        if self.indicator:
            flags = missing.index_select(1, self.features).to(X.dtype)
            out = torch.cat([out, flags], dim=1)
        return out


def _restored_kind(column, schema):
    """How ``schema.decode`` gives a numeric column back: "int" (rounded
    into the range of ``fit``), "float32" or "float64"."""
    if not schema.dataframe:
        return "float64"
    import pandas as pd

    dtype = pd.api.types.pandas_dtype(column.dtype)
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if dtype == np.float32:
        return "float32"
    return "float64"


# Wichura's AS241 (as in CPython's statistics.NormalDist.inv_cdf): rational
# approximations of the inverse normal CDF, accurate to about 1e-16.
_AS241 = {
    "a": [
        3.3871328727963666080e0,
        1.3314166789178437745e2,
        1.9715909503065514427e3,
        1.3731693765509461125e4,
        4.5921953931549871457e4,
        6.7265770927008700853e4,
        3.3430575583588128105e4,
        2.5090809287301226727e3,
    ],
    "b": [
        1.0,
        4.2313330701600911252e1,
        6.8718700749205790830e2,
        5.3941960214247511077e3,
        2.1213794301586595867e4,
        3.9307895800092710610e4,
        2.8729085735721942674e4,
        5.2264952788528545610e3,
    ],
    "c": [
        1.42343711074968357734e0,
        4.63033784615654529590e0,
        5.76949722146069140550e0,
        3.64784832476320460504e0,
        1.27045825245236838258e0,
        2.41780725177450611770e-1,
        2.27238449892691845833e-2,
        7.74545014278341407640e-4,
    ],
    "d": [
        1.0,
        2.05319162663775882187e0,
        1.67638483018380384940e0,
        6.89767334985100004550e-1,
        1.48103976427480074590e-1,
        1.51986665636164571966e-2,
        5.47593808499534494600e-4,
        1.05075007164441684324e-9,
    ],
    "e": [
        6.65790464350110377720e0,
        5.46378491116411436990e0,
        1.78482653991729133580e0,
        2.96560571828504891230e-1,
        2.65321895265761230930e-2,
        1.24266094738807843860e-3,
        2.71155556874348757815e-5,
        2.01033439929228813265e-7,
    ],
    "f": [
        1.0,
        5.99832206555887937690e-1,
        1.36929880922735805310e-1,
        1.48753612908506148525e-2,
        7.86869131145613259100e-4,
        1.84631831751005468180e-5,
        1.42151175831644588870e-7,
        2.04426310338993978564e-15,
    ],
}


def _polynomial(coefficients, r):
    """``sum_k coefficients[k] r^k``, by Horner's rule."""
    value = torch.full_like(r, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        value = value * r + c
    return value


def _ndtri(p):
    """Inverse of the standard normal CDF of float64 ``p`` in (0, 1)."""
    q = p - 0.5
    central = q.abs() <= 0.425
    r = 0.180625 - q * q
    x_central = q * _polynomial(_AS241["a"], r) / _polynomial(_AS241["b"], r)
    tail = torch.where(q <= 0, p, 1.0 - p)
    tail = torch.where(central, torch.full_like(p, 0.5), tail)  # any safe value
    r = torch.sqrt(-torch.log(tail))
    near = r <= 5.0
    r_near, r_far = r - 1.6, r - 5.0
    x_near = _polynomial(_AS241["c"], r_near) / _polynomial(_AS241["d"], r_near)
    x_far = _polynomial(_AS241["e"], r_far) / _polynomial(_AS241["f"], r_far)
    x_tail = torch.where(near, x_near, x_far)
    x_tail = torch.where(q < 0, -x_tail, x_tail)
    return torch.where(central, x_central, x_tail)


# --------------------------------------------------------------------------
# The uniforms of row_keyed_normal, in ONNX operators
# --------------------------------------------------------------------------
def _uniform_graph(n_features, n_uniforms, seed, opset):
    """ONNX model: float32 rows ``x`` to the uniforms of ``row_keyed_normal``.

    Returns a model with input ``x`` (float32, (n, n_features)) and output
    ``u`` (float64, (n, n_uniforms)): ``((h >> 11) + 0.5) 2^-53`` with the
    SplitMix64 hashes ``h`` of each row's key and the counters 1, 2, ...,
    where the key mixes the bits of the row's float32 values with their
    positions and ``seed``.
    """
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    count = [0]

    def const(value, dtype):
        name = f"c{len(inits)}"
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(op_type, *inputs, **attrs):
        count[0] += 1
        name = f"t{count[0]}"
        nodes.append(helper.make_node(op_type, list(inputs), [name], **attrs))
        return name

    # The bits of each float32 value, from its value: an exact computation
    # in float64 (ONNX's BitCast needs opset 26).
    v = op("Cast", "x", to=TensorProto.DOUBLE)
    a = op("Abs", v)
    zero = const(0.0, np.float64)
    negative = op(
        "Or",
        op("Less", v, zero),
        op("Less", op("Div", const(1.0, np.float64), v), zero),  # -0.0
    )
    smallest = const(2.0**-126, np.float64)
    subnormal = op("Less", a, smallest)
    safe = op("Where", subnormal, const(1.0, np.float64), a)
    # Exponent from the logarithm, then corrected against exact powers of 2.
    powers = const(2.0 ** np.arange(-127, 130, dtype=np.float64), np.float64)
    e = op("Floor", op("Div", op("Log", safe), const(math.log(2.0), np.float64)))
    e = op("Clip", e, const(-126.0, np.float64), const(127.0, np.float64))
    k = op("Cast", op("Add", e, const(127.0, np.float64)), to=TensorProto.INT64)
    one = const(1, np.int64)
    k = op("Sub", k, op("Cast", op("Less", safe, op("Gather", powers, k)), to=7))
    k_next = op("Add", k, one)
    k = op(
        "Add",
        k,
        op("Cast", op("GreaterOrEqual", safe, op("Gather", powers, k_next)), to=7),
    )
    # |v| = 2^(k - 127) (1 + f): biased exponent k, fraction f 2^23.
    fraction = op(
        "Mul",
        op("Sub", op("Div", safe, op("Gather", powers, k)), const(1.0, np.float64)),
        const(2.0**23, np.float64),
    )
    normal = op(
        "Add",
        op("Mul", op("Cast", k, to=TensorProto.DOUBLE), const(2.0**23, np.float64)),
        fraction,
    )
    magnitude = op(
        "Where", subnormal, op("Mul", a, const(2.0**149, np.float64)), normal
    )
    bits = op(
        "Add",
        magnitude,
        op("Where", negative, const(2.0**31, np.float64), zero),
    )
    bits = op("Cast", bits, to=TensorProto.UINT64)

    def mix(z):
        z = op(
            "BitwiseXor", z, op("BitShift", z, const(30, np.uint64), direction="RIGHT")
        )
        z = op("Mul", z, const(_MIX1, np.uint64))
        z = op(
            "BitwiseXor", z, op("BitShift", z, const(27, np.uint64), direction="RIGHT")
        )
        z = op("Mul", z, const(_MIX2, np.uint64))
        return op(
            "BitwiseXor", z, op("BitShift", z, const(31, np.uint64), direction="RIGHT")
        )

    h = mix(op("Add", bits, const(_golden_steps(n_features), np.uint64)))
    # The row's sum modulo 2^64, from exact float64 sums of its 32-bit halves.
    low = op("BitwiseAnd", h, const(0xFFFFFFFF, np.uint64))
    high = op("BitShift", h, const(32, np.uint64), direction="RIGHT")
    axes = const([1], np.int64)
    low = op("ReduceSum", op("Cast", low, to=TensorProto.DOUBLE), axes, keepdims=1)
    high = op("ReduceSum", op("Cast", high, to=TensorProto.DOUBLE), axes, keepdims=1)
    total = op(
        "Add",
        op(
            "BitShift",
            op("Cast", high, to=TensorProto.UINT64),
            const(32, np.uint64),
            direction="LEFT",
        ),
        op("Cast", low, to=TensorProto.UINT64),
    )
    key = op("BitwiseXor", mix(total), const(_seed_key(seed), np.uint64))
    h = mix(op("Add", key, const(_golden_steps(n_uniforms)[None, :], np.uint64)))
    top = op("BitShift", h, const(11, np.uint64), direction="RIGHT")
    u = op(
        "Mul",
        op("Add", op("Cast", top, to=TensorProto.DOUBLE), const(0.5, np.float64)),
        const(2.0**-53, np.float64),
    )
    nodes.append(helper.make_node("Identity", [u], ["u"]))
    graph = helper.make_graph(
        nodes,
        "row_keyed_uniforms",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("u", TensorProto.DOUBLE, [None, n_uniforms])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


# --------------------------------------------------------------------------
# Export and embedding
# --------------------------------------------------------------------------
def _export(module, args, input_names, output_names, opset):
    """The ONNX model of ``module`` from ``torch.onnx.export``, with a
    dynamic first (batch) axis on every input."""
    import torch.onnx  # noqa: F401

    batch = torch.export.Dim("batch", min=1)
    shapes = tuple({0: batch} for _ in args)
    loggers = [
        logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")
    ]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module.eval(),
                args,
                dynamo=True,
                opset_version=opset,
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes=shapes,
                verbose=False,
                optimize=True,
            )
    except ImportError as exc:
        raise ImportError(f"{_INSTALL_HINT} ({exc})") from exc
    except Exception as exc:  # the exporter raises many kinds of errors
        raise ExportError(
            f"torch.onnx.export could not export the network ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc}). A "
            "custom module must be traceable by torch.export."
        ) from exc
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    return program.model_proto


class _Graphs:
    """Writes the graphs of one estimator into skl2onnx's container."""

    def __init__(self, scope, container, opset, plan):
        import copy

        self.scope = scope
        self.container = container
        self.opset = opset
        self.plan = plan
        self.examples = {}
        # The network on the CPU and in eval mode, leaving the estimator's own
        # module where it is.
        plan.module = copy.deepcopy(plan.module).to("cpu").eval()

    def _name(self, base):
        return self.scope.get_unique_variable_name(f"skvae_{base}")

    def run(self, module, inputs, outputs, prefix):
        """Export ``module`` and embed it, fed the variables ``inputs`` and
        writing the variables ``outputs``."""
        args = tuple(self.examples[name] for name in inputs)
        input_names = [f"in{i}" for i in range(len(inputs))]
        output_names = [f"out{i}" for i in range(len(outputs))]
        with torch.no_grad():
            model = _export(module, args, input_names, output_names, self.opset)
        _embed(
            model,
            self.scope,
            self.container,
            dict(zip(input_names, inputs)),
            dict(zip(output_names, outputs)),
            f"skvae_{prefix}",
        )

    def prepare(self, source, slopes):
        """Embed ``_Prepare``; return the names of its three outputs."""
        plan = self.plan
        X = torch.zeros(2, plan.model.n_features_in_, dtype=plan.dtype)
        names = [self._name(n) for n in ("x", "observed", "log_slope")]
        prepare = _Prepare(plan.model, slopes=slopes)
        with torch.no_grad():
            examples = prepare(X)
        self.examples[source] = X
        self.examples.update(zip(names, examples))
        self.run(prepare, [source], names, "prepare")
        return names

    def uniforms(self, x):
        """Embed the uniforms of ``row_keyed_normal`` of the rows ``x``."""
        plan = self.plan
        n_uniforms = plan.n_draws * plan.module.n_components
        model = _uniform_graph(
            plan.model._schema.n_features,
            n_uniforms,
            plan.model._score_seed,
            self.opset,
        )
        name = self._name("uniform")
        _embed(model, self.scope, self.container, {"x": x}, {"u": name}, "skvae_hash")
        self.examples[name] = torch.full((2, n_uniforms), 0.5, dtype=torch.float64)
        return name

    def score(self, prepared, output, codes=None):
        """Embed ``_ScoreGraph`` writing ``output``, and the posterior means
        to ``codes`` if given."""
        x, observed, log_slope = prepared
        u = self.uniforms(x)
        graph = _ScoreGraph(self.plan, codes=codes is not None)
        outputs = [output] if codes is None else [codes, output]
        self.run(graph, [x, observed, u, log_slope], outputs, "score")

    def impute(self, source, prepared, output):
        x, observed, _ = prepared
        u = self.uniforms(x)
        self.run(_ImputeGraph(self.plan), [source, x, observed, u], [output], "impute")

    def decide(self, score, label, scores, offset):
        """``decision_function`` and ``predict`` from ``score_samples``."""
        from onnx import numpy_helper

        dtype = np.float64 if self.plan.dtype == torch.float64 else np.float32
        constants = {}
        for key, value in (
            ("offset", np.array([offset], dtype=dtype)),
            ("zero", np.array([0.0], dtype=dtype)),
            ("one", np.array([1], dtype=np.int64)),
            ("minus_one", np.array([-1], dtype=np.int64)),
        ):
            constants[key] = self._name(key)
            tensor = numpy_helper.from_array(value, constants[key])
            self.container.initializers.append(tensor)
        outlier = self._name("outlier")
        add = self.container.add_node
        add("Sub", [score, constants["offset"]], [scores], name=self._op("decision"))
        add("Less", [scores, constants["zero"]], [outlier], name=self._op("less"))
        add(
            "Where",
            [outlier, constants["minus_one"], constants["one"]],
            [label],
            name=self._op("label"),
        )

    def _op(self, base):
        return self.scope.get_unique_operator_name(f"skvae_{base}")


def _embed(model, scope, container, inputs, outputs, prefix):
    """Copy the nodes and initializers of ``model`` into skl2onnx's container.

    ``inputs`` and ``outputs`` map names of the model's inputs and outputs to
    the container's variables that feed them and that they write; every
    other name gets a fresh one from ``scope``. Inputs the model dropped
    (unused) are ignored.
    """
    import onnx
    from onnx import helper, numpy_helper

    if len(model.functions):
        model = onnx.inliner.inline_local_functions(model)
    graph = model.graph
    versions = {o.domain: o.version for o in model.opset_import}
    names = {i.name: inputs[i.name] for i in graph.input}
    copies = []
    for output in graph.output:
        if output.name in names:  # an input passed through
            copies.append((names[output.name], outputs[output.name]))
        else:
            names[output.name] = outputs[output.name]

    def rename(name):
        if not name:
            return name
        if name not in names:
            names[name] = scope.get_unique_variable_name(f"{prefix}_{name}")
        return names[name]

    for tensor in graph.initializer:
        array = numpy_helper.to_array(tensor)
        container.initializers.append(
            numpy_helper.from_array(array, rename(tensor.name))
        )
    for node in graph.node:
        attrs = {}
        for attribute in node.attribute:
            if attribute.type in (
                onnx.AttributeProto.GRAPH,
                onnx.AttributeProto.GRAPHS,
            ):
                raise ExportError(
                    f"The exported graph has a {node.op_type} node with a subgraph, "
                    "which skvae does not embed."
                )
            attrs[attribute.name] = helper.get_attribute_value(attribute)
        domain = "" if node.domain == "ai.onnx" else node.domain
        node_inputs = list(node.input)
        while node_inputs and not node_inputs[-1]:  # omitted optional inputs
            node_inputs.pop()
        if "" in node_inputs:  # skl2onnx's topological sort needs every name
            raise ExportError(
                f"The exported graph has a {node.op_type} node with an omitted "
                "input, which skvae does not embed."
            )
        container.add_node(
            node.op_type,
            [rename(n) for n in node_inputs],
            [rename(n) for n in node.output],
            op_domain=domain,
            op_version=versions.get(domain, versions.get("ai.onnx")),
            name=scope.get_unique_operator_name(f"{prefix}_{node.op_type}"),
            **attrs,
        )
    for source, target in copies:
        container.add_node(
            "Identity", [source], [target], name=scope.get_unique_operator_name(prefix)
        )
