#!/usr/bin/env bash
# Creates bench/.venv-peers (git-ignored): cryptofeed and ccxt, pinned in
# bench/peers-requirements.txt, for bench.bench_market_pipeline's peer comparison.
# Idempotent: reinstalls only when the requirements file changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-peers"
req="$here/peers-requirements.txt"
python="${PEERS_PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
if ! cmp -s "$req" "$venv/.installed" 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.installed"
fi
echo "$venv/bin/python"
