"""An aiohttp-session look-alike that answers from an `Emulator` in the same process.

google-nest-sdm's `AbstractAuth` only calls `session.request(method, url, headers=..., json=...)`
and reads `status`, `text()`, `json()` and `raise_for_status()` of the answer, so a benchmark can
run the real client library against the emulator without sockets, on a virtual-time loop.
"""

from __future__ import annotations

from collections.abc import Mapping
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .emulator import ConnectionLost, Emulator, Reply

REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
REASONS |= {404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}
REASONS |= {503: "Service Unavailable"}


class InProcessResponse:
    """The parts of `aiohttp.ClientResponse` that clients here use."""

    def __init__(self, method: str, url: str, reply: Reply) -> None:
        """Wrap an emulator reply."""
        self.method = method
        self.url = URL(url)
        self.status = reply.status
        self.reason = REASONS.get(reply.status, "Error")
        self._body = reply.body
        self.headers = CIMultiDictProxy(
            CIMultiDict({**reply.headers, "Content-Type": reply.content_type})
        )

    async def read(self) -> bytes:
        """The body."""
        return self._body

    async def text(self, encoding: str | None = None) -> str:
        """The body as text."""
        return self._body.decode(encoding or "utf-8", errors="replace")

    async def json(self, *, content_type: str | None = "application/json", **_: Any) -> Any:
        """The body as JSON; malformed JSON raises `aiohttp.ContentTypeError` as aiohttp would."""
        try:
            return json.loads(self._body)
        except ValueError as err:
            raise aiohttp.ContentTypeError(
                _request_info(self.method, str(self.url)), (), message=f"invalid JSON: {err}"
            ) from err

    def raise_for_status(self) -> None:
        """Raise `aiohttp.ClientResponseError` for 4xx/5xx."""
        if self.status >= 400:
            raise aiohttp.ClientResponseError(
                _request_info(self.method, str(self.url)),
                (),
                status=self.status,
                message=self.reason,
                headers=self.headers,
            )

    def release(self) -> None:
        """Nothing to release."""

    async def __aenter__(self) -> InProcessResponse:
        """Support `async with`."""
        return self

    async def __aexit__(self, *args: object) -> None:
        """Nothing to close."""


def _request_info(method: str, url: str) -> aiohttp.RequestInfo:
    return aiohttp.RequestInfo(URL(url), method, CIMultiDictProxy(CIMultiDict()), URL(url))


class InProcessSession:
    """`session.request(...)` answered by an `Emulator`, whatever the URL's host."""

    def __init__(self, emulator: Emulator) -> None:
        """Serve requests from `emulator`."""
        self.emulator = emulator
        self.closed = False

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
        **_: Any,
    ) -> InProcessResponse:
        """Answer one request."""
        parsed = urlparse(str(url))
        query = dict(parse_qsl(parsed.query))
        query.update(params or {})
        if json is not None:
            body = _json_dumps(json)
        elif isinstance(data, Mapping):
            body = urlencode(data).encode()
        elif isinstance(data, str):
            body = data.encode()
        else:
            body = data or b""
        try:
            reply = await self.emulator.handle(
                method, parsed.path, query, dict(headers or {}), body
            )
        except ConnectionLost as err:
            raise aiohttp.ServerDisconnectedError("the emulator dropped the connection") from err
        return InProcessResponse(method.upper(), str(url), reply)

    async def get(self, url: str, **kwargs: Any) -> InProcessResponse:
        """GET."""
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> InProcessResponse:
        """POST."""
        return await self.request("POST", url, **kwargs)

    async def close(self) -> None:
        """Mark closed."""
        self.closed = True


def _json_dumps(payload: Any) -> bytes:
    return json.dumps(payload).encode()
