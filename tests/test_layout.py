"""The package's modules import down only, and the layout page names them all."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "skvae"

# The layers of docs/layout.rst, from the bottom up. A module imports modules
# of its own layer or of those below, lazy imports included.
LAYERS = [
    {"_utils", "_threads", "_version"},
    {"_modules", "_likelihoods", "_losses", "_data"},
    {"_transforms", "_scan", "_schema", "_net", "_callbacks", "_importance"},
    {"_base", "_validation", "_docstrings"},
    {"_transformer", "_imputer", "_outliers"},
    {"_persistence", "_onnx", "_plotting"},
    {"__init__", "cli", "__main__"},
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}
# The imports that still point up, each with why; the list only shrinks.
UPWARD = {
    ("_base", "_persistence"): "save/load; #24: through the fitted-state interface",
    ("_base", "_onnx"): "the skl2onnx hooks of the estimators (#24)",
    ("_persistence", "__init__"): "the version written into each file",
    ("_onnx", "__init__"): "the public estimators that register_onnx_converters finds",
}
ESTIMATORS = LAYERS[4]


def _module_of(path):
    """The top-level module of ``path``: "_onnx" for the files of its package."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(path):
    """The top-level modules of skvae that the file ``path`` imports."""
    inside = len(path.relative_to(PACKAGE).parts) - 1  # 1 in a subpackage
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {_top(a.name) for a in node.names if _top(a.name)}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(_top(node.module or ""))
        elif isinstance(node, ast.ImportFrom) and node.level > inside:
            # Relative to the package skvae itself.
            found.add(node.module.split(".")[0] if node.module else "__init__")
    return found - {None}


def _top(dotted):
    """The module of skvae that an absolute import names, or None."""
    parts = dotted.split(".")
    if parts[0] != "skvae":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer():
    assert {_module_of(path) for path in _sources()} <= set(LAYER)


def test_imports_point_down_only():
    upward = {
        (_module_of(path), target)
        for path in _sources()
        for target in _imports(path)
        if target != _module_of(path) and LAYER[target] > LAYER[_module_of(path)]
    }
    assert upward == set(UPWARD)


def test_the_onnx_export_imports_no_estimator_module():
    onnx = [path for path in _sources() if _module_of(path) == "_onnx"]
    imported = set().union(*map(_imports, onnx))
    assert not imported & ESTIMATORS


@pytest.mark.parametrize(
    "name",
    [p.relative_to(PACKAGE).as_posix() for p in _sources() if p.name != "_version.py"],
)
def test_the_layout_page_names_every_module(name):
    assert f"``{name}``" in (ROOT / "docs" / "layout.rst").read_text()


def test_the_onnx_export_finds_each_estimator_by_the_graph_it_declares():
    from skvae import VAEImputer, VAEOutlierDetector, VAETransformer
    from skvae._onnx import ExportError, _exportable_classes
    from skvae._onnx._convert import graph_kind

    kinds = {cls: graph_kind(cls()) for cls in _exportable_classes()}
    assert kinds == {
        VAETransformer: "transformer",
        VAEImputer: "imputer",
        VAEOutlierDetector: "detector",
    }
    with pytest.raises(ExportError, match="set its class attribute _onnx_graph"):
        graph_kind(object())
