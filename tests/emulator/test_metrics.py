"""The emulator's count of orphan streams and of time cameras held two streams."""

from __future__ import annotations

from sdm_emulator.metrics import StreamRecord, double_streams


def _stream(
    started: float,
    *,
    stopped: float | None = None,
    extended: tuple[float, ...] = (),
    unreadable: bool = False,
    device: str = "cam",
) -> StreamRecord:
    record = StreamRecord(
        stream_id=f"{device}-{started}",
        device_id=device,
        protocol="RTSP",
        started=started,
        expires_at=(extended[-1] if extended else started) + 300,
        stopped_at=stopped,
        unreadable=unreadable,
    )
    record.extended_at = list(extended)
    record.extensions = len(extended)
    return record


def test_a_replaced_stream_left_to_expire_is_an_orphan() -> None:
    report = double_streams([_stream(0), _stream(280)], until=1000)
    assert report["orphans"] == 1
    assert report["unreadable_orphans"] == 0
    assert report["other_orphan_overlap_s_max"] == 20.0  # it lived 20 s beside the new one
    assert report["double_seconds"] == 20.0


def test_a_stopped_stream_and_a_kept_older_one_are_not_orphans() -> None:
    # The older stream is kept (extended after the newer started); the newer one is stopped.
    kept, spare = _stream(0, extended=(250,)), _stream(30, stopped=60)
    # A stream replaced and stopped in time.
    old, new = _stream(0, stopped=290, device="b"), _stream(280, device="b")
    report = double_streams([kept, spare, old, new], until=1000)
    assert report["orphans"] == 0
    assert report["double_seconds"] == 30.0 + 10.0


def test_an_orphan_whose_token_came_unreadable_is_counted_apart() -> None:
    report = double_streams([_stream(0, unreadable=True), _stream(15)], until=1000)
    assert report["orphans"] == 1
    assert report["unreadable_orphans"] == 1
    assert report["other_orphan_overlap_s_max"] == 0.0
