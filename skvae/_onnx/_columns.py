"""Tables as ONNX inputs: one input per column, encoded in the graph.

A model fitted on a DataFrame is exported with one graph input per column,
named as the column and of shape ``(n_rows, 1)``: numbers as float, double,
int64 or bool tensors, categories as string tensors (or as numbers, for
integer-coded categories). The graph casts the numbers to the model's float
dtype and encodes each categorical column as ``ColumnSchema.encode`` does:
its one-hot block over the categories of ``fit``, NaN across the block for a
gap or for a category that ``fit`` did not see. In a string tensor a gap is
the empty string ``""`` (pandas' NaN and None become ``""`` when the caller
fills them, ``frame[column].fillna("")``); in a float tensor it is NaN.

The columns side by side form the "wide" matrix that ``Prepare`` takes: one
slot per numeric (or empty) column, a block of slots per categorical one.
"""

import numbers

import numpy as np
import pandas as pd

from ._plan import ExportError

# ai.onnx.ml's LabelEncoder with string keys and int64 values.
ML_DOMAIN, ML_VERSION = "ai.onnx.ml", 2
# The string that stands for a gap in a categorical column's string tensor.
GAP = ""


def column_types(frame):
    """skl2onnx's ``initial_types`` of a DataFrame: one ``(name, type)`` per
    column, of shape ``[None, 1]``."""
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    types = []
    for name, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            numeric = pd.api.types.is_numeric_dtype(dtype.categories.dtype)
            tensor = DoubleTensorType if numeric else StringTensorType
        elif pd.api.types.is_bool_dtype(dtype) and dtype == np.bool_:
            tensor = BooleanTensorType
        elif dtype == np.float32:
            tensor = FloatTensorType
        elif pd.api.types.is_integer_dtype(dtype) and isinstance(dtype, np.dtype):
            tensor = Int64TensorType
        elif pd.api.types.is_numeric_dtype(dtype):  # float64, nullable Int64...
            tensor = DoubleTensorType
        else:  # object or string: categories
            tensor = StringTensorType
        types.append((str(name), tensor([None, 1])))
    return types


def tensor_probabilities(model, types, options):
    """``options`` with ``zipmap=False`` for the classifiers in ``model``
    that have none, when ``types`` hold a double column: a classifier after
    it computes in double, whose probabilities skl2onnx's ZipMap refuses, so
    they come as a tensor."""
    from skl2onnx.common.data_types import DoubleTensorType
    from sklearn.base import BaseEstimator, is_classifier

    if not any(isinstance(t, DoubleTensorType) for _, t in types):
        return options
    options = dict(options or {})
    estimators = [model, *model.get_params(deep=True).values()]
    for estimator in estimators:
        if not isinstance(estimator, BaseEstimator) or hasattr(estimator, "steps"):
            continue
        if not is_classifier(estimator):
            continue
        if id(estimator) not in options and type(estimator) not in options:
            options[id(estimator)] = {"zipmap": False}
    return options


def is_string(variable):
    from skl2onnx.common.data_types import StringTensorType

    return isinstance(variable.type, StringTensorType)


def wide_width(schema):
    """The width of the wide matrix: a slot per column, a block per
    categorical one."""
    return sum(c.width if c.categorical else 1 for c in schema.columns)


def check_inputs(name, schema, inputs):
    """Refuse per-column ``inputs`` that do not match the columns of
    ``schema`` (of the estimator ``name``) by count, name or kind."""
    columns = schema.columns
    if len(inputs) != len(columns):
        raise ExportError(
            f"{name} was fitted on {len(columns)} columns, but the ONNX graph has "
            f"{len(inputs)} inputs. Convert with a few rows of the training "
            "DataFrame: skvae.to_onnx(model, frame[:1])."
        )
    for column, variable in zip(columns, inputs):
        if str(column.name) != variable.raw_name:
            raise ExportError(
                f"{name}'s column {column.name!r} is fed by the ONNX input "
                f"{variable.raw_name!r}: the inputs must be the DataFrame's "
                "columns, in the order of fit."
            )
        strings = column.categorical and _string_categories(column)
        if is_string(variable) and not strings:
            raise ExportError(
                f"Column {column.name!r} is {column.likelihood} with "
                f"{'numeric categories' if column.categorical else 'numbers'}, "
                "but its ONNX input is a string tensor: give it as numbers."
            )
        if strings and not is_string(variable):
            raise ExportError(
                f"Column {column.name!r} has string categories, but its ONNX input "
                f"is {variable.type}: give it as a string tensor."
            )


