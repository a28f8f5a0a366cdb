"""The exported modules of each method: ``transform``, ``score_samples`` and
the imputer's fills, on prepared rows."""

import numpy as np
import torch
from torch import nn

from .._data import observed_entries
from .._decode import decode_numeric
from .._donors import blend, completed, completed_mean, n_candidates
from .._importance import importance_draws, marginal_of_draws, posterior_mean
from .._local import density_term, local_term
from ._draws import ndtri
from ._prepare import Tensors


class EncodeGraph(nn.Module):
    """``transform``: the posterior means of prepared rows."""

    def __init__(self, plan):
        super().__init__()
        self.module = plan.module
        self.missing = plan.missing
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
        self.missing = plan.missing
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
    and the detector's ``local_term`` and ``density_term`` when it has local
    views (its training codes and rows buffers); with ``codes``, the
    posterior means (``transform``) first, from the same run of the
    encoder."""

    def __init__(self, plan, codes=False):
        super().__init__(plan)
        self.dtype = plan.dtype
        self.codes = codes
        self.local = None if plan.local is None else Tensors(plan.local)
        self.density = None if plan.density is None else Tensors(plan.density)

    def forward(self, x, observed, uniform, log_slope):
        eps, mask = self.inputs(x, observed, uniform)
        draws = importance_draws(self.module, x, eps, mask)
        log_px = marginal_of_draws(draws)
        score = log_px.to(torch.float64) + log_slope
        if self.local is not None:
            view = self.local.table()
            score = score + local_term(draws.z_mean, draws.z_logvar, view)
        if self.density is not None:
            rows = completed_mean(self.module, x, eps, mask)
            score = score + density_term(rows, self.density.table())
        score = score.to(self.dtype).unsqueeze(1)
        if self.codes:
            return draws.z_mean.to(self.dtype), score
        return score


class DonorFills(_Draws):
    """Importance draws of the imputer, whose fills take in the donors of
    ``blend`` (buffers; none when the model alone fills), as ``transform``
    does."""

    def __init__(self, plan):
        super().__init__(plan)
        pool = plan.donors
        self.n_candidates = None if pool is None else n_candidates(pool)
        self.donors = None if pool is None else Tensors(pool)

    def blended(self, fills, x, mask):
        """``fills`` with the donors blended in."""
        if self.n_candidates is None:
            return fills
        pool = self.donors.table()
        return blend(fills, completed(x, mask, fills), pool, self.n_candidates)


class ImputeGraph(DonorFills):
    """``VAEImputer.transform``: the posterior means (``posterior_mean``)
    decoded to the columns' units by ``decode_numeric``, in the gaps of the
    input."""

    def __init__(self, plan):
        super().__init__(plan)
        schema = plan.schema
        self.dtype = plan.dtype
        self.decoding = Tensors(schema.numeric_decoding())
        self._register_layout(plan, schema.numeric_columns())

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
        fills = self.blended(fills, x, mask)
        decoded = decode_numeric(fills.to(torch.float64), self.decoding.table())
        padded = torch.cat([decoded, torch.zeros_like(decoded[:, :1])], dim=1)
        full = padded.index_select(1, self.where).to(X.dtype)
        missing = ~observed_entries(X, self.missing_marker)
        out = torch.where(missing, full, X)
        out = torch.where(self.empty, torch.zeros_like(out), out)
        if self.drop:
            out = out.index_select(1, self.keep)
        if self.indicator:
            flags = missing.index_select(1, self.features).to(X.dtype)
            out = torch.cat([out, flags], dim=1)
        return out
