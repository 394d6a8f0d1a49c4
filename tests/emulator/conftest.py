"""Fixtures for the emulator's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp.test_utils import TestServer
import pytest

from sdm_emulator import Emulator, EmulatorConfig, default_devices
from sdm_emulator.app import create_app
from sdm_emulator.clock import ManualClock

from .common import PROJECT, Caller


@pytest.fixture
def clock() -> ManualClock:
    """The emulator's time, moved by the test."""
    return ManualClock()


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Two RTSP cameras, a wired and a battery WebRTC camera, a doorbell, a thermostat."""
    return EmulatorConfig(
        project_id=PROJECT, devices=default_devices(2, webrtc=1, battery=1, doorbells=1)
    )


@pytest.fixture
def emulator(emulator_config: EmulatorConfig, clock: ManualClock) -> Emulator:
    """An emulator on the manual clock."""
    return Emulator(emulator_config, clock)


@pytest.fixture
async def server(emulator: Emulator, socket_enabled: None) -> AsyncIterator[str]:
    """The emulator served over HTTP on loopback; yields its base URL."""
    test_server = TestServer(create_app(emulator), host="127.0.0.1")
    await test_server.start_server()
    yield str(test_server.make_url("")).rstrip("/")
    await test_server.close()


@pytest.fixture
def caller(emulator: Emulator) -> Caller:
    """A direct caller with a valid access token."""
    return Caller(emulator)
