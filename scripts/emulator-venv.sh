#!/usr/bin/env bash
# Installs the AWS API emulator (moto in server mode) into a git-ignored virtualenv.
# Idempotent: a venv that already holds the pinned version is left as it is.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="${EKS_WARDEN_VENV:-$here/.venv}"
# py-ocsf-models: the OCSF object model that checks `scan --format ocsf` in the tests.
pins=("moto[server]==5.2.5" "py-ocsf-models==0.10.0")
if [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import importlib.metadata as m,sys; sys.exit(m.version("moto")!="5.2.5" or m.version("py-ocsf-models")!="0.10.0")' 2>/dev/null; then
  exit 0
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
echo "emulator installed: $("$venv/bin/moto_server" --version 2>/dev/null || echo moto 5.2.5) in $venv" >&2
