"""deploy/prometheus and deploy/grafana: valid files, and every metric they query is
one the platform really exports.

The live check scrapes the all-in-one app's ``/metrics`` over HTTP after traffic of
every kind the panels show (requests, a 401, AI calls with a cache hit, a workflow
run), then reads every PromQL expression of the dashboard, its variables and the
alert rules, and requires each metric name to be a series of that exposition, with
the right suffix for its type (a counter only as ``_total``, a histogram only as
``_bucket``/``_count``/``_sum``) and only labels the series has.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.promql import UnknownFunction, grafana_query_expression, parse
from tests.helpers import auth, issue_key
from tests.system_runtime.support import harness, op
from xynergy.platform.admin_app import PLATFORM_SLUG
from xynergy.platform.config import Settings
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.resource_gauges import RESOURCE_GAUGES
from xynergy.server import SERVICES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "xynergy.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "xynergy.yml"
COMPOSE = DEPLOY / "compose.yaml"

# Series Prometheus makes itself, never on an app's /metrics.
PROMETHEUS_MADE = frozenset({"up", "ALERTS"})
# Labels Prometheus adds to every scraped series (prometheus.yml's relabelling: container).
TARGET_LABELS = frozenset({"job", "instance", "container"})
GRAFANA_WIDTH = 24


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# --- what the exposition declares ----------------------------------------------------


@dataclass(frozen=True)
class Exposition:
    """Queryable series names, and the labels of those that have samples."""

    names: frozenset[str]
    labels: dict[str, frozenset[str]]


def exposition_of(text: str) -> Exposition:
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))
    names: set[str] = set()
    for name, kind in types.items():
        base = name.removesuffix("_created")
        if name != base and (types.get(base + "_total") == "counter" or base in types):
            continue  # a counter's or histogram's creation time, not a series to chart
        if kind == "histogram":
            names |= {name + "_bucket", name + "_count", name + "_sum"}
        elif kind == "summary":
            names |= {name, name + "_count", name + "_sum"}
        else:
            names.add(name)
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return Exposition(frozenset(names), {k: frozenset(v) for k, v in labels.items()})


def problems_of(expression: str, exposition: Exposition) -> list[str]:
    """What is wrong with ``expression`` against ``exposition`` (empty: nothing)."""
    try:
        read = parse(expression)
    except UnknownFunction as error:
        return [str(error)]
    found: list[str] = []
    known: set[str] = set(TARGET_LABELS)
    complete = True
    for selector in read.selectors:
        if selector.metric in PROMETHEUS_MADE:
            known |= selector.labels
            continue
        if selector.metric not in exposition.names:
            found.append(f"{selector.metric}: not on /metrics")
            continue
        labels = exposition.labels.get(selector.metric)
        if labels is None:
            complete = False  # declared without samples: its labels are unknown
            continue
        known |= labels
        unknown = selector.labels - labels - TARGET_LABELS
        if unknown:
            found.append(f"{selector.metric}: no label {sorted(unknown)}")
    if complete and read.grouping - known:
        found.append(f"grouping by labels no series has: {sorted(read.grouping - known)}")
    return found


# --- where the expressions are -------------------------------------------------------


def dashboard_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", ())  # a collapsed row keeps its panels inside


def dashboard_expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and query variable."""
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", ()):
            yield f"panel {panel['id']} {panel['title']!r} {target['refId']}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            yield f"variable {variable['name']}", grafana_query_expression(text)


def alert_rules() -> Iterator[dict[str, Any]]:
    for group in load_yaml(ALERTS)["groups"]:
        yield from group["rules"]


