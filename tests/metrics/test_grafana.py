"""The Grafana dashboards, their provisioning and docker-compose.yml fit together.

No Docker engine runs here, so compose is checked for structure: every mounted file
exists, the ports and targets of the Prometheus config line up with the services,
and the dashboards reference the provisioned datasource by its uid.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fleet.metrics.exporter import FleetCollector
from fleet.metrics.stats import FleetStats

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _datasource() -> dict[str, Any]:
    sources = _yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    assert len(sources) == 1
    return dict(sources[0])


def _datasource_refs(node: Any, where: str = "") -> list[tuple[str, Any]]:
    """Every "datasource" value anywhere in a dashboard, with where it is."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                out.append((where, value))
            out.extend(_datasource_refs(value, f"{where}/{node.get('title', key)}"))
    elif isinstance(node, list):
        for item in node:
            out.extend(_datasource_refs(item, where))
    return out


def _compose() -> dict[str, Any]:
    return dict(_yaml(ROOT / "docker-compose.yml"))


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_three_dashboards_are_there() -> None:
    assert [p.name for p in DASHBOARDS] == [
        "csms-latency.json",
        "fleet-overview.json",
        "offline-and-faults.json",
    ]
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == 3
    for path in DASHBOARDS:
        ids = [panel["id"] for panel in json.loads(path.read_text())["panels"]]
        assert len(ids) == len(set(ids)), path.name


def test_every_datasource_reference_matches_the_provisioning() -> None:
    source = _datasource()
    refs = [
        (p.name, ref) for p in DASHBOARDS for ref in _datasource_refs(json.loads(p.read_text()))
    ]
    assert len(refs) > 60  # every panel, every target, the variable
    wrong = [
        (name, where, value)
        for name, (where, value) in refs
        if value != {"type": source["type"], "uid": source["uid"]}
    ]
    assert not wrong


def test_panels_query_only_families_the_fleet_exports() -> None:
    """A typo in a metric name would give an empty panel; catch it without Prometheus."""
    stats = FleetStats()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(stats))
    exported = set()
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        for suffix in suffixes.get(family.type, [""]):
            exported.add(family.name + suffix)
    # Families the Locust layer adds (fleet/locust/metrics.py): workers.
    exported |= {"fleet_workers", "fleet_worker_stations_connected"}
    used = set()
    for path in DASHBOARDS:
        used |= set(re.findall(r"\bfleet_[a-z_]+", path.read_text()))
    assert used, "no fleet metric in the dashboards"
    assert used <= exported, used - exported


def test_dashboard_provider_loads_the_mounted_dashboards() -> None:
    provider = _yaml(GRAFANA / "provisioning" / "dashboards" / "fleet.yml")["providers"][0]
    grafana = _compose()["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (GRAFANA / "dashboards" / Path(home).name).is_file()


def test_every_mounted_file_exists() -> None:
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert (ROOT / source).exists(), f"{name}: {source} is missing"


def test_prometheus_scrapes_the_master_where_it_serves() -> None:
    services = _compose()["services"]
    master = services["master"]["command"]
    port = _flag(master, "--fleet-metrics-port")
    assert _flag(master, "--fleet-metrics-host") == "0.0.0.0"  # reachable from prometheus
    assert "--master" in master
    config = _yaml(GRAFANA / "prometheus.yml")
    targets = [
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    ]
    assert targets == [f"master:{port}"]
    # Prometheus reads this file where compose mounts it.
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in services["prometheus"]["volumes"])
    assert (
        f"--config.file={mounts['./grafana/prometheus.yml']}" in services["prometheus"]["command"]
    )
    # Grafana's datasource points at the prometheus service on its published port.
    url = _datasource()["url"]
    assert url == "http://prometheus:9090"
    assert "9090:9090" in services["prometheus"]["ports"]
    assert _datasource()["jsonData"]["timeInterval"] == config["global"]["scrape_interval"]


def test_workers_join_the_master_and_run_our_locustfile() -> None:
    services = _compose()["services"]
    worker = services["worker"]["command"]
    master = services["master"]["command"]
    assert "--worker" in worker
    assert _flag(worker, "--master-host") == "master"
    for command in (worker, master):
        assert (ROOT / _flag(command, "-f")).is_file()
    assert services["worker"]["deploy"]["replicas"] >= 2
    # The default CSMS is the compose service of the reference CSMS, on its port.
    csms = services["csms"]["command"]
    assert f"ws://csms:{_flag(csms, '--port')}/ocpp" in _flag(master, "--host")
    assert _flag(csms, "--host") == "0.0.0.0"


def test_the_image_builds_from_files_that_exist() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    sources = [
        part
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
    ]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not [s for s in sources if s.rstrip("/") in ignored]
    for name, service in _compose()["services"].items():
        if "build" in service:
            assert service["build"] == ".", name
