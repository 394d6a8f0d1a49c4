"""Typed errors the core understands; the SDM adapter maps the client library's onto them."""

from __future__ import annotations

import asyncio
from typing import Any


class StreamError(Exception):
    """Base class of every error a stream command can end with."""


class QuotaExceeded(StreamError):
    """Google answered 429 RESOURCE_EXHAUSTED: a signal for the whole project, not the camera.

    `per_device`: only the device's limit for this command was hit (5 per minute per device and
    command); the rest of the project goes on.
    """

    def __init__(self, message: str = "", *, per_device: bool = False) -> None:
        """Describe the refusal; `per_device` when only one device and command must wait."""
        super().__init__(message)
        self.per_device = per_device


class StreamGone(StreamError):
    """The stream cannot be extended (404, expired, FAILED_PRECONDITION): generate a new one."""


class ExtendUnsupported(StreamGone):
    """The camera cannot extend its WebRTC sessions (battery cameras): regenerate instead.

    Only Google's documented answer for such cameras (400 FAILED_PRECONDITION, "... not
    supported ...") means this; any other refused extension is a plain `StreamGone`.
    """


AUTH_REQUIRED = "Google refused the credentials: re-authentication required"


class AuthFailed(StreamError):
    """Credentials were refused (401, invalid_grant): the user must re-authenticate."""

    def __init__(self, message: str = AUTH_REQUIRED) -> None:
        """What the cameras show (the same whatever refused: the user's step is one)."""
        super().__init__(message)


class TransientError(StreamError):
    """5xx, timeout or malformed answer: retry later.

    `maybe_executed` says Google may have carried the command out (a timeout, or an answer that
    could not be read): an extension then may have rotated the stream's tokens. `late`, for a
    command that was not answered in time, is a future that takes Google's answer if it still
    comes (the stream it made or extended, or the error).
    """

    def __init__(
        self,
        message: str,
        *,
        maybe_executed: bool = False,
        late: asyncio.Future[Any] | None = None,
    ) -> None:
        """Describe the failure."""
        super().__init__(message)
        self.maybe_executed = maybe_executed
        self.late = late


class CommandFailed(StreamError):
    """Any other refusal of a command (404 device, 403, 400 on generate)."""


class OverCapacity(StreamError):
    """The quota cannot carry one more stream (a viewer's session on a full project)."""


class QueueStopped(StreamError):
    """The command queue was stopped before the command ran."""


class ViewerWithdrawn(StreamError):
    """The viewer left before its session was made (nothing of it stays)."""
