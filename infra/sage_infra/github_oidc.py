"""GitHub Actions' way into AWS: the OIDC provider and one role per workflow (no stored keys).

Every role trusts only GitHub's token issuer, only the audience `sts.amazonaws.com`, and only
one `sub`: this repository running a job in one GitHub environment (the environment carries
the protection rules: required reviewers, allowed branches). So a workflow on a fork, on
another branch without the environment, or in another repository gets nothing.

* deploy (`<prefix>-github-deploy`, environment `production` in prod, else the stack's name):
  what deploy-backend.yml and deploy-frontend.yml call, on this stack's resources only.
* infra (`<prefix>-github-infra`, environment `infra-<stack>`): `pulumi up`. It manages
  everything the program declares, so its actions are those services' verbs (no `service:*`),
  limited to the stack's region and us-east-1 (CloudFront's certificate, WAF), and IAM to
  names starting with the stack's prefix.
* preview (`<prefix>-github-preview`, environment `infra-preview`): `pulumi preview` of pull
  requests. Read-only (AWS's ReadOnlyAccess) with explicit denies on data: no secret values,
  no backup objects, no log contents. It may decrypt the stack's Pulumi secrets only when
  `pulumiSecretsKeyArn` names the key; the environment's reviewers guard that.

One OIDC provider exists per account and URL: the first stack creates it, others pass its ARN
in `githubOidcProviderArn`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from sage_infra.common import child, policy_document

ISSUER = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
READ_ONLY_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
# The services the program declares, and the verbs `pulumi up` uses on them.
INFRA_SERVICES = (
    "acm", "application-autoscaling", "cloudfront", "cloudwatch", "ec2", "ecr", "ecs", "elasticache",
    "elasticloadbalancing", "events", "kms", "lambda", "logs", "rds", "route53", "s3", "secretsmanager",
    "sns", "sqs", "wafv2",
)  # fmt: skip
INFRA_VERBS = (
    "Add", "Allocate", "Apply", "Associate", "Attach", "Authorize", "Cancel", "Complete", "Create",
    "Delete", "Deregister", "Describe", "Detach", "Disable", "Disassociate", "Enable", "Get", "Invalidate",
    "List", "Modify", "Promote", "Publish", "Put", "Reboot", "Register", "Release", "Remove", "Replace",
    "Revoke", "Schedule", "Set", "Start", "Stop", "Subscribe", "Tag", "Unsubscribe", "Untag", "Update",
)  # fmt: skip
IAM_ACTIONS = (
    "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy",
    "iam:TagRole", "iam:UntagRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
    "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy",
    "iam:DetachRolePolicy", "iam:PassRole", "iam:ListInstanceProfilesForRole", "iam:CreateServiceLinkedRole",
    "iam:GetOpenIDConnectProvider", "iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider",
    "iam:TagOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint",
)  # fmt: skip
ECR_PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:DescribeImages",
)  # fmt: skip
# What a pull request's preview must never read, though ReadOnlyAccess would allow it.
PREVIEW_DENIED = (
    "secretsmanager:GetSecretValue", "s3:GetObject", "s3:GetObjectVersion", "logs:GetLogEvents",
    "logs:FilterLogEvents", "logs:StartQuery", "logs:GetQueryResults", "sqs:ReceiveMessage",
    "ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "lambda:GetFunction",
    "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "rds:DownloadDBLogFilePortion",
)  # fmt: skip


@dataclass(frozen=True)
class GitHubAccessArgs:
    prefix: str
    stack: str
    environment: str
    tags: Mapping[str, str]
    region: str
    account_id: pulumi.Input[str]
    repository: str  # owner/name
    provider_arn: str | None  # an existing provider; None: create it
    pulumi_secrets_key_arn: str | None
    cluster_arn: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    service_names: Sequence[pulumi.Input[str]]
    task_families: Sequence[str]
    ecr_repository_arn: pulumi.Input[str]
    frontend_bucket_arn: pulumi.Input[str]
    distribution_arn: pulumi.Input[str]


def subject(repository: str, environment: str) -> str:
    """GitHub's `sub` claim for a job that runs in `environment`."""
    return f"repo:{repository}:environment:{environment}"


def deploy_environment(environment: str) -> str:
    return "production" if environment == "prod" else environment


