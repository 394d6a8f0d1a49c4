"""Offline checks of the integration as hassfest and HACS's action check it.

hassfest and the HACS action run in CI (.github/workflows); neither runs without GitHub, so this
script checks here what they check that matters for us, from the installed Home Assistant:

- manifest.json: key order, the keys a custom integration needs, version, codeowners,
  dependencies that exist, requirements that parse;
- every `homeassistant.components.X` imported is a dependency (hassfest's dependency rule: a
  platform domain or a core-internal component is allowed; anything else must be listed);
- every third-party module imported is a requirement of ours or of Home Assistant's
  (dependency-transparency);
- services.yaml, translations and icons name the same actions;
- quality_scale.yaml lists every rule of the scale, an exemption with its reason;
- HACS: hacs.json's keys and minimum release, one integration, README/info/LICENSE, brand icon.

Usage: python scripts/py/validate.py [repository root]; exit status 1 and one line per
problem when something fails.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
from pathlib import Path
import re
import sys
from typing import Any

from awesomeversion import AwesomeVersion
import homeassistant
from homeassistant.const import Platform
from homeassistant.util.yaml import load_yaml_dict
from packaging.requirements import InvalidRequirement, Requirement

HA_COMPONENTS = Path(homeassistant.__file__).parent / "components"

# Components any integration may import without listing them (hassfest: platform domains and
# components every installation has).
ALLOWED_COMPONENTS = {platform.value for platform in Platform} | {
    "alert",
    "automation",
    "conversation",
    "default_config",
    "device_automation",
    "frontend",
    "group",
    "homeassistant",
    "input_boolean",
    "input_button",
    "input_datetime",
    "input_number",
    "input_select",
    "input_text",
    "media_source",
    "onboarding",
    "panel_custom",
    "persistent_notification",
    "person",
    "script",
    "shopping_list",
    "sun",
    "system_health",
    "system_log",
    "timer",
    "webhook",
    "websocket_api",
    "zone",
    "mjpeg",
    "stream",
}

# The Integration Quality Scale's rules (developers.home-assistant.io, as of 2026).
RULES = {
    "bronze": [
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ],
    "silver": [
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ],
    "gold": [
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ],
    "platinum": ["async-dependency", "inject-websession", "strict-typing"],
}

CUSTOM_REQUIRED_KEYS = {
    "domain",
    "name",
    "codeowners",
    "documentation",
    "issue_tracker",
    "version",
    "integration_type",
    "iot_class",
    "requirements",
}
IOT_CLASSES = {
    "assumed_state",
    "calculated",
    "cloud_polling",
    "cloud_push",
    "local_polling",
    "local_push",
}
INTEGRATION_TYPES = {"device", "entity", "hardware", "helper", "hub", "service", "system"}
HACS_KEYS = {
    "name",
    "homeassistant",
    "render_readme",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "hacs",
    "persistent_directory",
}


class Report:
    """Problems found, one line each."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(components, top-level modules) a file imports at run time (TYPE_CHECKING excluded)."""
    components: set[str] = set()
    modules: set[str] = set()

    class Collector(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                self._module(alias.name)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level or node.module is None:
                return
            self._module(node.module)
            if node.module == "homeassistant.components":
                components.update(alias.name for alias in node.names)

        def _module(self, name: str) -> None:
            parts = name.split(".")
            modules.add(parts[0])
            if parts[:2] == ["homeassistant", "components"] and len(parts) > 2:
                components.add(parts[2])

    Collector().visit(ast.parse(path.read_text(), str(path)))
    return components, modules


def _requirement_names(requirements: list[str], report: Report, where: str) -> set[str]:
    names = set()
    for line in requirements:
        try:
            names.add(_canonical(Requirement(line).name))
        except InvalidRequirement as err:
            report.fail(where, f"requirement {line!r} does not parse: {err}")
    return names


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _ha_requirements() -> set[str]:
    names = set()
    for line in importlib.metadata.requires("homeassistant") or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.add(_canonical(requirement.name))
    return names


def check_manifest(integration: Path, report: Report) -> dict[str, Any]:
    """manifest.json as hassfest checks a custom integration's."""
    where = "manifest.json"
    manifest: dict[str, Any] = json.loads((integration / "manifest.json").read_text())
    keys = list(manifest)
    if keys[:2] != ["domain", "name"] or keys[2:] != sorted(keys[2:]):
        report.fail(where, "keys must be domain, name, then the others in alphabetical order")
    for key in sorted(CUSTOM_REQUIRED_KEYS - set(manifest)):
        report.fail(where, f"{key} is required for a custom integration")
    if manifest.get("domain") != integration.name:
        report.fail(where, f"domain {manifest.get('domain')!r} is not the folder's name")
    if not AwesomeVersion(str(manifest.get("version"))).valid:
        report.fail(where, f"version {manifest.get('version')!r} is not a valid version")
    if manifest.get("iot_class") not in IOT_CLASSES:
        report.fail(where, f"iot_class {manifest.get('iot_class')!r} is not a known class")
    if manifest.get("integration_type") not in INTEGRATION_TYPES:
        report.fail(where, f"integration_type {manifest.get('integration_type')!r} unknown")
    for owner in manifest.get("codeowners", []):
        if not re.fullmatch(r"@[A-Za-z0-9-]+(/[A-Za-z0-9_.-]+)?", owner):
            report.fail(where, f"codeowner {owner!r} is not a GitHub user or team")
    if not manifest.get("codeowners"):
        report.fail(where, "codeowners is empty")
    for key in ("documentation", "issue_tracker"):
        if not str(manifest.get(key, "")).startswith("https://"):
            report.fail(where, f"{key} must be an https URL")
    dependencies = manifest.get("dependencies", [])
    after = manifest.get("after_dependencies", [])
    for dependency in dependencies + after:
        if not (HA_COMPONENTS / dependency / "manifest.json").is_file():
            report.fail(where, f"dependency {dependency} does not exist")
        if dependency in dependencies and dependency in after:
            report.fail(where, f"{dependency} is both in dependencies and after_dependencies")
    if manifest.get("config_flow") and not (integration / "config_flow.py").is_file():
        report.fail(where, "config_flow is true but there is no config_flow.py")
    return manifest


def check_imports(integration: Path, manifest: dict[str, Any], report: Report) -> None:
    """Components used are dependencies; third-party modules are requirements."""
    allowed = (
        ALLOWED_COMPONENTS
        | set(manifest.get("dependencies", []))
        | set(manifest.get("after_dependencies", []))
        | {manifest["domain"]}
        # A platform of its own (diagnostics.py, camera.py) may import its component.
        | {path.stem for path in integration.glob("*.py")}
        | {path.name for path in integration.iterdir() if path.is_dir()}
    )
    ours = _requirement_names(manifest.get("requirements", []), report, "manifest.json")
    provided = ours | _ha_requirements() | {"homeassistant"}
    distributions = importlib.metadata.packages_distributions()
    for path in sorted(integration.rglob("*.py")):
        where = str(path.relative_to(integration.parent.parent))
        components, modules = _imports(path)
        for component in sorted(components - allowed):
            report.fail(
                where,
                f"uses component {component} but it is not in 'dependencies' or "
                "'after_dependencies'",
            )
        for module in sorted(modules - set(sys.stdlib_module_names) - {"__future__"}):
            if module == "custom_components":
                continue
            names = {_canonical(name) for name in distributions.get(module, [])}
            if not names:
                report.fail(where, f"imports {module}, which no installed package provides")
            elif not names & provided:
                report.fail(
                    where,
                    f"imports {module} ({', '.join(sorted(names))}), which is neither a "
                    "requirement of the manifest nor of Home Assistant",
                )


def check_services(integration: Path, report: Report) -> None:
    """Each action of services.yaml has its translated name, description, fields and icon."""
    services = load_yaml_dict(integration / "services.yaml")
    strings = json.loads((integration / "translations" / "en.json").read_text())
    icons = json.loads((integration / "icons.json").read_text()).get("services", {})
    translated = strings.get("services", {})
    for name, spec in services.items():
        text = translated.get(name, {})
        for key in ("name", "description"):
            if not text.get(key):
                report.fail("translations/en.json", f"services.{name}.{key} is missing")
        for field in (spec or {}).get("fields", {}):
            if not text.get("fields", {}).get(field, {}).get("name"):
                report.fail("translations/en.json", f"services.{name}.fields.{field} is missing")
        if name not in icons:
            report.fail("icons.json", f"action {name} has no icon")
    for name in sorted(set(translated) - set(services)):
        report.fail("translations/en.json", f"services.{name} is not in services.yaml")
    for name in sorted(set(icons) - set(services)):
        report.fail("icons.json", f"services.{name} is not in services.yaml")


def check_quality_scale(integration: Path, report: Report) -> None:
    """Every rule present, each done, todo or exempt with a reason."""
    where = "quality_scale.yaml"
    rules = load_yaml_dict(integration / where).get("rules", {})
    known = {rule for tier in RULES.values() for rule in tier}
    for rule in sorted(known - set(rules)):
        report.fail(where, f"rule {rule} is missing")
    for rule in sorted(set(rules) - known):
        report.fail(where, f"{rule} is not a rule of the quality scale")
    for rule, value in rules.items():
        status = value if isinstance(value, str) else (value or {}).get("status")
        if status not in ("done", "todo", "exempt"):
            report.fail(where, f"{rule}: status {status!r} is not done, todo or exempt")
        if status == "exempt" and not (isinstance(value, dict) and value.get("comment")):
            report.fail(where, f"{rule}: an exemption needs a comment saying why")


def check_hacs(root: Path, report: Report) -> Path | None:
    """The repository as HACS's action checks an integration repository."""
    hacs = json.loads((root / "hacs.json").read_text())
    for key in sorted(set(hacs) - HACS_KEYS):
        report.fail("hacs.json", f"unknown key {key}")
    if not hacs.get("name"):
        report.fail("hacs.json", "name is required")
    minimum = AwesomeVersion(str(hacs.get("homeassistant", "")))
    if not minimum.valid or not re.fullmatch(r"\d{4}\.\d{1,2}\.0", str(minimum)):
        report.fail("hacs.json", f"homeassistant {minimum} should be a minor release (YYYY.M.0)")
    for name in ("README.md", "info.md", "LICENSE"):
        if not (root / name).is_file():
            report.fail(name, "missing")
    integrations = [path for path in (root / "custom_components").iterdir() if path.is_dir()]
    integrations = [path for path in integrations if path.name != "__pycache__"]
    if len(integrations) != 1:
        report.fail("custom_components", f"expected one integration, found {len(integrations)}")
        return None
    integration = integrations[0]
    if not (integration / "brand" / "icon.png").is_file():
        report.fail("brand", "brand/icon.png is missing (HACS's brands check)")
    workflows = "\n".join(
        path.read_text() for path in (root / ".github" / "workflows").glob("*.y*ml")
    )
    for action in ("hacs/action", "home-assistant/actions/hassfest"):
        if action not in workflows:
            report.fail(".github/workflows", f"no workflow runs {action}")
    return integration


def validate(root: Path) -> list[str]:
    """All checks; the problems found."""
    report = Report()
    integration = check_hacs(root, report)
    if integration is not None:
        manifest = check_manifest(integration, report)
        check_imports(integration, manifest, report)
        check_services(integration, report)
        check_quality_scale(integration, report)
    return report.problems


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[2]).resolve()
    problems = validate(root)
    for problem in problems:
        print(problem)
    print(f"[validate] {len(problems)} problem(s) in {root.name}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
