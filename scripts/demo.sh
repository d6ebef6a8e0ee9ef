#!/usr/bin/env bash
# The main job, locally and without an AWS account (run through scripts/with-emulator.sh):
# a CloudTrail event in → findings and the SNS message out; a scan of the whole emulated region;
# then one fix in dry-run and one applied, with the before and after.
set -uo pipefail
bin="$1"
"$bin/examples/demo" "$bin" || exit 2
echo
echo "\$ eks-warden scan --region $AWS_REGION"
"$bin/eks-warden" scan
code=$?
echo "(exit $code: 0 clean, 1 violations, 2 error)"
[ "$code" -le 1 ] || exit 2

summary() { python3 -c 'import json,sys; r=json.load(sys.stdin); c=r["clusters"][0]; f=[x for x in c["results"] if x["status"]=="FAIL" and x["rule_id"]==sys.argv[1]]; print("  %s: %d failing (%s)" % (sys.argv[1], len(f), ", ".join(x["resource_type"]+" "+x["resource_id"] for x in f) or "none"))' "$1"; }

echo
echo "# Remediation, dry-run: the exact calls, none made"
echo "\$ eks-warden scan --cluster insecure --fix --dry-run --fix-rule sg-open-ingress"
"$bin/eks-warden" scan --cluster insecure --fix --dry-run --fix-rule sg-open-ingress | sed -n '/remediation:/,/^$/p'
echo "after the dry run:"
"$bin/eks-warden" scan --cluster insecure --format json | summary sg-open-ingress

echo
echo "# A guardrail: the nodegroup subnet routes only to an internet gateway, so it keeps its public IPs"
echo "\$ eks-warden scan --cluster insecure --fix --dry-run --fix-rule nodes-public-ip"
"$bin/eks-warden" scan --cluster insecure --fix --dry-run --fix-rule nodes-public-ip | sed -n '/remediation:/,/^$/p'

echo
echo "# Remediation, applied: the nodes stop answering IMDSv1 (one result per nodegroup, its nodes as evidence)"
echo "before:"
"$bin/eks-warden" scan --cluster insecure --format json | summary nodes-imdsv1
echo "\$ eks-warden scan --cluster insecure --fix --fix-rule nodes-imdsv1"
"$bin/eks-warden" scan --cluster insecure --fix --fix-rule nodes-imdsv1 | sed -n '/remediation:/,/^$/p'
echo "after:"
"$bin/eks-warden" scan --cluster insecure --format json | summary nodes-imdsv1

echo
echo "# Finding lifecycle: with a state table, a message only when something changed"
"$bin/eks-warden" state create-table eks-warden-demo-state || exit 2
export EKS_WARDEN_STATE_TABLE=eks-warden-demo-state
export EKS_WARDEN_TOPIC_ARN="arn:aws:sns:$AWS_REGION:123456789012:eks-warden-findings"
invoke=$(mktemp)
echo '{"clusters": ["insecure"]}' >"$invoke"
said() { python3 -c 'import json,sys; r=json.load(sys.stdin); p=r["published"]; print("\n".join("  sent (%s): %s" % (m["notification"], m["subject"]) for m in p) or "  no message: nothing changed")'; }
echo "\$ eks-warden handle {\"clusters\": [\"insecure\"]}   # first evaluation with state"
"$bin/eks-warden" handle "$invoke" | said
echo "\$ eks-warden handle {\"clusters\": [\"insecure\"]}   # the same state again"
"$bin/eks-warden" handle "$invoke" | said
echo "\$ EKS_WARDEN_MODE=remediate EKS_WARDEN_REMEDIATE_RULES=sg-open-ingress eks-warden handle …   # the fix, audited"
EKS_WARDEN_MODE=remediate EKS_WARDEN_REMEDIATE_RULES=sg-open-ingress "$bin/eks-warden" handle "$invoke" | said
echo "\$ eks-warden handle {\"clusters\": [\"insecure\"]}   # the fix's CloudTrail echo"
"$bin/eks-warden" handle "$invoke" | said
echo "\$ eks-warden state show insecure"
"$bin/eks-warden" state show insecure
rm -f "$invoke"
exit 0
