"""The emulator's own behaviour, called directly (no HTTP)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest

from sdm_emulator import Emulator, EmulatorConfig, FaultConfig, ScriptedFault, default_devices
from sdm_emulator.__main__ import build_emulator, parse_args
from sdm_emulator.clock import ManualClock
from sdm_emulator.config import TESTING_REFRESH_TOKEN_LIFETIME
from sdm_emulator.emulator import ConnectionLost
from sdm_emulator.faults import Fault
from sdm_emulator.metrics import Metrics, StreamRecord

from ..common import CHROME_OFFER
from .common import PROJECT, Caller


async def _authorize(emulator: Emulator, **query: str) -> tuple[int, dict[str, str]]:
    reply = await emulator.handle("GET", f"/partnerconnections/{PROJECT}/auth", query, {}, b"")
    return reply.status, dict(reply.headers)


async def test_authorize_redirects_with_code_and_state(emulator: Emulator) -> None:
    status, headers = await _authorize(emulator, redirect_uri="https://ha.local/cb?x=1", state="s1")
    assert status == 302
    location = urlparse(headers["Location"])
    query = parse_qs(location.query)
    assert location.netloc == "ha.local"
    assert query["state"] == ["s1"]
    assert query["x"] == ["1"]
    code = query["code"][0]

    form = f"grant_type=authorization_code&code={code}&redirect_uri=https://ha.local/cb?x=1"
    reply = await emulator.handle("POST", "/oauth2/v4/token", {}, {}, form.encode())
    assert reply.status == 200
    # A code is single use.
    again = await emulator.handle("POST", "/oauth2/v4/token", {}, {}, form.encode())
    assert again.status == 400


@pytest.mark.parametrize(
    ("project", "query", "status"),
    [
        (PROJECT, {}, 400),
        (PROJECT, {"redirect_uri": "not a url"}, 400),
        ("other-project", {"redirect_uri": "https://ha.local/cb"}, 404),
    ],
)
async def test_authorize_rejects(
    emulator: Emulator, project: str, query: dict[str, str], status: int
) -> None:
    reply = await emulator.handle("GET", f"/partnerconnections/{project}/auth", query, {}, b"")
    assert reply.status == status
    assert reply.content_type == "text/html"


async def test_refresh_token_grant_in_query_string(emulator: Emulator) -> None:
    refresh = emulator.issue_tokens()["refresh_token"]
    query = {"grant_type": "refresh_token", "refresh_token": refresh}
    reply = await emulator.handle("POST", "/oauth2/v4/token", query, {}, b"")
    assert reply.status == 200
    emulator.revoke(refresh)
    reply = await emulator.handle("POST", "/oauth2/v4/token", query, {}, b"")
    assert reply.status == 400
    assert b"Token has been expired or revoked." in reply.body
    reply = await emulator.handle("POST", "/oauth2/v4/token", {"grant_type": "x"}, {}, b"")
    assert reply.status == 400


async def test_refresh_tokens_of_a_testing_project_expire_after_7_days(
    emulator: Emulator, clock: ManualClock
) -> None:
    assert emulator.config.refresh_token_lifetime is None  # a published project: no expiry
    emulator.config.refresh_token_lifetime = TESTING_REFRESH_TOKEN_LIFETIME
    query = {
        "grant_type": "refresh_token",
        "refresh_token": emulator.issue_tokens()["refresh_token"],
    }
    clock.advance(7 * 24 * 3600 - 1)
    reply = await emulator.handle("POST", "/oauth2/v4/token", query, {}, b"")
    assert reply.status == 200
    clock.advance(1)
    reply = await emulator.handle("POST", "/oauth2/v4/token", query, {}, b"")
    assert reply.status == 400
    assert json.loads(reply.body) == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }


async def test_token_endpoint_down(emulator: Emulator) -> None:
    emulator.config.faults.token_down = True
    refresh = emulator.issue_tokens()["refresh_token"]
    query = {"grant_type": "refresh_token", "refresh_token": refresh}
    reply = await emulator.handle("POST", "/oauth2/v4/token", query, {}, b"")
    assert reply.status == 503


async def test_access_token_expires(caller: Caller, clock: ManualClock) -> None:
    status, _ = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices")
    assert status == 200
    clock.advance(3600)
    status, body = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices")
    assert status == 401
    assert body["error"]["status"] == "UNAUTHENTICATED"
    caller.emulator.revoke()
    status, _ = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices")
    assert status == 401


async def test_device_list_and_structures(caller: Caller) -> None:
    status, body = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices")
    assert status == 200
    types = [device["type"] for device in body["devices"]]
    assert types.count("sdm.devices.types.CAMERA") == 4
    assert "sdm.devices.types.DOORBELL" in types
    assert "sdm.devices.types.THERMOSTAT" in types
    status, body = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices/battery-01")
    assert body["traits"]["sdm.devices.traits.CameraLiveStream"]["supportedProtocols"] == [
        "WEB_RTC"
    ]
    assert body["parentRelations"][0]["displayName"]
    status, body = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices/nope")
    assert status == 404
    status, body = await caller.call("GET", f"/v1/enterprises/{PROJECT}/structures")
    assert body["structures"][0]["traits"]["sdm.structures.traits.Info"]["customName"] == "Home"
    status, body = await caller.call("GET", f"/v1/enterprises/{PROJECT}/structures/home")
    assert status == 200
    status, _ = await caller.call("GET", f"/v1/enterprises/{PROJECT}/structures/other")
    assert status == 404
    status, body = await caller.call("GET", "/v1/enterprises/other/devices")
    assert (status, body["error"]["status"], body["error"]["message"]) == (
        404,
        "NOT_FOUND",
        "Enterprise not found.",
    )
    status, _ = await caller.call("GET", "/v2/nothing")
    assert status == 404


async def test_rtsp_lifecycle(caller: Caller, clock: ManualClock) -> None:
    status, body = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 200
    first = body["results"]
    assert first["streamUrls"]["rtspUrl"].startswith("rtsps://127.0.0.1:8554/sdm_live_stream/")
    assert first["streamUrls"]["rtspUrl"].endswith(f"?auth={first['streamToken']}")
    clock.advance(200)
    status, body = await caller.command(
        "rtsp-01", "ExtendRtspStream", streamExtensionToken=first["streamExtensionToken"]
    )
    assert status == 200
    second = body["results"]
    assert "streamUrls" not in second
    assert second["streamToken"] != first["streamToken"]
    assert second["expiresAt"] > first["expiresAt"]
    # Only the newest extension token is valid.
    status, body = await caller.command(
        "rtsp-01", "ExtendRtspStream", streamExtensionToken=first["streamExtensionToken"]
    )
    assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT")
    status, body = await caller.command(
        "rtsp-01", "StopRtspStream", streamExtensionToken=second["streamExtensionToken"]
    )
    assert (status, body) == (200, {})
    status, _ = await caller.command(
        "rtsp-01", "ExtendRtspStream", streamExtensionToken=second["streamExtensionToken"]
    )
    assert status == 400
    status, _ = await caller.command("rtsp-01", "StopRtspStream", streamExtensionToken="nope")
    assert status == 400


async def test_extending_an_expired_stream_fails(caller: Caller, clock: ManualClock) -> None:
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    clock.advance(301)
    status, body = await caller.command(
        "rtsp-01", "ExtendRtspStream", streamExtensionToken=body["results"]["streamExtensionToken"]
    )
    assert (status, body["error"]["status"]) == (400, "FAILED_PRECONDITION")


async def test_streams_list_their_extensions(caller: Caller, clock: ManualClock) -> None:
    """/emulator/streams: every stream with the times its extensions were accepted."""
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    clock.advance(100)
    await caller.command(
        "rtsp-01", "ExtendRtspStream", streamExtensionToken=body["results"]["streamExtensionToken"]
    )
    status, listing = await caller.call("GET", "/emulator/streams")
    assert status == 200
    (stream,) = listing["streams"]
    assert stream["device_id"] == "rtsp-01"
    assert stream["extended_at"] == [stream["started"] + 100]


async def test_webrtc_and_battery(caller: Caller) -> None:
    offer = CHROME_OFFER
    status, body = await caller.command("webrtc-01", "GenerateWebRtcStream", offerSdp=offer)
    assert status == 200
    session = body["results"]["mediaSessionId"]
    assert "m=video" in body["results"]["answerSdp"]
    status, body = await caller.command("webrtc-01", "ExtendWebRtcStream", mediaSessionId=session)
    assert (status, body["results"]["mediaSessionId"]) == (200, session)
    status, _ = await caller.command("webrtc-01", "StopWebRtcStream", mediaSessionId=session)
    assert status == 200

    _, body = await caller.command("battery-01", "GenerateWebRtcStream", offerSdp=offer)
    session = body["results"]["mediaSessionId"]
    status, body = await caller.command("battery-01", "ExtendWebRtcStream", mediaSessionId=session)
    assert (status, body["error"]["status"]) == (400, "FAILED_PRECONDITION")

    status, body = await caller.command("webrtc-01", "GenerateWebRtcStream", offerSdp="")
    assert (status, body["error"]["message"]) == (400, "offerSdp contains an invalid value.")
    # An offer without a data channel, as HA's frontend sends when not asked for one.
    no_data = offer.split("m=application")[0]
    status, body = await caller.command("webrtc-01", "GenerateWebRtcStream", offerSdp=no_data)
    assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT")
    status, _ = await caller.command("webrtc-01", "GenerateRtspStream")
    assert status == 400


@pytest.mark.parametrize(
    ("device", "raw", "status", "google_status", "message"),
    [
        (
            "thermostat-01",
            None,
            400,
            "INVALID_ARGUMENT",
            "Command sdm.devices.commands.CameraLiveStream.GenerateRtspStream not supported.",
        ),
        (
            "webrtc-01",
            None,
            400,
            "INVALID_ARGUMENT",
            "Command sdm.devices.commands.CameraLiveStream.GenerateRtspStream not supported.",
        ),
        ("rtsp-01", b"not json", 400, "INVALID_ARGUMENT", "Invalid JSON payload received."),
        (
            "rtsp-01",
            b'{"command": "sdm.devices.commands.Other.Thing"}',
            400,
            "INVALID_ARGUMENT",
            "Command sdm.devices.commands.Other.Thing not supported.",
        ),
        ("rtsp-01", b'{"params": {}}', 404, "NOT_FOUND", "No command provided"),
        ("gone", None, 404, "NOT_FOUND", f"Device enterprises/{PROJECT}/devices/gone not found."),
    ],
)
async def test_bad_commands(
    caller: Caller,
    device: str,
    raw: bytes | None,
    status: int,
    google_status: str,
    message: str,
) -> None:
    body = {"command": "sdm.devices.commands.CameraLiveStream.GenerateRtspStream", "params": {}}
    got, answer = await caller.call(
        "POST", f"/v1/enterprises/{PROJECT}/devices/{device}:executeCommand", body, raw=raw
    )
    assert (got, answer["error"]["status"], answer["error"]["message"]) == (
        status,
        google_status,
        message,
    )


async def test_execute_quota(caller: Caller, clock: ManualClock) -> None:
    devices = ["rtsp-01", "rtsp-02", "doorbell-01"]
    for index in range(10):
        status, _ = await caller.command(devices[index % 3], "GenerateRtspStream")
        assert status == 200
        clock.advance(1)
    status, body = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 429
    message = "Rate limited for the ExecuteDeviceCommand API for the user."
    assert body["error"] == {
        "code": 429,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": "rateLimitExceeded"}],
        "status": "RESOURCE_EXHAUSTED",
    }
    clock.advance(50.5)  # the first call leaves the window
    status, _ = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 200
    assert caller.emulator.metrics.quota_rejections == 1
    assert caller.emulator.metrics.peak_commands() == 10


async def test_per_device_command_quota(caller: Caller, clock: ManualClock) -> None:
    for _ in range(5):
        status, _ = await caller.command("rtsp-01", "GenerateRtspStream")
        assert status == 200
    status, body = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 429
    assert body["error"]["message"] == "Rate limited for the GenerateRtspStream API for the user."
    assert body["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    # The refused call did not use the project's quota: 4 more fit.
    for _ in range(4):
        status, _ = await caller.command("rtsp-02", "GenerateRtspStream")
        assert status == 200


async def test_read_quotas(caller: Caller) -> None:
    for _ in range(5):
        status, _ = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices")
        assert status == 200
    status, _ = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices")
    assert status == 429


async def test_standing_faults(caller: Caller) -> None:
    faults = caller.emulator.config.faults
    faults.not_found_devices = {"rtsp-01"}
    faults.failing_devices = {"rtsp-02"}
    status, _ = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 404
    status, _ = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices/rtsp-01")
    assert status == 404
    status, body = await caller.command("rtsp-02", "GenerateRtspStream")
    assert (status, body["error"]["status"]) == (500, "INTERNAL")


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault.ERROR_500, 500), (Fault.ERROR_503, 503), (Fault.QUOTA, 429), (Fault.NOT_FOUND, 404)],
)
async def test_scripted_faults(
    caller: Caller, clock: ManualClock, fault: Fault, status: int
) -> None:
    caller.emulator.config.faults.scripted = [ScriptedFault(fault, 10, 20, "rtsp-01")]
    assert (await caller.command("rtsp-01", "GenerateRtspStream"))[0] == 200
    clock.advance(10)
    assert (await caller.command("rtsp-01", "GenerateRtspStream"))[0] == status
    assert (await caller.command("rtsp-02", "GenerateRtspStream"))[0] == 200
    clock.advance(10)
    assert (await caller.command("rtsp-01", "GenerateRtspStream"))[0] == 200


async def test_slow_and_malformed_answers_still_run_the_command(
    caller: Caller, clock: ManualClock
) -> None:
    faults = caller.emulator.config.faults
    faults.scripted = [ScriptedFault(Fault.SLOW, 0, 1), ScriptedFault(Fault.MALFORMED, 100, 101)]
    before = clock.now()
    status, _ = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 200
    assert clock.now() - before == faults.slow_seconds
    clock.advance(100 - (clock.now() - before))
    status, body = await caller.command("rtsp-02", "GenerateRtspStream")
    assert status == 200
    assert isinstance(body, bytes)
    assert len(caller.emulator.streams) == 2
    assert caller.emulator.metrics.faults == {"slow": 1, "malformed": 1}


async def test_a_per_device_429_fault_names_the_command(caller: Caller) -> None:
    """`Fault.DEVICE_QUOTA`: what another app driving the same camera would cause."""
    caller.emulator.config.faults.rate_device_quota = 1.0
    status, body = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 429
    assert body["error"]["message"] == "Rate limited for the GenerateRtspStream API for the user."
    assert caller.emulator.streams == {}
    assert caller.emulator.metrics.quota_rejections == 1
    caller.emulator.config.faults.rate_device_quota = 0.0
    for _ in range(5):  # the refusal spent neither the device's nor the project's quota
        status, _ = await caller.command("rtsp-01", "GenerateRtspStream")
        assert status == 200


async def test_a_lost_connection_runs_nothing_and_spends_no_quota(
    caller: Caller, clock: ManualClock
) -> None:
    """`Fault.LOST`: the request never reached Google; the transport drops the connection."""
    faults = caller.emulator.config.faults
    status, first = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 200
    faults.scripted = [ScriptedFault(Fault.LOST, 0, 1e9, "rtsp-01")]
    for _ in range(5):  # more than the per-device quota: none of them counts
        with pytest.raises(ConnectionLost):
            await caller.command(
                "rtsp-01",
                "ExtendRtspStream",
                streamExtensionToken=first["results"]["streamExtensionToken"],
            )
    with pytest.raises(ConnectionLost):
        await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices/rtsp-01")
    faults.scripted.clear()
    assert caller.emulator.metrics.faults == {"lost": 6}
    # Nothing was carried out: the first token still extends, within the per-device quota.
    status, _ = await caller.command(
        "rtsp-01", "ExtendRtspStream", streamExtensionToken=first["results"]["streamExtensionToken"]
    )
    assert status == 200


async def test_scripted_token_outage(emulator: Emulator, clock: ManualClock) -> None:
    emulator.config.faults.scripted = [ScriptedFault(Fault.TOKEN_DOWN, 0, 5)]
    query = {
        "grant_type": "refresh_token",
        "refresh_token": emulator.issue_tokens()["refresh_token"],
    }
    assert (await emulator.handle("POST", "/oauth2/v4/token", query, {}, b"")).status == 503
    clock.advance(5)
    assert (await emulator.handle("POST", "/oauth2/v4/token", query, {}, b"")).status == 200


def test_fault_rates_are_seeded() -> None:
    def draws(seed: int) -> list[Fault | None]:
        emulator = Emulator(EmulatorConfig(faults=FaultConfig.uniform(0.5), seed=seed))
        return [emulator.faults.for_call(0, "rtsp-01", command=True) for _ in range(50)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert {fault for fault in draws(1) if fault} == {
        Fault.ERROR_500,
        Fault.ERROR_503,
        Fault.SLOW,
        Fault.MALFORMED,
    }


async def test_a_stream_answered_unreadably_is_marked(caller: Caller) -> None:
    """A malformed answer hides the stream's token from its client: the stream is marked, so
    orphans nobody could stop are counted apart."""
    await caller.call("POST", "/emulator/faults", {"rate_malformed": 1.0})
    status, body = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 200
    assert isinstance(body, bytes)  # cut short: not JSON
    (record,) = caller.emulator.streams.values()
    assert record.unreadable


async def test_fault_control_endpoint(caller: Caller) -> None:
    status, answer = await caller.call(
        "POST", "/emulator/faults", {"failing_devices": ["rtsp-01"], "rate_500": 0, "token_down": 0}
    )
    assert status == 200
    assert caller.emulator.config.faults.failing_devices == {"rtsp-01"}
    # The faults in force, as JSON a shell user can read (not Python's repr).
    assert answer["faults"]["failing_devices"] == ["rtsp-01"]
    assert answer["faults"]["rate_500"] == 0.0
    assert answer["faults"]["token_down"] is False
    _, answer = await caller.call("POST", "/emulator/faults", {"quota_storm_seconds": 30})
    assert answer["faults"]["scripted"] == [
        {"fault": "quota", "start": pytest.approx(0, abs=5), "end": pytest.approx(30, abs=5)}
    ]
    status, _ = await caller.call("POST", "/emulator/faults", raw=b"[1]")
    assert status == 400


async def test_runtime_fault_events(caller: Caller) -> None:
    """Device-list faults, refused access tokens and a quota storm, injected at run time."""
    status, _ = await caller.call(
        "POST",
        "/emulator/faults",
        {"empty_device_lists": 1, "failed_device_lists": 1},
    )
    assert status == 200
    status, body = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices")
    assert (status, body) == (500, b"<html><body>Server Error</body></html>")
    status, body = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices")
    assert (status, body) == (200, {})
    status, body = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices")
    assert status == 200
    assert body["devices"]
    await caller.call("POST", "/emulator/faults", {"quota_storm_seconds": 30})
    status, _ = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 429
    caller.emulator.config.faults.scripted.clear()
    await caller.call("POST", "/emulator/faults", {"expire_access_tokens": True})
    status, _ = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices")
    assert status == 401
    await caller.call("POST", "/emulator/faults", {"revoke": True})
    status, body = await caller.call(
        "POST",
        "/oauth2/v4/token",
        raw=b"grant_type=refresh_token&refresh_token=x",
    )
    assert status == 400


async def test_metrics_and_availability(caller: Caller, clock: ManualClock) -> None:
    _, body = await caller.command("rtsp-01", "GenerateRtspStream")
    token = body["results"]["streamExtensionToken"]
    clock.advance(290)
    await caller.command("rtsp-01", "ExtendRtspStream", streamExtensionToken=token)
    await caller.command("rtsp-02", "GenerateRtspStream")
    clock.advance(400)  # rtsp-01 expires at 590, rtsp-02 at 590 too; now 690
    status, report = await caller.call("GET", "/emulator/metrics")
    assert status == 200
    availability = report["availability"]
    assert availability["per_camera"]["rtsp-01"] == pytest.approx(590 / 690)
    assert availability["per_camera"]["rtsp-02"] == pytest.approx(300 / 400)
    assert availability["min"] == pytest.approx(0.75)
    assert report["calls"]["executeCommand:ExtendRtspStream"] == 1
    assert report["live_streams"] == 0
    assert report["peak_commands_60s"] == 2
    # From the start: start-up counts, and a camera that never streamed counts as 0.
    honest = caller.emulator.report(since=caller.emulator.started)["availability"]
    assert honest["per_camera"]["rtsp-01"] == pytest.approx(590 / 690)
    assert honest["per_camera"]["rtsp-02"] == pytest.approx(300 / 690)
    assert honest["per_camera"]["webrtc-01"] == 0
    assert "thermostat-01" not in honest["per_camera"]
    assert honest["min"] == 0
    later = caller.emulator.report(since=caller.emulator.started + 290)["availability"]
    assert later["per_camera"]["rtsp-01"] == pytest.approx(300 / 400)
    assert later["per_camera"]["rtsp-02"] == pytest.approx(300 / 400)


def test_covered_merges_overlapping_streams() -> None:
    records = [
        StreamRecord("a", "cam", "RTSP", 0, 300),
        StreamRecord("b", "cam", "RTSP", 250, 550),
        StreamRecord("c", "cam", "RTSP", 600, 900, stopped_at=700),
    ]
    assert Metrics.covered(records, 1000) == (0, 650, 1000)
    assert Metrics.covered([], 10) == (10, 0.0, 0.0)


def test_devices_can_come_and_go(emulator: Emulator) -> None:
    extra = default_devices(1)[0]
    emulator.remove_device("rtsp-01")
    assert "rtsp-01" not in emulator.cameras()
    emulator.add_device(extra)
    assert "rtsp-01" in emulator.cameras()


def test_command_line() -> None:
    args = parse_args(
        [
            "--cameras",
            "4",
            "--battery",
            "1",
            "--fault-rate",
            "0.04",
            "--rate-500",
            "0.5",
            "--failing-device",
            "rtsp-02",
            "--script",
            "503:10:20:rtsp-01",
        ]
    )
    emulator = build_emulator(args)
    assert len(emulator.cameras()) == 5
    faults = emulator.config.faults
    assert faults.rate_500 == 0.5
    assert faults.rate_503 == pytest.approx(0.01)
    assert faults.failing_devices == {"rtsp-02"}
    assert faults.scripted == [ScriptedFault(Fault.ERROR_503, 10, 20, "rtsp-01")]
    config = emulator.config
    assert (config.quota_window, config.device_qph, config.refresh_token_lifetime) == (
        "fixed",
        None,
        None,
    )
    assert config.foreign_qpm == 0
    with pytest.raises(SystemExit):
        parse_args(["--script", "bad"])
    config = build_emulator(
        parse_args(
            [
                "--device-qph",
                "100",
                "--quota-window",
                "sliding",
                "--refresh-token-days",
                "7",
                "--foreign-qpm",
                "4",
                "--foreign-minutes",
                "30",
                "--rate-409",
                "0.1",
            ]
        )
    ).config
    assert config.device_qph == 100
    assert config.quota_window == "sliding"
    assert config.refresh_token_lifetime == 7 * 24 * 3600
    assert (config.foreign_qpm, config.foreign_until) == (4, 1800)
    assert config.faults.rate_409 == 0.1


@pytest.mark.parametrize(
    "emulator_config",
    [
        EmulatorConfig(
            project_id=PROJECT,
            devices=default_devices(3),
            foreign_qpm=6,
            foreign_from=0,
            foreign_until=300,
            seed=3,
        )
    ],
)
async def test_another_app_spends_the_projects_quota(caller: Caller, clock: ManualClock) -> None:
    """A foreign client at 6 calls a minute takes part of each window; once it stops, we
    have all 10 again."""
    devices = ["rtsp-01", "rtsp-02", "rtsp-03"]

    async def minute() -> int:
        accepted = 0
        for index in range(20):  # we try every 3 s
            status, _ = await caller.command(devices[index % 3], "GenerateRtspStream")
            accepted += status == 200
            clock.advance(3)
        return accepted

    shared = [await minute() for _ in range(4)]  # minutes 0-4; it runs until 300 s
    clock.advance(120)  # it stopped at 300 s (we paused at 240 s)
    alone = await minute()
    foreign = caller.emulator.foreign
    # First come, first served: we try every 3 s, so we get most of each window (7-8 of 10)
    # and the other app's calls are refused half the time; never the whole quota for us.
    assert all(6 <= ours <= 9 for ours in shared)
    assert foreign.calls == pytest.approx(30, abs=3)  # 6 a minute for 5 minutes
    assert 0 < foreign.refused < foreign.calls
    assert alone == 10
    assert len(caller.emulator.metrics.refused_commands) == 100 - sum(shared) - alone


async def test_a_409_fault_hits_generations_only(caller: Caller) -> None:
    caller.emulator.config.faults.rate_409 = 1.0
    status, body = await caller.command("rtsp-01", "GenerateRtspStream")
    assert (status, body["error"]["status"]) == (409, "ABORTED")
    caller.emulator.config.faults.rate_409 = 0.0
    status, body = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 200
    caller.emulator.config.faults.rate_409 = 1.0
    token = body["results"]["streamExtensionToken"]
    status, _ = await caller.command("rtsp-01", "ExtendRtspStream", streamExtensionToken=token)
    assert status == 200
    status, _ = await caller.call("GET", f"/v1/enterprises/{PROJECT}/devices")
    assert status == 200


@pytest.mark.parametrize(("window", "accepted_after"), [("fixed", 10), ("sliding", 1)])
async def test_quota_window_fixed_by_default_or_sliding(
    emulator_config: EmulatorConfig,
    clock: ManualClock,
    window: str,
    accepted_after: int,
) -> None:
    """A call at 0 s and 9 at 50-58 s fill the minute; from 61 s a fixed window (the documented
    default: it opened with the first call) takes 10 more, a sliding one only what left it."""
    if window == "sliding":
        emulator_config.quota_window = "sliding"
    assert EmulatorConfig().quota_window == "fixed"
    emulator_config.device_command_qpm = 100  # the project's limit alone
    caller = Caller(Emulator(emulator_config, clock))
    devices = ["rtsp-01", "rtsp-02", "doorbell-01"]
    start = clock.now()
    for index, at in enumerate([0.0, *(50.0 + index for index in range(9))]):
        clock.advance(start + at - clock.now())
        status, _ = await caller.command(devices[index % 3], "GenerateRtspStream")
        assert status == 200
    clock.advance(start + 61 - clock.now())
    accepted = 0
    for index in range(12):
        status, _ = await caller.command(devices[index % 3], "GenerateRtspStream")
        accepted += status == 200
        clock.advance(0.1)
    assert accepted == accepted_after


@pytest.mark.parametrize("limit", [100, 20])
async def test_an_hourly_per_device_limit(
    emulator_config: EmulatorConfig, clock: ManualClock, limit: int
) -> None:
    """Off by default; at `limit` calls per device-hour (any command) the next is refused with
    the per-device text, while other devices go on; the next hour it works again."""
    assert EmulatorConfig().device_qph is None
    emulator_config.device_qph = limit
    emulator_config.execute_qpm = emulator_config.device_command_qpm = 1000  # hourly alone
    caller = Caller(Emulator(emulator_config, clock))
    for _ in range(limit):
        status, _ = await caller.command("rtsp-01", "GenerateRtspStream")
        assert status == 200
        clock.advance(1)
    status, body = await caller.command("rtsp-01", "GenerateRtspStream")
    assert (status, body["error"]["message"]) == (
        429,
        "Rate limited for the GenerateRtspStream API for the user.",
    )
    status, _ = await caller.command("rtsp-02", "GenerateRtspStream")
    assert status == 200
    clock.advance(3600)
    caller.token = caller.emulator.issue_tokens()["access_token"]  # the old one expired
    status, _ = await caller.command("rtsp-01", "GenerateRtspStream")
    assert status == 200
