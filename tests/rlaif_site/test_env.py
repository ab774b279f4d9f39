import os
import subprocess
import sys

import pytest

from rlaif_site import env
from tests.conftest import REPO_ROOT


def test_database_defaults_to_sqlite_under_given_path(tmp_path):
    config = env.database_config(None, tmp_path / "var" / "db.sqlite3")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "var" / "db.sqlite3")
    assert (tmp_path / "var").is_dir()


def test_postgres_url_is_parsed_for_psycopg():
    config = env.database_config("postgres://postgres:pw@127.0.0.1:5433/studio", None)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == ("127.0.0.1", 5433, "studio", "postgres")


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("mysql://root@localhost/db", "must start with"),
        ("not a url", "must start with"),
        ("postgres://127.0.0.1:5432", "names no database"),
        ("postgres://127.0.0.1:notaport/db", "DATABASE_URL"),
    ],
)
def test_malformed_database_url_names_the_variable(url, fragment):
    with pytest.raises(env.ConfigError) as info:
        env.database_config(url, None)
    assert "DATABASE_URL" in str(info.value) and fragment in str(info.value)


def test_redis_url_unset_means_embedded_queue():
    assert env.redis_url(None) is None
    assert env.redis_url("") is None
    assert env.redis_url("redis://127.0.0.1:6379/3") == "redis://127.0.0.1:6379/3"


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "redis://127.0.0.1:port/0", "redis://127.0.0.1:6379/x", "redis://"])
def test_malformed_redis_url_names_the_variable(url):
    with pytest.raises(env.ConfigError, match="REDIS_URL"):
        env.redis_url(url)


def test_boolean_parsing(monkeypatch):
    monkeypatch.setenv("DEBUG", "yes")
    assert env.boolean("DEBUG", False) is True
    monkeypatch.setenv("DEBUG", "0")
    assert env.boolean("DEBUG", True) is False
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(env.ConfigError, match="DEBUG must be true or false"):
        env.boolean("DEBUG", False)


@pytest.mark.parametrize("variable, value", [("DATABASE_URL", "mysql://x/y"), ("REDIS_URL", "http://nope")])
def test_manage_py_prints_one_line_error_for_bad_url(variable, value):
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO_ROOT,
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and variable in lines[0]
