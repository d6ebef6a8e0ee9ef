#!/usr/bin/env bash
# Installs the deployment tools into git-ignored virtualenvs, each pinned and kept apart:
#   scripts/deploy-tools.sh validate   cfn-lint + aws-sam-cli  → .venv-deploy (aws-sam-cli pins an older
#                                      boto3/botocore than moto, so it never shares the emulator's .venv)
#   scripts/deploy-tools.sh build      cargo-lambda + ziglang  → .venv-tools (the cross-linker for arm64)
#   scripts/deploy-tools.sh all        both
# Idempotent: a venv that already holds the pinned versions is left as it is.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

SAM_PIN="aws-sam-cli==1.170.0"
CFN_LINT_PIN="cfn-lint==1.58.0"
CARGO_LAMBDA_PIN="cargo-lambda==1.9.2"
ZIG_PIN="ziglang==0.17.1"

# has VENV NAME==VERSION... : every pin already installed
has() {
  local venv=$1
  shift
  [ -x "$venv/bin/python" ] || return 1
  "$venv/bin/python" - "$@" <<'EOF' 2>/dev/null
import importlib.metadata as m, sys
for pin in sys.argv[1:]:
    name, version = pin.split("==")
    if m.version(name) != version:
        sys.exit(1)
EOF
}

install() {
  local venv=$1
  shift
  if has "$venv" "$@"; then
    return 0
  fi
  echo "installing $* into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}

validate_tools() {
  install "${EKS_WARDEN_DEPLOY_VENV:-$here/.venv-deploy}" "$SAM_PIN" "$CFN_LINT_PIN"
}

build_tools() {
  install "${EKS_WARDEN_TOOLS_VENV:-$here/.venv-tools}" "$CARGO_LAMBDA_PIN" "$ZIG_PIN"
}

case "${1:-all}" in
  validate) validate_tools ;;
  build) build_tools ;;
  all) validate_tools && build_tools ;;
  *)
    echo "usage: $0 [validate|build|all]" >&2
    exit 2
    ;;
esac
