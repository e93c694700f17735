"""deploy/scale-out/dagster.yaml: a Dagster instance file whose classes exist in the pinned
packages, without installing dagster-k8s (the deployment's image adds it from
deploy/scale-out/requirements.txt)."""

import importlib
import importlib.metadata
from pathlib import Path

import yaml

SCALE_OUT = Path(__file__).resolve().parents[2] / "deploy" / "scale-out"


def pinned_requirements() -> dict[str, str]:
    lines = (SCALE_OUT / "requirements.txt").read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in lines]
    return dict(pin.split("==") for pin in pins if pin)


def test_the_instance_file_names_classes_of_installed_or_pinned_packages():
    instance = yaml.safe_load((SCALE_OUT / "dagster.yaml").read_text())
    assert set(instance) >= {"storage", "run_coordinator", "run_launcher", "concurrency"}
    assert "postgres" in instance["storage"]
    importlib.import_module("dagster_postgres")  # the storage's package, a dependency here
    coordinator = instance["run_coordinator"]
    assert hasattr(importlib.import_module(coordinator["module"]), coordinator["class"])
    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s.launcher", "K8sRunLauncher")
    # dagster-k8s is a library of the dagster family: the same version as dagster-dbt's
    assert pinned_requirements() == {"dagster-k8s": importlib.metadata.version("dagster-dbt")}
    assert instance["concurrency"]["pools"]["default_limit"] == 1  # duckdb: one writer


def test_no_secret_is_written_in_the_file():
    text = (SCALE_OUT / "dagster.yaml").read_text()
    postgres = yaml.safe_load(text)["storage"]["postgres"]["postgres_db"]
    assert postgres["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert "secret_access_key" not in text.lower()
