"""Fixtures for the emulator's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from typing import Any

from aiohttp.test_utils import TestServer
import pytest

from sdm_emulator import Emulator, EmulatorConfig, default_devices
from sdm_emulator.app import create_app
from sdm_emulator.clock import ManualClock

PROJECT = "project-id-1"


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


class Caller:
    """Calls `Emulator.handle` directly and decodes JSON answers."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.token = emulator.issue_tokens()["access_token"]

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        token: str | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        reply = await self.emulator.handle(method, path, query or {}, headers, data)
        try:
            return reply.status, json.loads(reply.body)
        except ValueError:
            return reply.status, reply.body

    async def command(self, device: str, name: str, **params: Any) -> tuple[int, Any]:
        return await self.call(
            "POST",
            f"/v1/enterprises/{PROJECT}/devices/{device}:executeCommand",
            {"command": f"sdm.devices.commands.CameraLiveStream.{name}", "params": params},
        )


@pytest.fixture
def caller(emulator: Emulator) -> Caller:
    """A direct caller with a valid access token."""
    return Caller(emulator)
