"""The trusted core is one visible part of the tree: it imports only itself, has no cycles, and stays small."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "capkit" / "core"
#: What the core may import besides itself and the standard library.
THIRD_PARTY = {"attrs", "cryptography", "nacl", "idna"}
#: The budget of lines of everything ``import capkit.core.verifier`` loads, comments and docstrings
#: included: it may grow only on purpose (the README says how large it is and why).
CORE_LINES = 6900  # issue 12 audit records (+308), issue 13 third-party caveats and approvals (+685), issue 15 MAC proofs (+~80), issue 17 args_only/date_window (+~140), location hints checked as text (+12)


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(absolute module, line) of every import in ``path`` outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module(path) if path.name == "__init__.py" else _module(path).rsplit(".", 1)[0]
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    out = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, node.lineno))
            out.extend((f"{target}.{alias.name}", node.lineno) for alias in node.names)
    return out


def _core_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_core_imports_only_itself_the_standard_library_and_its_four_dependencies():
    stdlib = set(sys.stdlib_module_names) | {"_hashlib"}
    for path in _core_files():
        for name, line in _imports(path):
            top = name.split(".")[0]
            if top == "capkit":
                assert name.startswith("capkit.core"), f"{path.relative_to(ROOT)}:{line} imports {name}"
            else:
                assert top in stdlib or top in THIRD_PARTY, f"{path.relative_to(ROOT)}:{line} imports {name}"


def test_the_core_has_no_imports_inside_functions():
    for path in _core_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(func):
                    assert not isinstance(node, (ast.Import, ast.ImportFrom)), (
                        f"{path.relative_to(ROOT)}:{node.lineno} imports inside {func.name}()")


def test_the_core_has_no_import_cycles():
    modules = {_module(p): p for p in _core_files()}
    graph = {m: set() for m in modules}
    for module, path in modules.items():
        for name, _ in _imports(path):
            while name and name not in modules:  # "a.b.c" where c is a name: the module is a.b
                name = name.rsplit(".", 1)[0] if "." in name else ""
            if name and name != module and not module.startswith(name + "."):  # not its own package
                graph[module].add(name)
                parent = name.rsplit(".", 1)[0]
                while parent in modules and parent != module:  # importing a.b runs a/__init__ first ...
                    if not module.startswith(parent + "."):  # ... unless it is the importer's own package
                        graph[module].add(parent)
                    parent = parent.rsplit(".", 1)[0] if "." in parent else ""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_code_a_verifier_loads_is_small_and_only_the_core():
    code = ("import sys, capkit.core.verifier\n"
            "mods = [m for m in sys.modules if m.startswith('capkit')]\n"
            "print(sum(sum(1 for _ in open(sys.modules[m].__file__)) for m in mods if sys.modules[m].__file__))\n"
            "print(' '.join(m for m in mods if not (m.startswith('capkit.core') or m in "
            "('capkit', 'capkit.caveats', 'capkit.errors', 'capkit.state'))))\n"
            "print(' '.join(m for m in ('click', 'rich', 'mcp', 'fastapi', 'psycopg', 'redis', 'anyio', 'pydantic',"
            " 'publicsuffixlist') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    lines, outside, frameworks = (out.stdout.split("\n") + ["", "", ""])[:3]
    assert out.returncode == 0, out.stderr
    assert int(lines) <= CORE_LINES, f"the verifier loads {lines} lines (budget {CORE_LINES})"
    assert outside == "", f"the verifier loads code outside the core: {outside}"
    assert frameworks == "", f"the verifier loads {frameworks}"
