"""The chart's values: bad ones refused by values.schema.json (or the templates) naming the key, good ones
rendered where they belong, the next steps printed after an install, probes answered by a running operator.

Rendering needs helm only (KUBEBUILDER_ASSETS has it); the probe test runs the operator against the real
apiserver.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfheal.testing.controlplane import ControlPlane, free_port
from selfheal.testing.operator import OperatorProcess, helm_binary

CHART = Path(__file__).resolve().parents[2] / "charts" / "selfheal"  # the chart as the repository has it
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
REFUSED = "values don't meet the specifications of the schema"


def helm_template(
    *sets: str, values_file: Path | None = None, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    args = [helm_binary(), "template", "rel", str(CHART), "--namespace", "selfheal-system", *extra]
    for value in sets:
        args += ["--set", value]
    if values_file is not None:
        args += ["-f", str(values_file)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def rendered(*sets: str, values_file: Path | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    result = helm_template(*sets, values_file=values_file)
    assert result.returncode == 0, result.stderr
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(result.stdout) if d}


# --- refused ------------------------------------------------------------------------------------------

# (--set value, what the error must say: the path of the offending key and, where useful, what was expected)
BAD_VALUES = [
    ("logLevel=verbose", ["/logLevel", "'debug', 'info', 'warning', 'error'"]),
    ("logFormat=yaml", ["/logFormat"]),
    ("metrics.port=notaport", ["/metrics/port", "want integer"]),
    ("metrics.port=70000", ["/metrics/port"]),
    ("image.pullPolicy=Sometimes", ["/image/pullPolicy", "'Always', 'IfNotPresent', 'Never'"]),
    ("image.tag=2", ["/image/tag", "want string"]),
    ("replicaCuont=2", ["replicaCuont", "not allowed"]),
    ("replicaCount=-1", ["/replicaCount"]),
    ("replicaCount=two", ["/replicaCount", "want integer"]),
    ("watchNamespaces=foo", ["/watchNamespaces", "want array"]),
    ("watchNamespaces={Team_A}", ["/watchNamespaces/0"]),
    ("image.tags=latest", ["/image", "'tags' not allowed"]),
    ("metrics.replicas=1", ["/metrics", "'replicas' not allowed"]),
    ("metrics.serviceMonitor.enable=true", ["/metrics/serviceMonitor", "'enable' not allowed"]),
    ("metrics.serviceMonitor.interval=soon", ["/metrics/serviceMonitor/interval"]),
    ("metrics.service.type=NodePort", ["/metrics/service", "'type' not allowed"]),
    ("leaderElection.leaseDuration=5", ["/leaderElection", "'leaseDuration' not allowed"]),
    ("serviceAccount.nmae=x", ["/serviceAccount", "'nmae' not allowed"]),
    ("rbac.creat=false", ["/rbac", "'creat' not allowed"]),
    ("rbac.secretNamespaces=team-a", ["/rbac/secretNamespaces", "want array"]),
    ("rbac.clusterWideSecret=true", ["/rbac", "'clusterWideSecret' not allowed"]),
    ("resources.limit.cpu=1", ["/resources", "'limit' not allowed"]),
    ("imagePullSecrets={regcred}", ["/imagePullSecrets/0", "want object"]),
    ("podAnnotations.team=7", ["/podAnnotations/team", "want string"]),
    ("nodeSelector=linux", ["/nodeSelector", "want object"]),
    ("fullnameOverride=My_Name", ["/fullnameOverride"]),
    ("verdicts.port=0", ["/verdicts/port"]),
    ("verdicts.tokenSecret=x", ["/verdicts", "'tokenSecret' not allowed"]),
    ("verdicts.tokenSecretRef.key=", ["/verdicts/tokenSecretRef/key"]),
]


@pytest.mark.parametrize(("value", "said"), BAD_VALUES, ids=[v for v, _ in BAD_VALUES])
def test_bad_values_are_refused_by_the_schema_naming_the_key(value: str, said: list[str]) -> None:
    result = helm_template(value)
    assert result.returncode != 0, f"{value} was accepted:\n{result.stdout[:500]}"
    assert REFUSED in result.stderr, result.stderr
    for fragment in said:
        assert fragment in result.stderr, (fragment, result.stderr)


def test_a_typo_deep_in_a_values_file_is_refused(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("metrics:\n  serviceMonitor:\n    enabled: true\n    lables: {release: prometheus}\n")
    result = helm_template(values_file=values)
    assert result.returncode != 0 and "'lables' not allowed" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("sets", "said"),
    [
        (("metrics.port=8080",), "metrics.port 8080 is taken by the health endpoint"),
        (
            ("metrics.enabled=false", "metrics.serviceMonitor.enabled=true"),
            "serviceMonitor.enabled needs metrics.enabled",
        ),
        (("verdicts.port=8080",), "verdicts.port 8080 is taken by the health endpoint"),
        (("verdicts.port=9090",), "verdicts.port and metrics.port are the same"),
    ],
    ids=[
        "metrics-on-the-health-port",
        "servicemonitor-without-metrics",
        "verdicts-on-the-health-port",
        "verdicts-on-the-metrics-port",
    ],
)
def test_values_that_contradict_each_other_are_refused_with_a_sentence(sets: tuple[str, ...], said: str) -> None:
    result = helm_template(*sets)
    assert result.returncode != 0 and said in result.stderr, result.stderr


def test_a_parent_charts_globals_are_accepted() -> None:
    assert helm_template("global.imageRegistry=registry.example.com").returncode == 0


# --- the schema and the defaults agree ------------------------------------------------------------------


def _keys(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the values (descending only into objects the schema describes key by key)."""
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        paths.append(path)
        sub = schema.get("properties", {}).get(key, {})
        sub = SCHEMA["definitions"][sub["$ref"].split("/")[-1]] if "$ref" in sub else sub
        if isinstance(value, dict) and "properties" in sub:
            paths += _keys(value, sub, path + ".")
    return paths


