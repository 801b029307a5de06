"""Invariants of the layout (issue #9), checked by reading the code so they hold after us.

* A kernel module imports only NumPy, Numba (and its llvmlite), math, its own capability's
  kernels and ``kernels/common``; an API module imports only its own capability's kernels and
  ``kernels/common``.
* Every ``prange`` kernel is created through the one launch rule (``kernels/common/launch.py``):
  no ``parallel=True`` or ``NJIT_PARALLEL`` anywhere else.
* No module is longer than 500 lines.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNELS = ROOT / "kernels"
API = ROOT / "fastengage"
MAX_LINES = 500

KERNEL_THIRD_PARTY = {"numpy", "numba", "llvmlite", "math", "__future__"}
#: the launch rule and the config read the environment and start threads; nothing else may
COMMON_EXTRA = {"os", "threading", "types"}


def _modules(folder: pathlib.Path, suffixes=(".py",)):
    return sorted(p for p in folder.rglob("*") if p.suffix in suffixes and "__pycache__" not in p.parts)


def _imports(path: pathlib.Path):
    """(absolute module name, level, module) for every import in the file, relative ones resolved
    against the file's package inside ``fastengage``."""
    tree = ast.parse(path.read_text(), str(path))
    if path.is_relative_to(KERNELS):
        package = ["fastengage", "kernels", *path.relative_to(KERNELS).parent.parts]
    else:
        package = ["fastengage", *path.relative_to(API).parent.parts]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
                if not node.module:  # from . import x
                    for alias in node.names:
                        yield f"{mod}.{alias.name}", node.lineno
                    continue
                yield mod, node.lineno
            else:
                yield node.module, node.lineno


def _capability_of_kernel(path):
    return path.relative_to(KERNELS).parts[0] if len(path.relative_to(KERNELS).parts) > 1 else None


@pytest.mark.parametrize("path", _modules(KERNELS), ids=lambda p: str(p.relative_to(ROOT)))
def test_kernel_imports_stay_inside_their_capability(path):
    capability = _capability_of_kernel(path)
    allowed = set(KERNEL_THIRD_PARTY) | (COMMON_EXTRA if capability == "common" else set())
    bad = []
    for module, line in _imports(path):
        top = module.split(".")[0]
        if module.startswith("fastengage.kernels."):
            owner = module.split(".")[2]
            if owner not in ("common", capability):
                bad.append(f"line {line}: {module} (another capability's kernels)")
        elif module.startswith("fastengage"):
            bad.append(f"line {line}: {module} (the API layer)")
        elif top not in allowed:
            bad.append(f"line {line}: {module}")
    assert not bad, f"{path.relative_to(ROOT)} imports outside numpy/numba/math/own kernels: {bad}"


@pytest.mark.parametrize("path", _modules(API), ids=lambda p: str(p.relative_to(ROOT)))
def test_api_imports_only_its_own_kernels(path):
    parts = path.relative_to(API).parts
    capability = parts[0] if len(parts) > 1 else None
    bad = []
    for module, line in _imports(path):
        if module.startswith("fastengage.kernels"):
            owner = module.split(".")[2] if module.count(".") >= 2 else None
            if owner not in ("common", capability):
                bad.append(f"line {line}: {module}")
    assert not bad, f"{path.relative_to(ROOT)} imports another capability's kernels: {bad}"


def _decorator_names(fn):
    for d in fn.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        yield target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


@pytest.mark.parametrize("path", _modules(KERNELS), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_parallel_kernel_goes_through_the_launch_rule(path):
    text = path.read_text()
    if path.parent.name == "common" and path.name in ("launch.py", "config.py"):
        return
    assert "NJIT_PARALLEL" not in text and "parallel=True" not in text, (
        f"{path.relative_to(ROOT)} compiles a parallel kernel itself; use parallel_kernel")
    tree = ast.parse(text)
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        uses_prange = any(isinstance(n, ast.Name) and n.id == "prange" for n in ast.walk(fn))
        if uses_prange:
            decorators = set(_decorator_names(fn))
            assert decorators & {"parallel_kernel", "dual", "dual_kernel", "kernel_template"}, (
                f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} uses prange without the launch rule")


@pytest.mark.parametrize("path", _modules(API) + _modules(KERNELS, (".py", ".pyx")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_500_lines(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)} has {n} lines (limit {MAX_LINES})"


def test_every_kernel_folder_is_installed():
    """setup.py installs every folder of kernels/ (a missing one works in a checkout only)."""
    import setuptools

    folders = {p.parent.relative_to(KERNELS).as_posix().replace("/", ".")
               for p in KERNELS.rglob("__init__.py") if p.parent != KERNELS}
    assert folders <= set(setuptools.find_packages(str(KERNELS)))
    for pyx in KERNELS.rglob("*.pyx"):
        name = pyx.relative_to(KERNELS).with_suffix("").as_posix().replace("/", ".")
        assert f'"{name}"' in (ROOT / "setup.py").read_text(), f"{name} is not built by setup.py"


def test_test_module_names_are_unique():
    """pytest imports test modules by basename (rootdir 'prepend' mode): two folders holding a
    test_x.py of the same name fail collection of the whole suite."""
    names = {}
    for folder in ("tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name.startswith(("test_", "bench_")):
                names.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    clashes = {n: p for n, p in names.items() if len(p) > 1}
    assert not clashes, f"test modules with the same name in several folders: {clashes}"
