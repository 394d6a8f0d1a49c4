"""The emulator's state and request handling, independent of any HTTP server.

Where Google's behaviour is not documented, the choice made here is marked GUESS.
"""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
import json
import re
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse

from .clock import Clock, SystemClock
from .config import DeviceKind, DeviceSpec, EmulatorConfig
from .faults import Fault, FaultInjector, ScriptedFault
from .media import Media
from .metrics import Metrics, StreamRecord, double_streams
from .quota import FixedWindow, ForeignClient, SlidingWindow

COMMAND_PREFIX = "sdm.devices.commands.CameraLiveStream."
QUOTA_MESSAGE = "Rate limited for the ExecuteDeviceCommand API for the user."
UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
MALFORMED_BODY = b'{"results": {"streamUrls": {"rtspUrl": "rtsps://'

_DEVICE_PATH = re.compile(r"^/v1/enterprises/([^/]+)/devices(?:/([^/:]+))?(:executeCommand)?$")
_STRUCTURE_PATH = re.compile(r"^/v1/enterprises/([^/]+)/structures(?:/([^/]+))?$")
_AUTH_PATH = re.compile(r"^/partnerconnections/([^/]+)/auth$")


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any) -> Reply:
        """A JSON answer."""
        return cls(status, json.dumps(payload).encode())

    @classmethod
    def error(cls, code: int, status: str, message: str) -> Reply:
        """Google's error body."""
        return cls.json(code, {"error": {"code": code, "message": message, "status": status}})

    @classmethod
    def quota(cls, message: str = QUOTA_MESSAGE) -> Reply:
        """Google's 429: the limit's message, and the reason in `errors` as captured."""
        return cls.json(
            429,
            {
                "error": {
                    "code": 429,
                    "message": message,
                    "errors": [
                        {"message": message, "domain": "global", "reason": "rateLimitExceeded"}
                    ],
                    "status": "RESOURCE_EXHAUSTED",
                }
            },
        )

    @classmethod
    def html(cls, status: int, text: str) -> Reply:
        """An HTML page (the OAuth consent screen's errors)."""
        page = f"<!doctype html><title>Error {status}</title><h1>Error {status}</h1><p>{text}</p>"
        return cls(status, page.encode(), "text/html")


def rfc3339(epoch: float) -> str:
    """Epoch seconds as Google writes timestamps."""
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class ConnectionLost(Exception):
    """The request never reached Google (`Fault.LOST`): the transport drops the connection."""


class _Refusal(Exception):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply


