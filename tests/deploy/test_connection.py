"""Connection settings (`KafkaConnection`): read from the environment or files, checked for
consistency, turned into aiokafka's keyword arguments in one place, never shown."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from podium.runtime.kafka import connection_options
from podium.runtime.settings import KafkaConnection


def test_plaintext_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PODIUM_SECURITY_PROTOCOL", "PODIUM_SASL_MECHANISM", "PODIUM_SSL_CAFILE"):
        monkeypatch.delenv(name, raising=False)
    assert connection_options() == {"security_protocol": "PLAINTEXT"}


def test_sasl_from_the_environment_with_the_password_in_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret-value\n")  # a secret mount's trailing newline is not the password
    monkeypatch.setenv("PODIUM_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("PODIUM_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("PODIUM_SASL_USERNAME", "podium")
    monkeypatch.setenv("PODIUM_SASL_PASSWORD_FILE", str(secret))
    connection = KafkaConnection()
    assert connection_options() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "podium",
        "sasl_plain_password": "s3cret-value",
    }
    # never shown: not in the repr, the str or a dump of the settings
    for shown in (repr(connection), str(connection), str(connection.model_dump())):
        assert "s3cret-value" not in shown


def test_tls_gives_an_ssl_context(tmp_path: Path) -> None:
    ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    if not ca.is_file():
        pytest.skip("no system CA bundle to load")
    options = connection_options(KafkaConnection(security_protocol="SSL", ssl_cafile=ca))
    assert options["security_protocol"] == "SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].check_hostname


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"sasl_username": "u"}, "PODIUM_SASL_USERNAME set, but PODIUM_SECURITY_PROTOCOL is"),
        ({"security_protocol": "SASL_SSL"}, "needs PODIUM_SASL_MECHANISM"),
        ({"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.pem"}, "no file"),
        ({"security_protocol": "SSL", "ssl_keyfile": __file__}, "without PODIUM_SSL_CERTFILE"),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "u",
                "sasl_password": "p",
                "sasl_password_file": __file__,
            },
            "not both",
        ),
        ({"security_protocol": "TLS"}, "security_protocol"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
    ],
)
def test_an_inconsistent_setting_is_refused_by_name(given: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        KafkaConnection(**given)  # type: ignore[arg-type]


def test_a_certificate_that_does_not_load_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ValueError, match="cannot load the PODIUM_SSL_"):
        connection_options(KafkaConnection(security_protocol="SSL", ssl_cafile=bad))


def test_a_problem_in_the_environment_never_repeats_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PODIUM_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("PODIUM_SASL_PASSWORD", "s3cret-value")  # no mechanism, no username
    with pytest.raises(ValueError, match="needs PODIUM_SASL_MECHANISM") as raised:
        connection_options()
    assert "s3cret-value" not in str(raised.value)
