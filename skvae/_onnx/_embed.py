"""``torch.onnx.export`` of the graphs' modules, and their embedding in
skl2onnx's container."""

import logging
import warnings

from ._lgamma import translations
from ._plan import INSTALL_HINT, ExportError


def export(module, args, input_names, output_names, opset):
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
                custom_translation_table=translations(),
                verbose=False,
                optimize=True,
            )
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
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


def embed(model, scope, container, inputs, outputs, prefix):
    """Copy the nodes and initializers of ``model`` into skl2onnx's container.

    ``inputs`` and ``outputs`` map names of the model's inputs and outputs to
    the container's variables that feed them and that they write; every
    other name gets a fresh one from ``scope``. Inputs the model dropped
    (unused) are ignored.
    """
    import onnx
    from onnx import numpy_helper

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
        attrs = _node_attributes(node)
        domain = "" if node.domain == "ai.onnx" else node.domain
        node_inputs = _node_inputs(node)
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


def _node_attributes(node):
    """The attributes of an ONNX ``node`` as keyword arguments of ``add_node``."""
    import onnx
    from onnx import helper

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
    return attrs


def _node_inputs(node):
    """The input names of an ONNX ``node``, less trailing omitted ones."""
    node_inputs = list(node.input)
    while node_inputs and not node_inputs[-1]:  # omitted optional inputs
        node_inputs.pop()
    if "" in node_inputs:  # skl2onnx's topological sort needs every name
        raise ExportError(
            f"The exported graph has a {node.op_type} node with an omitted "
            "input, which skvae does not embed."
        )
    return node_inputs
