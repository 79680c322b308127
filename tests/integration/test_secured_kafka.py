"""Podium on an Apache Kafka that requires SASL/SCRAM over TLS with a client certificate.

A throwaway CA signs the broker's and the client's certificates (openssl, in a
temporary folder); the SCRAM user is created by the storage tool at format time.
A whole `podium run` (topics, conductor, service, client, changelog) goes through
the SASL_SSL listener with its settings from `PODIUM_*` variables only
(SCRAM-SHA-512); a wrong password (SCRAM-SHA-256, PLAIN) and a missing client
certificate are refused, and the right ones let in.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError

from podium.apache_kafka import ApacheKafka, SaslSsl, unavailable
from podium.runtime.kafka import ensure_topics
from podium.runtime.settings import KafkaConnection
from tests.processes.procs import podium

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

UNAVAILABLE = unavailable() or (None if shutil.which("openssl") else "no openssl on PATH")
USER, PASSWORD = "podium-app", "scram-Secret-42"
ORDER = ["examples/order/order.yaml", "--services", "examples.order.shop:services"]


@dataclass(frozen=True)
class Pki:
    ca: Path
    broker_keystore: Path  # the broker's key and certificate, one PEM
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"openssl {args[0]}: {done.stderr}"


def make_pki(folder: Path) -> Pki:
    """A CA valid for a day, and a broker and a client certificate it signed (127.0.0.1)."""
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=podium-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    for who in ("broker", "client"):
        (folder / f"{who}.ext").write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
        )
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key",
            "-out", f"{who}.csr", "-subj", f"/CN={who}", cwd=folder,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-out", f"{who}.pem", "-extfile", f"{who}.ext",
            cwd=folder,
        )  # fmt: skip
    keystore = folder / "broker-keystore.pem"  # Kafka's PEM keystore: PKCS#8 key, then chain
    keystore.write_text((folder / "broker.key").read_text() + (folder / "broker.pem").read_text())
    return Pki(folder / "ca.pem", keystore, folder / "client.pem", folder / "client.key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if UNAVAILABLE:
        pytest.skip(UNAVAILABLE)
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secured(pki: Pki) -> Iterator[str]:
    """Bootstrap servers of the SASL_SSL listener of a fresh one-node Apache Kafka."""
    listener = SaslSsl(pki.broker_keystore, {USER: PASSWORD}, client_ca=pki.ca)
    with ApacheKafka(secure=listener) as kafka:
        yield kafka.secure_bootstrap_servers


def secured_env(pki: Pki, bootstrap: str, password: str = PASSWORD) -> dict[str, str]:
    secret = pki.ca.parent / f"password-{len(password)}"
    secret.write_text(password + "\n")  # as a mounted secret: by file
    return {
        "PODIUM_BOOTSTRAP_SERVERS": bootstrap,
        "PODIUM_IDEMPOTENT_PRODUCER": "true",
        "PODIUM_SECURITY_PROTOCOL": "SASL_SSL",
        "PODIUM_SASL_MECHANISM": "SCRAM-SHA-512",
        "PODIUM_SASL_USERNAME": USER,
        "PODIUM_SASL_PASSWORD_FILE": str(secret),
        "PODIUM_SSL_CAFILE": str(pki.ca),
        "PODIUM_SSL_CERTFILE": str(pki.client_cert),
        "PODIUM_SSL_KEYFILE": str(pki.client_key),
    }


def test_a_workflow_runs_end_to_end_over_sasl_scram_and_tls(
    pki: Pki, secured: str, tmp_path: Path
) -> None:
    env = {
        **secured_env(pki, secured),
        "PODIUM_HISTORY_URL": f"sqlite:///{tmp_path / 'history.db'}",
    }
    done = podium(
        "run", *ORDER, "--input", '{"sku": "A-1", "qty": 2, "amount": 30}', "--json", env=env
    )
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)
    assert (result["state"], result["tasks"]["ship"]["state"]) == ("Succeeded", "Succeeded")
    assert "embedded broker" not in done.stderr
    assert PASSWORD not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "change",
    [
        {"sasl_password": "not-the-password"},
        {"sasl_mechanism": "PLAIN", "sasl_password": "not-the-password"},
        {"ssl_certfile": None, "ssl_keyfile": None},
    ],
    ids=["wrong-password", "wrong-plain-password", "no-client-certificate"],
)
async def test_a_client_without_the_right_credentials_is_refused(
    pki: Pki, secured: str, change: dict[str, str | None]
) -> None:
    settings = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_username": USER,
        "sasl_password": PASSWORD,
        "ssl_cafile": pki.ca,
        "ssl_certfile": pki.client_cert,
        "ssl_keyfile": pki.client_key,
    }
    connection = KafkaConnection(**{**settings, **change})  # type: ignore[arg-type]
    with pytest.raises(KafkaConnectionError):
        await ensure_topics(secured, ["refused"], 1, connection=connection)
    # and the right ones, in the same process, are let in
    right = {**settings, "sasl_mechanism": change.get("sasl_mechanism", "SCRAM-SHA-256")}
    await ensure_topics(secured, ["admitted"], 1, connection=KafkaConnection(**right))  # type: ignore[arg-type]
