"""The architecture as tests: the library never imports the application, and no import cycles.

The import graph is read from the source (every ``import`` statement, also those inside
functions), so a lazy import cannot hide a dependency the rule forbids.
"""

import ast
import importlib
import warnings
from pathlib import Path

import pytest

import contrastkit

SRC = Path(contrastkit.__file__).parent
APPLICATION = (
    "contrastkit.training",
    "contrastkit.cli",
    "contrastkit.web",
    "contrastkit.experiments",
)
LIBRARY_PACKAGES = ("losses", "models", "methods", "data", "transforms", "evaluation")
LIBRARY_MODULES = ("distributed.py", "checkpoint.py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def imported_modules(name: str) -> set[str]:
    """Return the contrastkit modules ``name`` imports (``from pkg import mod`` is ``pkg.mod``)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def library_modules() -> list[str]:
    names = [n for n in MODULES if n.split(".")[1:2] and n.split(".")[1] in LIBRARY_PACKAGES]
    names += [f"contrastkit.{Path(m).stem}" for m in LIBRARY_MODULES]
    return sorted(names)


@pytest.mark.parametrize("name", library_modules())
def test_library_module_imports_nothing_from_the_application(name):
    forbidden = sorted(m for m in imported_modules(name) if m.startswith(APPLICATION))
    assert not forbidden, f"{name} (library) imports {forbidden} (application)"


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("contrastkit.training", ("contrastkit.cli", "contrastkit.web", "contrastkit.experiments")),
        ("contrastkit.experiments", ("contrastkit.cli", "contrastkit.web")),
    ],
)
def test_the_engine_and_the_experiments_import_no_app_above_them(package, forbidden):
    # experiments are an app on the engine, next to cli/ and web/: the engine never knows them
    names = [n for n in MODULES if n == package or n.startswith(package + ".")]
    assert names, package
    for name in names:
        found = sorted(m for m in imported_modules(name) if m.startswith(forbidden))
        assert not found, f"{name} imports {found}"


def test_there_is_no_import_cycle():
    graph = {name: imported_modules(name) for name in MODULES}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_import_graph_reader_sees_lazy_and_package_imports():
    # the checks above are only as good as this reader: it must see an import inside a function
    # (cli.train imports the trainer lazily) and resolve ``from pkg import module``
    assert "contrastkit.training.trainer" in imported_modules("contrastkit.cli.train")
    assert "contrastkit.distributed" in imported_modules("contrastkit.losses.info_nce")


MOVES = [
    (old, new)
    for old, targets in sorted(contrastkit.MOVED_MODULES.items())
    for new in ((targets,) if isinstance(targets, str) else targets)
]


@pytest.mark.parametrize("old, new", MOVES)
def test_old_module_paths_still_import_with_a_deprecation_warning(old, new):
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        legacy = importlib.import_module(old) if old not in importlib.sys.modules else None
        if legacy is None:  # imported earlier in this process: a fresh import warns again
            importlib.sys.modules.pop(old)
            legacy = importlib.import_module(old)
    current = importlib.import_module(new)
    # a split module forwards each name to its first part that has it
    parts = [n for o, n in MOVES if o == old]
    earlier = [importlib.import_module(n) for n in parts[: parts.index(new)]]
    public = [n for n in vars(current) if not n.startswith("_")]
    public = [n for n in public if not any(hasattr(m, n) for m in earlier)]
    assert public, new
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for attr in public:
            assert getattr(legacy, attr) is getattr(current, attr)
    assert MODULES.get(old) is None, f"{old} is both a file and a moved path"
