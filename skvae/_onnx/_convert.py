"""skl2onnx glue: the parser, shape calculator and converter of skvae's
estimators, and the conversion options of each graph."""

import numpy as np
import torch

from ._columns import Table, check_inputs, output_types
from ._draws import uniform_graph
from ._embed import embed, export
from ._fills import TableFills
from ._graphs import EncodeGraph, ImputeGraph, ScoreGraph
from ._plan import MIN_OPSET, ExportError, Plan
from ._prepare import Prepare

# The conversion options of each graph that an estimator class declares in
# its attribute ``_onnx_graph``.
GRAPH_OPTIONS = {
    "transformer": {"score_samples": [False, True]},
    "detector": {"score_samples": [False, True]},
    "imputer": None,
}


def graph_kind(model):
    """The graph that ``model``'s class (or ``model``, a class) declares in
    ``_onnx_graph``: "transformer", "detector" or "imputer"."""
    cls = model if isinstance(model, type) else type(model)
    kind = getattr(cls, "_onnx_graph", None)
    if kind not in GRAPH_OPTIONS:
        raise ExportError(
            f"{cls.__name__} declares no ONNX graph: set its class "
            f"attribute _onnx_graph to one of {sorted(GRAPH_OPTIONS)}."
        )
    return kind


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


def _is_table(model, inputs):
    """Whether ``inputs`` are a table's columns, one each (see ``_columns``),
    rather than one tensor of all of them."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    if len(inputs) != 1:
        return True
    if model.n_features_in_ != 1:
        return False
    schema = model._fitted_state()["schema"]
    numbers = isinstance(inputs[0].type, (FloatTensorType, DoubleTensorType))
    return not numbers or any(c.categorical for c in schema.columns)


def _per_column(model, inputs):
    """Whether the imputer's graph gives back one output per column: for a
    table with categorical columns."""
    schema = model._fitted_state()["schema"]
    categorical = any(c.categorical for c in schema.columns)
    return categorical and _is_table(model, inputs)


def _float_type(model, inputs):
    """The skl2onnx float tensor type of the graph's outputs: the input's,
    or for a table's columns that of the model's schema (as ``transform``
    gives a DataFrame's outputs)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    if not _is_table(model, inputs):
        return _tensor_type(inputs[0])
    schema = model._fitted_state()["schema"]
    check_inputs(type(model).__name__, schema, inputs)
    return DoubleTensorType if schema.dtype == np.float64 else FloatTensorType


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
    float_type = _float_type(model, inputs)
    kind = graph_kind(model)
    if kind == "detector":
        outputs = [
            scope.declare_local_variable("label", Int64TensorType()),
            scope.declare_local_variable("scores", float_type()),
        ]
    elif kind == "imputer" and _per_column(model, inputs):
        schema = model._fitted_state()["schema"]
        types = output_types(schema, float_type)
        outputs = [
            scope.declare_local_variable(f"{column.name}_filled", tensor())
            for column, tensor in zip(schema.columns, types)
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
    float_type = _float_type(model, operator.inputs)
    n_rows = operator.inputs[0].get_first_dimension()
    n_columns = operator.inputs[0].get_second_dimension()
    if _is_table(model, operator.inputs):
        n_columns = len(operator.inputs)
    if n_columns is not None and n_columns != model.n_features_in_:
        raise ExportError(
            f"{type(model).__name__} was fitted on {model.n_features_in_} features, "
            f"but the ONNX input has {n_columns}."
        )
    kind = graph_kind(model)
    outputs = list(operator.outputs)
    if kind == "detector":
        outputs[0].type = Int64TensorType([n_rows, 1])
        outputs[1].type = float_type([n_rows, 1])
        outputs = outputs[2:]
    elif kind == "imputer" and _per_column(model, operator.inputs):
        schema = model._fitted_state()["schema"]
        for output, tensor in zip(outputs, output_types(schema, float_type)):
            output.type = tensor([n_rows, 1])
        outputs = []
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
    float_type = _float_type(model, operator.inputs)
    dtype = (
        torch.float64 if float_type.__name__ == "DoubleTensorType" else torch.float32
    )
    outputs = [o.full_name for o in operator.outputs]
    kind = graph_kind(model)
    options = _options(container, model)
    score = kind == "detector" or options.get("score_samples", False)
    table = _is_table(model, operator.inputs)
    plan = Plan(model, dtype, score=score, impute=kind == "imputer", table=table)
    graphs = Graphs(scope, container, opset, plan)
    table = Table(graphs, operator.inputs) if table else None
    source = table.matrix() if table else operator.inputs[0].full_name
    prepared = graphs.prepare(source, slopes=score)
    if kind == "imputer" and _per_column(model, operator.inputs):
        table.fill(*graphs.fills(prepared), outputs)
        return
    if kind == "imputer":
        graphs.impute(source, prepared, outputs[0])
        return
    if not score:
        graphs.encode(prepared, outputs[0])
        return
    detector = kind == "detector"
    if detector and len(outputs) <= 2:
        final = graphs.name("score_samples")
    else:
        final = outputs[-1]
    # A table's unseen categories add their terms to the score afterwards.
    score_name = graphs.name("score") if table else final
    graphs.score(prepared, score_name, codes=None if detector else outputs[0])
    if table:
        table.add_unseen(score_name, final, model.offset_ if detector else None)
    if detector:
        graphs.decide(final, outputs[0], outputs[1], model.offset_)


class Graphs:
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

    def name(self, base):
        return self.scope.get_unique_variable_name(f"skvae_{base}")

    @property
    def np_dtype(self):
        return np.float64 if self.plan.dtype == torch.float64 else np.float32

    @property
    def onnx_dtype(self):
        """The ``onnx.TensorProto`` code of the plan's float dtype."""
        return 11 if self.plan.dtype == torch.float64 else 1  # DOUBLE, FLOAT

    def constant(self, base, array):
        """The name of a new initializer holding ``array``."""
        from onnx import numpy_helper

        name = self.name(base)
        self.container.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op_type, inputs, outputs=None, **attrs):
        """Add an ``op_type`` node; return the name of its (first) output,
        a new one unless ``outputs`` names them."""
        outputs = outputs or [self.name(op_type.lower())]
        self.container.add_node(
            op_type, inputs, outputs, name=self._op(op_type.lower()), **attrs
        )
        return outputs[0]

    def run(self, module, inputs, outputs, prefix):
        """Export ``module`` and embed it, fed the variables ``inputs`` and
        writing the variables ``outputs``."""
        args = tuple(self.examples[name] for name in inputs)
        input_names = [f"in{i}" for i in range(len(inputs))]
        output_names = [f"out{i}" for i in range(len(outputs))]
        with torch.no_grad():
            model = export(module, args, input_names, output_names, self.opset)
        embed(
            model,
            self.scope,
            self.container,
            dict(zip(input_names, inputs)),
            dict(zip(output_names, outputs)),
            f"skvae_{prefix}",
        )

    def prepare(self, source, slopes):
        """Embed ``Prepare``; return the names of its three outputs."""
        plan = self.plan
        X = torch.zeros(2, plan.width, dtype=plan.dtype)
        names = [self.name(n) for n in ("x", "observed", "log_slope")]
        prepare = Prepare(plan, slopes=slopes)
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
        model = uniform_graph(
            plan.schema.n_features,
            n_uniforms,
            plan.score_seed,
            self.opset,
        )
        name = self.name("uniform")
        embed(model, self.scope, self.container, {"x": x}, {"u": name}, "skvae_hash")
        self.examples[name] = torch.full((2, n_uniforms), 0.5, dtype=torch.float64)
        return name

    def encode(self, prepared, output):
        """Embed ``EncodeGraph`` writing the posterior means to ``output``."""
        self.run(EncodeGraph(self.plan), list(prepared[:2]), [output], "encode")

    def score(self, prepared, output, codes=None):
        """Embed ``_ScoreGraph`` writing ``output``, and the posterior means
        to ``codes`` if given."""
        x, observed, log_slope = prepared
        u = self.uniforms(x)
        graph = ScoreGraph(self.plan, codes=codes is not None)
        outputs = [output] if codes is None else [codes, output]
        self.run(graph, [x, observed, u, log_slope], outputs, "score")

    def impute(self, source, prepared, output):
        x, observed, _ = prepared
        u = self.uniforms(x)
        self.run(ImputeGraph(self.plan), [source, x, observed, u], [output], "impute")

    def fills(self, prepared):
        """Embed ``TableFills``; return the names of its two outputs."""
        x, observed, _ = prepared
        u = self.uniforms(x)
        outputs = [self.name("decoded"), self.name("codes")]
        self.run(TableFills(self.plan), [x, observed, u], outputs, "fills")
        return outputs

    def decide(self, score, label, scores, offset):
        """``decision_function`` and ``predict`` from ``score_samples``."""
        dtype = self.np_dtype
        offset = self.constant("offset", np.array([offset], dtype=dtype))
        zero = self.constant("zero", np.array([0.0], dtype=dtype))
        one = self.constant("one", np.array([1], dtype=np.int64))
        minus_one = self.constant("minus_one", np.array([-1], dtype=np.int64))
        self.node("Sub", [score, offset], [scores])
        outlier = self.node("Less", [scores, zero])
        self.node("Where", [outlier, minus_one, one], [label])

    def _op(self, base):
        return self.scope.get_unique_operator_name(f"skvae_{base}")
