"""A PostgreSQL cluster of its own in a folder, for `prod up` and the end-to-end test.

Debian's PostgreSQL 15 (`apt-get install postgresql`): `initdb` and `pg_ctl` from
/usr/lib/postgresql/15/bin. PostgreSQL refuses to run as root, so when we are root the
cluster's folder belongs to Debian's `postgres` user and every command runs as that user
(`runuser -u postgres --`). The cluster's superuser is MUSIC_ANALYTICS_PG_USER with
MUSIC_ANALYTICS_PG_PASSWORD (scram-sha-256, TCP on MUSIC_ANALYTICS_PG_HOST only).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

PG_BIN = Path(os.environ.get("MUSIC_ANALYTICS_PG_BIN", "/usr/lib/postgresql/15/bin"))
SYSTEM_USER = "postgres"


class PostgresError(RuntimeError):
    """The cluster cannot be created, started or stopped; the message says what to do."""


def postgres_available() -> bool:
    """Whether initdb and pg_ctl are installed (and, as root, the `postgres` user exists)."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        return False
    if os.geteuid() != 0:
        return True
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        return False
    return shutil.which("runuser") is not None


def check_connection(host: str, port: int, user: str, password: str, db_name: str) -> None:
    """Connect once (no retries): raises PostgresError with the server's one-line reason
    (psycopg2's messages name the host, port and user, never the password)."""
    import psycopg2

    try:
        psycopg2.connect(
            host=host, port=port, user=user, password=password, dbname=db_name, connect_timeout=10
        ).close()
    except psycopg2.OperationalError as exc:
        reason = " ".join(str(exc).split())
        raise PostgresError(
            f"cannot connect to PostgreSQL database {db_name!r}: {reason}; check "
            "MUSIC_ANALYTICS_PG_HOST/PORT/USER/DB/PASSWORD"
        ) from None


class PostgresCluster:
    """The cluster in `root` (data in root/data, its log in root/postgres.log)."""

    def __init__(self, root: Path, host: str, port: int, user: str, db_name: str):
        self.root = Path(root).resolve()
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.host, self.port, self.user, self.db_name = host, port, user, db_name

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", SYSTEM_USER, "--", *argv] if os.geteuid() == 0 else argv

    def _run(self, argv: list[str], what: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            self._as_owner(argv), capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise PostgresError(
                f"PostgreSQL {what} failed in {self.root}: {detail[-1] if detail else '?'} "
                f"(see {self.log})"
            )
        return result

    @property
    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def init(self, password: str) -> None:
        """initdb (once): the superuser with `password`, TCP on host:port, the database."""
        if self.initialized:
            return
        if not postgres_available():
            raise PostgresError(
                f"initdb/pg_ctl not found in {PG_BIN}: apt-get install postgresql "
                "(or set MUSIC_ANALYTICS_PG_BIN)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        password_file = self.root / "initdb.pw"
        password_file.touch(mode=0o600)
        password_file.write_text(password + "\n")
        if os.geteuid() == 0:
            os.chown(password_file, owner.pw_uid, owner.pw_gid)
        try:
            self._run(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    self.user,
                    f"--pwfile={password_file}",
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ],
                "initdb (is the folder reachable by the postgres user? as root, put "
                "MUSIC_ANALYTICS_PG_DATA under a world-traversable folder)",
            )
        finally:
            password_file.unlink(missing_ok=True)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# music-analytics\n"
                f"listen_addresses = '{self.host}'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.data}'\n"
                "max_connections = 200\n"
                "fsync = on\n"
            )
        self.start()
        self._create_database(password)

    def _create_database(self, password: str) -> None:
        import psycopg2

        conn = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=password, dbname="postgres"
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute("select 1 from pg_database where datname = %s", (self.db_name,))
                if cursor.fetchone() is None:
                    cursor.execute(f'create database "{self.db_name}"')
        finally:
            conn.close()

    def running(self) -> bool:
        if not self.initialized:
            return False
        argv = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status"]
        return (
            subprocess.run(self._as_owner(argv), capture_output=True, check=False).returncode == 0
        )

    def start(self) -> None:
        if self.running():
            return
        self._run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60"]
            + ["start"],
            "start",
        )

    def stop(self) -> None:
        if self.running():
            self._run(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], "stop"
            )

    def restart(self) -> None:
        """Stop (fast: open connections are cut) and start again."""
        self.stop()
        time.sleep(0.5)
        self.start()
