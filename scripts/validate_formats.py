"""Checks eks-warden's finding formats with the formats' own tooling (run by tests/formats_emulator.rs).

  validate_formats.py asff FILE ENDPOINT REGION  BatchImportFindings through boto3 (botocore validates every
                                                 finding against the Security Hub API model before sending),
                                                 then reads the findings back from the endpoint
  validate_formats.py ocsf FILE                  every finding through py-ocsf-models' ComplianceFinding
  validate_formats.py sarif FILE SCHEMA          the log against the SARIF 2.1.0 JSON schema (jsonschema)

Prints one JSON line with what it checked; exits 1 with the reason when a check fails.
"""
import json
import sys


def asff(path, endpoint, region):
    import boto3

    findings = json.load(open(path))
    hub = boto3.client(
        "securityhub",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    imported = 0
    for i in range(0, len(findings), 100):
        out = hub.batch_import_findings(Findings=findings[i : i + 100])
        if out.get("FailedCount"):
            sys.exit(f"rejected: {out.get('FailedFindings')}")
        imported += out["SuccessCount"]
    stored = hub.get_findings(MaxResults=100)["Findings"]
    print(json.dumps({"imported": imported, "stored_ids": sorted(f["Id"] for f in stored)}))


def ocsf(path):
    from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding

    findings = json.load(open(path))
    for f in findings:
        ComplianceFinding(**f)
    print(json.dumps({"valid": len(findings)}))


def sarif(path, schema_path):
    import jsonschema

    log = json.load(open(path))
    schema = json.load(open(schema_path))
    jsonschema.Draft7Validator(schema).validate(log)
    print(json.dumps({"valid": len(log["runs"][0].get("results", []))}))


if __name__ == "__main__":
    try:
        {"asff": asff, "ocsf": ocsf, "sarif": sarif}[sys.argv[1]](*sys.argv[2:])
    except Exception as e:  # one line for the test's assertion message
        sys.exit(f"{type(e).__name__}: {e}")
