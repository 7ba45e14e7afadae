"""Timer triggers from NCRONTAB schedules (seconds first, UTC), as the real host runs them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from azure.functions.timer import TimerRequest
from croniter import croniter

from devhost.app_loader import FunctionInfo
from devhost.invocation import invoke
from devhost.worker import PollingWorker

log = logging.getLogger(__name__)


class NcrontabSchedule:
    """A 6-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week}), or 5 without
    seconds as the host also accepts. NCrontab requires day AND day-of-week to match (croniter's default is OR).
    """

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) not in (5, 6):
            raise ValueError(f"not an NCRONTAB expression (6 fields, seconds first): {expression!r}")
        self.expression = expression
        self._seconds_first = len(fields) == 6
        if not croniter.is_valid(expression, second_at_beginning=self._seconds_first):
            raise ValueError(f"invalid NCRONTAB expression: {expression!r}")

    def next_after(self, moment: datetime) -> datetime:
        schedule = croniter(self.expression, moment, day_or=False, second_at_beginning=self._seconds_first)
        return schedule.get_next(datetime)


class TimerTriggerDispatcher(PollingWorker):
    """Fires at each occurrence; an invocation never overlaps the next, and occurrences missed while one
    runs are skipped (as the real host does). `use_monitor` is ignored: no schedule status is persisted, so
    `past_due` is set only when the host woke after a later occurrence had already passed.
    """

    def __init__(self, function: FunctionInfo) -> None:
        super().__init__(f"timer:{function.name}")
        self._function = function
        self._schedule = NcrontabSchedule(function.trigger["schedule"])
        self._run_on_startup = bool(function.trigger.get("runOnStartup"))
        self._next_due: datetime | None = None

    def poll(self) -> float:
        now = datetime.now(UTC)
        if self._next_due is None:
            if self._run_on_startup:
                self._fire(past_due=False)
            self._next_due = self._schedule.next_after(datetime.now(UTC))
        elif now >= self._next_due:
            self._fire(past_due=self._schedule.next_after(self._next_due) <= now)
            self._next_due = self._schedule.next_after(datetime.now(UTC))
        return max(0.0, (self._next_due - datetime.now(UTC)).total_seconds())

    def _fire(self, past_due: bool) -> None:
        request = TimerRequest(past_due=past_due, schedule={"AdjustForDST": True})
        try:
            invoke(self._function, request, reason="Timer fired")
        except Exception:
            log.debug("%s: invocation failed; waiting for the next occurrence", self.name)
