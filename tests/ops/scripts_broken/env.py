"""Test-only Alembic environment: Sage's own env.py (timeouts, one transaction per
revision) run fresh for this script directory."""

import runpy
from pathlib import Path

import sage.migrations

runpy.run_path(str(Path(sage.migrations.__file__).parent / "env.py"), run_name="alembic_env")
