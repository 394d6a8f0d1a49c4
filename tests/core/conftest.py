"""Fixtures of the core's tests (the helpers are in `common.py`)."""
