"""The package's modules import down only, and the layout page names them all."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "skvae"

# The layers of docs/layout.rst, from the bottom up. A module imports modules
# of its own layer or of those below, lazy imports included.
LAYERS = [
    {"_utils", "_threads", "_sizing", "_version"},
    {"_modules", "_likelihoods", "_losses", "_data"},
    {"_transforms", "_decode", "_column", "_scan", "_schema", "_net", "_callbacks"}
    | {"_importance"}
    | {"_conditional", "_missingness", "_donors", "_linear", "_local"},
    {"_persistence", "_onnx"},
    {"_base", "_fitted", "_validation", "_docstrings"},
    {"_transformer", "_imputer", "_outliers"},
    {"_plotting"},
    {"__init__", "cli", "__main__"},
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}
# The imports that still point up, each with why; the list only shrinks.
UPWARD = {}
ESTIMATORS = LAYERS[5]


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


def test_a_subclass_that_inherits_the_graph_is_not_registered():
    from skvae import VAETransformer
    from skvae._onnx import _exportable_classes

    class Custom(VAETransformer):
        pass

    assert Custom not in _exportable_classes()
    assert VAETransformer in _exportable_classes()


def _own_names(path):
    """Private names that the file ``path`` defines: functions, methods,
    classes, module and class attributes, and attributes set on ``self``
    (setting another object's private attribute is a use, not a definition)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)
    return {name for name in names if _private(name)}


def _private(name):
    return name.startswith("_") and not name.endswith("__")


# Modules that may use the private names of others, with why.
SHARED_NAMES = {
    # The estimators are subclasses of _BaseVAE: its methods are theirs.
    "_transformer": {"_base", "_fitted"},
    "_imputer": {"_base", "_fitted"},
    "_outliers": {"_base", "_fitted"},
}
# The private names of the narrow interface between the estimators and the
# modules below them (docs/layout.rst): the fitted state and the ONNX graph an
# estimator declares.
INTERFACE = {"_fitted_state", "_restore_fitted_state", "_onnx_graph"}
# Public names of Python's own named tuples, which start with "_".
NAMED_TUPLE = {"_fields", "_replace", "_asdict", "_make"}


def _private_uses(path):
    """``(line, name)`` of the private names of other objects that ``path``
    uses: ``from .x import _name`` and ``obj._attr``, but ``self._attr``
    and ``cls._attr``."""
    uses = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            uses += [(node.lineno, a.name) for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super":
                continue
            uses.append((node.lineno, node.attr))
    return uses


def test_no_module_reads_another_module_s_private_names():
    modules = {}
    for path in _sources():
        modules.setdefault(_module_of(path), set()).update(_own_names(path))
    found = []
    for path in _sources():
        module = _module_of(path)
        allowed = set(modules[module]) | INTERFACE | NAMED_TUPLE
        for other in SHARED_NAMES.get(module, ()):
            allowed |= modules[other]
        found += [
            f"{path.relative_to(PACKAGE)}:{line}: {name}"
            for line, name in _private_uses(path)
            if name not in allowed
        ]
    assert found == []
