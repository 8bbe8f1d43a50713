"""The rooms of docs/architecture.md hold: no module imports a room its row does not allow, Lightning stays
in train/, and importing the inference API loads no trainer."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "avforensics"
ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
# Third-party packages allowed in one room only.
HOMES = {"pytorch_lightning": "train", "lightning": "train", "ray": "scale", "fastapi": "serve",
         "uvicorn": "serve"}


def allowed_imports() -> dict[str, set[str]]:
    """The table of docs/architecture.md: room -> rooms it may import (`any` for the command line)."""
    rows = re.findall(r"^\| (\w+) \| [^|]* \| ([^|]*) \|$", ARCHITECTURE.read_text(), flags=re.MULTILINE)
    table = {room: {name.strip() for name in allowed.split(",") if name.strip() not in ("", "-")}
             for room, allowed in rows if room != "room"}
    assert table, f"no room table found in {ARCHITECTURE}"
    return table


def room_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else "cli"


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_every_room_is_in_the_table_and_the_table_names_real_rooms() -> None:
    table = allowed_imports()
    rooms = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert rooms <= set(table) - {"cli"}, f"rooms missing from docs/architecture.md: {rooms - set(table)}"
    for room, allowed in table.items():
        assert allowed <= set(table) | {"any"}, f"{room} may import unknown rooms {allowed - set(table)}"


def test_no_module_imports_a_room_it_must_not() -> None:
    table = allowed_imports()
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        room = room_of(path)
        allowed = table[room]
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] == "avforensics" and len(parts) > 1:
                target = parts[1] if (PACKAGE / parts[1]).is_dir() else "cli"
                if target != room and "any" not in allowed and target not in allowed:
                    violations.append(f"{path.relative_to(PACKAGE)} ({room}) imports {module}")
            elif parts[0] in HOMES and HOMES[parts[0]] != room:
                violations.append(f"{path.relative_to(PACKAGE)} ({room}) imports {module}, "
                                  f"which belongs in {HOMES[parts[0]]}/ only")
    assert not violations, "imports that run against docs/architecture.md:\n" + "\n".join(violations)


def test_importing_the_inference_api_loads_no_trainer() -> None:
    code = (
        "import sys\n"
        "import avforensics.inference.detector, avforensics.inference.cli, avforensics.inference.calibrate\n"
        "from avforensics import Detector\n"
        "print(sorted(m for m in sys.modules if 'lightning' in m or m.startswith('avforensics.train')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_building_one_detector_imports_neither_the_others_nor_scikit_learn() -> None:
    """Start-up time: a macbdf checkpoint loads without peft (avprompt's and cad's adapters) and without
    scikit-learn (fitting a calibration), each about a second or more to import."""
    code = (
        "import sys\n"
        "from avforensics.inference.detector import Detector\n"
        "from avforensics.models.registry import build_model, random_backbone_overrides\n"
        "build_model('macbdf', 'small', **random_backbone_overrides('macbdf'))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('peft', 'sklearn')\n"
        "             or m in ('avforensics.models.avprompt', 'avforensics.models.cad')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_command_table_names_exactly_what_each_module_registers() -> None:
    import argparse
    import importlib

    from avforensics.cli import COMMAND_MODULES

    for module, names in COMMAND_MODULES.items():
        subparsers = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(subparsers)
        assert tuple(subparsers.choices) == names, module


def test_a_command_imports_only_the_module_that_runs_it() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from avforensics.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['detect', '--help'])\n"
        "heavy = ('avforensics.models', 'avforensics.train', 'avforensics.synth', 'transformers', 'peft',\n"
        "         'sklearn', 'lightning', 'pytorch_lightning')\n"
        "print(sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy)))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
