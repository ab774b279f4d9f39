"""API-key variable names the deployment allows, and redaction of secret values (training.redaction)."""
import logging

import pytest

from training.config import ConfigError, RunConfig
from training.redaction import KeyNameError, RedactingFilter, check_key_name, read_key, redact, secret_values

ENV = {
    "SECRET_KEY": "django-secret-value-123",
    "DATABASE_URL": "postgres://studio:pg%40pass-word@db:5432/studio",
    "REDIS_URL": "redis://:redis-pass-77@cache:6379/0",
    "STUDIO_KEY_JUDGE": "sk-judge-abcdef",
    "OPENAI_API_KEY": "sk-openai-zzzzzz",
    "STUDIO_ALLOWED_KEY_ENVS": "OPENAI_API_KEY, SECRET_KEY",
    "HOME": "/root",
}


@pytest.mark.parametrize("name", ["STUDIO_KEY_JUDGE", "OPENAI_API_KEY", ""])
def test_allowed_key_names(name):
    check_key_name(name, ENV)


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("SECRET_KEY", "secret of the deployment"),  # even when the allow-list names it
        ("DATABASE_URL", "secret of the deployment"),
        ("REDIS_URL", "secret of the deployment"),
        ("HOME", "STUDIO_KEY_"),
        ("AWS_SECRET_ACCESS_KEY", "STUDIO_ALLOWED_KEY_ENVS"),
        ("STUDIO_KEY_", "STUDIO_KEY_"),
        ("BAD NAME", "not an environment variable name"),
    ],
)
def test_other_names_are_refused_with_the_rule(name, fragment):
    with pytest.raises(KeyNameError, match=fragment):
        check_key_name(name, ENV)


def test_read_key_reads_only_allowed_names():
    assert read_key("STUDIO_KEY_JUDGE", ENV) == "sk-judge-abcdef"
    assert read_key("", ENV) is None
    with pytest.raises(KeyNameError):
        read_key("SECRET_KEY", ENV)
    with pytest.raises(ValueError, match="STUDIO_KEY_MISSING"):
        read_key("STUDIO_KEY_MISSING", ENV)


def test_run_config_refuses_a_deployment_secret_as_key_variable(monkeypatch):
    monkeypatch.delenv("STUDIO_ALLOWED_KEY_ENVS", raising=False)
    for section in ("judge", "generation"):
        with pytest.raises(ConfigError) as info:
            RunConfig.from_dict({section: {"backend": "openai", "base_url": "http://x/v1",
                                           "api_key_env": "SECRET_KEY"}})
        assert info.value.path == f"{section}.api_key_env"
    config = RunConfig.from_dict({"judge": {"backend": "openai", "base_url": "http://x/v1",
                                            "api_key_env": "STUDIO_KEY_JUDGE"}})
    assert config.judge.api_key_env == "STUDIO_KEY_JUDGE"


def test_secret_values_cover_keys_secret_key_and_url_passwords():
    values = secret_values(ENV)
    assert values["sk-judge-abcdef"] == "STUDIO_KEY_JUDGE"
    assert values["sk-openai-zzzzzz"] == "OPENAI_API_KEY"
    assert values["django-secret-value-123"] == "SECRET_KEY"
    assert values["pg%40pass-word"] == "DATABASE_URL" and values["pg@pass-word"] == "DATABASE_URL"
    assert values["redis-pass-77"] == "REDIS_URL"
    assert "/root" not in values


def test_redact_replaces_every_secret_value():
    text = ("HTTP 401: bad key sk-judge-abcdef; db postgres://studio:pg@pass-word@db; "
            "key=django-secret-value-123 redis-pass-77 sk-judge-abcdef")
    clean = redact(text, ENV)
    for secret in ("sk-judge-abcdef", "pg@pass-word", "django-secret-value-123", "redis-pass-77"):
        assert secret not in clean
    assert clean.count("[redacted:STUDIO_KEY_JUDGE]") == 2
    assert "[redacted:DATABASE_URL]" in clean and "[redacted:REDIS_URL]" in clean
    assert redact(None, ENV) is None and redact("nothing here", ENV) == "nothing here"


def test_logging_filter_redacts_messages_and_tracebacks(monkeypatch, caplog):
    monkeypatch.setenv("STUDIO_KEY_LOGTEST", "sk-log-secret-999")
    logger = logging.getLogger("test.redaction")
    handler_filter = RedactingFilter()
    try:
        raise RuntimeError("server echoed sk-log-secret-999")
    except RuntimeError:
        record = logger.makeRecord("test", logging.ERROR, __file__, 1, "calling with %s", ("sk-log-secret-999",),
                                   exc_info=__import__("sys").exc_info())
    assert handler_filter.filter(record)
    formatted = logging.Formatter().format(record)
    assert "sk-log-secret-999" not in formatted
    assert "[redacted:STUDIO_KEY_LOGTEST]" in formatted and "RuntimeError" in formatted


def test_a_key_set_while_another_variable_goes_is_still_redacted(monkeypatch):
    """The environment can change between two calls without changing size: nothing is cached by size."""
    monkeypatch.setenv("UNRELATED_VARIABLE_FOR_TEST", "x")
    assert redact("nothing to hide") == "nothing to hide"
    monkeypatch.delenv("UNRELATED_VARIABLE_FOR_TEST")
    monkeypatch.setenv("STUDIO_KEY_SWAPPED", "sk-swapped-secret-77")
    assert redact("echo sk-swapped-secret-77") == "echo [redacted:STUDIO_KEY_SWAPPED]"
