"""ONNX export of fitted estimators, alone or as steps of scikit-learn pipelines.

skl2onnx converts a pipeline step by step, each step by the converter
registered for its class. skvae's converters embed graphs that
``torch.onnx.export`` makes of small PyTorch modules, which do from the raw
input rows what the estimators' methods do. The package holds, by concern:

- ``_plan``: what can be exported, checked (``Plan``, ``ExportError``), from
  the estimator's ``_fitted_state()``, the one interface through which this
  package sees a fitted estimator.
- ``_convert``: the skl2onnx glue (parser, shape calculator, converter). Each
  estimator declares the graph it exports as the class attribute
  ``_onnx_graph`` ("transformer", "detector" or "imputer") and records itself
  with ``declare_exportable``, so this package imports no estimator module.
- ``_prepare``: ``Prepare``, the encoder's input as ``_inference_data`` builds
  it: gaps (``missing_values``) become zeros and give the observation mask,
  columns with no observed value in ``fit`` are left out, and transformed
  numeric columns go through their ``ColumnTransform`` (the cubic Hermite
  pieces and linear tails, evaluated in float64 by ``evaluate_splines``, the
  torch function that ``transform`` and ``log_slope`` call) before the
  cast to float32.
- ``_graphs``: ``EncodeGraph`` (``transform``, the posterior means of the
  encoder), ``ScoreGraph`` and ``ImputeGraph`` (``score_samples`` and the
  imputer's fills, by importance sampling with the draws of
  ``row_keyed_normal``).
- ``_draws``: the row-keyed draws. The hashing of each row's float32 bits
  into uniforms (SplitMix64 on uint64) is written directly in ONNX operators
  (``uniform_graph``); the inverse normal CDF that turns them into draws is
  Wichura's AS241 (``ndtri``), accurate to about 1e-16, so that the draws are
  those of skvae.
- ``_columns``: a table's columns as the graph's inputs, one each, cast and
  encoded (one-hot blocks of categories) in ONNX operators.
- ``_fills``: ``TableFills``, the imputer's fills of a table with
  categorical columns, decoded per column.
- ``_lgamma``: ``lgamma`` in ONNX operators, the exporter's translation of
  ``torch.lgamma`` (the log-probabilities of counts).
- ``_embed``: ``torch.onnx.export`` of the modules, and the copy of their
  graphs into skl2onnx's container.

onnx and skl2onnx are imported only here, and only when a function that
needs them is called: skvae imports without them. Registration with skl2onnx
happens in ``register_onnx_converters`` (which ``to_onnx`` calls); without
it, skl2onnx finds the converters through the estimators' ``onnx_parser``,
``onnx_shape_calculator`` and ``onnx_converter`` hooks.
"""

import threading

from ._columns import column_types, tensor_probabilities
from ._convert import (
    GRAPH_OPTIONS,
    converter,
    graph_kind,
    hook_parser,
    parser,
    shape_calculator,
)
from ._plan import ExportError, require

# The entry points of skvae's API, and the skl2onnx hooks of the estimators.
__all__ = [
    "ExportError",
    "converter",
    "declare_exportable",
    "hook_parser",
    "parser",
    "register_onnx_converters",
    "shape_calculator",
    "to_onnx",
]


def to_onnx(model, X=None, *, target_opset=None, options=None, **kwargs):
    """Convert a fitted skvae estimator, or a pipeline holding some, to ONNX.

    Registers skvae's converters with skl2onnx (see
    :func:`register_onnx_converters`) and calls :func:`skl2onnx.to_onnx`.
    The graph runs with onnxruntime alone, without PyTorch or skvae.

    What the graphs compute, for an input of float32 or float64 (as
    ``X[:1]`` has, or as ``initial_types`` says), or for a DataFrame's
    columns, one input each:

    - :class:`VAETransformer`: ``transform`` (output ``variable``); with the
      option ``{VAETransformer: {"score_samples": True}}``, also
      ``score_samples`` (output ``score_samples``).
    - :class:`VAEOutlierDetector`: ``predict`` (``label``, -1 or 1) and
      ``decision_function`` (``scores``), as skl2onnx writes
      ``IsolationForest``; with the option ``score_samples``, also
      ``score_samples``.
    - :class:`VAEImputer`: ``transform``, the filled matrix (followed by the
      missing indicator with ``add_indicator=True``); for a table with
      categorical columns, one output per column (``<column>_filled``).

    Parameters
    ----------
    model : estimator or Pipeline
        A fitted skvae estimator, or a scikit-learn pipeline (or other
        composite that skl2onnx converts) containing fitted skvae estimators.
    X : ndarray, DataFrame or None, default=None
        A row or a few rows of the input, from which skl2onnx takes the
        input's dtype and width; or None with ``initial_types``. For a
        DataFrame the graph takes one input per column, named as the column,
        of shape ``(n_rows, 1)``: strings as string tensors (a gap is
        ``""``), numbers as float, double, int64 or bool tensors, as the
        column's dtype is (nullable and numeric categorical columns as
        double). The estimator's graph casts the numbers and encodes the
        categorical columns as ``transform`` does; a pipeline that starts
        with a ``ColumnTransformer`` maps them by name. Classifiers then
        give their probabilities as a tensor (``zipmap=False``) when a
        column is double, unless ``options`` say otherwise.
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
        When an estimator or option cannot be exported:
        :class:`VAEImputer` with categorical columns and ``add_indicator``
        or empty columns, categorical columns given as one input tensor,
        ``VAEImputer(sample_posterior=True)``, or a custom ``module`` that
        ``torch.onnx.export`` cannot export.
    """
    _, skl2onnx = require()
    register_onnx_converters()
    if hasattr(X, "dtypes") and hasattr(X, "columns"):  # a DataFrame
        if "initial_types" not in kwargs:
            kwargs["initial_types"] = column_types(X)
            options = tensor_probabilities(model, kwargs["initial_types"], options)
        X = None
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
    _, skl2onnx = require()
    from skl2onnx import update_registered_converter

    with _lock:
        if _registered:
            return
        for cls in _exportable_classes():
            options = GRAPH_OPTIONS[graph_kind(cls)]
            update_registered_converter(
                cls,
                f"Skvae{cls.__name__}",
                shape_calculator,
                converter,
                parser=parser,
                options=options,
            )
        _registered = True


# The estimator classes that declare an ONNX graph, in the order they were
# defined: each registers itself (``_BaseVAE.__init_subclass__``), so that
# this package imports no estimator module.
_exportable = []


def declare_exportable(cls):
    """Record ``cls``, whose class attribute ``_onnx_graph`` names the graph
    it exports, among the classes that ``register_onnx_converters``
    registers."""
    graph_kind(cls)
    if cls not in _exportable:
        _exportable.append(cls)


def _exportable_classes():
    """The estimator classes that declared an ONNX graph."""
    return list(_exportable)
