"""The imputer's fills of a table with categorical columns, per column.

``TableFills`` is the exported module: the posterior means (``posterior_mean``)
of the prepared rows with the donors blended in, the numeric columns decoded
to their units by ``decode_numeric`` and each categorical block to the
position of its most probable category, as ``ColumnSchema.decode`` does.
``Table.fill`` (in ``_columns``) then writes, per column, the input with its
gaps taken from those fills: a string tensor for string categories, else the
float dtype.
"""

import torch

from .._decode import decode_numeric
from .._importance import posterior_mean
from ._graphs import DonorFills
from ._prepare import Tensors


class TableFills(DonorFills):
    """Decoded fills: the numeric columns' values (float64, in the order of
    ``schema.numeric_columns()``) and the categorical columns' codes (int64,
    in their order)."""

    def __init__(self, plan):
        super().__init__(plan)
        schema = plan.schema
        self.decoding = Tensors(schema.numeric_decoding())
        starts = [schema.columns[i].start for i in schema.numeric_columns()]
        self.register_buffer("starts", torch.tensor(starts, dtype=torch.int64))
        self.blocks = [
            (c.start, c.start + c.width) for c in schema.columns if c.categorical
        ]

    def forward(self, x, observed, uniform):
        eps, mask = self.inputs(x, observed, uniform)
        fills = posterior_mean(self.module, x, eps, mask)
        fills = self.blended(fills, x, mask).to(torch.float64)
        numbers = fills.index_select(1, self.starts)
        decoded = decode_numeric(numbers, self.decoding.table())
        codes = [fills[:, a:b].argmax(dim=1, keepdim=True) for a, b in self.blocks]
        return decoded, torch.cat(codes, dim=1)
