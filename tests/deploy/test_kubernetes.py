"""deploy/kubernetes/: every manifest valid against the Kubernetes schemas (offline, the
`kubernetes-validate` wheel), probes on every role, a PDB for the conductors, KEDA on lag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.test_compose import parse

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def documents() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(MANIFESTS.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_every_manifest_is_valid() -> None:
    version = kubernetes_validate.latest_version()
    for doc in documents():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: no schema in the wheel (checked below)
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {exc.message}")


def test_every_role_has_probes_and_runs_a_valid_command() -> None:
    deployments = [d for d in documents() if d["kind"] == "Deployment"]
    roles = set()
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            parse([str(a) for a in container["args"]])
            roles.add(container["args"][0])
            assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
            assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    assert {"conductor", "tracker", "history-store", "api", "triggers", "service"} <= roles


def test_conductors_have_a_disruption_budget_and_services_scale_on_lag() -> None:
    docs = documents()
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert any(
        b["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "podium-conductor"}
        for b in budgets
    )
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    assert scaled
    for obj in scaled:
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        assert obj["spec"]["scaleTargetRef"]["name"] in names
        assert obj["spec"]["maxReplicaCount"] <= 8  # PODIUM_PARTITIONS: no idle members
        for trigger in obj["spec"]["triggers"]:
            assert trigger["type"] == "kafka"
            meta = trigger["metadata"]
            assert meta["consumerGroup"].startswith("podium.service.")
            assert meta["topic"].startswith("podium.tasks.") and int(meta["lagThreshold"]) > 0