def test_every_value_is_in_the_schema_and_every_schema_key_has_a_default() -> None:
    def schema_paths(schema: dict[str, Any], prefix: str = "") -> list[str]:
        paths = []
        for key, sub in schema.get("properties", {}).items():
            sub = SCHEMA["definitions"][sub["$ref"].split("/")[-1]] if "$ref" in sub else sub
            paths.append(prefix + key)
            if sub.get("additionalProperties") is False:
                paths += schema_paths(sub, f"{prefix}{key}.")
        return paths

    assert SCHEMA["additionalProperties"] is False
    in_values = set(_keys(VALUES, SCHEMA))
    in_schema = set(schema_paths(SCHEMA)) - {"global", "resources.claims"}
    assert in_values == in_schema, in_values ^ in_schema


def test_the_chart_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    paths = _keys(VALUES, SCHEMA)

    def documented(path: str) -> bool:
        parts = path.split(".")
        ancestors = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        descendants = [q for q in paths if q.startswith(path + ".")]
        return any(f"| `{q}` |" in readme for q in ancestors + descendants)

    assert [p for p in paths if not documented(p)] == []


# --- good values land where they belong -----------------------------------------------------------------

GOOD = {
    "image": {"repository": "registry.example.com/platform/selfheal", "tag": "0.1.0-rc.1", "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "regcred"}],
    "fullnameOverride": "healer",
    "watchNamespaces": ["team-a", "team-b"],
    "replicaCount": 2,
    "logLevel": "debug",
    "logFormat": "plain",
    "metrics": {
        "enabled": True,
        "port": 9102,
        "service": {"annotations": {"example.com/scrape": "yes"}},
        "serviceMonitor": {"enabled": True, "interval": "15s", "scrapeTimeout": "5s", "labels": {"release": "prom"}},
    },
    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    "env": [{"name": "SELFHEAL_TICKET_POLL_SECONDS", "value": "60"}],
    "podAnnotations": {"example.com/owner": "platform"},
    "podLabels": {"team": "platform", "app.kubernetes.io/name": "not-the-selector"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
}


def test_good_values_are_rendered_where_they_belong(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(GOOD))
    docs = rendered(values_file=values)
    deployment = docs[("Deployment", "healer")]
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["image"] == "registry.example.com/platform/selfheal:0.1.0-rc.1"
    assert container["imagePullPolicy"] == "Always"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["nodeSelector"] == GOOD["nodeSelector"]
    assert spec["tolerations"] == GOOD["tolerations"]
    assert spec["affinity"] == GOOD["affinity"]
    assert container["resources"] == GOOD["resources"]
    assert {"name": "SELFHEAL_TICKET_POLL_SECONDS", "value": "60"} in container["env"]
    assert "--log-level=debug" in container["args"] and "--log-format=plain" in container["args"]
    assert "--metrics-port=9102" in container["args"] and "--leader-election" in container["args"]
    assert "--lease-name=healer" in container["args"] and "--lease-namespace=selfheal-system" in container["args"]
    assert pod["metadata"]["annotations"]["example.com/owner"] == "platform"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9102"
    # The pod's own labels never override the selector: the Deployment would not find its pods.
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert pod["metadata"]["labels"]["team"] == "platform"
    assert selector.items() <= pod["metadata"]["labels"].items()

    service = docs[("Service", "healer-metrics")]
    assert service["metadata"]["annotations"] == {"example.com/scrape": "yes"}
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == 9102 and port["targetPort"] == "metrics"
    assert {"name": "metrics", "containerPort": 9102} in container["ports"]

    monitor = docs[("ServiceMonitor", "healer")]
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["selfheal-system"]}
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "5s"}
    ]
    # Every object of the release carries the overridden name.
    names = {name for kind, name in docs}
    assert names and all(name == "healer" or name.startswith("healer-") for name in names), names


