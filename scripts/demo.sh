#!/usr/bin/env bash
# The main job, locally and without an AWS account (run through scripts/with-emulator.sh):
# a CloudTrail event in → findings and the SNS message out; then a scan of the whole emulated region.
set -uo pipefail
bin="$1"
"$bin/examples/demo" "$bin" || exit 2
echo
echo "\$ eks-warden scan --region $AWS_REGION"
"$bin/eks-warden" scan
code=$?
echo "(exit $code: 0 clean, 1 violations, 2 error)"
[ "$code" -le 1 ]
