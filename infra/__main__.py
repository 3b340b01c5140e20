"""Sage on AWS: reads the stack configuration, checks the connection budget, declares the stack."""

from __future__ import annotations

import pulumi
from sage_infra.config import ConfigError, load
from sage_infra.stack import build


def main() -> None:
    try:
        cfg, secrets = load()
    except ConfigError as exc:
        # One line naming the key; Pulumi prints RunError without a Python traceback.
        raise pulumi.RunError(str(exc)) from None
    for name, value in build(cfg, secrets).items():
        pulumi.export(name, value)


main()
