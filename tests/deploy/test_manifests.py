"""deploy/k8s: every object valid against the Kubernetes schemas, and the objects agree.

Schemas: kubernetes-validate (PyPI, test extra), strict mode (unknown fields are errors), for
the oldest Kubernetes minor we support and the newest the package knows. The ServiceMonitor is
a Prometheus Operator custom resource with no schema there: its metadata and label selector
are validated against the Kubernetes definitions, its endpoints against the operator's field
types written out below, and what it selects against the Service it must find.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from emailgate.config import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy/k8s"
OLDEST = "1.29"  # PodDisruptionBudget.unhealthyPodEvictionPolicy and matchLabelKeys: beta, on
VERSIONS = (OLDEST, kubernetes_validate.latest_version())
CUSTOM_KINDS = {"ServiceMonitor", "Kustomization"}
# Settings that are secrets: they belong in the Secret, never in the ConfigMap.
SECRET_SETTINGS = {"EMAILGATE_HASH_KEY", "EMAILGATE_LISTCLEANSER_API_KEY",
                   "EMAILGATE_CLEANMYLIST_API_KEY", "EMAILGATE_REDIS_URL"}  # fmt: skip
# The Prometheus Operator's Duration type (monitoring.coreos.com/v1).
DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)


def documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, object) for every YAML document under deploy/k8s."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def objects(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in documents() if doc["kind"] == kind]


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects(kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = one("Deployment")["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    (c,) = pod_spec()["containers"]
    return dict(c)


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


KUBE_OBJECTS = [(f, d) for f, d in documents() if d["kind"] not in CUSTOM_KINDS]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("name", "doc"), KUBE_OBJECTS, ids=[f"{f}:{d['kind']}" for f, d in KUBE_OBJECTS]
)
def test_object_is_valid_against_the_kubernetes_schema(
    name: str, doc: dict[str, Any], version: str
) -> None:
    """Each object validates (strict: no unknown field) against that Kubernetes version."""
    kubernetes_validate.validate(doc, version, strict=True)


def test_schema_validation_catches_mistakes() -> None:
    """The validator is not a rubber stamp: a misspelt field and a wrong type are refused."""
    deployment = one("Deployment")
    bad = yaml.safe_load(yaml.safe_dump(deployment))
    bad["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[-1], strict=True)
    bad = yaml.safe_load(yaml.safe_dump(deployment))
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[-1], strict=True)


def _service_monitor_schema() -> dict[str, Any]:
    meta = "/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1."
    endpoint = {
        "type": "object",
        "additionalProperties": False,
        "required": ["port"],
        "properties": {
            "port": {"type": "string"},
            "path": {"type": "string", "pattern": "^/"},
            "scheme": {"enum": ["http", "https"]},
            "interval": {"type": "string", "pattern": DURATION},
            "scrapeTimeout": {"type": "string", "pattern": DURATION},
            "honorLabels": {"type": "boolean"},
        },
    }
    return {
        # Beside the Kubernetes schemas, so their relative $refs resolve the same way.
        "$id": "https://kubernetes.io/api/servicemonitor-monitoring-v1.json",
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": {"$ref": meta + "ObjectMeta"},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "endpoints"],
                "properties": {
                    "jobLabel": {"type": "string"},
                    "selector": {"$ref": meta + "LabelSelector"},
                    "namespaceSelector": {"type": "object"},
                    "endpoints": {"type": "array", "minItems": 1, "items": endpoint},
                },
            },
        },
    }


def test_service_monitor_is_valid_and_selects_the_metrics_service() -> None:
    """The ServiceMonitor's metadata and selector validate against the Kubernetes definitions,
    its endpoints against the operator's types; it selects the headless metrics Service only,
    by a port name that Service has, and its job label gives job="emailgate"."""
    monitor = one("ServiceMonitor")
    version = ".".join([*VERSIONS[-1].split("."), "0", "0"][:3])  # 1.37 -> 1.37.0
    definitions = schema_contents(
        f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version
    )
    registry: Registry[Any] = Resource.from_contents(definitions) @ Registry()
    jsonschema.Draft202012Validator(_service_monitor_schema(), registry=registry).validate(monitor)

    selector = monitor["spec"]["selector"]["matchLabels"]
    selected = [s for s in objects("Service") if matches(selector, s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in selected] == ["emailgate-metrics"]
    ports = {p["name"] for p in selected[0]["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in ports
        assert endpoint["path"] == "/metrics"
    job_label = monitor["spec"]["jobLabel"]
    assert selected[0]["metadata"]["labels"][job_label] == "emailgate"


def test_kustomization_lists_every_manifest_but_the_custom_resource() -> None:
    """kustomization.yaml applies every manifest except the ServiceMonitor (it needs the
    operator's CRD), into the namespace namespace.yaml creates."""
    kustomization = one("Kustomization")
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "servicemonitor.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    assert kustomization["namespace"] == one("Namespace")["metadata"]["name"]


def test_probes_liveness_healthz_readiness_readyz() -> None:
    """Liveness is /healthz on the named port (never /readyz: a Redis outage must not restart
    pods), readiness reads /readyz (test_readiness_probe.py runs it), a startup probe guards
    slow starts."""
    c = container()
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    python, flag, script = c["readinessProbe"]["exec"]["command"]
    assert (python, flag) == ("python", "-c")
    assert "/readyz" in script
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in c["ports"]


def test_requests_and_limits_for_cpu_and_memory() -> None:
    """CPU and memory both have a request and a limit, each limit at least its request."""
    resources = container()["resources"]
    units = {"m": 1e-3, "Mi": 2**20, "Gi": 2**30, "": 1}

    def quantity(text: str) -> float:
        number, unit = re.fullmatch(r"([0-9.]+)(m|Mi|Gi|)", str(text)).groups()  # type: ignore[union-attr]
        return float(number) * units[unit]

    for resource in ("cpu", "memory"):
        assert quantity(resources["limits"][resource]) >= quantity(resources["requests"][resource])


def test_non_root_read_only_and_restricted() -> None:
    """Non-root (UID 10001), read-only root filesystem, no privilege escalation, no
    capabilities, RuntimeDefault seccomp: the "restricted" Pod Security Standard, which the
    namespace enforces; /tmp is the one writable path (a memory emptyDir)."""
    pod = pod_spec()["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container()["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod_spec()["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    assert volumes[mounts["/tmp"]]["emptyDir"]["medium"] == "Memory"
    labels = one("Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_references_between_objects_resolve() -> None:
    """envFrom, the keys-file volume, Services, HPA and PDB all point at objects and labels
    that exist; the Services route to the container's named port."""
    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    env_from = container()["envFrom"]
    assert {e["configMapRef"]["name"] for e in env_from if "configMapRef" in e} == {
        o["metadata"]["name"] for o in objects("ConfigMap")
    }
    secrets = {o["metadata"]["name"] for o in objects("Secret")}
    assert {e["secretRef"]["name"] for e in env_from if "secretRef" in e} <= secrets
    for volume in pod_spec()["volumes"]:
        if "secret" in volume:
            assert volume["secret"]["secretName"] in secrets
    for service in objects("Service"):
        assert matches(service["spec"]["selector"], labels)
        for port in service["spec"]["ports"]:
            assert port["targetPort"] == "http"
    assert matches(one("Deployment")["spec"]["selector"]["matchLabels"], labels)
    assert matches(one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], labels)
    target = one("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", one("Deployment")["metadata"]["name"])
    assert pod_spec()["serviceAccountName"] == one("ServiceAccount")["metadata"]["name"]
    annotations = one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"


def _secret_values(name: str) -> dict[str, str]:
    return dict(one("Secret", name)["stringData"])


def _config() -> dict[str, str]:
    return dict(one("ConfigMap")["data"])


def test_configmap_is_valid_settings_and_holds_no_secret(tmp_path: Path) -> None:
    """The ConfigMap with real-looking secrets beside it is a valid Settings (every name known,
    every value accepted), and none of its names is a secret setting."""
    config = _config()
    assert not SECRET_SETTINGS & set(config)
    keys_file = tmp_path / "keys.toml"
    keys_file.write_text("")
    env = config | {
        "EMAILGATE_API_KEYS_FILE": str(keys_file),
        "EMAILGATE_HASH_KEY": "a-long-enough-hash-key-0123456789",
        "EMAILGATE_LISTCLEANSER_API_KEY": "lc",
        "EMAILGATE_CLEANMYLIST_API_KEY": "cml",
        "EMAILGATE_REDIS_URL": "redis://redis.emailgate.svc:6379/0",
    }
    settings = Settings.from_env(env)
    assert settings.host == "0.0.0.0"
    assert settings.port == container()["ports"][0]["containerPort"]
    assert not settings.demo
    assert set(_secret_values("emailgate-secrets")) == SECRET_SETTINGS


def test_keys_file_setting_points_into_the_mounted_secret() -> None:
    """EMAILGATE_API_KEYS_FILE is the file the keys Secret volume mounts."""
    path = Path(_config()["EMAILGATE_API_KEYS_FILE"])
    mount = next(m for m in container()["volumeMounts"] if m["mountPath"] == str(path.parent))
    assert mount["readOnly"] is True
    volume = next(v for v in pod_spec()["volumes"] if v["name"] == mount["name"])
    assert [i["path"] for i in volume["secret"]["items"]] == [path.name]
    key = volume["secret"]["items"][0]["key"]
    assert key in _secret_values(volume["secret"]["secretName"])


def test_secret_templates_hold_placeholders_that_cannot_start() -> None:
    """Every Secret value is a REPLACE_ME placeholder (a real key pasted here fails this test),
    and the placeholders are not valid settings, so a forgotten template never serves."""
    values = _secret_values("emailgate-secrets")
    assert values and all(v.startswith("REPLACE_ME") for v in values.values())
    keys_toml = _secret_values("emailgate-api-keys")["keys.toml"]
    digests = re.findall(r'sha256\s*=\s*"([^"]*)"', keys_toml)
    assert digests and all(d.startswith("REPLACE_ME") for d in digests)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(_config() | values | {"EMAILGATE_API_KEYS_FILE": ""})
    assert any(p.startswith("EMAILGATE_REDIS_URL") for p in caught.value.problems)


def test_fallback_replica_count_covers_every_pod_that_can_run() -> None:
    """EMAILGATE_REPLICAS (each replica's share of a provider limit when Redis is down) is at
    least the HPA's maximum plus the rollout's surge: the most pods that can run at once."""
    replicas = int(_config()["EMAILGATE_REPLICAS"])
    hpa = one("HorizontalPodAutoscaler")["spec"]
    surge = one("Deployment")["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert isinstance(surge, int)
    assert replicas >= hpa["maxReplicas"] + surge
    assert hpa["minReplicas"] >= 2
    assert one("Deployment")["spec"]["replicas"] == hpa["minReplicas"]


def test_rolling_update_and_disruptions_keep_capacity() -> None:
    """Rolling updates add before they remove; drains evict one pod at a time."""
    rolling = one("Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0 and rolling["maxSurge"] >= 1
    assert one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_termination_grace_covers_pre_stop_and_shutdown_timeout() -> None:
    """The kubelet waits longer than the preStop sleep plus EMAILGATE_SHUTDOWN_TIMEOUT_S, so
    in-flight checks finish before any SIGKILL."""
    pre_stop = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    shutdown = float(_config()["EMAILGATE_SHUTDOWN_TIMEOUT_S"])
    assert pod_spec()["terminationGracePeriodSeconds"] > float(pre_stop[1]) + shutdown
    assert pod_spec()["enableServiceLinks"] is False  # EMAILGATE_PORT=tcp://… otherwise
