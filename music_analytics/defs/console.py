"""The runs' console logger: Dagster's colored one, with handled failures at DEBUG.

A step that ends with `dg.Failure` (a revoked Spotify token, a corrupt warehouse, a DSP API
refusal) has already said what is wrong and what to do in its description; Dagster's console
logger would still print the step failure and the run failure at ERROR, each with a full stack
trace, and an ERROR line for every step skipped after it. Those records are lowered to DEBUG
here, so a console at INFO or WARNING (`music-analytics refresh` prints the description itself)
shows the one line, while unexpected exceptions keep their stack traces at ERROR. Only the
console changes: the run's event log in the instance (the UI) keeps every event as it was.
"""

from __future__ import annotations

import logging
from typing import Any

import dagster as dg
from dagster._core.log_manager import LOG_RECORD_METADATA_ATTR
from dagster._loggers import colored_console_logger

_CONSEQUENCE = "Dependencies for step "  # Dagster's ERROR line for a step skipped after a failure


def _handled_step_failure(event: Any) -> bool:
    data = getattr(event, "step_failure_data", None) if event is not None else None
    return data is not None and data.user_failure_data is not None


def is_handled_failure(event: Any) -> bool:
    """True for the step and run failure events of a step that raised `dg.Failure`."""
    if event is None:
        return False
    if event.is_step_failure:
        return _handled_step_failure(event)
    if event.is_run_failure:
        data = event.event_specific_data
        first = getattr(data, "first_step_failure_event", None)
        error = getattr(data, "error", None)
        return _handled_step_failure(first) or getattr(error, "cls_name", None) == "Failure"
    return False


class HandledFailuresAtDebug(logging.Filter):
    """Lowers handled failures (see the module docstring) to DEBUG before the handler's check."""

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, LOG_RECORD_METADATA_ATTR, None) or {}
        handled = is_handled_failure(meta.get("dagster_event"))
        if handled or str(meta.get("orig_message", "")).startswith(_CONSEQUENCE):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


@dg.logger(
    colored_console_logger.config_schema,
    description="Dagster's colored console logger, with handled failures (dg.Failure) at DEBUG.",
)
def console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    """The `console` logger of every job (run config: `loggers.console.config.log_level`)."""
    logger = colored_console_logger.logger_fn(init_context)
    logger.addFilter(HandledFailuresAtDebug())
    return logger
