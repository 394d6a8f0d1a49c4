"""Glue for Home Assistant's test harness: HA's OAuth token requests answered by the emulator.

HA refreshes tokens through its own aiohttp session, which pytest-homeassistant-custom-component
replaces with `aioclient_mock`; this registers the emulator's token endpoint there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from .emulator import Emulator


def register_token_endpoint(aioclient_mock: Any, emulator: Emulator, token_url: str) -> None:
    """Answer POSTs to `token_url` on `aioclient_mock` from `emulator`'s token endpoint."""
    from pytest_homeassistant_custom_component.test_util.aiohttp import (
        AiohttpClientMockResponse,
    )

    async def answer(method: str, url: Any, data: Any) -> Any:
        body = urlencode(data).encode() if isinstance(data, dict) else (data or b"")
        reply = await emulator.handle(method, "/oauth2/v4/token", {}, {}, body)
        return AiohttpClientMockResponse(
            method,
            url,
            status=reply.status,
            response=reply.body,
            headers={"content-type": reply.content_type},
        )

    aioclient_mock.post(token_url, side_effect=answer)
