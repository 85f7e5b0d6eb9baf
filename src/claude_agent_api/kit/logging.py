"""Structured logs: structlog everywhere, JSON lines, a request id on every line, secrets redacted.

Redaction is a processor, not a habit: every event dict (and the stdlib records that uvicorn and libraries emit,
which are routed through the same chain) passes :class:`Redactor` last before rendering. It removes

- values of fields whose names look secret (``api_key``, ``authorization``, ``token``, ``secret``, ``password``…);
- anything shaped like one of our API keys, an Anthropic key, or a ``Bearer`` credential, wherever it appears;
- the exact values of configured secrets (registered at start-up, e.g. ``ANTHROPIC_API_KEY``).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from structlog.types import EventDict, Processor

REDACTED = "[REDACTED]"
_SECRET_NAMES = re.compile(
    r"(api[-_]?key|authorization|token|secret|password|passwd|credential|cookie|signature)", re.IGNORECASE
)
_SECRET_PATTERNS = [
    re.compile(r"caa_[A-Za-z0-9_\-]{16,}"),  # our API keys
    re.compile(r"whsec_[A-Za-z0-9+/=_\-]{8,}"),  # webhook secrets
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),  # Anthropic keys
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]{8,}"),
]


class Redactor:
    """A structlog processor that removes secrets from every field, recursively."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add_secrets(self, values: Iterable[str]) -> None:
        self._values.update(v for v in values if v and len(v) >= 4)

    def clear(self) -> None:
        self._values.clear()

    def scrub_text(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        for pattern in _SECRET_PATTERNS:
            replacement = (lambda m: m.group(1) + REDACTED) if pattern.groups else (lambda m: REDACTED)
            text = pattern.sub(replacement, text)
        return text

    def scrub(self, value: Any, depth: int = 0) -> Any:
        if depth > 6:
            return value
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, MutableMapping):
            return {
                k: (REDACTED if isinstance(k, str) and _SECRET_NAMES.search(k) else self.scrub(v, depth + 1))
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.scrub(v, depth + 1) for v in value]
        return value

    def __call__(self, logger: Any, method: str, event_dict: EventDict) -> EventDict:
        scrubbed = self.scrub(event_dict)
        assert isinstance(scrubbed, dict)
        return scrubbed


redactor = Redactor()


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]


def configure_logging(
    level: str = "info", *, json: bool = True, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    """Configure structlog and route stdlib logging (uvicorn, sqlalchemy…) through the same processors."""
    redactor.add_secrets(secrets)
    renderer: Processor = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redactor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_caa_handler", False):
            root.removeHandler(old)
    handler._caa_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # uvicorn's access log repeats what our request middleware logs, with the raw query string.
    logging.getLogger("uvicorn.access").disabled = True
