"""The runs' console logger: a step's dg.Failure is one line (its description), at DEBUG on
the console; an unexpected exception keeps its ERROR lines and stack trace (real runs)."""

from __future__ import annotations

import dagster as dg

from music_analytics.defs.console import console_logger


@dg.op
def refused():
    raise dg.Failure(description="the token was revoked: run the auth command", allow_retries=False)


@dg.op
def crashed():
    raise ZeroDivisionError("a bug")


@dg.op
def after(value):
    return value


def _run(op, capfd) -> tuple[dg.ExecuteInProcessResult, str]:
    @dg.job(logger_defs={"console": console_logger})
    def job():
        after(op())

    result = job.execute_in_process(
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    return result, capfd.readouterr().err


def test_a_handled_failure_prints_nothing_at_warning(capfd):
    result, err = _run(refused, capfd)
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "run the auth command" in failure.step_failure_data.user_failure_data.description
    assert "STEP_FAILURE" not in err and "RUN_FAILURE" not in err
    assert "Stack Trace" not in err and "Dependencies for step" not in err


def test_an_unexpected_exception_keeps_its_stack_trace(capfd):
    result, err = _run(crashed, capfd)
    assert not result.success
    assert "STEP_FAILURE" in err and "ZeroDivisionError: a bug" in err and "Stack Trace" in err


def test_at_debug_the_handled_failure_is_still_there(capfd):
    @dg.job(logger_defs={"console": console_logger})
    def job():
        refused()

    job.execute_in_process(
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "DEBUG"}}}},
    )
    err = capfd.readouterr().err
    assert "DEBUG - job" in err and "STEP_FAILURE" in err
