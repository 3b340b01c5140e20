"""The ALB (spec 6.1): HTTPS only, /health checks, access logs, streaming-friendly timeouts."""

from __future__ import annotations

import json
from typing import Any

from sage_infra.constants import APP_HTTP_KEEPALIVE_SECONDS, APP_SSE_KEEPALIVE_SECONDS
from scenarios import ALB_CERT, SECRETS
from stack_record import Resource, StackRecord


def listener(stack: StackRecord, port: int) -> dict[str, Any]:
    found: list[Resource] = [r for r in stack.of_type("lb/listener") if r["port"] == port]
    assert len(found) == 1
    return dict(found[0].inputs)


def test_alb_is_public_in_the_public_subnets(prod: StackRecord) -> None:
    alb = prod.one("lb/loadBalancer")
    assert alb["internal"] is False and alb["loadBalancerType"] == "application"
    subnets = prod.resolve(alb.refers_to("subnets"))
    assert {s["tags"]["Tier"] for s in subnets} == {"public"} and len(subnets) == 2
    assert prod.resolve(alb.refers_to("securityGroups")) == [prod.named("security-alb")]


def test_nothing_listens_on_plain_http(prod: StackRecord) -> None:
    # CloudFront reaches the ALB over HTTPS only (https-only origin); nothing else may reach it.
    assert [r["port"] for r in prod.of_type("lb/listener")] == [443]


def test_https_uses_tls12_or_newer_and_the_certificate(prod: StackRecord) -> None:
    https = listener(prod, 443)
    assert https["protocol"] == "HTTPS"
    assert https["sslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["certificateArn"] == ALB_CERT


def test_requests_without_cloudfronts_secret_header_get_a_json_403(prod: StackRecord) -> None:
    (action,) = listener(prod, 443)["defaultActions"]
    assert action["type"] == "fixed-response"
    response = action["fixedResponse"]
    assert (response["statusCode"], response["contentType"]) == ("403", "application/json")
    assert json.loads(response["messageBody"])["error"]["code"] == "forbidden"


def test_only_requests_with_cloudfronts_secret_header_reach_the_service(prod: StackRecord) -> None:
    rule = prod.one("lb/listenerRule")
    assert prod.resolve(rule.refers_to("listenerArn")) == [next(r for r in prod.of_type("lb/listener"))]
    (condition,) = rule["conditions"]
    assert condition["httpHeader"] == {"httpHeaderName": "X-Origin-Verify", "values": [SECRETS["originVerifySecret"]]}
    assert "conditions" in rule.secret_paths
    (forward,) = rule["actions"]
    assert forward["type"] == "forward" and prod.resolve(rule.refers_to("actions")) == [prod.one("lb/targetGroup")]
    origin = next(o for o in prod.one("cloudfront/distribution")["origins"] if o["originId"] == "alb-api")
    assert origin["customHeaders"] == [{"name": "X-Origin-Verify", "value": SECRETS["originVerifySecret"]}]


def test_target_group_checks_health_as_the_spec_says(prod: StackRecord) -> None:
    tg = prod.one("lb/targetGroup")
    assert (tg["port"], tg["protocol"], tg["targetType"]) == (3000, "HTTP", "ip")
    check = tg["healthCheck"]
    assert (check["path"], check["matcher"]) == ("/health", "200")
    assert (check["interval"], check["timeout"], check["healthyThreshold"], check["unhealthyThreshold"]) == (
        30,
        5,
        2,
        3,
    )
    assert tg["deregistrationDelay"] == 30


def test_idle_timeout_outlasts_stream_keepalives_and_stays_below_the_app_keepalive(prod: StackRecord) -> None:
    idle = prod.one("lb/loadBalancer")["idleTimeout"]
    assert idle >= 4 * APP_SSE_KEEPALIVE_SECONDS
    assert idle < APP_HTTP_KEEPALIVE_SECONDS


def test_invalid_headers_are_dropped(prod: StackRecord) -> None:
    assert prod.one("lb/loadBalancer")["dropInvalidHeaderFields"] is True


def test_access_logs_go_to_a_private_bucket_the_elb_account_may_write(prod: StackRecord) -> None:
    alb = prod.one("lb/loadBalancer")
    logs = alb["accessLogs"]
    assert logs["enabled"] is True and logs["prefix"] == "alb"
    bucket = next(b for b in prod.of_type("s3/bucket") if b.state["bucket"] == logs["bucket"])
    policy = next(p for p in prod.of_type("s3/bucketPolicy") if p.refers_to("bucket") == [bucket.urn]).json("policy")
    allow = next(s for s in policy["Statement"] if s["Effect"] == "Allow")
    assert allow["Principal"] == {"AWS": "arn:aws:iam::797873946194:root"}
    assert allow["Resource"] == f"arn:aws:s3:::{logs['bucket']}/alb/AWSLogs/123456789012/*"


def test_deletion_protection_in_prod_only(prod: StackRecord, dev: StackRecord) -> None:
    assert prod.one("lb/loadBalancer")["enableDeletionProtection"] is True
    assert dev.one("lb/loadBalancer")["enableDeletionProtection"] is False
