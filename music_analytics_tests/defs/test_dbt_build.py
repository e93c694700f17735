"""The dbt build's target folders, parse state and environment (defs/transform/dbt_build.py)."""

import os
from pathlib import Path
from types import SimpleNamespace

from music_analytics.defs.transform import dbt_build
from music_analytics.defs.transform.dbt_build import (
    KEEP_TARGETS,
    PARSE_STATE,
    _environment,
    _new_target,
    keep_parse_state,
)


def test_a_new_target_is_seeded_with_the_homes_parse_state_and_old_ones_are_pruned(tmp_path):
    state_dir = tmp_path / "dbt"
    first = _new_target(state_dir, "run0")
    assert not (first / PARSE_STATE).exists()  # nothing kept yet: dbt parses in full
    (first / PARSE_STATE).write_bytes(b"state of run0")
    keep_parse_state(SimpleNamespace(target_path=first), state_dir)
    targets = [first]
    for number in range(1, KEEP_TARGETS + 3):
        target = _new_target(state_dir, f"run{number}")
        assert (target / PARSE_STATE).read_bytes() == b"state of run0"
        targets.append(target)
    kept = sorted(p.name for p in (state_dir / "target").iterdir())
    assert len(kept) == KEEP_TARGETS
    assert targets[-1].name in kept and first.name not in kept


def test_a_missing_parse_state_leaves_the_kept_one(tmp_path):
    state_dir = tmp_path / "dbt"
    state_dir.mkdir()
    (state_dir / PARSE_STATE).write_bytes(b"old")
    keep_parse_state(SimpleNamespace(target_path=tmp_path / "crashed"), state_dir)
    assert (state_dir / PARSE_STATE).read_bytes() == b"old"
    assert [p.name for p in state_dir.iterdir()] == [PARSE_STATE]  # no partial copy left


def test_the_environment_is_restored_after_the_start(monkeypatch):
    monkeypatch.setenv("DBT_INDIRECT_SELECTION", "eager")
    monkeypatch.delenv(dbt_build.DAY_RANGES_ENV, raising=False)
    with _environment(**{dbt_build.DAY_RANGES_ENV: "[]", "DBT_INDIRECT_SELECTION": "cautious"}):
        assert os.environ["DBT_INDIRECT_SELECTION"] == "cautious"
        assert os.environ[dbt_build.DAY_RANGES_ENV] == "[]"
    assert os.environ["DBT_INDIRECT_SELECTION"] == "eager"
    assert dbt_build.DAY_RANGES_ENV not in os.environ


def test_the_state_lives_in_the_home(tmp_path):
    assert dbt_build.dbt_state_dir(tmp_path) == Path(tmp_path) / "dbt"
