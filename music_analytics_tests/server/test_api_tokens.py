"""API tokens: the file, its mode and validation, and what each scope allows."""

from __future__ import annotations

import json
import stat

import pytest

from music_analytics.server.api_tokens import (
    ApiToken,
    TokenFileError,
    TokenSet,
    create_token,
    load_tokens,
)


def test_created_tokens_load_back_from_a_mode_600_file(tmp_path):
    path = tmp_path / "secrets" / "api_tokens.json"
    admin = create_token(path, "admin", ["ADMIN"])
    reader = create_token(path, "reader", ["PIPES:READ"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tokens = load_tokens(path)
    assert len(tokens) == 2
    assert tokens.find(admin.token).name == "admin"
    assert tokens.find(reader.token).scopes == ("PIPES:READ",)
    assert tokens.find("not-a-token-at-all") is None
    assert tokens.find("") is None and tokens.find(None) is None
    assert len(admin.token) >= 32 and admin.token != reader.token


def test_an_absent_file_means_no_tokens(tmp_path):
    assert len(load_tokens(tmp_path / "missing.json")) == 0


def test_creating_a_name_again_replaces_it_with_a_new_value(tmp_path):
    path = tmp_path / "tokens.json"
    old = create_token(path, "ci", ["PIPES:READ"])
    new = create_token(path, "ci", ["DATASOURCE:APPEND:music_streams"])
    tokens = load_tokens(path)
    assert len(tokens) == 1
    assert tokens.find(old.token) is None
    assert tokens.find(new.token).scopes == ("DATASOURCE:APPEND:music_streams",)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("scope", ["READ", "PIPES:WRITE", "ADMIN:x", "pipes:read", "PIPES:READ:"])
def test_an_unknown_scope_is_rejected_by_name(tmp_path, scope):
    path = tmp_path / "tokens.json"
    with pytest.raises(TokenFileError, match="unknown scope") as caught:
        create_token(path, "x", [scope])
    assert repr(scope) in str(caught.value)
    assert not path.exists()


def test_an_unknown_scope_in_the_file_names_the_file_and_entry(tmp_path):
    path = tmp_path / "tokens.json"
    entry = {"name": "bad", "token": "t" * 20, "scopes": ["PIPES:READ", "EVERYTHING"]}
    path.write_text(json.dumps({"tokens": [entry]}))
    with pytest.raises(TokenFileError) as caught:
        load_tokens(path)
    message = str(caught.value)
    assert str(path) in message and "tokens[0]" in message and "'EVERYTHING'" in message


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"tokens": {}}',
        '{"tokens": ["x"]}',
        '{"tokens": [{"name": "a", "token": "short", "scopes": ["ADMIN"]}]}',
        '{"tokens": [{"name": "a b", "token": "xxxxxxxxxxxxxxxxxxxx", "scopes": ["ADMIN"]}]}',
        '{"tokens": [{"name": "a", "token": "xxxxxxxxxxxxxxxxxxxx", "scopes": []}]}',
        '{"tokens": [{"name": "a", "token": "xxxxxxxxxxxxxxxxxxxx", "scopes": "ADMIN"}]}',
        '{"tokens": [{"name": "a", "token": "xxxxxxxxxxxxxxxxxxxx", "scopes": ["ADMIN"]},'
        ' {"name": "a", "token": "yyyyyyyyyyyyyyyyyyyy", "scopes": ["ADMIN"]}]}',
    ],
)
def test_a_malformed_file_is_an_error_naming_the_file(tmp_path, content):
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(TokenFileError) as caught:
        load_tokens(path)
    assert str(path) in str(caught.value)


def test_a_malformed_file_is_not_overwritten_by_create(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text("{not json")
    with pytest.raises(TokenFileError):
        create_token(path, "x", ["ADMIN"])
    assert path.read_text() == "{not json"


def test_a_bad_name_or_no_scopes_is_rejected(tmp_path):
    with pytest.raises(TokenFileError, match="token name"):
        create_token(tmp_path / "t.json", "has space", ["ADMIN"])
    with pytest.raises(TokenFileError, match="scope"):
        create_token(tmp_path / "t.json", "ok", [])


def test_the_token_value_is_never_in_repr(tmp_path):
    token = create_token(tmp_path / "t.json", "admin", ["ADMIN"])
    tokens = load_tokens(tmp_path / "t.json")
    for shown in (repr(token), str(token), repr(tokens.tokens), repr(tokens.find(token.token))):
        assert token.token not in shown
    assert "admin" in repr(token)


def test_a_token_for_one_pipe_reads_only_that_pipe_and_runs_no_sql():
    token = ApiToken("tt", "x" * 20, ("PIPES:READ:top_tracks",))
    assert token.can_read_pipe("top_tracks")
    assert not token.can_read_pipe("genre_trends")
    assert token.can_read_any_pipe
    assert not token.can_run_sql
    assert not token.can_append("music_streams")


def test_pipes_read_reads_every_pipe_and_runs_sql_but_appends_nothing():
    token = ApiToken("r", "x" * 20, ("PIPES:READ",))
    assert token.can_read_pipe("top_tracks") and token.can_read_pipe("genre_trends")
    assert token.can_run_sql
    assert not token.can_append("music_streams")


def test_append_scopes_append_and_read_nothing():
    one = ApiToken("a", "x" * 20, ("DATASOURCE:APPEND:music_streams",))
    every = ApiToken("b", "y" * 20, ("DATASOURCE:APPEND",))
    assert one.can_append("music_streams") and not one.can_append("other")
    assert every.can_append("music_streams") and every.can_append("other")
    for token in (one, every):
        assert not token.can_read_pipe("top_tracks")
        assert not token.can_read_any_pipe
        assert not token.can_run_sql


def test_admin_can_do_everything():
    token = ApiToken("admin", "x" * 20, ("ADMIN",))
    assert token.can_read_pipe("anything") and token.can_read_any_pipe
    assert token.can_run_sql and token.can_append("music_streams")


def test_find_matches_the_whole_value_only():
    token = ApiToken("a", "abcdefghijklmnopqrst", ("ADMIN",))
    tokens = TokenSet([token])
    assert tokens.find("abcdefghijklmnopqrst") is token
    assert tokens.find("abcdefghijklmnopqrs") is None
    assert tokens.find("abcdefghijklmnopqrstu") is None
    assert tokens.find("ABCDEFGHIJKLMNOPQRST") is None


@pytest.mark.parametrize(
    ("spelled", "meant"),
    [
        ("PIPE:READ", "PIPES:READ"),
        ("PIPE:READ:top_tracks", "PIPES:READ:top_tracks"),
        ("DATASOURCES:APPEND", "DATASOURCE:APPEND"),
        ("DATASOURCES:APPEND:music_streams", "DATASOURCE:APPEND:music_streams"),
        ("DATASOURCE:CREATE", "DATASOURCES:CREATE"),
        ("DATASOURCES:CREATE", "DATASOURCES:CREATE"),
    ],
)
def test_the_seeds_spellings_of_a_scope_mean_the_same_scope(tmp_path, spelled, meant):
    path = tmp_path / "tokens.json"
    created = create_token(path, "t", [spelled])
    assert load_tokens(path).find(created.token).scopes == (meant,)


def test_datasources_create_appends_and_reads_nothing():
    token = ApiToken("c", "z" * 20, ("DATASOURCES:CREATE",))
    assert token.can_append("music_streams")
    assert not token.can_read_any_pipe and not token.can_run_sql
