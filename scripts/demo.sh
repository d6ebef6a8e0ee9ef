#!/usr/bin/env bash
# The main job, locally and without an AWS account: seed an emulated account with one insecure and one
# compliant cluster, then scan it as an operator would. Run through scripts/with-emulator.sh.
set -uo pipefail
bin="$1"
"$bin/examples/seed" || exit 2
echo
echo "\$ eks-warden scan --region $AWS_REGION"
"$bin/eks-warden" scan
code=$?
echo "(exit $code: 0 clean, 1 violations, 2 error)"
echo
echo "\$ eks-warden scan --cluster compliant --format json | summary"
"$bin/eks-warden" scan --cluster compliant --format json \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps(r["summary"], indent=2))'
[ "$code" -le 1 ]