class Emulator:
    """Google's OAuth and SDM endpoints for one Device Access project."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        clock: Clock | None = None,
        media: Media | None = None,
    ) -> None:
        """Create the emulator; time starts now (on `clock`).

        With `media` (real time only), RTSP URLs lead to a real RTSP server and WebRTC offers
        are answered by real peers; without it, URLs point nowhere and answers only parse.
        """
        self.config = config or EmulatorConfig()
        self.media = media
        self.clock = clock or SystemClock()
        self.started = self.clock.now()
        self.devices: dict[str, DeviceSpec] = {d.device_id: d for d in self.config.devices}
        self.faults = FaultInjector(self.config.faults, self.config.seed)
        self.metrics = Metrics()
        self.streams: dict[str, StreamRecord] = {}
        self._by_extension_token: dict[str, str] = {}
        self._by_session: dict[str, str] = {}
        if self.config.quota_window not in ("fixed", "sliding"):
            raise ValueError(f"quota_window must be fixed or sliding: {self.config.quota_window}")
        fixed = self.config.quota_window == "fixed"
        self._quota = FixedWindow() if fixed else SlidingWindow()
        self._hourly = FixedWindow(3600) if fixed else SlidingWindow(3600)
        self.foreign = ForeignClient(
            self.config.foreign_qpm,
            self.config.foreign_from,
            self.config.foreign_until,
            self.config.seed + 1,
        )
        self._codes: dict[str, str] = {}
        self._refresh_tokens: dict[str, float] = {}
        """Refresh token -> when it was issued."""
        self._access_tokens: dict[str, float] = {}

    # -- helpers for tests, benchmarks and the CLI ---------------------------------------------

    @property
    def project_id(self) -> str:
        """The Device Access project id."""
        return self.config.project_id

    def elapsed(self) -> float:
        """Seconds since the emulator started."""
        return self.clock.now() - self.started

    def issue_tokens(self) -> dict[str, Any]:
        """Tokens as if an authorization code had been exchanged."""
        refresh = "1//" + secrets.token_urlsafe(24)
        self._refresh_tokens[refresh] = self.clock.now()
        return {**self._new_access_token(), "refresh_token": refresh}

    def revoke(self, refresh_token: str | None = None) -> None:
        """Revoke one refresh token, or all of them with their access tokens."""
        if refresh_token is None:
            self._refresh_tokens.clear()
            self._access_tokens.clear()
        else:
            self._refresh_tokens.pop(refresh_token, None)

    def expire_access_tokens(self) -> None:
        """Every access token stops working (refresh tokens still work)."""
        self._access_tokens.clear()

    def add_device(self, device: DeviceSpec) -> None:
        """A device appears in the project."""
        self.devices[device.device_id] = device

    def remove_device(self, device_id: str) -> None:
        """A device leaves the project."""
        self.devices.pop(device_id, None)

    def device_name(self, device_id: str) -> str:
        """The resource name of a device."""
        return f"enterprises/{self.project_id}/devices/{device_id}"

    # -- dispatch --------------------------------------------------------------------------------

    async def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        """Answer one HTTP request."""
        try:
            return await self._dispatch(method.upper(), path, query, headers, body)
        except _Refusal as refusal:
            return refusal.reply

    async def _dispatch(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        if method == "GET" and (match := _AUTH_PATH.match(path)):
            self.metrics.count("oauth.authorize", self.elapsed())
            return self._authorize(match.group(1), query)
        if method == "POST" and path == "/oauth2/v4/token":
            self.metrics.count("oauth.token", self.elapsed())
            form = dict(query)
            form.update(parse_qsl(body.decode(errors="replace")))
            return self._token(form)
        if path == "/emulator/metrics" and method == "GET":
            return Reply.json(200, self.report())
        if path == "/emulator/streams" and method == "GET":
            return Reply.json(200, {"streams": [asdict(s) for s in self.streams.values()]})
        if path == "/emulator/faults" and method == "POST":
            return self._set_faults(body)
        if match := _DEVICE_PATH.match(path):
            project, device_id, execute = match.groups()
            if execute and method == "POST" and device_id:
                return await self._execute(project, device_id, headers, body)
            if method == "GET" and not execute:
                return await self._read_devices(project, device_id, headers)
        if method == "GET" and (match := _STRUCTURE_PATH.match(path)):
            return await self._read_structures(match.group(1), match.group(2), headers)
        return Reply.error(404, "NOT_FOUND", f"Requested entity was not found: {path}")

    def _set_faults(self, body: bytes) -> Reply:
        """Change standing faults at run time (tests, `scripts/develop`)."""
        try:
            change = json.loads(body)
            if not isinstance(change, dict):
                raise TypeError("expected a JSON object")
            faults = self.config.faults
            for key in ("failing_devices", "not_found_devices"):
                if key in change:
                    setattr(faults, key, {str(item) for item in change[key]})
            for key in (
                "rate_500",
                "rate_503",
                "rate_slow",
                "rate_malformed",
                "rate_lost",
                "rate_device_quota",
                "rate_409",
                "slow_seconds",
            ):
                if key in change:
                    setattr(faults, key, float(change[key]))
            if "token_down" in change:
                faults.token_down = bool(change["token_down"])
            for key in ("empty_device_lists", "failed_device_lists"):
                if key in change:
                    setattr(faults, key, int(change[key]))
            # One-off events: refuse every access token (the refresh tokens stay good), revoke
            # everything, or refuse every command with 429 for some seconds from now.
            if change.get("expire_access_tokens"):
                self.expire_access_tokens()
            if change.get("revoke"):
                self.revoke()
            if "quota_storm_seconds" in change:
                start = self.elapsed()
                storm = float(change["quota_storm_seconds"])
                faults.scripted.append(ScriptedFault(Fault.QUOTA, start, start + storm))
        except (ValueError, TypeError, AttributeError) as err:
            return Reply.error(400, "INVALID_ARGUMENT", f"Bad fault change: {err}")
        return Reply.json(200, {"faults": faults.as_json()})

    # -- OAuth -------------------------------------------------------------------------------------

    def _authorize(self, project: str, query: Mapping[str, str]) -> Reply:
        redirect_uri = query.get("redirect_uri", "")
        parsed = urlparse(redirect_uri)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            return Reply.html(400, "Invalid request: missing or invalid redirect_uri.")
        if project != self.project_id:
            return Reply.html(404, f"Unknown Device Access project {project}.")
        code = "4/" + secrets.token_urlsafe(24)
        self._codes[code] = redirect_uri
        params = {"code": code, "scope": query.get("scope", "")}
        if "state" in query:
            params["state"] = query["state"]
        separator = "&" if parsed.query else "?"
        return Reply(
            302, b"", "text/plain", {"Location": redirect_uri + separator + urlencode(params)}
        )

    def _new_access_token(self) -> dict[str, Any]:
        token = "ya29." + secrets.token_urlsafe(32)
        self._access_tokens[token] = self.clock.now() + self.config.access_token_lifetime
        return {
            "access_token": token,
            "expires_in": self.config.access_token_lifetime,
            "scope": "https://www.googleapis.com/auth/sdm.service",
            "token_type": "Bearer",
        }

    def _token(self, form: Mapping[str, str]) -> Reply:
        if self.faults.token_down(self.elapsed()):
            return Reply.json(503, {"error": "temporarily_unavailable"})
        grant = form.get("grant_type")
        if grant == "authorization_code":
            # GUESS: a code is single-use; any redirect_uri given must match the one authorized.
            redirect_uri = self._codes.pop(form.get("code", ""), None)
            if redirect_uri is None or form.get("redirect_uri", redirect_uri) != redirect_uri:
                return Reply.json(
                    400, {"error": "invalid_grant", "error_description": "Malformed auth code."}
                )
            return Reply.json(200, self.issue_tokens())
        if grant == "refresh_token":
            issued = self._refresh_tokens.get(form.get("refresh_token", ""))
            lifetime = self.config.refresh_token_lifetime
            if issued is None or (lifetime is not None and self.clock.now() >= issued + lifetime):
                return Reply.json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "Token has been expired or revoked.",
                    },
                )
            return Reply.json(200, self._new_access_token())
        return Reply.json(400, {"error": "unsupported_grant_type"})

    def _check_bearer(self, headers: Mapping[str, str]) -> None:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = value.removeprefix("Bearer ").strip() if value.startswith("Bearer ") else ""
        expires = self._access_tokens.get(token)
        if expires is None or expires <= self.clock.now():
            raise _Refusal(Reply.error(401, "UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE))

    # -- SDM reads -------------------------------------------------------------------------------

    def _check_project(self, project: str) -> None:
        if project != self.project_id:
            # Reported: 404 "Enterprise not found" (GUESS: the final full stop).
            raise _Refusal(Reply.error(404, "NOT_FOUND", "Enterprise not found."))

    def _device_not_found(self, device_id: str) -> str:
        """Google names the device by its full resource name."""
        return f"Device {self.device_name(device_id)} not found."

    def _check_quota(self, key: tuple[str, ...], limit: int) -> None:
        if not self._quota.try_acquire(key, limit, self.clock.now()):
            self.metrics.quota_rejections += 1
            raise _Refusal(
                Reply.error(429, "RESOURCE_EXHAUSTED", f"Rate limited for the {key[0]} API.")
            )

    async def _apply_read_fault(self, device: str | None) -> None:
        fault = self.faults.for_call(self.elapsed(), device, command=False)
        if fault is not None and fault not in (Fault.MALFORMED, Fault.CONFLICT):
            await self._raise_fault(fault, device)

    async def _raise_fault(self, fault: Fault, device: str | None) -> None:
        self.metrics.faults[fault.value] += 1
        if fault is Fault.NOT_FOUND:
            raise _Refusal(Reply.error(404, "NOT_FOUND", self._device_not_found(str(device))))
        if fault is Fault.ERROR_500:
            raise _Refusal(Reply.error(500, "INTERNAL", "Internal error encountered."))
        if fault is Fault.ERROR_503:
            raise _Refusal(Reply.error(503, "UNAVAILABLE", "The service is currently unavailable."))
        if fault is Fault.QUOTA:
            self.metrics.quota_rejections += 1
            raise _Refusal(Reply.quota())
        if fault is Fault.CONFLICT:
            # GUESS: status name and text (only the 409 itself is reported); counts as a call.
            raise _Refusal(Reply.error(409, "ABORTED", "The operation was aborted."))
        if fault is Fault.LOST:
            raise ConnectionLost
        if fault is Fault.SLOW:
            await self.clock.sleep(self.config.faults.slow_seconds)

    async def _read_devices(
        self, project: str, device_id: str | None, headers: Mapping[str, str]
    ) -> Reply:
        endpoint = "devices.get" if device_id else "devices.list"
        self.metrics.count(endpoint, self.elapsed())
        self._check_bearer(headers)
        self._check_project(project)
        limit = self.config.devices_get_qpm if device_id else self.config.devices_list_qpm
        self._check_quota(("ListDevices" if device_id is None else "GetDevice", project), limit)
        await self._apply_read_fault(device_id)
        faults = self.config.faults
        if device_id is None and faults.failed_device_lists > 0:
            faults.failed_device_lists -= 1
            return Reply(500, b"<html><body>Server Error</body></html>", "text/html")
        if device_id is None and faults.empty_device_lists > 0:
            faults.empty_device_lists -= 1
            return Reply.json(200, {})
        if device_id is None:
            return Reply.json(
                200, {"devices": [self._device_json(d) for d in self.devices.values()]}
            )
        device = self.devices.get(device_id)
        if device is None:
            return Reply.error(404, "NOT_FOUND", self._device_not_found(device_id))
        return Reply.json(200, self._device_json(device))

    async def _read_structures(
        self, project: str, structure_id: str | None, headers: Mapping[str, str]
    ) -> Reply:
        self.metrics.count("structures.list", self.elapsed())
        self._check_bearer(headers)
        self._check_project(project)
        self._check_quota(("ListStructures", project), self.config.structures_qpm)
        await self._apply_read_fault(None)
        structure = {
            "name": f"enterprises/{project}/structures/home",
            "traits": {"sdm.structures.traits.Info": {"customName": self.config.structure_name}},
        }
        if structure_id is None:
            return Reply.json(200, {"structures": [structure]})
        if structure_id != "home":
            return Reply.error(404, "NOT_FOUND", f"Structure {structure_id} not found.")
        return Reply.json(200, structure)

    def _device_json(self, device: DeviceSpec) -> dict[str, Any]:
        room = f"enterprises/{self.project_id}/structures/home/rooms/{device.device_id}"
        traits: dict[str, Any] = {"sdm.devices.traits.Info": {"customName": device.name}}
        if device.kind is DeviceKind.THERMOSTAT:
            device_type = "sdm.devices.types.THERMOSTAT"
            traits["sdm.devices.traits.Temperature"] = {"ambientTemperatureCelsius": 20.5}
        else:
            device_type = (
                "sdm.devices.types.DOORBELL"
                if device.kind is DeviceKind.DOORBELL
                else "sdm.devices.types.CAMERA"
            )
            battery = device.kind is DeviceKind.BATTERY_CAMERA
            video_size = [int(part) for part in self.config.video_size.lower().split("x")]
            traits["sdm.devices.traits.CameraLiveStream"] = {
                # As a real battery doorbell reports: 640x480, AAC.
                "maxVideoResolution": {"width": 640, "height": 480}
                if battery
                else dict(zip(("width", "height"), video_size, strict=True)),
                "videoCodecs": ["H264"],
                "audioCodecs": ["AAC"] if battery or "RTSP" in device.protocols else ["OPUS"],
                "supportedProtocols": list(device.protocols),
            }
            traits["sdm.devices.traits.CameraMotion"] = {}
            traits["sdm.devices.traits.CameraPerson"] = {}
        return {
            "name": self.device_name(device.device_id),
            "type": device_type,
            "assignee": room,
            "traits": traits,
            "parentRelations": [{"parent": room, "displayName": device.room}],
        }

    # -- executeCommand --------------------------------------------------------------------------

    async def _execute(
        self, project: str, device_id: str, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        self.metrics.count("executeCommand", self.elapsed())
        self._check_bearer(headers)
        self._check_project(project)
        try:
            request = json.loads(body or b"{}")
            if not isinstance(request, dict):
                raise TypeError("request")
            params = request.get("params") or {}
            if not isinstance(params, dict):
                raise TypeError("params")
        except ValueError, TypeError:
            return Reply.error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if not request.get("command"):
            # Reported: a request without a command is 404 (GUESS: NOT_FOUND as its status).
            return Reply.error(404, "NOT_FOUND", "No command provided")
        command = str(request["command"])
        self.metrics.count(f"executeCommand:{command.rsplit('.', 1)[-1]}", self.elapsed())
        now = self.clock.now()
        # GUESS: a call refused by any limit counts against none.
        project_key = ("ExecuteDeviceCommand", project)
        self.foreign.catch_up(
            self.elapsed(),
            lambda at: self._quota.try_acquire(
                project_key, self.config.execute_qpm, self.started + at
            ),
        )
        if not self._quota.try_acquire(project_key, self.config.execute_qpm, now):
            return self._refused()
        device_key = ("device", device_id, command)
        if not self._quota.try_acquire(device_key, self.config.device_command_qpm, now):
            self._quota.release(project_key)
            # The per-device limit names the command (the project's names ExecuteDeviceCommand).
            return self._refused(command)
        qph = self.config.device_qph
        if qph is not None and not self._hourly.try_acquire(("device", device_id), qph, now):
            self._quota.release(project_key)
            self._quota.release(device_key)
            # GUESS: the hourly limit's text is unpublished; taken to be the per-device one.
            return self._refused(command)
        fault = self.faults.for_call(self.elapsed(), device_id, command=True)
        if fault in (Fault.QUOTA, Fault.LOST, Fault.DEVICE_QUOTA) and qph is not None:
            self._hourly.release(("device", device_id))
        if fault is Fault.CONFLICT and ".Generate" not in command:
            fault = None  # only generations are seen to conflict
        if fault in (Fault.QUOTA, Fault.LOST, Fault.DEVICE_QUOTA):
            self._quota.release(project_key)
            self._quota.release(device_key)
        if fault is Fault.DEVICE_QUOTA:
            self.metrics.faults[fault.value] += 1
            return self._refused(command)
        if fault is not None and fault is not Fault.SLOW and fault is not Fault.MALFORMED:
            await self._raise_fault(fault, device_id)
        self.metrics.accepted_commands.append(now)
        reply = await self._run_command(device_id, command, params)
        if fault is Fault.SLOW:
            await self._raise_fault(fault, device_id)
        if fault is Fault.MALFORMED and reply.status == 200:
            self.metrics.faults[fault.value] += 1
            if (record := self._answered(reply)) is not None:
                record.unreadable = True  # its client never learned its current token
            return Reply(200, MALFORMED_BODY)
        return reply

    def _refused(self, command: str | None = None) -> Reply:
        """A 429 for our command: the project's limit, or (`command`) the device's."""
        self.metrics.quota_rejections += 1
        self.metrics.refused_commands.append(self.elapsed())
        if command is None:
            return Reply.quota()
        return Reply.quota(f"Rate limited for the {command.rsplit('.', 1)[-1]} API for the user.")

    async def _run_command(self, device_id: str, command: str, params: Mapping[str, Any]) -> Reply:
        device = self.devices.get(device_id)
        if device is None:
            return Reply.error(404, "NOT_FOUND", self._device_not_found(device_id))
        name = command.removeprefix(COMMAND_PREFIX)
        if not command.startswith(COMMAND_PREFIX) or not device.protocols:
            return Reply.error(400, "INVALID_ARGUMENT", f"Command {command} not supported.")
        if name == "GenerateRtspStream" and "RTSP" in device.protocols:
            return self._generate_rtsp(device)
        if name == "GenerateWebRtcStream" and "WEB_RTC" in device.protocols:
            offer = params.get("offerSdp")
            if not isinstance(offer, str) or offer_problem(offer) is not None:
                return Reply.error(400, "INVALID_ARGUMENT", INVALID_OFFER_MESSAGE)
            return await self._generate_webrtc(device, offer)
        if name == "ExtendRtspStream":
            return self._extend_rtsp(device, str(params.get("streamExtensionToken", "")))
        if name == "ExtendWebRtcStream":
            return self._extend_webrtc(device, str(params.get("mediaSessionId", "")))
        if name == "StopRtspStream":
            token = str(params.get("streamExtensionToken"))
            return self._stop(self._by_extension_token.get(token), device)
        if name == "StopWebRtcStream":
            session = str(params.get("mediaSessionId"))
            return self._stop(self._by_session.get(session), device)
        return Reply.error(400, "INVALID_ARGUMENT", f"Command {command} not supported.")

    def _answered(self, reply: Reply) -> StreamRecord | None:
        """The stream a command's answer names (its new extension token or session id)."""
        with contextlib.suppress(ValueError, KeyError, TypeError):
            results = json.loads(reply.body)["results"]
            if token := results.get("streamExtensionToken"):
                return self.streams.get(self._by_extension_token.get(token, ""))
            if session := results.get("mediaSessionId"):
                return self.streams.get(self._by_session.get(session, ""))
        return None

    def _new_record(self, device: DeviceSpec, protocol: str) -> StreamRecord:
        now = self.clock.now()
        record = StreamRecord(
            stream_id=secrets.token_hex(8),
            device_id=device.device_id,
            protocol=protocol,
            started=now,
            expires_at=now + self.config.stream_lifetime,
        )
        self.streams[record.stream_id] = record
        return record

    def _generate_rtsp(self, device: DeviceSpec) -> Reply:
        record = self._new_record(device, "RTSP")
        self._rotate(record)
        if self.media is not None:
            url = self.media.rtsp_url(record)
            self.media.rtsp_token(record, device, record.expires_at)
        else:
            url = (
                f"rtsps://{self.config.rtsp_host}/sdm_live_stream/{record.stream_id}"
                f"?auth={record.stream_token}"
            )
        return Reply.json(
            200,
            {
                "results": {
                    "streamUrls": {"rtspUrl": url},
                    "streamExtensionToken": record.extension_token,
                    "streamToken": record.stream_token,
                    "expiresAt": rfc3339(record.expires_at),
                }
            },
        )

    async def _generate_webrtc(self, device: DeviceSpec, offer: str) -> Reply:
        record = self._new_record(device, "WEB_RTC")
        if self.media is None:
            answer = _answer_sdp(offer)
        else:
            try:
                answer = await self.media.webrtc_answer(record, device, offer)
            except ValueError:  # aiortc could not use the offer
                del self.streams[record.stream_id]
                return Reply.error(400, "INVALID_ARGUMENT", INVALID_OFFER_MESSAGE)
        record.session_id = secrets.token_urlsafe(16)
        self._by_session[record.session_id] = record.stream_id
        return Reply.json(
            200,
            {
                "results": {
                    "answerSdp": answer,
                    "mediaSessionId": record.session_id,
                    "expiresAt": rfc3339(record.expires_at),
                }
            },
        )

    def _rotate(self, record: StreamRecord) -> None:
        """New extension and stream tokens; only the newest extension token stays valid."""
        if record.extension_token:
            self._by_extension_token.pop(record.extension_token, None)
        record.extension_token = secrets.token_urlsafe(24)
        record.stream_token = secrets.token_urlsafe(24)
        self._by_extension_token[record.extension_token] = record.stream_id

    def _live(self, stream_id: str | None, device: DeviceSpec, what: str) -> StreamRecord:
        record = self.streams.get(stream_id or "")
        if record is None or record.device_id != device.device_id or record.stopped_at is not None:
            # GUESS: unknown, superseded and stopped tokens are all INVALID_ARGUMENT.
            raise _Refusal(Reply.error(400, "INVALID_ARGUMENT", f"Invalid {what}."))
        if record.expires_at <= self.clock.now():
            # GUESS: an expired stream is FAILED_PRECONDITION.
            raise _Refusal(Reply.error(400, "FAILED_PRECONDITION", "The stream has expired."))
        return record

    def _extend_rtsp(self, device: DeviceSpec, token: str) -> Reply:
        record = self._live(self._by_extension_token.get(token), device, "streamExtensionToken")
        record.expires_at = self.clock.now() + self.config.stream_lifetime
        record.extensions += 1
        record.extended_at.append(self.clock.now())
        self._rotate(record)
        if self.media is not None:
            self.media.rtsp_token(record, device, record.expires_at)
        return Reply.json(
            200,
            {
                "results": {
                    "streamExtensionToken": record.extension_token,
                    "streamToken": record.stream_token,
                    "expiresAt": rfc3339(record.expires_at),
                }
            },
        )

    def _extend_webrtc(self, device: DeviceSpec, session_id: str) -> Reply:
        if device.kind is DeviceKind.BATTERY_CAMERA:
            # Reported for a battery doorbell: "Command not supported for doorbell" (GUESS: the
            # same text naming the camera type for a battery camera; wired cameras extend).
            return Reply.error(400, "FAILED_PRECONDITION", "Command not supported for camera.")
        record = self.streams.get(self._by_session.get(session_id) or "")
        if (
            record is None
            or record.device_id != device.device_id
            or record.stopped_at is not None
            or record.expires_at <= self.clock.now()
        ):
            # Captured: an unknown, stopped or expired session.
            return Reply.error(400, "FAILED_PRECONDITION", WEBRTC_SESSION_MESSAGE)
        record.expires_at = self.clock.now() + self.config.stream_lifetime
        record.extensions += 1
        record.extended_at.append(self.clock.now())
        return Reply.json(
            200,
            {
                "results": {
                    "mediaSessionId": record.session_id,
                    "expiresAt": rfc3339(record.expires_at),
                }
            },
        )

    def _stop(self, stream_id: str | None, device: DeviceSpec) -> Reply:
        record = self.streams.get(stream_id or "")
        if record is None or record.device_id != device.device_id:
            return Reply.error(400, "INVALID_ARGUMENT", "Unknown stream.")
        # GUESS: stopping a stream that already ended is accepted (idempotent).
        if record.stopped_at is None and record.expires_at > self.clock.now():
            record.stopped_at = self.clock.now()
            if self.media is not None:
                self.media.stream_ended(record)
        if record.extension_token:
            self._by_extension_token.pop(record.extension_token, None)
        return Reply.json(200, {})

    # -- metrics ---------------------------------------------------------------------------------

    def cameras(self) -> list[str]:
        """Ids of the devices that are cameras."""
        return [d.device_id for d in self.devices.values() if d.protocols]

    def report(self, until: float | None = None, *, since: float | None = None) -> dict[str, Any]:
        """Calls, quota rejections and per-camera availability, from the emulator's side.

        Availability counts each camera from its first stream; with `since`, every camera
        (listed devices that can stream included) from then, a camera never streamed as 0.
        """
        until = self.clock.now() if until is None else until
        availability = self.metrics.availability(
            self.streams.values(),
            until,
            since=since,
            devices=[d.device_id for d in self.devices.values() if d.protocols]
            if since is not None
            else (),
        )
        return {
            "elapsed": until - self.started,
            "calls": dict(self.metrics.calls),
            "calls_per_minute": {
                str(k): dict(v) for k, v in sorted(self.metrics.per_minute.items())
            },
            "quota_rejections": self.metrics.quota_rejections,
            "faults": dict(self.metrics.faults),
            "accepted_commands": len(self.metrics.accepted_commands),
            "peak_commands_60s": self.metrics.peak_commands(),
            "availability": availability,
            "live_streams": sum(
                1 for s in self.streams.values() if s.stopped_at is None and s.expires_at > until
            ),
            "double_streams": double_streams(
                self.streams.values(), until, self.started if since is None else since
            ),
            "media": None if self.media is None else self.media.info(),
        }


