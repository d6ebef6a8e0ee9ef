#!/usr/bin/env bash
# Runs a command with the AWS environment pointed at a fresh emulator on a free loopback port:
#   scripts/with-emulator.sh CMD [ARG...]
# The emulator stops when this script exits (it watches its stdin and its parent). It serves moto with the
# EKS extension (scripts/moto_eks_ext.py); EKS_WARDEN_EMULATOR_PLAIN=1 serves plain moto.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="${EKS_WARDEN_VENV:-$here/.venv}"
bash "$here/scripts/emulator-venv.sh"
coproc EMULATOR { exec "$venv/bin/python" "$here/scripts/moto_serve.py"; }
read -r -t 60 port <&"${EMULATOR[0]}" || { echo "the emulator did not start" >&2; exit 2; }
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION="${AWS_REGION:-eu-west-1}" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN
"$@"
