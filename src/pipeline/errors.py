"""The one error type a user sees when a pipeline cannot be loaded or run.

Every user mistake (a syntax error in ``pipeline.py``, a cycle, two stages
writing one output, a param without a default...) becomes a
:class:`PipelineError` carrying a message written for the user and, where one
exists, the file and line to look at. The CLI prints it without a traceback.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PipelineError"]


class PipelineError(Exception):
    """A problem in the user's pipeline, with the place to fix it."""

    def __init__(self, message: str, file: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}: {self.message}"
        if self.file:
            return f"{self.file}: {self.message}"
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (PipelineError, (self.message, self.file, self.line))

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for ``--json`` output and the loader subprocess."""
        return {"message": self.message, "file": self.file, "line": self.line}
