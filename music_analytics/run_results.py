"""Reading the outcome of an in-process run (for the CLI's refresh)."""

import dagster as dg


def failure_message(result: dg.ExecuteInProcessResult, label: str) -> str:
    """The failed step's own description (a `dg.Failure`) or error message, after `label`."""
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return f"{label}: {data.user_failure_data.description}"
        if data.error is not None:
            return f"{label}: {data.error.message.strip()}"
    return f"{label}: run failed"
