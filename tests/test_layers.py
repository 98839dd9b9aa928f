"""The engine's layers, read from its source: every `mscam` import (module level or inside a
function) goes to the same package or to a lower layer, and no modules import each other in a
circle. Product files stay under 500 lines."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"
PLUGIN = Path(__file__).resolve().parents[1] / "mscam_qgis"

#: Lowest first. A module may import its own package and the layers below its own.
LAYERS = [
    {"mscam.errors", "mscam._version"},
    {"mscam.cam", "mscam.radiometry"},  # the CAM engine; SAR units and calibration
    {"mscam.models"},  # cards, architectures, safe loading, the automatic choice
    {"mscam.scene"},  # the scene pipeline and its use cases
    {"mscam.sar"},  # the synthetic world (writes scenes through mscam.scene)
    {"mscam.training", "mscam.eval"},
    {"mscam", "mscam.__main__", "mscam.cli"},  # the package's front door and the command line
]
MAX_LINES = 500


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((CORE / "mscam").rglob("*.py")):
        name = ".".join(path.relative_to(CORE).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: set[str]) -> set[str]:
    """The mscam modules `path` imports anywhere in its code."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        out |= {name for name in names if name in known}
    return out


def package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def layer(module: str) -> int:
    for index, members in enumerate(LAYERS):
        if package(module) in members:
            return index
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports(path, known) - {name} for name, path in found.items()}


def test_every_import_goes_to_the_same_package_or_down():
    upward = [
        f"{source} (layer {layer(source)}) imports {target} (layer {layer(target)})"
        for source, targets in graph().items()
        for target in sorted(targets)
        if package(source) != package(target) and layer(target) > layer(source)
    ]
    assert upward == []


def test_no_modules_import_each_other_in_a_circle():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the path, 2: done
    circles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert circles == []


def test_the_checks_see_an_upward_import_and_a_circle(tmp_path):
    """The checks above are not vacuous: they find what they look for."""
    assert layer("mscam.scene.pipeline") > layer("mscam.models.card") > layer("mscam.errors")
    source = "def f():\n    from mscam.sar.synth import synthesize_scene\n"
    (tmp_path / "m.py").write_text(source)
    assert imports(tmp_path / "m.py", {"mscam.sar.synth"}) == {"mscam.sar.synth"}
    edges = graph()
    assert "mscam.scene.raster" in edges["mscam.scene.localize"]  # a known edge is seen


def test_no_product_file_is_over_500_lines():
    long = []
    for path in [*(CORE / "mscam").rglob("*.py"), *PLUGIN.rglob("*.py")]:
        if "ext" in path.relative_to(PLUGIN.parent).parts:  # a packaged copy of the engine
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            long.append(f"{path.relative_to(CORE.parent)}: {lines}")
    assert long == []
