# Shared by the scripts: find or install uv, then sync the locked environment. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  echo "uv not found: installing it with pip" >&2
  python3 -m pip install --quiet uv 2>/dev/null || python3 -m pip install --quiet --user uv
fi
uv sync --frozen --quiet
