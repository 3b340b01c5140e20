"""The static frontend (spec 5): private S3 behind CloudFront, /api/* to the ALB unbuffered."""

from __future__ import annotations

from typing import Any

from sage_infra.frontend import CACHING_DISABLED
from scenarios import CDN_CERT
from stack_record import Resource, StackRecord


def distribution(stack: StackRecord) -> Resource:
    return stack.one("cloudfront/distribution")


def frontend_bucket(stack: StackRecord) -> Resource:
    return next(b for b in stack.of_type("s3/bucket") if b.state["bucket"] == stack.output("frontendBucket"))


def attached(stack: StackRecord, token: str, bucket: Resource) -> list[Resource]:
    return [r for r in stack.of_type(token) if r.refers_to("bucket") == [bucket.urn]]


def api_behaviour(stack: StackRecord) -> dict[str, Any]:
    (behaviour,) = distribution(stack)["orderedCacheBehaviors"]
    return dict(behaviour)


def test_bucket_is_private_versioned_owner_enforced_and_encrypted(prod: StackRecord) -> None:
    bucket = frontend_bucket(prod)
    (block,) = attached(prod, "s3/bucketPublicAccessBlock", bucket)
    assert all(block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    (versioning,) = attached(prod, "s3/bucketVersioning", bucket)
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    (ownership,) = attached(prod, "s3/bucketOwnershipControls", bucket)
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    (sse,) = attached(prod, "s3/bucketServerSideEncryptionConfiguration", bucket)
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


def test_only_this_distribution_may_read_the_bucket(prod: StackRecord) -> None:
    (policy,) = attached(prod, "s3/bucketPolicy", frontend_bucket(prod))
    allow = [s for s in policy.json("policy")["Statement"] if s["Effect"] == "Allow"]
    assert allow == [
        {
            "Sid": "CloudFrontReadsObjects",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{prod.output('frontendBucket')}/*",
            "Condition": {"StringEquals": {"AWS:SourceArn": distribution(prod).state["arn"]}},
        }
    ]


def test_s3_origin_uses_origin_access_control(prod: StackRecord) -> None:
    oac = prod.one("cloudfront/originAccessControl")
    assert (oac["originAccessControlOriginType"], oac["signingBehavior"], oac["signingProtocol"]) == (
        "s3",
        "always",
        "sigv4",
    )
    s3_origin = next(o for o in distribution(prod)["origins"] if o["originId"] == "s3-frontend")
    assert s3_origin["domainName"] == f"{prod.output('frontendBucket')}.s3.us-west-2.amazonaws.com"
    assert s3_origin["originAccessControlId"] == "frontend-oac-id"


def test_viewers_get_tls12_2021_with_the_certificate_and_https_redirects(prod: StackRecord) -> None:
    cdn = distribution(prod)
    assert cdn["aliases"] == ["app.sage.ai", "www.sage.ai"]  # spec 5.2; the certificate must name both
    assert cdn["viewerCertificate"] == {
        "acmCertificateArn": CDN_CERT,
        "sslSupportMethod": "sni-only",
        "minimumProtocolVersion": "TLSv1.2_2021",
    }
    assert cdn["defaultCacheBehavior"]["viewerProtocolPolicy"] == "redirect-to-https"
    assert api_behaviour(prod)["viewerProtocolPolicy"] == "https-only"


def test_static_files_are_compressed_and_index_html_is_the_root(prod: StackRecord) -> None:
    cdn = distribution(prod)
    assert cdn["defaultRootObject"] == "index.html"
    assert cdn["defaultCacheBehavior"]["compress"] is True


def test_spa_routes_fall_back_to_index_html_on_the_bucket_behaviour_only(prod: StackRecord) -> None:
    function = prod.one("cloudfront/function")
    assert function["runtime"] == "cloudfront-js-2.0" and function["publish"] is True
    assert "request.uri = '/index.html'" in function["code"]
    associations = distribution(prod)["defaultCacheBehavior"]["functionAssociations"]
    assert associations == [{"eventType": "viewer-request", "functionArn": function.state["arn"]}]
    assert "functionAssociations" not in api_behaviour(prod), "API 403/404 answers must reach the client"
    # Distribution-wide error pages would turn the API's JSON 403/404 into index.html (200).
    assert "customErrorResponses" not in distribution(prod).inputs


def test_api_path_goes_to_the_alb_uncached_and_uncompressed(prod: StackRecord) -> None:
    behaviour = api_behaviour(prod)
    assert behaviour["pathPattern"] == "/api/*"
    assert behaviour["cachePolicyId"] == CACHING_DISABLED
    assert behaviour["compress"] is False
    assert set(behaviour["allowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"}
    origin = next(o for o in distribution(prod)["origins"] if o["originId"] == behaviour["targetOriginId"])
    assert origin["domainName"] == "api.sage.ai"
    custom = origin["customOriginConfig"]
    assert custom["originProtocolPolicy"] == "https-only" and custom["originSslProtocols"] == ["TLSv1.2"]
    assert custom["originReadTimeout"] == 60


def test_dns_aliases_when_a_hosted_zone_is_configured(dev: StackRecord, prod: StackRecord) -> None:
    records = {(r["name"], r["type"]) for r in dev.of_type("route53/record")}
    assert records == {
        ("app.dev.sage.ai", "A"),
        ("app.dev.sage.ai", "AAAA"),
        ("www.dev.sage.ai", "A"),
        ("www.dev.sage.ai", "AAAA"),
        ("api.dev.sage.ai", "A"),
    }
    assert prod.of_type("route53/record") == []
