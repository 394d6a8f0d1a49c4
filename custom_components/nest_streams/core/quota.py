"""One project's command quota as we use it: the one place for the rate, admission, interval,
capacity, extension lead, the last minute's commands and the 429 back-off."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
import contextlib
from dataclasses import dataclass
import logging

from .clock import Clock
from .limiter import SharedQuota, SmoothLimiter
from .settings import WINDOW, Settings

_LOGGER = logging.getLogger(__name__)

BACKOFF_MAX = 120.0
"""Longest pause of every command while Google refuses them for the project's quota."""


@dataclass(frozen=True, slots=True)
class QuotaHistory:
    """A quota's recent use (monotonic times), handed to the next one (an entry reload)."""

    sent: tuple[float, ...]
    next_slot: float


class Quota:
    """Our use of one project's quota; the queue, the scheduler and the cameras read it here.

    - `rate`: commands a minute we send now, `interval` the seconds between two of them (the
      pacer's slot). Both follow our share when another app uses the quota (`SharedQuota`).
    - `admission`: the rate admission plans with; `capacity` the cameras it keeps alive.
    - `lead(average_wait)`: how long before expiry an extension is due.
    - `refused`/`accepted`: a 429 pauses every command (doubling while Google keeps
      refusing) and may reveal another app; an accepted command ends the pause.
    `on_admission_change` is called when admission's rate moved away from the one the last
    `admit` was made with (the cameras are admitted again).
    """

    def __init__(
        self,
        clock: Clock,
        settings: Settings,
        *,
        on_admission_change: Callable[[], None] | None = None,
    ) -> None:
        """The whole quota of `settings.qpm`, nothing sent yet."""
        self._clock = clock
        self.settings = settings
        self._share = SharedQuota(clock, settings)
        self._pacer = SmoothLimiter(clock, settings.qpm, settings.safety)
        self._on_admission_change = on_admission_change
        self._sent: deque[float] = deque()
        """Monotonic times of our commands Google counts in its last minute."""
        self._admitted = 0
        self._admitted_at = settings.qpm
        """The admission rate the cameras were last admitted with."""
        self._slack = settings.lead_slack(0)
        self._backoff = 0.0
        self.backoff_until: float | None = None
        """Wall-clock end of the current quota back-off (for display), None when none."""
        self._storm = 0
        """429s in a row."""
        self._shared_logged = False

    @property
    def rate(self) -> float:
        """Commands per minute we send now."""
        return self._share.rate

    @property
    def admission(self) -> float:
        """Commands per minute admission plans with (less than the quota while shared)."""
        return self._share.admission

    @property
    def interval(self) -> float:
        """Seconds between two of our commands at the current rate."""
        return self._pacer.interval

    @property
    def capacity(self) -> int:
        """Cameras admission's rate keeps alive (see `Settings.capacity`)."""
        return self.settings.at_rate(self.admission).capacity

    def admit(self, cameras: int) -> None:
        """`cameras` are kept alive now (admitted at the current admission rate)."""
        self._admitted = cameras
        self._admitted_at = self.admission
        self._fit_slack()

    def lead(self, average_wait: float) -> float:
        """Seconds before expiry at which an extension is due: the minimum lead plus room for
        the expected wait in the queue, but never so much that the admitted cameras would need
        more commands than the rate gives (`Settings.lead_slack`)."""
        interval = self.interval
        extra = min(max(2 * average_wait + interval, 4 * interval), self._slack)
        return self.settings.extension_lead + extra

    def _fit_slack(self) -> None:
        self._slack = self.settings.at_rate(self.rate).lead_slack(self._admitted)

    # The pacer and the last minute.

    def delay(self) -> float:
        """Seconds until the next slot (0 when one is free now)."""
        return self._pacer.delay()

    def take(self) -> float:
        """Use the current slot for a command sent now; returns its (monotonic) time."""
        self._pacer.take()
        sent_at = self._clock.monotonic()
        self._sent.append(sent_at)
        return sent_at

    def last_minute(self) -> int:
        """Our commands in the last minute."""
        cutoff = self._clock.monotonic() - WINDOW
        while self._sent and self._sent[0] <= cutoff:
            self._sent.popleft()
        return len(self._sent)

    def may_go_early(self) -> bool:
        """Whether a command a viewer waits for may go before the pacer's next slot: no
        back-off runs and the last minute holds at most our rate less 2 of ours, so that no
        minute, sliding or Google's fixed one, holds more than the quota with it (the pacer
        then goes on an interval after its next slot)."""
        return self.backoff_until is None and self.last_minute() <= self.rate - 2

    def history(self) -> QuotaHistory:
        """What Google still counts of ours (the last minute's commands) and the pacer's next
        slot, for a quota that takes over (an entry reload): it goes on from there instead of
        from an empty minute, which Google's window, still holding ours, would refuse."""
        self.last_minute()
        return QuotaHistory(tuple(self._sent), self._pacer.next_slot)

    def resume(self, history: QuotaHistory) -> None:
        """Go on from an earlier quota's `history` (the same process: the same clock)."""
        self._sent = deque(sorted([*self._sent, *history.sent]))
        self.last_minute()
        self._pacer.defer(history.next_slot)

    # Google's answers.

    def accepted(self) -> None:
        """Google's quota let a command through (whatever its outcome): the back-off ends."""
        self._share.accepted()
        self._backoff = 0.0
        self.backoff_until = None
        if self._storm:
            _LOGGER.info("Google's quota accepts commands again after %d refusals", self._storm)
            self._storm = 0

    def uncount(self, sent_at: float) -> None:
        """Google refused the command sent at `sent_at` (a 429): it does not count it."""
        with contextlib.suppress(ValueError):  # pruned meanwhile
            self._sent.remove(sent_at)

    def refused(self, urgent_deadlines: Iterable[float]) -> None:
        """Google refused a command for the project's quota: every command pauses, and a
        refusal that reveals another app lowers our share.

        The pause (2 intervals, doubling while Google keeps refusing) ends early enough to try
        the most urgent extension (`urgent_deadlines`: wall-clock expiries) once more before
        its stream expires: a refused try costs no quota, a lapsed stream a generation. The
        first refusal of a storm is logged as a warning, the end of the storm once.
        """
        now, mono = self._clock.now(), self._clock.monotonic()
        self._backoff = min(BACKOFF_MAX, max(self._backoff * 2, self.interval * 2))
        pause = self._backoff
        if (urgent := min(urgent_deadlines, default=None)) is not None:
            pause = min(pause, max(self.interval, urgent - now - self.interval))
        self.backoff_until = now + pause
        self._pacer.defer(mono + pause)
        self._storm += 1
        if self._storm == 1:
            _LOGGER.warning(
                "Google's quota was exceeded (429: another app may use this project's quota); "
                "commands pause for %.0f s and back off while it lasts",
                pause,
            )
        else:
            _LOGGER.debug("429 again (%d in a row); next command in %.0f s", self._storm, pause)
        if self._share.refused(self.last_minute()):
            self._share_changed()

    def probe(self) -> None:
        """Step our share up when no 429 came for a while (see `SharedQuota.probe`)."""
        if self._share.probe():
            self._share_changed()

    def _share_changed(self) -> None:
        """Our share changed: pace by it, fit the lead's slack, admit again when admission's
        rate moved; a drop is logged once per episode."""
        rate, qpm = self.rate, self.settings.qpm
        self._pacer.set_rate(rate, self.settings.safety)
        self._fit_slack()
        if rate < qpm and not self._shared_logged:
            self._shared_logged = True
            _LOGGER.warning(
                "Another app uses this project's quota (429s while we sent fewer than %g "
                "commands a minute); we use %.1f a minute until it goes quiet",
                qpm,
                rate,
            )
        elif rate >= qpm and self._shared_logged:
            self._shared_logged = False
            _LOGGER.info("The project's whole quota is ours again (%g commands a minute)", qpm)
        else:
            _LOGGER.debug("Our share of the quota: %.1f commands a minute", rate)
        if self.admission != self._admitted_at and self._on_admission_change is not None:
            self._on_admission_change()
