"""What the ONNX graphs of a fitted estimator need, checked for export."""

from .._likelihoods import LIKELIHOODS
from .._modules import VAEModule

# The torch exporter writes opset 18 and newer.
MIN_OPSET = 18
# Likelihoods whose log-density the exported graphs compute: skvae's own
# (counts with the lgamma of ``_lgamma``), not a custom module's own class.
SCORED = tuple(LIKELIHOODS.values())
INSTALL_HINT = (
    "ONNX export needs onnx, onnxruntime, skl2onnx and onnxscript: "
    "pip install 'skvae[onnx]'."
)


class ExportError(ValueError):
    """Raised at conversion when an estimator or option cannot be exported."""


def require():
    """Import and return ``(onnx, skl2onnx)``, with a clear error if absent."""
    try:
        import onnx
        import skl2onnx
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    return onnx, skl2onnx


class Plan:
    """What the graphs of a fitted estimator need, checked for export.

    Raises ``ExportError`` for what the graphs cannot compute.
    """

    def __init__(self, model, dtype, score=False, impute=False, table=False):
        from sklearn.utils.validation import check_is_fitted

        from ._columns import check_categories, wide_width

        check_is_fitted(model)
        name = type(model).__name__
        self.model = model
        self.dtype = dtype
        state = model._fitted_state()
        self.schema = schema = state["schema"]
        self.score_seed = state["score_seed"]
        self.indicator_features = state.get("indicator_features")
        self.donors = state.get("donors")
        categorical = any(c.categorical for c in schema.columns)
        if categorical:
            _check_table(name, table, impute, model, schema)
            check_categories(name, schema, model)
        # The width of the rows that Prepare takes (see _columns).
        self.width = wide_width(schema)
        # Whether the rows can have gaps: a category that fit did not see is
        # one, even without missing_values.
        self.missing = model.missing_values is not None or categorical
        self.module = _checked_module(name, state["module"])
        if score:
            _check_scored(name, self.module)
        if impute:
            _check_imputable(name, model)
        n_features = schema.n_features
        if score or impute:
            if n_features > 2**21:
                raise ExportError(
                    f"{name} has {n_features} features; the ONNX draws support at "
                    f"most {2**21}."
                )
        self.n_draws = None
        # The detector's local views (a ``LocalView`` and a ``DensityView``),
        # if it has them.
        self.local = state.get("local") if score else None
        self.density = state.get("density") if score else None
        if score:
            self.n_draws = state["score_draws"]
        if impute:
            self.n_draws = model.n_impute_samples


def _check_table(name, table, impute, model, schema):
    """Refuse categorical columns without per-column inputs, or for an
    imputer with a missing indicator or empty columns."""
    if impute and (model.add_indicator or not all(schema.kept())):
        raise ExportError(
            f"{name} with categorical columns exports one output per column, "
            "without add_indicator and without columns empty in fit: set "
            "add_indicator=False, drop the empty columns and refit to export it."
        )
    if not table:
        raise ExportError(
            f"{name} models categorical columns, which its ONNX graph takes as "
            "one input per column: convert with a few rows of the DataFrame, "
            "skvae.to_onnx(model, frame[:1]), not with one tensor."
        )


def _checked_module(name, module):
    if not isinstance(module, VAEModule):
        raise ExportError(
            f"{name}'s module is a {type(module).__name__}, not a VAEModule "
            "subclass, which the ONNX export needs."
        )
    return module


def _check_scored(name, module):
    """Refuse ``score_samples`` with a likelihood the graphs cannot compute."""
    names = {
        type(part).__name__
        for part in getattr(module.likelihood, "parts", [module.likelihood])
        if not isinstance(part, SCORED)
    }
    if names:
        raise ExportError(
            f"score_samples of {name} cannot be exported with the "
            f"{', '.join(sorted(names))} likelihood, whose log-probability "
            "the ONNX graphs do not compute. Supported for score_samples: "
            f"skvae's own likelihoods ({', '.join(sorted(LIKELIHOODS))}). "
            "transform exports with every likelihood."
        )


def _check_imputable(name, model):
    """Refuse random fills, which the graphs cannot reproduce."""
    if model.sample_posterior:
        raise ExportError(
            "VAEImputer(sample_posterior=True) cannot be exported: its "
            "fills are random draws from a generator seeded at each call, "
            "which an ONNX graph cannot reproduce. Export the model with "
            "sample_posterior=False (the expected values), for example "
            "imputer.set_params(sample_posterior=False)."
        )
