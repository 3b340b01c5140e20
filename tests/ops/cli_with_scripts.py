"""The `sage` command with Alembic pointed at a test-only script directory.

    python -m tests.ops.cli_with_scripts SCRIPT_DIR db migrate ...

Lets the subprocess tests run real `sage db migrate` tasks against the deliberately
broken or gated revisions under tests/ops/ without a test hook in the product.
"""

import sys
from pathlib import Path

from sage.ops import schema

schema.MIGRATIONS_DIR = Path(sys.argv[1]).resolve()

from sage.cli import main  # noqa: E402 - after the script directory is chosen

sys.argv = ["sage", *sys.argv[2:]]
main()
