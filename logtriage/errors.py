"""Errors a user can act on: each carries where (path:line) and what to do (hint)."""

from __future__ import annotations


class LogtriageError(Exception):
    """Base error: `str(err)` is one full sentence, plus a hint when there is one."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.hint = hint

    @property
    def where(self) -> str:
        if self.path is None:
            return ""
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class InputError(LogtriageError):
    """An input path could not be read at all (missing, unreadable, no log files in it)."""


class RuleFileError(LogtriageError):
    """One or more rule files are invalid; `problems` lists every one found."""

    def __init__(self, problems: list[LogtriageError]):
        self.problems = problems
        lines = [f"{len(problems)} problem(s) in rule files:"] + [f"  {p}" for p in problems]
        super().__init__("\n".join(lines))

    def __str__(self) -> str:
        return self.message
