"""deploy/k8s: the Kubernetes manifests hold together (there is no cluster here).

Parsed as YAML and checked the way a cluster would wire them: selectors match the pod
labels, the Service's ports reach named container ports, the workers find the master
by the Service's name and port, the profile mount is the ConfigMap's key, and the
containers' command lines are accepted by Locust's real parser with the fleet's
options. The worker's resources are checked against the sizing numbers the README
gives (RSS per station, one file and one source port per station).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet.scenarios.profile import load

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"

# The sizing the manifests are held to (README, "Sizing"): the measured RSS of a
# connected idle station in a Locust worker (with its user and greenlet), and of a
# worker process without stations.
KB_PER_STATION = 31
BASE_MB = 65
DEFAULT_PORT_RANGE = (32768, 60999)


def _documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


DOCS = _documents()


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _flag(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(quantity)


MASTER = _one("Deployment", "fleet-master")
WORKER = _one("Deployment", "fleet-worker")
SERVICE = _one("Service", "fleet-master")
SETTINGS = _one("ConfigMap", "fleet-settings")


def test_kinds_and_no_namespace() -> None:
    assert sorted((d["kind"], d["metadata"]["name"]) for d in DOCS) == [
        ("ConfigMap", "fleet-settings"),
        ("Deployment", "fleet-master"),
        ("Deployment", "fleet-worker"),
        ("Service", "fleet-master"),
    ]
    # Namespace-less: the namespace is chosen at apply time (kubectl -n / an overlay).
    assert all("namespace" not in d["metadata"] for d in DOCS)


@pytest.mark.parametrize("deployment", [MASTER, WORKER], ids=["master", "worker"])
def test_deployment_selectors_match_their_pods(deployment: dict[str, Any]) -> None:
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector and selector.items() <= labels.items()


def test_the_service_selects_the_master_only() -> None:
    selector = SERVICE["spec"]["selector"]
    assert selector.items() <= MASTER["spec"]["template"]["metadata"]["labels"].items()
    assert not selector.items() <= WORKER["spec"]["template"]["metadata"]["labels"].items()
    assert MASTER["spec"]["replicas"] == 1


def test_service_ports_reach_the_master_container() -> None:
    container = _container(MASTER)
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    ports = {p["name"]: p for p in SERVICE["spec"]["ports"]}
    assert set(ports) == {"workers", "web", "metrics"}
    for port in ports.values():
        target = port["targetPort"]  # a named container port, or a number
        number = named[target] if isinstance(target, str) else target
        assert number in named.values() and number == port["port"]
    args = container["args"]
    assert int(_flag(args, "--master-bind-port")) == named["workers"]
    assert int(_flag(args, "--web-port")) == named["web"]
    assert int(_flag(args, "--fleet-metrics-port")) == named["metrics"]
    assert _flag(args, "--fleet-metrics-host") == "0.0.0.0"  # scraped from outside the pod
    assert _flag(args, "--web-host") == "0.0.0.0"


def test_workers_find_the_master_through_the_service() -> None:
    args = _container(WORKER)["args"]
    assert "--worker" in args
    assert _flag(args, "--master-host") == SERVICE["metadata"]["name"]
    workers_port = next(p["port"] for p in SERVICE["spec"]["ports"] if p["name"] == "workers")
    assert int(_flag(args, "--master-port")) == workers_port


def test_the_master_mounts_the_profile_and_it_is_valid(tmp_path: Path) -> None:
    container = _container(MASTER)
    profile_path = Path(_flag(container["args"], "--fleet-profile"))
    mount = next(
        m for m in container["volumeMounts"] if profile_path.parent == Path(m["mountPath"])
    )
    volume = next(
        v for v in MASTER["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    )
    assert volume["configMap"]["name"] == SETTINGS["metadata"]["name"]
    item = next(i for i in volume["configMap"]["items"] if i["path"] == profile_path.name)
    text = SETTINGS["data"][item["key"]]
    copy = tmp_path / profile_path.name
    copy.write_text(text)
    assert load(str(copy)).name == "k8s-fleet"
    # The CSMS URL comes from the same ConfigMap, through $(CSMS_URL).
    assert _flag(container["args"], "--host") == "$(CSMS_URL)"
    env = {e["name"]: e for e in container["env"]}
    ref = env["CSMS_URL"]["valueFrom"]["configMapKeyRef"]
    assert ref["name"] == SETTINGS["metadata"]["name"] and ref["key"] in SETTINGS["data"]
    # Workers mount nothing: the master ships them the profile.
    assert "volumeMounts" not in _container(WORKER)


def test_the_image_has_the_locustfile_the_containers_run() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "WORKDIR /app" in dockerfile and "COPY locustfiles ./locustfiles" in dockerfile
    for deployment in (MASTER, WORKER):
        container = _container(deployment)
        assert container["image"] == "chargepro-fleet"  # kustomization images: sets the tag
        assert container["command"] == ["locust"]
        assert (ROOT / _flag(container["args"], "-f")).is_file()


def test_locust_accepts_the_command_lines() -> None:
    """Locust's own parser, with the fleet's options added, in a child process (Locust
    monkey-patches gevent into whatever imports it)."""
    lines = {
        name: [a.replace("$(CSMS_URL)", "ws://csms:9000/ocpp") for a in _container(d)["args"]]
        for name, d in (("master", MASTER), ("worker", WORKER))
    }
    script = (
        "import json, sys\n"
        "from locust.argument_parser import get_parser\n"
        "from fleet.locust.bridge import add_arguments\n"
        "out = {}\n"
        "for name, args in json.loads(sys.argv[1]).items():\n"
        "    parser = get_parser()\n"
        "    add_arguments(parser)\n"
        "    opts = parser.parse_args(args)\n"
        "    out[name] = {'master': opts.master, 'worker': opts.worker,\n"
        "                 'profile': opts.fleet_profile, 'host': opts.host}\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(lines)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    parsed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert parsed["master"]["master"] and not parsed["master"]["worker"]
    assert parsed["master"]["profile"] == "/etc/fleet/profile.yaml"
    assert parsed["worker"]["worker"] and not parsed["worker"]["master"]


def test_worker_resources_fit_the_stations_it_is_sized_for() -> None:
    stations = int(WORKER["metadata"]["annotations"]["chargepro-fleet/stations-per-worker"])
    resources = _container(WORKER)["resources"]
    # One worker process uses one core at most: more CPU per pod is wasted.
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == "1"
    need = BASE_MB * 2**20 + stations * KB_PER_STATION * 2**10
    assert _bytes(resources["requests"]["memory"]) >= need
    assert _bytes(resources["limits"]["memory"]) >= 2 * need  # offline queues, TLS, bursts
    # One source port per station towards the CSMS's ip:port.
    sysctls = {
        s["name"]: s["value"]
        for s in WORKER["spec"]["template"]["spec"]["securityContext"]["sysctls"]
    }
    low, high = (int(x) for x in sysctls["net.ipv4.ip_local_port_range"].split())
    assert high - low + 1 > DEFAULT_PORT_RANGE[1] - DEFAULT_PORT_RANGE[0] + 1 > stations


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_builds_the_same_objects() -> None:
    proc = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    built = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in built) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in DOCS
    )
    for d in built:
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "chargepro-fleet"
        if d["kind"] == "Deployment":
            assert _container(d)["image"] == "chargepro-fleet:latest"