def test_defaults_render_a_metrics_service_and_no_service_monitor() -> None:
    docs = rendered()
    assert ("Service", "rel-selfheal-metrics") in docs
    assert not [k for k in docs if k[0] == "ServiceMonitor"]
    assert ("Service", "rel-selfheal-metrics") not in rendered("metrics.enabled=false")
    assert ("Deployment", "rel-other") in rendered("nameOverride=other")


def test_the_verdict_endpoint_is_served_behind_a_service_with_its_token_from_a_secret() -> None:
    docs = rendered("verdicts.tokenSecretRef.name=selfheal-verdict", "verdicts.service.annotations.team=platform")
    pod = docs[("Deployment", "rel-selfheal")]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert "--verdict-port=8081" in container["args"]
    assert {"name": "verdict", "containerPort": 8081} in container["ports"]
    token = {"secretKeyRef": {"name": "selfheal-verdict", "key": "token"}}
    assert {"name": "SELFHEAL_VERDICT_TOKEN", "valueFrom": token} in container["env"]
    service = docs[("Service", "rel-selfheal-verdict")]
    assert service["spec"]["ports"] == [{"name": "verdict", "port": 8081, "targetPort": "verdict", "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["metadata"]["annotations"] == {"team": "platform"}
    # without a Secret no token is asked; switched off, nothing of it is rendered
    (plain,) = rendered()[("Deployment", "rel-selfheal")]["spec"]["template"]["spec"]["containers"]
    assert not [e for e in plain["env"] if e["name"] == "SELFHEAL_VERDICT_TOKEN"]
    off = rendered("verdicts.enabled=false")
    (container,) = off[("Deployment", "rel-selfheal")]["spec"]["template"]["spec"]["containers"]
    assert ("Service", "rel-selfheal-verdict") not in off
    assert not [a for a in container["args"] if a.startswith("--verdict-port")]


def test_the_probes_read_the_health_endpoint_the_operator_serves() -> None:
    deployment = rendered()[("Deployment", "rel-selfheal")]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert {"name": "health", "containerPort": 8080} in container["ports"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe
    # A wedged operator is restarted, but not for one slow answer.
    assert container["livenessProbe"]["failureThreshold"] * container["livenessProbe"]["periodSeconds"] >= 60


def test_chart_states_the_kubernetes_versions_it_supports() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.20.0-0"
    old = helm_template(extra=("--kube-version", "1.19.0"))
    assert old.returncode != 0 and "kubeVersion" in old.stderr, old.stderr


# --- after the install ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["cluster-wide", "namespaced"])
def test_the_install_prints_the_next_steps(scope: str) -> None:
    sets = ("watchNamespaces={payments,web}",) if scope == "namespaced" else ()
    args = [helm_binary(), "install", "rel", str(CHART), "--namespace", "selfheal-system", "--dry-run=client"]
    for value in sets:
        args += ["--set", value]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    notes = result.stdout[result.stdout.index("NOTES:") :]
    ns = "payments" if scope == "namespaced" else "team-a"
    assert "kubectl -n selfheal-system rollout status deployment/rel-selfheal" in notes
    assert f"kubectl -n {ns} apply -f examples/policy-minimal.yaml" in notes
    assert (
        f"kubectl -n {ns} get shp checkout-minimal -o jsonpath='{{.status.conditions[?(@.type==\"Ready\")].message}}'"
        in notes
    )
    assert f"kubectl -n {ns} get remediationtickets" in notes
    assert "port-forward service/rel-selfheal-metrics 9090" in notes
    assert ("kubectl create namespace team-a" in notes) == (scope == "cluster-wide")
    assert ("every namespace" in notes) == (scope == "cluster-wide")


def test_a_running_operator_is_ready_only_once_started(control_plane: ControlPlane) -> None:
    """What the probes read: /healthz answers 200 with the runtime ready once start-up is done."""
    port = free_port()
    proc = OperatorProcess.with_chart_rbac(
        control_plane, namespaces=["default"], extra_args=[f"--liveness=http://127.0.0.1:{port}/healthz"]
    )
    with proc:

        def health() -> dict[str, Any] | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    return json.loads(resp.read()) if resp.status == 200 else None
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return None

        answer = control_plane.admin.wait_for(health, timeout=60, message="/healthz answering 200")
        assert answer == {"runtime": "ready"}