class GitHubAccess(pulumi.ComponentResource):
    provider_arn: pulumi.Output[str]
    deploy_role: aws.iam.Role
    infra_role: aws.iam.Role
    preview_role: aws.iam.Role

    def __init__(self, name: str, args: GitHubAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sage:infra:GitHubAccess", name, None, opts)
        if args.provider_arn is None:
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-provider",
                url=f"https://{ISSUER}",
                client_id_lists=[AUDIENCE],
                tags=dict(args.tags),
                opts=child(self),
            )
            self.provider_arn = provider.arn
        else:
            self.provider_arn = pulumi.Output.from_input(args.provider_arn)
        p = args.prefix

        def role(key: str, environment: str, description: str) -> aws.iam.Role:
            return aws.iam.Role(
                f"{name}-{key}",
                name=f"{p}-github-{key}",
                description=description,
                max_session_duration=3600,
                assume_role_policy=policy_document(
                    [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": self.provider_arn},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {
                                "StringEquals": {
                                    f"{ISSUER}:aud": AUDIENCE,
                                    f"{ISSUER}:sub": subject(args.repository, environment),
                                }
                            },
                        }
                    ]
                ),
                tags=dict(args.tags),
                opts=child(self),
            )

        self.deploy_role = role(
            "deploy", deploy_environment(args.environment), "GitHub deploy workflows: release images and the web app"
        )
        aws.iam.RolePolicy(
            f"{name}-deploy-policy", role=self.deploy_role.id, policy=self._deploy_policy(args), opts=child(self)
        )
        self.infra_role = role("infra", f"infra-{args.stack}", "GitHub infra workflow: pulumi up of this stack")
        aws.iam.RolePolicy(
            f"{name}-infra-policy", role=self.infra_role.id, policy=self._infra_policy(args), opts=child(self)
        )
        self.preview_role = role("preview", "infra-preview", "GitHub infra workflow: read-only pulumi preview")
        aws.iam.RolePolicyAttachment(
            f"{name}-preview-read-only", role=self.preview_role.name, policy_arn=READ_ONLY_POLICY, opts=child(self)
        )
        aws.iam.RolePolicy(
            f"{name}-preview-policy", role=self.preview_role.id, policy=self._preview_policy(args), opts=child(self)
        )
        self.register_outputs({})

    @staticmethod
    def _deploy_policy(args: GitHubAccessArgs) -> pulumi.Output[str]:
        arn = f"arn:aws:ecs:{args.region}"
        account = args.account_id
        families = [pulumi.Output.concat(arn, ":", account, f":task-definition/{f}:*") for f in args.task_families]
        return policy_document(
            [
                {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                {
                    "Sid": "PushImage",
                    "Effect": "Allow",
                    "Action": list(ECR_PUSH_ACTIONS),
                    "Resource": args.ecr_repository_arn,
                },
                # Neither action supports resource-level permissions.
                {
                    "Sid": "RegisterRevisions",
                    "Effect": "Allow",
                    "Action": ["ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"],
                    "Resource": "*",
                },
                {
                    "Sid": "TagRevisions",
                    "Effect": "Allow",
                    # describe-task-definition --include TAGS reads them; register --tags writes them.
                    "Action": ["ecs:TagResource", "ecs:ListTagsForResource"],
                    "Resource": families,
                },
                {
                    "Sid": "RunMigration",
                    "Effect": "Allow",
                    "Action": "ecs:RunTask",
                    "Resource": families,
                    "Condition": {"ArnEquals": {"ecs:cluster": args.cluster_arn}},
                },
                {
                    "Sid": "RollServices",
                    "Effect": "Allow",
                    "Action": ["ecs:UpdateService", "ecs:DescribeServices"],
                    "Resource": [
                        pulumi.Output.concat(arn, ":", account, ":service/", args.cluster_name, "/", s)
                        for s in args.service_names
                    ],
                },
                {
                    "Sid": "WatchTasks",
                    "Effect": "Allow",
                    "Action": ["ecs:DescribeTasks", "ecs:StopTask"],
                    "Resource": pulumi.Output.concat(arn, ":", account, ":task/", args.cluster_name, "/*"),
                },
                {
                    "Sid": "PassTaskRoles",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": [
                        pulumi.Output.concat("arn:aws:iam::", account, f":role/{args.prefix}-*-execution"),
                        pulumi.Output.concat("arn:aws:iam::", account, f":role/{args.prefix}-*-task"),
                    ],
                    "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                },
                {
                    "Sid": "ListFrontend",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": args.frontend_bucket_arn,
                },
                {
                    "Sid": "SyncFrontend",
                    "Effect": "Allow",
                    "Action": ["s3:PutObject", "s3:DeleteObject"],
                    "Resource": pulumi.Output.concat(args.frontend_bucket_arn, "/*"),
                },
                {
                    "Sid": "InvalidateCdn",
                    "Effect": "Allow",
                    "Action": ["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"],
                    "Resource": args.distribution_arn,
                },
            ]
        )

    @staticmethod
    def _infra_policy(args: GitHubAccessArgs) -> pulumi.Output[str]:
        account = args.account_id
        return policy_document(
            [
                {
                    "Sid": "ManageStackServices",
                    "Effect": "Allow",
                    "Action": [f"{service}:{verb}*" for service in INFRA_SERVICES for verb in INFRA_VERBS],
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:RequestedRegion": sorted({args.region, "us-east-1"})}},
                },
                {
                    "Sid": "ManageStackRoles",
                    "Effect": "Allow",
                    "Action": list(IAM_ACTIONS),
                    "Resource": [
                        pulumi.Output.concat("arn:aws:iam::", account, f":role/{args.prefix}-*"),
                        pulumi.Output.concat("arn:aws:iam::", account, f":oidc-provider/{ISSUER}"),
                        pulumi.Output.concat("arn:aws:iam::", account, ":role/aws-service-role/*"),
                    ],
                },
                {"Sid": "WhoAmI", "Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
            ]
        )

    @staticmethod
    def _preview_policy(args: GitHubAccessArgs) -> pulumi.Output[str]:
        statements: list[dict[str, object]] = [
            {"Sid": "NoDataReads", "Effect": "Deny", "Action": list(PREVIEW_DENIED), "Resource": "*"}
        ]
        if args.pulumi_secrets_key_arn:
            statements.append(
                {
                    "Sid": "DecryptStackConfig",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": args.pulumi_secrets_key_arn,
                }
            )
        return policy_document(statements)
