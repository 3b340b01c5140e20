"""Optional Route 53 aliases: the app's name to CloudFront, the API origin's name to the ALB."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from sage_infra.common import child

# Every CloudFront distribution answers alias queries from this hosted zone.
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"


@dataclass(frozen=True)
class DnsArgs:
    hosted_zone_id: str
    app_domain: str
    api_domain: str
    distribution: aws.cloudfront.Distribution
    alb: aws.lb.LoadBalancer
    www_domain: str | None = None


class Dns(pulumi.ComponentResource):
    def __init__(self, name: str, args: DnsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:Dns", name, None, opts)
        names = {"app": args.app_domain, **({"www": args.www_domain} if args.www_domain else {})}
        for (key, host), record_type in ((n, t) for n in names.items() for t in ("A", "AAAA")):
            aws.route53.Record(
                f"{name}-{key}-{record_type.lower()}",
                zone_id=args.hosted_zone_id,
                name=host,
                type=record_type,
                aliases=[
                    {
                        "name": args.distribution.domain_name,
                        "zone_id": CLOUDFRONT_ZONE_ID,
                        "evaluate_target_health": False,
                    }
                ],
                opts=child(self),
            )
        aws.route53.Record(
            f"{name}-api-a",
            zone_id=args.hosted_zone_id,
            name=args.api_domain,
            type="A",
            aliases=[{"name": args.alb.dns_name, "zone_id": args.alb.zone_id, "evaluate_target_health": True}],
            opts=child(self),
        )
        self.register_outputs({})
