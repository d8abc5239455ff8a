"""docs/CONTRIBUTING.md names only what exists: every ``rerank_lab.x.y`` module or attribute, every
class name and every repository path it quotes is found in today's tree."""
import ast
import importlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "CONTRIBUTING.md"


def _classes_and_exports() -> set[str]:
    """Every class defined anywhere in the package, and every name a module lists in ``__all__``."""
    names: set[str] = set()
    for path in (REPO / "rerank_lab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                names.update(e.value for e in getattr(node.value, "elts", []) if isinstance(e, ast.Constant))
    return names


def _resolves(dotted: str) -> bool:
    """``rerank_lab.a.b.c``: the longest importable module prefix, then attributes for the rest."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def missing(text: str) -> list[str]:
    """What ``text`` quotes in backticks that the tree does not have."""
    quoted = re.findall(r"`([^`]+)`", text)
    known = _classes_and_exports()
    wrong = []
    for item in quoted:
        for dotted in re.findall(r"\brerank_lab(?:\.\w+)+", item):
            if not _resolves(dotted):
                wrong.append(dotted)
        for path in re.findall(r"\b(?:rerank_lab|tests|docs|scripts|benchmarks|notebooks)/[\w./-]*", item):
            if "<" not in item and not (REPO / path.rstrip("/")).exists():
                wrong.append(path)
        if re.fullmatch(r"[A-Z][a-z]+[A-Z]\w*|[A-Z][a-z]+", item) and item not in known:
            wrong.append(item)
    return wrong


def test_contributing_names_only_modules_classes_and_files_that_exist():
    text = DOC.read_text()
    assert not missing(text), missing(text)
    quoted = re.findall(r"`([^`]+)`", text)
    for base in ("Scorer", "LateInteraction", "LLMScorer", "REGISTRY", "tuned_reranker"):
        assert base in quoted, f"CONTRIBUTING.md should name {base}"


def test_the_check_finds_what_an_old_page_named():
    old = ("subclass `BaseReranker`; rerank in `rerank_lab.pipeline.Rerank`; caches in `rerank_lab.cache`; "
           "`rerank_lab.models.resolve_model`; `rerank_lab/backends/openvino.py`; `rerank_lab.core.stage.Scorer`")
    assert missing(old) == ["BaseReranker", "rerank_lab.pipeline.Rerank", "rerank_lab.cache",
                            "rerank_lab.models.resolve_model", "rerank_lab/backends/openvino.py"]