def every_expression(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield from dashboard_expressions(dashboard)
    for rule in alert_rules():
        yield f"alert {rule['alert']}", rule["expr"]


# --- a real /metrics after traffic ---------------------------------------------------


@pytest.fixture
async def scraped(make_settings: Callable[..., Settings], tmp_path: Path) -> Exposition:
    """/metrics of the all-in-one app (every service, plus the runtime tests' service that
    runs a workflow's steps) after a run, AI calls, a page of content and a 401."""
    logs = tmp_path / "logs"
    logs.mkdir()
    settings = make_settings(
        log_dir=logs,
        # A threshold far above any test process: the pressure gauge exists, never set.
        memory_pressure_rss_bytes=2**50,
    )
    async with harness(settings) as h:
        await h.define("observed", [op("a", "test.sleep", ms=5)])
        run = await h.started("observed")
        assert (await h.wait_for(run))["status"] == "succeeded"
        chat = {"model": "xynergy-offline", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(2):  # the second answer comes from the cache
            answered = await h.client.post(
                "/ai-routing-engine/v1/chat/completions", json=chat, headers=h.headers
            )
            assert answered.status_code == 200, answered.text
        listed = await h.client.get("/aso-engine/api/content", headers=h.headers)
        assert listed.status_code == 200, listed.text
        assert (await h.client.get("/aso-engine/api/content")).status_code == 401
        _, reader = await issue_key(h.platform, tenant="platform", scopes=("metrics:read",))
        response = await h.client.get("/metrics", headers=auth(reader.secret))
    assert response.status_code == 200, response.text
    return exposition_of(response.text)


def platform_metrics() -> Exposition:
    """The platform's own metrics with a sample each (no app: for the checker's own tests)."""
    metrics = PlatformMetrics()
    metrics.requests.labels("svc", "GET", "/a", "200").inc()
    metrics.latency.labels("svc", "GET", "/a").observe(0.01)
    metrics.cache_requests.labels("ai", "hit").inc()
    metrics.service_metric(Counter, "xynergy_ai_tokens", "t", ["model", "direction"]).labels(
        "m", "input"
    ).inc()
    return exposition_of(metrics.render().decode())


# --- the tests -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


class TestMetricsExist:
    async def test_every_queried_metric_is_on_metrics(
        self, scraped: Exposition, dashboard: dict[str, Any]
    ) -> None:
        found = {
            where: problems
            for where, expression in every_expression(dashboard)
            if (problems := problems_of(expression, scraped))
        }
        assert found == {}
        # The check saw real series, not an empty exposition.
        assert set(RESOURCE_GAUGES) <= scraped.names
        assert "xynergy_ai_cost_usd_total" in scraped.labels

    async def test_a_misspelt_metric_in_a_panel_is_caught(
        self, scraped: Exposition, dashboard: dict[str, Any]
    ) -> None:
        broken = copy.deepcopy(dashboard)
        target = next(p for p in dashboard_panels(broken) if p.get("targets"))["targets"][0]
        target["expr"] = target["expr"].replace(
            "xynergy_http_requests_total", "xynergy_http_request_total"
        )
        found = [problems_of(e, scraped) for _, e in dashboard_expressions(broken)]
        assert ["xynergy_http_request_total: not on /metrics"] in found

    @pytest.mark.parametrize(
        ("expression", "problem"),
        [
            # A counter is stored as _total only; a histogram has no bare series.
            ("rate(xynergy_http_requests[5m])", "xynergy_http_requests: not on /metrics"),
            (
                "xynergy_http_request_duration_seconds",
                "xynergy_http_request_duration_seconds: not on /metrics",
            ),
            (
                'sum(xynergy_cache_requests_total{namespce="ai"})',
                "xynergy_cache_requests_total: no label ['namespce']",
            ),
            (
                "sum by (modle) (xynergy_ai_tokens_total)",
                "grouping by labels no series has: ['modle']",
            ),
            ("rat(xynergy_ai_tokens_total[5m])", "no PromQL function 'rat'"),
        ],
    )
    def test_wrong_names_are_reported(self, expression: str, problem: str) -> None:
        assert any(problem in found for found in problems_of(expression, platform_metrics()))

    def test_suffixed_series_and_target_labels_pass(self) -> None:
        good = [
            "histogram_quantile(0.99, sum by (le, instance) "
            "(rate(xynergy_http_request_duration_seconds_bucket[5m])))",
            "sum(rate(xynergy_http_request_duration_seconds_count[5m]))",
            'up{job="xynergy"} == 0',
        ]
        assert [problems_of(e, platform_metrics()) for e in good] == [[], [], []]


class TestGrafanaDashboard:
    def test_is_a_provisionable_dashboard(self, dashboard: dict[str, Any]) -> None:
        assert isinstance(dashboard["schemaVersion"], int)
        assert dashboard["schemaVersion"] >= 36  # Grafana 9+: panels with datasource refs
        assert dashboard["uid"]
        assert dashboard["title"]
        # Provisioned files carry no instance id; Grafana assigns one.
        assert dashboard.get("id") is None

    def test_panel_ids_are_unique(self, dashboard: dict[str, Any]) -> None:
        ids = [panel["id"] for panel in dashboard_panels(dashboard)]
        assert all(isinstance(panel_id, int) for panel_id in ids)
        assert len(ids) == len(set(ids))

    def test_panels_sit_on_the_grid_without_overlapping(self, dashboard: dict[str, Any]) -> None:
        cells: dict[tuple[int, int], int] = {}
        for panel in dashboard_panels(dashboard):
            grid = panel["gridPos"]
            assert set(grid) == {"h", "w", "x", "y"}, panel["id"]
            assert all(isinstance(value, int) and value >= 0 for value in grid.values())
            assert grid["w"] >= 1
            assert grid["h"] >= 1
            assert grid["x"] + grid["w"] <= GRAFANA_WIDTH, panel["id"]
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, (panel["id"], cells.get((x, y)))
                    cells[(x, y)] = panel["id"]

    def test_datasources_are_the_provisioned_one(self, dashboard: dict[str, Any]) -> None:
        (provisioned,) = load_yaml(DATASOURCES)["datasources"]
        assert provisioned["type"] == "prometheus"
        expected = {"type": "prometheus", "uid": provisioned["uid"]}
        refs = []
        for panel in dashboard_panels(dashboard):
            if panel["type"] == "row":
                continue
            refs.append(panel["datasource"])
            refs.extend(target["datasource"] for target in panel["targets"])
            ref_ids = [target["refId"] for target in panel["targets"]]
            assert panel["targets"], panel["id"]
            assert len(ref_ids) == len(set(ref_ids)), panel["id"]
        refs.extend(v["datasource"] for v in dashboard["templating"]["list"] if "datasource" in v)
        assert refs
        assert all(ref == expected for ref in refs)

    def test_has_the_dashboard_pages(self, dashboard: dict[str, Any]) -> None:
        rows = [panel["title"] for panel in dashboard_panels(dashboard) if panel["type"] == "row"]
        assert rows == ["Overview", "Traffic", "AI", "Cache", "Workflows", "Resources"]
        titles = {panel["title"] for panel in dashboard_panels(dashboard)}
        overview = {"Requests / s", "Error rate (5xx)", "p99 latency", "AI spend, 24 h"}
        assert overview | {"Cache hit rate", "Open breakers"} <= titles

    def test_the_provider_loads_the_mounted_folder(self) -> None:
        (provider,) = load_yaml(PROVIDERS)["providers"]
        assert provider["type"] == "file"
        if COMPOSE.exists():
            mounts = load_yaml(COMPOSE)["services"]["grafana"]["volumes"]
            assert f"./grafana/dashboards:{provider['options']['path']}:ro" in mounts
            assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


class TestPrometheusConfig:
    def test_scrapes_every_service_with_a_metrics_key(self) -> None:
        config = load_yaml(PROMETHEUS)
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        assert len(jobs) == len(config["scrape_configs"])
        for name in ("xynergy", "xynergy-services"):
            job = jobs[name]
            assert job["metrics_path"] == "/metrics"
            assert job["authorization"]["type"] == "Bearer"
            assert job["authorization"]["credentials_file"]
        per_service = {
            target.split(":")[0]
            for static in jobs["xynergy-services"]["static_configs"]
            for target in static["targets"]
        }
        assert per_service == {*SERVICES, PLATFORM_SLUG}
        if COMPOSE.exists():
            services = load_yaml(COMPOSE)["services"]
            assert per_service <= set(services)
            assert set(jobs["xynergy"]["dns_sd_configs"][0]["names"]) <= set(services)

    def test_loads_the_alert_rules(self) -> None:
        config = load_yaml(PROMETHEUS)
        assert [Path(path).name for path in config["rule_files"]] == [ALERTS.name]


class TestAlertRules:
    def test_rules_are_well_formed(self) -> None:
        rules = list(alert_rules())
        names = [rule["alert"] for rule in rules]
        assert len(names) == len(set(names))
        for rule in rules:
            assert re.fullmatch(r"Xynergy[A-Z][A-Za-z0-9]+", rule["alert"])
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["summary"]
            assert rule["annotations"]["description"]

    def test_mirror_the_dashboard_defaults(self) -> None:
        by_name = {rule["alert"]: " ".join(rule["expr"].split()) for rule in alert_rules()}
        assert by_name["XynergyHighErrorRate"].endswith("> 5")
        assert by_name["XynergyHighLatencyP99"].endswith("> 1")
        assert by_name["XynergyLowCacheHitRate"].endswith("< 85")
        assert by_name["XynergyCircuitBreakerOpen"].endswith("== 1")
        for resource in ("Memory", "FileDescriptors", "Disk"):
            assert by_name[f"Xynergy{resource}High"].endswith("> 85")
        assert by_name["XynergyMonthlySpendHigh"].endswith("> 3000")
