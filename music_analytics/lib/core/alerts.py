"""Alerts to a Slack-compatible webhook: the message, secrets scrubbed out of it, and delivery
that survives a webhook that is down.

The webhook URL is a secret (a Slack incoming-webhook URL is its own credential): it is never
logged, and no error raised here contains it (requests' errors name the URL, so only the
error's type and the HTTP status are reported). A message that cannot be delivered is kept
in an outbox folder, one JSON file per message, and sent before the next message, or at the
next tick of the freshness sensor: nothing is lost while the webhook is down, and a message
is removed only after the webhook accepted it. Delivery is at least once: a process killed
after the webhook accepted a message and before it removed it sends that message again.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import requests

from music_analytics.lib.core.crash_points import crash_point

# Settings whose values are secrets: scrubbed from every message (errors can quote them, e.g.
# a URL with a token in it, a connection string).
SECRET_SETTINGS = (
    "DSP_API_TOKEN",
    "SPOTIFY_CLIENT_SECRET",
    "SPOTIFY_REFRESH_TOKEN",
    "MUSIC_ANALYTICS_ALERT_WEBHOOK_URL",
    "MUSIC_ANALYTICS_PG_PASSWORD",
    "DAGSTER_PG_PASSWORD",
    "PGPASSWORD",
)
MIN_SECRET_LENGTH = 4  # shorter values would scrub ordinary words
POST_TIMEOUT_SECONDS = 10
MAX_TEXT_CHARS = 3000  # Slack's limit for a section block's text


def secret_values(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The values of the secret settings that are set: value -> the setting's name."""
    found = {}
    for name in SECRET_SETTINGS:
        value = environ.get(name, "").strip()
        if len(value) >= MIN_SECRET_LENGTH:
            found[value] = name
    return found


def scrub(text: str, secrets: Mapping[str, str]) -> str:
    """`text` with every secret value replaced by `[NAME]` (longest first: one secret may
    contain another)."""
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, f"[{secrets[value]}]")
    return text


def first_line(text: str) -> str:
    """The first non-empty line of an error message."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def slack_message(title: str, fields: Iterable[tuple[str, str]], secrets: Mapping[str, str]):
    """A Slack-compatible message: `text` (what plain webhooks and notifications show) and
    `blocks` (a header and one field per line), every value scrubbed of `secrets`."""
    fields = [(name, scrub(str(value), secrets)) for name, value in fields]
    title = scrub(title, secrets)
    text = f"{title}\n" + "\n".join(f"{name}: {value}" for name, value in fields)
    body = "\n".join(f"*{name}*: `{value}`" for name, value in fields)
    return {
        "text": text[:MAX_TEXT_CHARS],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:MAX_TEXT_CHARS]}},
        ],
    }


class AlertDeliveryError(RuntimeError):
    """The webhook did not accept a message; the message names no URL."""


def post(url: str, message: Mapping) -> None:
    """POST `message` as JSON; raises AlertDeliveryError (without the URL) unless 2xx."""
    try:
        # no redirects: a webhook that answers 3xx has not taken the message, and the
        # message (and whatever the redirect points at) stays here
        response = requests.post(
            url, json=message, timeout=POST_TIMEOUT_SECONDS, allow_redirects=False
        )
    except requests.RequestException as exc:
        raise AlertDeliveryError(
            f"the alert webhook is unreachable ({type(exc).__name__})"
        ) from None
    if not 200 <= response.status_code < 300:
        raise AlertDeliveryError(f"the alert webhook answered HTTP {response.status_code}")


def queue(outbox: Path, message: Mapping) -> Path:
    """Keep `message` in the outbox (written aside, then renamed: never half a file)."""
    outbox.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=outbox, prefix=".partial-", suffix=".json")
    with os.fdopen(fd, "w") as file:
        json.dump(message, file)
    final = outbox / f"{time.time_ns():020d}-{os.getpid()}.json"
    os.replace(partial, final)
    return final


def flush(url: str, outbox: Path, log: logging.Logger) -> int:
    """Send the queued messages, oldest first, each removed once accepted; stops at the first
    failure (logged as a warning). Returns how many were sent."""
    sent = 0
    for path in sorted(outbox.glob("*.json")) if outbox.is_dir() else ():
        try:
            message = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning(f"alert outbox: {path.name} is unreadable; moved aside as .bad")
            path.rename(path.with_suffix(".bad"))
            continue
        try:
            post(url, message)
        except AlertDeliveryError as exc:
            log.warning(f"{exc}: {len(list(outbox.glob('*.json')))} alert(s) wait in {outbox}")
            return sent
        path.unlink()
        sent += 1
    return sent


def deliver(url: str, message: Mapping, outbox: Path, log: logging.Logger) -> bool:
    """Queue `message` and send everything queued; True when it all went. A webhook that is
    down leaves the messages queued for the next call (a warning, never an exception)."""
    queue(outbox, message)
    crash_point("alert_queued")  # crash tests: kept, not posted yet
    flush(url, outbox, log)
    return not any(outbox.glob("*.json"))
