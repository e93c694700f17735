"""API tokens with Tinybird-style scopes, kept in a JSON file of the user's (none is built in).

Scopes:
- `ADMIN`: everything.
- `PIPES:READ`: every published pipe and `/v0/sql`; `PIPES:READ:<pipe>`: that pipe only.
- `DATASOURCE:APPEND`: append to every datasource; `DATASOURCE:APPEND:<name>`: to that one.
- `DATASOURCES:CREATE`: append to every datasource (and, as in Tinybird, manage them).

The seeds spell some of them otherwise; those spellings are read as the scope they mean
(`SCOPE_ALIASES`): `PIPE:READ[:<pipe>]`, `DATASOURCES:APPEND[:<name>]`, `DATASOURCE:CREATE`.

The file (`MUSIC_ANALYTICS_API_TOKENS_FILE`, by default `$MUSIC_ANALYTICS_HOME/secrets/
api_tokens.json`) holds `{"tokens": [{"name": ..., "token": ..., "scopes": [...]}]}`, is
written with mode 600 by `music-analytics api-token create`, and is read when the server
starts. Token values never appear in logs, errors or `repr`.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

ADMIN = "ADMIN"
PIPES_READ = "PIPES:READ"
DATASOURCE_APPEND = "DATASOURCE:APPEND"
DATASOURCES_CREATE = "DATASOURCES:CREATE"
_SCOPE = re.compile(
    r"^(ADMIN|DATASOURCES:CREATE|PIPES:READ(:[a-z0-9_]+)?|DATASOURCE:APPEND(:[a-z0-9_]+)?)$"
)
# Other spellings of the scopes (the seeds use both), and the scope each stands for.
SCOPE_ALIASES = {
    "PIPE:READ": PIPES_READ,
    "DATASOURCES:APPEND": DATASOURCE_APPEND,
    "DATASOURCE:CREATE": DATASOURCES_CREATE,
}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_TOKEN_LENGTH = 16


class TokenFileError(ValueError):
    """The tokens file cannot be read or holds an invalid entry (named in the message)."""


@dataclass(frozen=True)
class ApiToken:
    name: str
    token: str = field(repr=False)
    scopes: tuple[str, ...]

    def can_read_pipe(self, pipe: str) -> bool:
        return any(s in (ADMIN, PIPES_READ, f"{PIPES_READ}:{pipe}") for s in self.scopes)

    @property
    def can_run_sql(self) -> bool:
        """SQL reads every mart, so a token limited to named pipes may not run it."""
        return any(s in (ADMIN, PIPES_READ) for s in self.scopes)

    @property
    def can_read_any_pipe(self) -> bool:
        return any(s == ADMIN or s.startswith(PIPES_READ) for s in self.scopes)

    @property
    def can_manage_datasources(self) -> bool:
        """Truncate, delete rows, append from a URL, read jobs: ADMIN or DATASOURCES:CREATE."""
        return any(s in (ADMIN, DATASOURCES_CREATE) for s in self.scopes)

    def can_append(self, datasource: str) -> bool:
        return any(
            s in (ADMIN, DATASOURCES_CREATE, DATASOURCE_APPEND, f"{DATASOURCE_APPEND}:{datasource}")
            for s in self.scopes
        )


def validate_scope(scope: str) -> str:
    """The scope in its canonical spelling; TokenFileError naming it when it is none."""
    for alias, canonical in SCOPE_ALIASES.items():
        if scope == alias or scope.startswith(alias + ":"):
            scope = canonical + scope[len(alias) :]
            break
    if not _SCOPE.match(scope):
        raise TokenFileError(
            f"unknown scope {scope!r}: expected ADMIN, PIPES:READ[:<pipe>], "
            "DATASOURCE:APPEND[:<datasource>] or DATASOURCES:CREATE"
        )
    return scope


class TokenSet:
    """The tokens the server accepts; `find` compares in constant time."""

    def __init__(self, tokens: list[ApiToken] | tuple[ApiToken, ...] = ()) -> None:
        self.tokens = tuple(tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def find(self, presented: str | None) -> ApiToken | None:
        if not presented:
            return None
        found = None
        for candidate in self.tokens:
            if hmac.compare_digest(candidate.token.encode(), presented.encode()):
                found = candidate
        return found


def _entry(raw: object, index: int, path: Path) -> ApiToken:
    where = f"{path}: tokens[{index}]"
    if not isinstance(raw, dict):
        raise TokenFileError(f"{where} is not an object")
    name, token, scopes = raw.get("name"), raw.get("token"), raw.get("scopes")
    if not isinstance(name, str) or not _NAME.match(name):
        raise TokenFileError(f"{where}: 'name' must be 1-64 letters, digits, '_', '.' or '-'")
    if not isinstance(token, str) or len(token) < MIN_TOKEN_LENGTH:
        raise TokenFileError(
            f"{where} ({name}): 'token' must be a string of {MIN_TOKEN_LENGTH}+ characters"
        )
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise TokenFileError(f"{where} ({name}): 'scopes' must be a non-empty list of strings")
    try:
        checked = tuple(validate_scope(s) for s in scopes)
    except TokenFileError as exc:
        raise TokenFileError(f"{where} ({name}): {exc}") from None
    return ApiToken(name, token, checked)


def load_tokens(path: Path) -> TokenSet:
    """The tokens in `path`; an absent file means no tokens (every call gets 401)."""
    path = Path(path)
    if not path.exists():
        return TokenSet()
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenFileError(f"cannot read the API tokens file {path}: {exc}") from None
    entries = document.get("tokens") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise TokenFileError(f'{path}: expected {{"tokens": [...]}}')
    tokens = [_entry(raw, i, path) for i, raw in enumerate(entries)]
    names = [t.name for t in tokens]
    if len(set(names)) != len(names):
        raise TokenFileError(f"{path}: token names must be unique")
    return TokenSet(tokens)


def create_token(path: Path, name: str, scopes: list[str]) -> ApiToken:
    """Add (or replace) the token `name` with a new random value; the file is kept at mode 600."""
    path = Path(path)
    if not _NAME.match(name):
        raise TokenFileError(f"token name {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
    if not scopes:
        raise TokenFileError("give at least one scope")
    checked = tuple(validate_scope(s) for s in scopes)
    existing = [t for t in load_tokens(path).tokens if t.name != name]
    token = ApiToken(name, secrets.token_urlsafe(32), checked)
    document = {
        "tokens": [
            {"name": t.name, "token": t.token, "scopes": list(t.scopes)} for t in [*existing, token]
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)
    return token
