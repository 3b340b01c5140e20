"""The Sage policy pack: `pulumi preview --policy-pack infra/policy` (run from infra/)."""

from __future__ import annotations

import sys
from pathlib import Path

# The connection-budget policy shares its arithmetic with the program (infra/sage_infra/budget.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack
from sage_policies import ALL_POLICIES

PolicyPack(
    name="sage-mandatory",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=list(ALL_POLICIES),
)
