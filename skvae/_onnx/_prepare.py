"""``Prepare``: raw rows to the encoder's input, as an exportable module."""

import numpy as np
import torch
from torch import nn


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
        pieces = [t.pieces for t in transforms]
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


class Prepare(nn.Module):
    """Raw rows to the encoder's input, as ``_inference_data`` builds it.

    Returns the float32 rows (zeros in the gaps), the observation mask (all
    True without ``missing_values``) and, per row, the sum of the log-slopes
    of the transformed columns at their observed entries (float64).
    """

    def __init__(self, plan, slopes=True):
        super().__init__()
        self.slopes = slopes
        schema = plan.schema
        kept = np.flatnonzero(schema.kept()).tolist()
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
        marker = plan.model.missing_values
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
