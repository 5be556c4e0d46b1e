"""Named checks run in order, each passing, failing with a one-line reason, or skipped where it does not apply."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Status = Literal["PASS", "FAIL", "SKIP"]


class NotApplicable(Exception):
    """Raised by a check that does not apply to the kind under test; its message says why."""


class NotRun(Exception):
    """Raised by a check that cannot run because a check it builds on failed; its message names that one."""


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome; ``reason`` says why it failed or was skipped."""

    name: str
    status: Status
    reason: str = ""

    def line(self) -> str:
        return f"{self.status}  {self.name}" + (f": {self.reason}" if self.reason else "")


def run_checks(checks: Sequence[tuple[str, Callable[[], None]]]) -> list[CheckResult]:
    """Run ``checks`` in order. A check fails by raising; once one fails, the checks after it that need what it
    set up are reported as failed too, naming the first failure, since running them would only repeat it."""
    results: list[CheckResult] = []
    blocking: str | None = None
    for name, check in checks:
        if blocking is not None:
            results.append(CheckResult(name, "FAIL", f"not run: {blocking!r} failed"))
            continue
        try:
            check()
        except NotApplicable as reason:
            results.append(CheckResult(name, "SKIP", str(reason)))
        except NotRun as reason:
            results.append(CheckResult(name, "FAIL", f"not run: {reason}"))
        except Exception as error:  # a plugin may raise anything; its message is the reason
            message = " ".join(str(error).split()) or "(no message)"
            results.append(CheckResult(name, "FAIL", f"{type(error).__name__}: {message}"))
            if getattr(check, "blocks_rest", False):
                blocking = name
        else:
            results.append(CheckResult(name, "PASS"))
    return results


def setup_step(check: Callable[[], None]) -> Callable[[], None]:
    """Mark ``check`` as one the later checks build on: when it fails, they are not run."""
    check.blocks_rest = True  # type: ignore[attr-defined]
    return check


def summary(results: Sequence[CheckResult]) -> str:
    """``12 checks: 11 passed, 1 failed, 0 skipped``."""
    counts = {status: sum(result.status == status for result in results) for status in ("PASS", "FAIL", "SKIP")}
    return f"{len(results)} checks: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped"
