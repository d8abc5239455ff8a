"""The tree shows the architecture: layers import only from the layers above them, and no
module imports itself back through any chain, lazy (function-level) imports included."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rerank_lab"
# Evaluation sits above training because tuning and students are judged by it. The order is the one
# rerank_lab/__init__.py states (a test below holds them together).
LAYERS = [
    ("core", ["core"]),
    ("components", ["components", "data"]),
    ("families", ["first_stage", "rerankers", "llm", "specs"]),
    ("analysis", ["analysis"]),
    ("training", ["train"]),
    ("edges", ["cli", "integrations", "distributed", "notebook", "__init__"]),
]


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Package modules ``name`` imports anywhere in its body (top level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("rerank_lab") and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else "__init__"
    for i, (_, names) in enumerate(LAYERS):
        if part in names:
            return i
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return cycles


def test_no_import_cycle_anywhere():
    cycles = find_cycles(graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_layers_import_only_from_layers_above():
    wrong = [(a, b) for a, targets in graph().items() for b in targets if layer(b) > layer(a)]
    assert not wrong, "\n".join(f"{a} ({LAYERS[layer(a)][0]}) imports {b} ({LAYERS[layer(b)][0]})" for a, b in wrong)


def folder(module: str) -> str:
    """The top-level unit a module belongs to: ``rerank_lab.components.stores`` -> ``components``."""
    return module.split(".")[1] if "." in module else "__init__"


def test_no_cycle_between_top_level_folders():
    """Collapsed to folders (components, rerankers, llm, ...), the graph has no cycle either: no
    folder imports a module that imports the folder back."""
    edges: dict[str, set[str]] = {}
    for a, targets in graph().items():
        edges.setdefault(folder(a), set()).update(folder(b) for b in targets if folder(b) != folder(a))
    cycles = find_cycles(edges)
    assert not cycles, "folder cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_package_docstring_names_the_layers_in_this_order():
    import rerank_lab

    doc = " ".join(rerank_lab.__doc__.split())
    positions = [doc.index(f"``{names[0]}``") for _, names in LAYERS[:-1]]
    assert positions == sorted(positions), doc


def test_core_depends_on_nothing_else_in_the_package():
    outside = {(a, b) for a, targets in graph().items() if a.startswith("rerank_lab.core")
               for b in targets if not b.startswith("rerank_lab.core")}
    assert not outside


def test_the_checker_sees_lazy_imports_and_cycles(tmp_path):
    """The check itself can fail: a function-level import that closes a cycle is found."""
    mods = {"rerank_lab.a": tmp_path / "a.py", "rerank_lab.b": tmp_path / "b.py"}
    mods["rerank_lab.a"].write_text("from .b import g\n")
    mods["rerank_lab.b"].write_text("def g():\n    from .a import f\n")
    assert imports("rerank_lab.b", mods["rerank_lab.b"], set(mods)) == {"rerank_lab.a"}
    assert imports("rerank_lab.a", mods["rerank_lab.a"], set(mods)) == {"rerank_lab.b"}
    edges = {"rerank_lab.a": {"rerank_lab.b"}, "rerank_lab.b": {"rerank_lab.a"}}
    assert find_cycles(edges) == [["rerank_lab.a", "rerank_lab.b", "rerank_lab.a"]]