INVALID_OFFER_MESSAGE = "offerSdp contains an invalid value."
WEBRTC_SESSION_MESSAGE = "WebRtc error caused by invalid session or user id mismatch."


def offer_problem(offer: str) -> str | None:
    """Why Google would refuse `offer`, or None.

    As reported for Google's WebRTC cameras (HA core's nest adds a data channel for this): the
    offer needs audio and video sections that only receive, an `application` (data channel)
    section, ICE credentials and a DTLS fingerprint.
    """
    if not offer.startswith("v=0"):
        return "not an SDP offer"
    sections: list[list[str]] = [[]]
    for line in offer.replace("\r\n", "\n").split("\n"):
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    session, media = sections[0], sections[1:]
    kinds = {section[0][2:].split(" ", 1)[0]: section for section in media}
    for kind in ("audio", "video", "application"):
        if kind not in kinds:
            return f"no {kind} section"
    for kind in ("audio", "video"):
        if "a=recvonly" not in kinds[kind]:
            return f"the {kind} section is not recvonly"
    for attribute in ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:"):
        for section in media:
            if not any(line.startswith(attribute) for line in (*session, *section)):
                return f"{attribute[2:-1]} missing"
    return None


def _answer_sdp(offer: str) -> str:
    """An SDP answer mirroring the offer's media sections (enough for clients to parse)."""
    lines = ["v=0", "o=- 0 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    for line in offer.split("\r\n"):
        if line.startswith("m="):
            lines += [line, "c=IN IP4 127.0.0.1", "a=sendonly"]
        elif line.startswith("a=mid:"):
            lines.append(line)
    return "\r\n".join(lines) + "\r\n"
