"""Run the real Pulumi program (infra/__main__.py) against unit-test mocks, print what it declared.

Pulumi's mock runtime is process-global (settings, root stack, config), so each scenario runs
in a fresh interpreter:

    python pulumi_harness.py < scenario.json > result.json

The scenario gives the stack name, the stack file whose config to start from, config overrides
and secret values. The program runs inside `@pulumi.runtime.test` with `preview=False`, so
every Output resolves (mocks return concrete values) and every resource registration finishes
before the result is written. The result lists each registered resource (type, name, inputs
with the paths that travelled as Pulumi secrets, resource options) and the resolved stack
outputs, or the error the program raised. Tests assert on that record.
"""

from __future__ import annotations

import json
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc
from pulumi.runtime.settings import get_root_resource

INFRA = Path(__file__).resolve().parent.parent
PROJECT = "sage-infra"
ACCOUNT = "123456789012"
REGION = "us-west-2"
SECRET_SIG = rpc._special_secret_sig
SIG_KEY = rpc._special_sig_key


def unwrap(value: Any, path: str, secret_paths: list[str]) -> Any:
    """Replace Pulumi's secret envelopes by their values, remembering where they were."""
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            secret_paths.append(path)
            return unwrap(value.get("value"), path, [])
        return {k: unwrap(v, f"{path}.{k}" if path else k, secret_paths) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, pulumi.FileArchive):
        return {"archive": "file", "path": value.path}
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": "assets", "assets": {k: unwrap(v, "", []) for k, v in value.assets.items()}}
    if isinstance(value, pulumi.StringAsset):
        return {"asset": "string", "text": value.text}
    if isinstance(value, pulumi.FileAsset):
        return {"asset": "file", "path": value.path}
    return value


