"""Helpers shared by the emulator's tests."""

from __future__ import annotations

import json
from typing import Any

from sdm_emulator import Emulator

PROJECT = "project-id-1"


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
