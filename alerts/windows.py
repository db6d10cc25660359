"""Alerting windows (`alerts/windows.yaml`): `for:` waits, notification batching, pipeline limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from alerts.config_file import load_config

WINDOWS_FILE = Path(__file__).with_name("windows.yaml")
DURATION = re.compile(r"^(\d+)(s|m|h|d)$")


def seconds(duration: str) -> int:
    """Seconds in a Prometheus duration of one unit (`30s`, `5m`, `2h`, `7d`)."""
    match = DURATION.match(duration)
    if not match:
        # Every unit DURATION takes is named: `7d` was accepted, yet the message offered hours at most.
        raise ValueError(f"not a duration like 30s, 5m, 2h or 7d: {duration!r} / 时长格式应如 30s、5m、2h 或 7d")
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def _duration(value: str) -> str:
    seconds(value)
    return value


Duration = Annotated[str, AfterValidator(_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Wait(_Strict):
    """A `for:` wait, with the thresholds of a pipeline alert alongside."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)
    for_: Duration = Field("0m", alias="for")

    def get(self, key: str) -> Any:
        return (self.model_extra or {})[key]


class Notify(_Strict):
    group_wait: Duration
    group_interval: Duration
    repeat_interval: dict[str, Duration]


class Windows(_Strict):
    severities: dict[str, Wait]
    hold_unexported: Duration
    notify: Notify
    pipeline: dict[str, Wait]
    data_missing: Wait

    def wait(self, severity: str) -> str:
        """The `for:` of a rule of this severity."""
        return self.severities[severity].for_

    def hurried(self, wait: str = "0s", group_wait: str = "1s", group_interval: str = "2s") -> "Windows":
        """The same windows with every wait shortened, for tests that watch alerts end to end."""
        return Windows(
            severities={k: Wait(for_=wait) for k in self.severities},
            hold_unexported=self.hold_unexported,
            notify=Notify(group_wait=group_wait, group_interval=group_interval,
                          repeat_interval=self.notify.repeat_interval),
            pipeline={k: Wait(**(v.model_extra or {}), for_=wait) for k, v in self.pipeline.items()},
            data_missing=Wait(for_=wait),
        )


class WindowsError(Exception):
    """A windows file that cannot be read or does not validate; the message is for the user."""


def load_windows(path: Path | None = None) -> Windows:
    """The windows in force (the checked-in `alerts/windows.yaml` unless told otherwise)."""
    return load_config(path or WINDOWS_FILE, Windows, WindowsError, "告警窗口文件")
