"""Settings: one table, a TOML file, the environment, and docs that cannot drift."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from rintik_lite.errors import SettingsError
from rintik_lite.settings import SETTINGS, load
from tests.conftest import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rintik.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file() -> None:
    settings = load(None, {})
    assert settings["database.url"] == "sqlite:///rintik.db"
    assert settings["broker.queue"] == "rintik.notifications"
    assert settings["broker.exchanges"] == ["nova", "openstack", "neutron", "glance", "keystone"]
    assert settings["api.port"] == 8182
    assert settings["billing.tax_percent"] == Decimal("0")
    assert settings.source is None


def test_file_then_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[database]\nurl = "sqlite:///x.db"\n[api]\nport = 9000\n'
        '[broker]\ntopics = ["notifications", "versioned_notifications"]\n',
    )
    settings = load(
        path,
        {
            "RINTIK_API_PORT": "9100",
            "RINTIK_BROKER_DURABLE_EXCHANGES": "true",
            "RINTIK_BILLING_TAX_PERCENT": "11.5",
        },
    )
    assert settings["database.url"] == "sqlite:///x.db"
    assert settings["api.port"] == 9100
    assert settings["broker.topics"] == ["notifications", "versioned_notifications"]
    assert settings["broker.durable_exchanges"] is True
    assert settings["billing.tax_percent"] == Decimal("11.5")


def test_rintik_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[auth]\nprivate_key = "s3cret"\n')
    assert load(None, {"RINTIK_CONFIG": str(path)})["auth.private_key"] == "s3cret"


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ({"RABBITMQ_URL": "amqp://a@127.0.0.1//"}, "amqp://a@127.0.0.1//"),
        ({"RINTIK_NOTIFICATION_URL": "amqp://b@127.0.0.1//"}, "amqp://b@127.0.0.1//"),
        (
            {"RABBITMQ_URL": "amqp://a@127.0.0.1//", "RINTIK_BROKER_URL": "amqp://c@127.0.0.1//"},
            "amqp://c@127.0.0.1//",
        ),
    ],
)
def test_almanach_and_rintik_broker_variables(env: dict[str, str], value: str) -> None:
    assert load(None, env)["broker.url"] == value


def test_notification_topics_alias_is_a_comma_list() -> None:
    settings = load(None, {"RINTIK_NOTIFICATION_TOPICS": "notifications, billing"})
    assert settings["broker.topics"] == ["notifications", "billing"]


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[database]\nuri = 'x'\n", {}, "unknown setting database.uri in"),
        ("[nope]\nkey = 1\n", {}, "unknown setting nope.key in"),
        ("[api]\nport = 'eighty'\n", {}, "bad value for api.port"),
        ("[api]\nport = -1\n", {}, "bad value for api.port"),
        ("[broker]\nexchanges = 'nova'\n", {}, "bad value for broker.exchanges"),
        ("[auth]\nstrategy = 'ldap'\n", {}, "choose one of private_key, keystone"),
        ("[scheduler]\nclose_at = '25:00'\n", {}, "bad value for scheduler.close_at"),
        ("[billing]\ntax_percent = 'ten'\n", {}, "bad value for billing.tax_percent"),
        ("[api\n", {}, "is not valid TOML"),
        (
            "",
            {"RINTIK_BROKER_BATCH_SIZE": "many"},
            "bad value for broker.batch_size (from $RINTIK_BROKER_BATCH_SIZE)",
        ),
        ("", {"RINTIK_SCHEDULER_ENABLED": "perhaps"}, "bad value for scheduler.enabled"),
    ],
)
def test_bad_settings_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=None) as caught:
        load(write(tmp_path, text), env)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load(tmp_path / "absent.toml", {})


def test_secrets_are_masked() -> None:
    shown = load(None, {"RINTIK_AUTH_PRIVATE_KEY": "hunter2"}).as_dict()
    assert shown["auth.private_key"] == "***"
    assert "hunter2" not in repr(shown)


def test_the_example_file_documents_every_setting_with_its_default() -> None:
    example = tomllib.loads((ROOT / "rintik.toml.example").read_text())
    documented = {
        f"{section}.{key}": value
        for section, table in example.items()
        for key, value in table.items()
    }
    assert set(documented) == {s.name for s in SETTINGS}
    for setting in SETTINGS:
        assert documented[setting.name] == setting.default, setting.name
    assert load(ROOT / "rintik.toml.example", {})["api.port"] == 8182


def test_the_readme_documents_every_setting_and_its_environment_variable() -> None:
    readme = (ROOT / "README.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.name}`" in readme, setting.name
        assert f"`{setting.env}`" in readme, setting.env


def test_the_example_file_is_what_config_example_prints() -> None:
    from rintik_lite.settings import example_toml

    assert (ROOT / "rintik.toml.example").read_text() == example_toml()
