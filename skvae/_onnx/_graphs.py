"""The exported modules of each method: ``transform``, ``score_samples`` and
the imputer's fills, on prepared rows."""

import numpy as np
import torch
from torch import nn

from .._importance import importance_draws, marginal_of_draws, posterior_mean
from .._local import LocalView, local_term
from ._draws import ndtri


class EncodeGraph(nn.Module):
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
        eps = ndtri(uniform).to(torch.float32)
        eps = eps.reshape(x.shape[0], self.n_draws, n_components)
        return eps.transpose(0, 1), observed if self.missing else None


class ScoreGraph(_Draws):
    """``score_samples``: ``log_marginal_likelihood`` plus the log-slopes,
    and the detector's ``local_term`` when it has a local view (its training
    codes a buffer); with ``codes``, the posterior means (``transform``)
    first, from the same run of the encoder."""

    def __init__(self, plan, codes=False):
        super().__init__(plan)
        self.dtype = plan.dtype
        self.codes = codes
        self.local = plan.local
        if self.local is not None:
            self.register_buffer("neighbor_codes", self.local.codes.clone())

    def forward(self, x, observed, uniform, log_slope):
        eps, mask = self.inputs(x, observed, uniform)
        draws = importance_draws(self.module, x, eps, mask)
        log_px = marginal_of_draws(draws)
        score = log_px.to(torch.float64) + log_slope
        if self.local is not None:
            _, z_logvar = self.module.encode(x, mask)
            local = self.local
            view = LocalView(
                self.neighbor_codes, local.n_neighbors, local.weight, local.center
            )
            score = score + local_term(draws.z_mean, z_logvar, view)
        score = score.to(self.dtype).unsqueeze(1)
        if self.codes:
            return draws.z_mean.to(self.dtype), score
        return score


class ImputeGraph(_Draws):
    """``VAEImputer.transform``: the posterior means (``posterior_mean``)
    decoded to the columns' units, in the gaps of the input."""

    def __init__(self, plan):
        super().__init__(plan)
        schema = plan.schema
        self.dtype = plan.dtype
        columns = schema.columns
        kept = np.flatnonzero(schema.kept()).tolist()
        # Back to the columns' units: x = offset + scale * s per column, then
        # rounding for integer columns of a DataFrame.
        offset, scale = _linear_inverses([columns[i].transform for i in kept])
        self.register_buffer("offset", torch.from_numpy(offset))
        self.register_buffer("scale", torch.from_numpy(scale))
        self._register_rounding(schema, kept)
        self.schema_single = not schema.dataframe and schema.dtype == np.float32
        self._register_layout(plan, kept)

    def _register_rounding(self, schema, kept):
        """Buffers of the columns rounded to integers, to decimals, or to
        float32, as ``schema.decode`` gives them back."""
        columns = schema.columns
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

    def _register_layout(self, plan, kept):
        """Buffers that place the kept columns among the output's columns."""
        model, columns = plan.model, plan.schema.columns
        # Scatter the kept columns back among all, with zeros in empty ones.
        where = np.full(len(columns), len(kept), dtype=np.int64)
        where[kept] = np.arange(len(kept))
        self.register_buffer("where", torch.from_numpy(where))
        empty = np.array([not c.width for c in columns])
        self.register_buffer("empty", torch.from_numpy(empty))
        keep = plan.schema.kept(model.keep_empty_features)
        self.register_buffer("keep", torch.tensor(np.flatnonzero(keep)))
        self.indicator = plan.indicator_features is not None
        if self.indicator:
            features = np.asarray(plan.indicator_features, dtype=np.int64)
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


def _linear_inverses(transforms):
    """``(offset, scale)`` per column: the inverse of each ``ColumnTransform``
    (None: identity) in its linear part, as ``x = offset + scale * s``."""
    offset = np.zeros(len(transforms))
    scale = np.ones(len(transforms))
    for j, t in enumerate(transforms):
        if t is None:
            continue
        if len(t.x_knots) == 1:  # a constant column: a shift
            offset[j], scale[j] = t.x_knots[0] - t.s_knots[0], 1.0
        else:
            slope = t.pieces[2][0]
            offset[j] = t.x_knots[0] - t.s_knots[0] / slope
            scale[j] = 1.0 / slope
    return offset, scale


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
