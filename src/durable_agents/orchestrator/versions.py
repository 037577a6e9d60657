"""Orchestration versions: how two compare, and whether a worker runs an instance of a given version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MatchStrategy = Literal["none", "strict", "current_or_older"]
MismatchStrategy = Literal["reject", "fail"]


@dataclass(frozen=True)
class VersioningOptions:
    """Which instances a worker runs, by their version against the app's.

    `match`: "none" runs every instance; "strict" only those of the app's exact version;
    "current_or_older" those of its version or an older one (an instance without a version is
    older than any). `on_mismatch`: "reject" leaves the step for a worker that matches (the
    instance waits, it does not fail); "fail" fails the instance with an error naming both versions.
    """

    match: MatchStrategy = "none"
    on_mismatch: MismatchStrategy = "reject"

    def __post_init__(self) -> None:
        if self.match not in ("none", "strict", "current_or_older"):
            raise ValueError(f"VersioningOptions(match={self.match!r}): use 'none', 'strict' or 'current_or_older'")
        if self.on_mismatch not in ("reject", "fail"):
            raise ValueError(f"VersioningOptions(on_mismatch={self.on_mismatch!r}): use 'reject' or 'fail'")


def checked_version(version: str | None) -> str | None:
    """`version` if it is a usable version (None stays None), else a clear ValueError."""
    if version is None:
        return None
    if not isinstance(version, str) or not version.strip() or len(version) > 64 or version != version.strip():
        raise ValueError(f"version {version!r} must be 1 to 64 characters without surrounding spaces")
    return version


def _as_numbers(version: str) -> tuple[int, ...] | None:
    parts = version.split(".")
    if not all(part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


def compare_versions(left: str | None, right: str | None) -> int:
    """-1, 0 or 1 as `left` is older than, the same as or newer than `right`.

    Dotted numbers compare by number ("2.10" is newer than "2.9", "1.0" is "1"); other versions as
    strings. No version (None or "") is older than every version."""
    if not left or not right:
        return (bool(left) > bool(right)) - (bool(left) < bool(right))
    left_numbers, right_numbers = _as_numbers(left), _as_numbers(right)
    if left_numbers is not None and right_numbers is not None:
        width = max(len(left_numbers), len(right_numbers))
        a = left_numbers + (0,) * (width - len(left_numbers))
        b = right_numbers + (0,) * (width - len(right_numbers))
        return (a > b) - (a < b)
    return (left > right) - (left < right)


def runs(match: str, worker_version: str | None, instance_version: str | None) -> bool:
    """Whether a worker of `worker_version` under `match` runs an instance of `instance_version`."""
    if match == "strict":
        return compare_versions(instance_version, worker_version) == 0
    if match == "current_or_older":
        return compare_versions(instance_version, worker_version) <= 0
    return True


def describe(version: str | None) -> str:
    return repr(version) if version else "no version"


def mismatch_message(instance_id: str, instance_version: str | None, worker_version: str | None, match: str) -> str:
    """Why a worker does not run the instance: both versions and the rule."""
    rule = "the same version" if match == "strict" else "its version or an older one"
    return (
        f"instance {instance_id!r} is of version {describe(instance_version)}, but this worker runs version "
        f"{describe(worker_version)} under match={match!r} ({rule}); run a worker of version "
        f"{describe(instance_version)} or change the worker's VersioningOptions"
    )
