"""Sage's AWS infrastructure as Pulumi components (see infra/README.md)."""