def _plain(inputs: dict[str, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = unwrap(inputs, "", [])
    return plain


class SageMocks(pulumi.runtime.Mocks):
    """Plausible provider outputs for what the program reads back (ARNs, endpoints, names)."""

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        typ, name = args.typ, args.name
        inputs = _plain(args.inputs)
        state: dict[str, Any] = dict(args.inputs)
        physical = inputs.get("name") or name
        rid = f"{name}-id"
        service = typ.split(":")[1].split("/")[0] if ":" in typ else "x"
        state.setdefault("arn", f"arn:aws:{service}:{REGION}:{ACCOUNT}:{typ.rsplit(':', 1)[-1].lower()}/{physical}")
        if "name" not in state and typ.startswith("aws:"):
            state["name"] = physical
        if typ == "aws:s3/bucket:Bucket":
            bucket = inputs.get("bucket") or f"{inputs.get('bucketPrefix') or name + '-'}a1b2c3d"
            rid = bucket
            state |= {
                "bucket": bucket,
                "arn": f"arn:aws:s3:::{bucket}",
                "bucketRegionalDomainName": f"{bucket}.s3.{REGION}.amazonaws.com",
            }
        elif typ == "aws:lb/loadBalancer:LoadBalancer":
            state |= {
                "dnsName": f"{physical}-1234567890.{REGION}.elb.amazonaws.com",
                "arnSuffix": f"app/{physical}/50dc6c495c0c9188",
                "zoneId": "Z1H1FL5HABSF5",
                "arn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/{physical}/50dc6c495c0c9188",
            }
        elif typ == "aws:lb/targetGroup:TargetGroup":
            state |= {
                "arnSuffix": f"targetgroup/{physical}/943f017f100becff",
                "arn": f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/{physical}/943f017f100becff",
            }
        elif typ == "aws:rds/instance:Instance":
            identifier = inputs.get("identifier") or name
            address = f"{identifier}.c9akciq32.{REGION}.rds.amazonaws.com"
            state |= {"identifier": identifier, "address": address, "endpoint": f"{address}:5432"}
        elif typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            group = inputs.get("replicationGroupId") or name
            state["primaryEndpointAddress"] = f"master.{group}.abc123.usw2.cache.amazonaws.com"
        elif typ == "aws:ecr/repository:Repository":
            state["repositoryUrl"] = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{physical}"
        elif typ == "aws:cloudfront/distribution:Distribution":
            rid = "E2QWRUHAPOMQZL"
            state |= {
                "domainName": "d111111abcdef8.cloudfront.net",
                "arn": f"arn:aws:cloudfront::{ACCOUNT}:distribution/{rid}",
            }
        elif typ == "aws:ecs/taskDefinition:TaskDefinition":
            family = inputs["family"]
            state["arnWithoutRevision"] = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}"
            state["arn"] = f"{state['arnWithoutRevision']}:1"
        elif typ == "aws:ecs/cluster:Cluster":
            state["arn"] = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{physical}"
        elif typ == "aws:ec2/instance:Instance":
            state["primaryNetworkInterfaceId"] = "eni-0a1b2c3d4e5f60718"
        elif typ == "aws:secretsmanager/secret:Secret":
            state["arn"] = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{physical}-AbCdEf"
        elif typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{physical}"
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            state["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}"
        elif typ == "aws:sns/topic:Topic":
            state["arn"] = f"arn:aws:sns:{REGION}:{ACCOUNT}:{physical}"
        elif typ == "aws:kms/key:Key":
            state |= {"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}
        elif typ == "aws:lambda/function:Function":
            state["arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}"
        return rid, state

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{REGION}{s}" for s in "abcd"]
            return {"names": names, "zoneIds": [f"usw2-az{i + 1}" for i in range(4)], "id": REGION}, []
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "AIDA", "id": ACCOUNT}, []
        if args.token == "aws:ec2/getAmi:getAmi":
            return {
                "id": "ami-0fc4a7b1c2d3e4f50",
                "name": "fck-nat-al2023-1.3.0-20240125-arm64-ebs",
                "architecture": "arm64",
            }, []
        if args.token == "aws:ec2/getManagedPrefixList:getManagedPrefixList":
            return {"id": "pl-82a045eb", "name": args.args.get("name"), "maxEntries": 55, "addressFamily": "IPv4"}, []
        if args.token == "aws:elb/getServiceAccount:getServiceAccount":
            return {"arn": "arn:aws:iam::797873946194:root", "id": "797873946194"}, []
        raise NotImplementedError(f"the program invoked {args.token}, which the harness does not mock")


class RecordingMonitor(mocks.MockMonitor):
    """The mock monitor, also keeping each registration's raw inputs and options."""

    def __init__(self, sage_mocks: SageMocks) -> None:
        super().__init__(sage_mocks)
        self.records: list[dict[str, Any]] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        raw_inputs = rpc.deserialize_properties(request.object)
        secret_paths: list[str] = []
        inputs = unwrap(raw_inputs, "", secret_paths)
        registration = self.resources.get(response.urn)
        self.records.append(
            {
                "type": request.type,
                "name": request.name,
                "urn": response.urn,
                "parent": request.parent,
                "custom": bool(request.custom),
                "inputs": inputs,
                "secret_paths": sorted(secret_paths),
                "state": unwrap(registration.state, "", []) if registration else {},
                "id": registration.id if registration else None,
                "protect": bool(request.protect),
                "ignore_changes": list(request.ignoreChanges),
                "dependencies": list(request.dependencies),
                "property_dependencies": {k: list(v.urns) for k, v in request.propertyDependencies.items()},
            }
        )
        return response


def stack_file_config(stack_file: str | None) -> dict[str, str]:
    if not stack_file:
        return {}
    data = yaml.safe_load((INFRA / stack_file).read_text()) or {}
    return {k: str(v) for k, v in (data.get("config") or {}).items()}


def run(scenario: dict[str, Any]) -> dict[str, Any]:
    stack = scenario["stack"]
    config = stack_file_config(scenario.get("stack_file"))
    config |= {f"{PROJECT}:{k}": str(v) for k, v in scenario.get("config", {}).items()}
    secrets = {f"{PROJECT}:{k}": str(v) for k, v in scenario.get("secrets", {}).items()}
    config |= secrets

    monitor = RecordingMonitor(SageMocks())
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(config, list(secrets))

    outputs: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[Any]:
        runpy.run_path(str(INFRA / "__main__.py"), run_name="__pulumi_program__")
        exported = dict(get_root_resource().outputs)  # type: ignore[union-attr]

        async def resolve() -> None:
            for key, value in exported.items():
                out = pulumi.Output.from_input(value)
                outputs[key] = {"value": await out.future(), "secret": await out.is_secret()}

        return pulumi.Output.from_input(resolve())

    error = None
    try:
        program()
    except Exception as exc:
        error = {"type": type(exc).__name__, "message": str(exc), "traceback": traceback.format_exc()}
    return {"error": error, "resources": monitor.records, "outputs": outputs, "dry_run": pulumi.runtime.is_dry_run()}


def main() -> None:
    scenario = json.load(sys.stdin)
    sys.path.insert(0, str(INFRA))
    result = run(scenario)
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main()
