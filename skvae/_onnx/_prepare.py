"""``Prepare``: raw rows to the encoder's input, as an exportable module."""

import torch
from torch import nn

from .._data import observed_entries, zero_gaps
from .._transforms import evaluate_splines, spline_table


class Tensors(nn.Module):
    """A named tuple of tensors (nested ones too) held as buffers, so that
    they are exported with the module; ``table()`` gives the tuple back."""

    def __init__(self, table):
        super().__init__()
        self.cls = type(table)
        for name, value in zip(table._fields, table):
            if isinstance(value, torch.Tensor):
                self.register_buffer(name, value)
            elif isinstance(value, tuple):
                setattr(self, name, Tensors(value))
            else:
                setattr(self, name, value)

    def table(self):
        values = [getattr(self, name) for name in self.cls._fields]
        return self.cls(*(v.table() if isinstance(v, Tensors) else v for v in values))


class _Splines(nn.Module):
    """The ``ColumnTransform`` of several columns, on float64 tensors: their
    ``spline_table`` as buffers, evaluated by ``evaluate_splines`` as
    ``transform`` and ``log_slope`` do."""

    def __init__(self, transforms):
        super().__init__()
        self.tensors = Tensors(spline_table(transforms))

    def forward(self, x):
        """Internal values and log-slopes of ``x`` (float64, one column each)."""
        values, slopes = evaluate_splines(x, self.tensors.table())
        return values, torch.log(slopes)


def _kept_slots(schema):
    """The slots of the wide matrix (see ``_columns``) that hold modelled
    columns: the numeric input columns, or with categorical columns their
    one-hot blocks too, in encoded order."""
    kept, slot = [], 0
    for column in schema.columns:
        width = column.width if column.categorical else 1
        if column.width:
            kept.extend(range(slot, slot + width))
        slot += width
    return kept


class Prepare(nn.Module):
    """Raw rows to the encoder's input, as ``_inference_data`` builds it.

    The rows are the input array, or the wide matrix of a table's columns
    (categorical ones one-hot encoded, NaN across the block of a gap or an
    unseen category).

    Returns the float32 rows (zeros in the gaps), the observation mask (all
    True without ``missing_values``) and, per row, the sum of the log-slopes
    of the transformed columns at their observed entries (float64).
    """

    def __init__(self, plan, slopes=True):
        super().__init__()
        self.slopes = slopes
        schema = plan.schema
        kept = _kept_slots(schema)
        self.drop = len(kept) < plan.width
        self.register_buffer("kept", torch.tensor(kept, dtype=torch.int64))
        # A kept column's position among the kept slots is its encoded start.
        transformed = [
            (c.start, c.transform) for c in schema.columns if c.transform is not None
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
        self.marker = plan.model.missing_values
        self.missing = plan.missing

    def forward(self, X):
        if self.missing:
            observed = observed_entries(X, self.marker)
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
            x = zero_gaps(x, observed)
        return x, observed, log_slope