def _string_categories(column):
    """Whether a categorical column's categories are strings (else numbers);
    an error for other or mixed kinds, and for the gap string."""
    kinds = {isinstance(c, str) for c in column.categories}
    if kinds == {True} and GAP not in column.categories:
        return True
    if kinds == {False} and all(isinstance(c, numbers.Real) for c in column.categories):
        return False
    raise ExportError(
        f"Column {column.name!r} has categories {column.categories[:5]} that the "
        "ONNX export cannot encode: it needs non-empty strings or numbers."
    )


def check_categories(name, schema, model):
    """Refuse categorical columns that the graphs cannot encode as
    ``transform`` does."""
    categorical = [c for c in schema.columns if c.categorical]
    marker = model.missing_values
    if categorical and marker is not None and marker == marker:
        raise ExportError(
            f"{name}(missing_values={marker!r}) cannot be exported with categorical "
            "columns: set missing_values=np.nan and mark gaps with NaN."
        )
    for column in categorical:
        _string_categories(column)
        if column.n_observed is None:
            raise ExportError(
                f"{name} was saved before unseen categories were scored (column "
                f"{column.name!r}): refit it to export it."
            )


class Table:
    """Writes the nodes that turn the per-column inputs of ``graphs`` into
    the wide matrix, and the log-probability of unseen categories per row."""

    def __init__(self, graphs, inputs):
        self.graphs = graphs
        self.inputs = inputs
        self.schema = graphs.plan.schema
        self.unseen = []  # per categorical column: (mask name, log-probability)
        self.values = {}  # per column position: its cast values or its gaps

    def matrix(self):
        """The name of the wide matrix, in the plan's float dtype."""
        dtype = self.graphs.onnx_dtype
        blocks = []
        for i, (column, variable) in enumerate(zip(self.schema.columns, self.inputs)):
            if column.categorical:
                blocks.append(self._one_hot(i, column, variable))
            elif is_string(variable):  # an empty column, left out by Prepare
                blocks.append(self._zeros(variable))
            else:
                blocks.append(self.graphs.node("Cast", [variable.full_name], to=dtype))
                self.values[i] = blocks[-1]
        if len(blocks) == 1:
            return blocks[0]
        return self.graphs.node("Concat", blocks, axis=1)

    def _zeros(self, variable):
        g = self.graphs
        shape = g.node("Shape", [variable.full_name])
        zero = g.constant("zero", np.zeros(1, dtype=g.np_dtype))
        return g.node("Expand", [zero, shape])

    def _one_hot(self, i, column, variable):
        """The one-hot block of a categorical column, NaN rows for gaps and
        unseen categories; records the unseen ones."""
        g = self.graphs
        width = column.width
        if _string_categories(column):
            keys = [*column.categories, GAP]
            codes = g.node(
                "LabelEncoder",
                [variable.full_name],
                op_domain=ML_DOMAIN,
                op_version=ML_VERSION,
                keys_strings=keys,
                values_int64s=list(range(len(keys))),
                default_int64=-1,
            )
            positions = g.constant("codes", np.arange(width, dtype=np.int64)[None])
            hits = g.node("Equal", [codes, positions])
            gap_code = g.constant("gap", np.array([width], dtype=np.int64))
            gap = g.node("Equal", [codes, gap_code])
        else:
            x = g.node("Cast", [variable.full_name], to=_DOUBLE)
            values = np.asarray(column.categories, dtype=np.float64)[None]
            hits = g.node("Equal", [x, g.constant("categories", values)])
            gap = g.node("IsNaN", [x])
        self.values[i] = gap
        ones = g.node("Cast", [hits], to=g.onnx_dtype)
        axes = g.constant("axes", np.array([1], dtype=np.int64))
        count = g.node("ReduceSum", [ones, axes], keepdims=1)
        known = g.node("Greater", [count, g.constant("zero", np.zeros(1, g.np_dtype))])
        unseen = g.node("Not", [g.node("Or", [known, gap])])
        self.unseen.append((unseen, column.unseen_log_prob))
        nan = g.constant("nan", np.full(1, np.nan, dtype=g.np_dtype))
        return g.node("Where", [known, ones, nan])

    def add_unseen(self, score, output, ceiling=None):
        """``output``: the rows' ``score`` (the plan's dtype) plus the
        log-probabilities of their unseen categories, at most ``ceiling``
        plus those for a row that holds one (as ``_log_likelihood``)."""
        g = self.graphs
        if not self.unseen:
            g.node("Identity", [score], [output])
            return
        terms = []
        for mask, log_prob in self.unseen:
            value = g.constant("unseen", np.array([log_prob], dtype=g.np_dtype))
            zero = g.constant("zero", np.zeros(1, dtype=g.np_dtype))
            terms.append(g.node("Where", [mask, value, zero]))
        unseen = terms[0] if len(terms) == 1 else g.node("Sum", terms)
        if ceiling is None:
            g.node("Add", [score, unseen], [output])
            return
        total = g.node("Add", [score, unseen])
        top = g.constant("ceiling", np.array([ceiling], dtype=g.np_dtype))
        capped = g.node("Min", [total, g.node("Add", [top, unseen])])
        zero = g.constant("zero", np.zeros(1, dtype=g.np_dtype))
        holds = g.node("Less", [unseen, zero])
        g.node("Where", [holds, capped, total], [output])

    def fill(self, decoded, codes, outputs):
        """Write each column with its gaps filled to ``outputs`` (one per
        column): the numbers from ``decoded`` and the categories from
        ``codes`` (the outputs of ``TableFills``), as ``VAEImputer`` fills a
        DataFrame's gaps (NaN, or ``""`` in a string tensor); observed
        entries, unseen categories included, come back as given."""
        g = self.graphs
        numeric = {i: j for j, i in enumerate(self.schema.numeric_columns())}
        categorical = [i for i, c in enumerate(self.schema.columns) if c.categorical]
        for i, (column, output) in enumerate(zip(self.schema.columns, outputs)):
            if i in numeric:
                value = g.node(
                    "Cast", [_column(g, decoded, numeric[i])], to=g.onnx_dtype
                )
                gaps = g.node("IsNaN", [self.values[i]])
                g.node("Where", [gaps, value, self.values[i]], [output])
                continue
            code = _column(g, codes, categorical.index(i))
            given = self.inputs[i].full_name
            if _string_categories(column):
                value = g.node(
                    "LabelEncoder",
                    [code],
                    op_domain=ML_DOMAIN,
                    op_version=ML_VERSION,
                    keys_int64s=list(range(column.width)),
                    values_strings=[str(c) for c in column.categories],
                    default_string=GAP,
                )
            else:
                values = np.asarray(column.categories, dtype=np.float64)
                value = g.node("Gather", [g.constant("categories", values), code])
                given = g.node("Cast", [given], to=_DOUBLE)
            g.node("Where", [self.values[i], value, given], [output])


def _column(graphs, matrix, j):
    """Column ``j`` of ``matrix``, of shape (n_rows, 1)."""
    index = graphs.constant("column", np.array([j], dtype=np.int64))
    return graphs.node("Gather", [matrix, index], axis=1)


def output_types(schema, float_type):
    """The skl2onnx type of each column filled by ``Table.fill``."""
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    types = []
    for column in schema.columns:
        if not column.categorical:
            types.append(float_type)
        elif _string_categories(column):
            types.append(StringTensorType)
        else:
            types.append(DoubleTensorType)
    return types


# onnx.TensorProto.DOUBLE, without importing onnx at import time.
_DOUBLE = 11
