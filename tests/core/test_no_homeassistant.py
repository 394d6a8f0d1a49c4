"""The core stays free of Home Assistant and of the SDM client library."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).parents[2] / "custom_components" / "nest_streams" / "core"


def test_core_imports_neither_homeassistant_nor_google_nest_sdm() -> None:
    modules = list(CORE.glob("*.py"))
    assert len(modules) >= 7
    for module in modules:
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("homeassistant", "google_nest_sdm")), (module, name)
