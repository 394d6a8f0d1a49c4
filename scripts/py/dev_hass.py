"""Home Assistant for development: the integration's Google hosts point at the local emulator.

    python scripts/py/dev_hass.py URL -c config

Shipped code has no redirect at all (an HA reviewer would refuse one). This launcher imports the
integration, points Google's three hosts at the emulator's URL in every module of it that holds
them (importing `const` runs the package's `__init__` first, which binds `API_URL`), then runs
Home Assistant's own entry point in the same process: the modules imported later (config flow,
application credentials) take the patched constants.
"""

from __future__ import annotations

import sys


def redirect(emulator_url: str) -> None:
    """Point the integration's Google URLs at `emulator_url`."""
    import custom_components.nest_streams  # noqa: F401 - imported to be patched

    base = emulator_url.rstrip("/")
    urls = {
        "OAUTH2_AUTHORIZE": f"{base}/partnerconnections/{{project_id}}/auth",
        "OAUTH2_TOKEN": f"{base}/oauth2/v4/token",
        "API_URL": f"{base}/v1",
    }
    for name, module in list(sys.modules.items()):
        if name.startswith("custom_components.nest_streams"):
            for constant, url in urls.items():
                if hasattr(module, constant):
                    setattr(module, constant, url)


def main() -> int:
    """Redirect, then hand the remaining arguments to Home Assistant."""
    if len(sys.argv) < 2 or not sys.argv[1].startswith("http"):
        print(__doc__, file=sys.stderr)
        return 2
    redirect(sys.argv.pop(1))
    from homeassistant.__main__ import main as hass_main

    sys.argv[0] = "hass"
    return hass_main()


if __name__ == "__main__":
    sys.exit(main())
