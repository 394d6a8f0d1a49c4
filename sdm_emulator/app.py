"""The emulator over HTTP (aiohttp): one catch-all route in front of `Emulator.handle`."""

from __future__ import annotations

from aiohttp import web

from .emulator import ConnectionLost, Emulator

EMULATOR_KEY = web.AppKey("emulator", Emulator)


async def _handle(request: web.Request) -> web.StreamResponse:
    emulator = request.app[EMULATOR_KEY]
    body = await request.read()
    try:
        reply = await emulator.handle(
            request.method, request.path, dict(request.query), dict(request.headers), body
        )
    except ConnectionLost:
        # A dropped connection: the client sees the server disconnect, without an answer.
        if request.transport is not None:
            request.transport.close()
        raise web.HTTPServiceUnavailable from None
    return web.Response(
        status=reply.status,
        body=reply.body,
        headers={**reply.headers, "Content-Type": reply.content_type},
    )


def create_app(emulator: Emulator) -> web.Application:
    """An aiohttp application serving `emulator`."""
    app = web.Application()
    app[EMULATOR_KEY] = emulator
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app
