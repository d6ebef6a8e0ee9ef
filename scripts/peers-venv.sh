#!/usr/bin/env bash
# Installs the peers that `make bench-peers` compares against: Cloud Custodian (c7n) and Prowler, each in
# its own git-ignored virtualenv under .venv-peers/ (their boto3 pins differ). Not used by CI.
# Idempotent: a venv that already holds the pinned version is left as it is.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root="${EKS_WARDEN_PEERS_VENV:-$here/.venv-peers}"
C7N_VERSION="${C7N_VERSION:-0.9.53}"
PROWLER_VERSION="${PROWLER_VERSION:-5.46.0}"
install() { # name dist version
  local venv="$root/$1"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import importlib.metadata as m,sys; sys.exit(m.version('$2')!='$3')" 2>/dev/null; then
    return 0
  fi
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$2==$3"
  echo "peer installed: $2 $3 in $venv" >&2
}
install c7n c7n "$C7N_VERSION"
install prowler prowler "$PROWLER_VERSION"
