"""The dependency direction between the packages, checked on the source.

Every module of hw/, golden/, sim/ and synth/ is parsed (nothing is imported), and
every import it makes is collected: top-level or inside a function, relative imports
resolved against the module's package, and ``importlib.import_module("...")`` with a
literal name. The rule (the README's layout):

* ``neuroharden.hw`` imports only ``neuroharden.hw`` and the numeric contract
  ``neuroharden.golden.numerics``;
* ``neuroharden.golden`` imports none of ``neuroharden.hw``, ``neuroharden.sim``,
  ``neuroharden.synth``;
* ``neuroharden.sim``, outside the application layer ``neuroharden.sim.app``, imports
  neither ``neuroharden.synth`` nor ``neuroharden.sim.app``;
* ``neuroharden.synth`` does not import ``neuroharden.sim``;
* ``neuroharden.sim.app`` may import everything.
"""

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = "neuroharden"

#: Layer -> (allowed, forbidden) prefixes among the project's modules; ``allowed`` None
#: means every module of the project not ``forbidden``.
RULES = {
    "neuroharden.hw": (("neuroharden.hw", "neuroharden.golden.numerics"), ()),
    "neuroharden.golden": (None, ("neuroharden.hw", "neuroharden.sim", "neuroharden.synth")),
    "neuroharden.sim": (None, ("neuroharden.synth", "neuroharden.sim.app")),
    "neuroharden.synth": (None, ("neuroharden.sim",)),
    "neuroharden.sim.app": (None, ()),
}


def _within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def project_modules():
    """Module name -> source file of every module of the installed packages."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        package_dir = tomllib.load(file)["tool"]["setuptools"]["package-dir"]
    modules = {}
    for package, folder in package_dir.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def imported_modules(source, module, *, is_package=False, known=()):
    """Absolute names of the modules ``source`` (the code of ``module``) imports.

    Parameters
    ----------
    source : str
    module : str
        Dotted name of the module, to resolve relative imports.
    is_package : bool
        Whether the module is a package's ``__init__`` (its own package is then
        ``module``).
    known : collection of str
        Module names: ``from package import name`` counts as importing
        ``package.name`` when that is one of them (a submodule), else ``package``.
    """
    package = module if is_package else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            for alias in node.names:
                names.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known
                          else base)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ast.unparse(node.func) in ("importlib.import_module", "import_module",
                                             "__import__")):
            names.add(node.args[0].value)
    return names


def violations(module, imported):
    """The imports of ``module`` that break :data:`RULES`, as messages."""
    layer = max((name for name in RULES if _within(module, name)), key=len)
    allowed, forbidden = RULES[layer]
    bad = []
    for name in sorted(n for n in imported if _within(n, TOP) and n != TOP):
        if any(_within(name, prefix) for prefix in forbidden) or (
                allowed is not None and not any(_within(name, p) for p in allowed)):
            bad.append(f"{module} imports {name} ({layer} must not)")
    return bad


def check(modules):
    """Every violation of the rule among ``modules`` (name -> source file)."""
    found = []
    for module, path in modules.items():
        imported = imported_modules(path.read_text(), module,
                                    is_package=path.name == "__init__.py", known=modules)
        found += violations(module, imported)
    return found


def test_the_packages_import_only_downwards():
    modules = project_modules()
    for layer in RULES:
        assert any(_within(m, layer) for m in modules), layer
    assert check(modules) == []


def test_imports_are_found_at_any_depth_and_resolved():
    modules = project_modules()
    # Seen on the real tree: a top-level relative import, a cross-package import, and
    # a relative import two levels up inside a function.
    rtl = modules["neuroharden.sim.rtl_campaign"]
    assert {"neuroharden.sim.compiler", "neuroharden.golden.campaign"} <= imported_modules(
        rtl.read_text(), "neuroharden.sim.rtl_campaign", known=modules)
    source = "def f():\n    from ..harden import cost\n"
    assert imported_modules(source, "neuroharden.golden.experiments.fig4",
                            known=modules) == {"neuroharden.golden.harden"}
    source = "from . import common\nfrom .. import numerics\n"
    assert imported_modules(source, "neuroharden.golden.experiments", is_package=True,
                            known=modules) == {"neuroharden.golden.experiments.common",
                                               "neuroharden.golden.numerics"}


def test_a_golden_module_importing_sim_fails(tmp_path):
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from ..sim.rtl_campaign import run_rtl_campaign\n")
    assert check({"neuroharden.golden.fake": fake}) == [
        "neuroharden.golden.fake imports neuroharden.sim.rtl_campaign "
        "(neuroharden.golden must not)"]
    for source in ("from neuroharden.sim.runner import build\n",
                   "def run():\n    from ...sim import runner\n",
                   "import neuroharden.sim.app.demo\n",
                   "import importlib\nimportlib.import_module('neuroharden.sim.sites')\n"):
        imported = imported_modules(source, "neuroharden.golden.experiments.table1",
                                    known=project_modules())
        assert violations("neuroharden.golden.experiments.table1", imported), source


def test_each_layer_rule():
    cases = [
        ("neuroharden.hw.pe", "from neuroharden.golden.numerics import wrap", True),
        ("neuroharden.hw.pe", "from neuroharden.golden.models import Net", False),
        ("neuroharden.hw.pe", "from neuroharden.golden import numerics", True),
        ("neuroharden.golden.campaign", "from neuroharden.hw.verilog import generate", False),
        ("neuroharden.golden.campaign", "from neuroharden.synth import area", False),
        ("neuroharden.sim.rtl_campaign", "from neuroharden.golden import campaign", True),
        ("neuroharden.sim.rtl_campaign", "from neuroharden.synth.cost import cost", False),
        ("neuroharden.sim.rtl_campaign", "from .app import demo", False),
        ("neuroharden.synth.cost", "from neuroharden.golden.harden import harden", True),
        ("neuroharden.synth.cost", "from neuroharden.sim.compiler import Program", False),
        ("neuroharden.sim.app.demo", "from neuroharden.synth.cost import cost", True),
        ("neuroharden.sim.app.experiments.sa_fi", "from ... import rtl_campaign", True),
    ]
    modules = project_modules()
    for module, source, ok in cases:
        imported = imported_modules(source, module, known=modules)
        assert (violations(module, imported) == []) == ok, (module, source, imported)
