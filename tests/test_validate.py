"""scripts/validate: the offline hassfest/HACS checks pass on the repository and catch what
hassfest would refuse."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
import shutil
import sys
from types import ModuleType

import pytest

ROOT = Path(__file__).parent.parent


def _validator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("validate", ROOT / "scripts/py/validate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["validate"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(name="copy")
def copy_fixture(tmp_path: Path) -> Path:
    """A copy of what the validator reads."""
    for name in ("hacs.json", "README.md", "info.md", "LICENSE"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / ".github", tmp_path / ".github")
    shutil.copytree(
        ROOT / "custom_components",
        tmp_path / "custom_components",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tmp_path


def _edit_manifest(copy: Path, key: str, value: object) -> None:
    path = copy / "custom_components/nest_streams/manifest.json"
    manifest = json.loads(path.read_text())
    manifest[key] = value
    path.write_text(json.dumps(manifest, indent=2))


def test_the_repository_passes() -> None:
    assert _validator().validate(ROOT) == []


def test_a_component_used_but_not_a_dependency_fails(copy: Path) -> None:
    _edit_manifest(copy, "dependencies", ["application_credentials"])
    problems = _validator().validate(copy)
    assert problems == [
        "custom_components/nest_streams/live.py: uses component web_rtc but it is not in "
        "'dependencies' or 'after_dependencies'"
    ]


def test_a_module_that_is_not_a_requirement_fails(copy: Path) -> None:
    _edit_manifest(copy, "requirements", ["google-nest-sdm>=9.1,<10", "aiortc>=1.16,<2"])
    problems = _validator().validate(copy)
    assert any("imports av (av)" in problem for problem in problems)
    assert any("imports dns (dnspython)" in problem for problem in problems)


def test_a_missing_rule_a_patch_minimum_and_no_workflow_fail(copy: Path) -> None:
    scale = copy / "custom_components/nest_streams/quality_scale.yaml"
    scale.write_text(scale.read_text().replace("  docs-triggers:", "  docs-trigger:"))
    (copy / "hacs.json").write_text(
        json.dumps({"name": "Nest Streams", "homeassistant": "2026.10.4", "domains": ["camera"]})
    )
    shutil.rmtree(copy / ".github")
    copy.joinpath(".github/workflows").mkdir(parents=True)
    problems = _validator().validate(copy)
    assert "quality_scale.yaml: rule docs-triggers is missing" in problems
    assert "quality_scale.yaml: docs-trigger is not a rule of the quality scale" in problems
    assert "hacs.json: homeassistant 2026.10.4 should be a minor release (YYYY.M.0)" in problems
    assert ".github/workflows: no workflow runs hacs/action" in problems
    assert "hacs.json: unknown key domains" in problems


def test_an_action_without_translation_fails(copy: Path) -> None:
    services = copy / "custom_components/nest_streams/services.yaml"
    services.write_text(services.read_text() + "\nsnapshot:\n  fields:\n    path:\n")
    problems = _validator().validate(copy)
    assert "translations/en.json: services.snapshot.name is missing" in problems
    assert "translations/en.json: services.snapshot.fields.path is missing" in problems
    assert "icons.json: action snapshot has no icon" in problems
