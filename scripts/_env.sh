# Shared set-up for the scripts: a project-local virtual environment with the package installed.
# Usage: source scripts/_env.sh [extras]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CRT_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
EXTRAS="${1:-}"
if [ -n "$EXTRAS" ]; then
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$EXTRAS]"
else
  "$VENV/bin/python" -m pip install --quiet -e "$ROOT"
fi
export PATH="$VENV/bin:$PATH"
