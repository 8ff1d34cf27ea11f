"""Health and Prometheus metrics."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from gpunet import __version__
from gpunet.indexer import IndexerSettings, create_app
from gpunet.indexer.testing import IndexerTestClient, ManualClock, sample_registration


def test_health_reports_database_and_nodes_online(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    client.signed("PUT", "/v1/nodes/n-alpha", operator, json=sample_registration())

    health = client.get("/v1/health").json()

    assert health == {
        "status": "ok",
        "version": __version__,
        "database": "sqlite",
        "nodes_online": 1,
    }


def test_metrics_count_requests_by_route_template_and_nodes_online(
    client: IndexerTestClient, operator: LocalAccount
) -> None:
    client.signed("PUT", "/v1/nodes/n-alpha", operator, json=sample_registration())
    client.get("/v1/nodes/n-alpha")
    client.get("/v1/nodes/n-ghost")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "gpunet_nodes_online 1.0" in text
    assert (
        'gpunet_http_requests_total{method="GET",route="/v1/nodes/{node_id}",status="404"} 1.0'
        in text
    )
    assert 'method="PUT",route="/v1/nodes/{node_id}",status="201"' in text
    assert 'gpunet_http_request_duration_seconds_count{route="/v1/nodes/{node_id}"} 3.0' in text


def test_two_apps_keep_separate_metrics(settings: IndexerSettings, clock: ManualClock) -> None:
    with IndexerTestClient(create_app(settings, clock=clock)) as first:
        first.get("/v1/health")
        with IndexerTestClient(create_app(settings, clock=clock)) as second:
            text = second.get("/metrics").text

    assert 'route="/v1/health"' not in text
