"""Checks every answer of the emulator's EKS extension (moto_eks_ext.py) against botocore's EKS model.

Starts moto with the extension on a free loopback port, drives each operation the extension serves or
completes through boto3 (which validates the requests), and checks each raw response body strictly
against the operation's output shape: no member the model lacks, every required member present, each
value of its modelled type and enum, timestamps as EKS sends them, the modelled HTTP status; an error
must be one the operation declares. Exits 1 with one line per violation. Run by tests/emulator_model.rs
(so by `make test` and CI): `.venv/bin/python scripts/check_moto_eks_ext.py`.
"""

import json
import logging
import os
import sys
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eks_version_calendar  # noqa: E402
import moto_eks_ext  # noqa: E402

moto_eks_ext.install()
from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402

REGION = "eu-west-1"
problems: list[str] = []
checked: dict[str, int] = {}


def check_value(shape: Any, value: Any, path: str) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        members = {
            (m.serialization.get("name") or name): m
            for name, m in shape.members.items()
            if m.serialization.get("location") is None
        }
        for key, item in value.items():
            if key not in members:
                problems.append(f"{path}.{key}: not in the model's {shape.name}")
            elif item is not None:
                check_value(members[key], item, f"{path}.{key}")
        for required in shape.required_members:
            if required in members and required not in value:
                problems.append(f"{path}.{required}: required by {shape.name}, missing")
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            check_value(shape.member, item, f"{path}[{i}]")
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        for k, item in value.items():
            check_value(shape.key, k, f"{path}{{key}}")
            check_value(shape.value, item, f"{path}[{k}]")
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {value!r}")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.name}'s values")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean, got {value!r}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, got {value!r}")
    elif kind == "timestamp":
        # rest-json sends epoch seconds unless the shape says otherwise.
        fmt = shape.serialization.get("timestampFormat", "unixTimestamp")
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if fmt != "unixTimestamp":
            ok = isinstance(value, str)
        if not ok:
            problems.append(f"{path}: expected a {fmt} timestamp, got {value!r}")
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected a number, got {value!r}")


def on_response(http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
    name = model.name
    status = http_response.status_code
    body = http_response.content
    if status >= 300:
        code = http_response.headers.get("x-amzn-ErrorType", "").split(":")[0]
        declared = [e.name for e in model.error_shapes]
        if code not in declared:
            problems.append(f"{name}: error {code or status} is not one the operation declares")
        checked[name] = checked.get(name, 0) + 1
        return
    expected = model.http.get("responseCode", 200)
    if status != expected:
        problems.append(f"{name}: HTTP {status}, the model says {expected}")
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        problems.append(f"{name}: the body is not JSON: {body[:80]!r}")
        return
    if model.output_shape is not None:
        check_value(model.output_shape, data, name)
    elif data:
        problems.append(f"{name}: the model has no output, the body is {body[:80]!r}")
    checked[name] = checked.get(name, 0) + 1


def expect_error(code: str, call: Any, *args: Any, **kwargs: Any) -> None:
    try:
        call(*args, **kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        if got != code:
            problems.append(f"{call.__name__}: expected {code}, got {got}")
        return
    problems.append(f"{call.__name__}: expected {code}, it succeeded")


def require(what: str, ok: bool) -> None:
    if not ok:
        problems.append(f"behaviour: {what}")


def scenario(eks: Any, ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"{REGION}{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    bastion = ec2.create_security_group(GroupName="bastion", Description="b", VpcId=vpc)["GroupId"]
    role = "arn:aws:iam::123456789012:role/eks"

    created = eks.create_cluster(
        name="c1", roleArn=role, resourcesVpcConfig={"subnetIds": subnets},
        accessConfig={"authenticationMode": "API_AND_CONFIG_MAP",
                      "bootstrapClusterCreatorAdminPermissions": False},
        deletionProtection=True,
    )["cluster"]
    require("a cluster created without a version gets a listed one",
            created["version"] in [v[0] for v in eks_version_calendar.VERSIONS])
    cluster = eks.describe_cluster(name="c1")["cluster"]
    vpc_config = cluster["resourcesVpcConfig"]
    require("vpcId is the subnets' VPC", vpc_config.get("vpcId") == vpc)
    sg = vpc_config.get("clusterSecurityGroupId")
    groups = ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"] if sg else []
    require("the cluster security group exists", len(groups) == 1)
    if groups:
        ingress = groups[0]["IpPermissions"]
        require("the cluster security group admits only itself",
                [p["UserIdGroupPairs"][0]["GroupId"] for p in ingress] == [sg]
                and not any(p["IpRanges"] for p in ingress))
    require("accessConfig is described",
            cluster.get("accessConfig", {}).get("authenticationMode") == "API_AND_CONFIG_MAP")
    require("deletionProtection is described", cluster.get("deletionProtection") is True)
    expect_error("InvalidRequestException", eks.delete_cluster, name="c1")

    # UpdateClusterConfig: one change per call, the rest of the VPC block kept.
    update = eks.update_cluster_config(
        name="c1", resourcesVpcConfig={"endpointPrivateAccess": True,
                                       "publicAccessCidrs": ["203.0.113.0/24"]})["update"]
    after = eks.describe_cluster(name="c1")["cluster"]["resourcesVpcConfig"]
    require("an endpoint update keeps subnets and the cluster group",
            after.get("subnetIds") == subnets and after.get("clusterSecurityGroupId") == sg
            and after.get("publicAccessCidrs") == ["203.0.113.0/24"])
    eks.describe_update(name="c1", updateId=update["id"])
    require("ListUpdates lists it", update["id"] in eks.list_updates(name="c1")["updateIds"])
    expect_error("InvalidParameterException", eks.update_cluster_config, name="c1",
                 deletionProtection=False, accessConfig={"authenticationMode": "API"})
    expect_error("InvalidParameterException", eks.update_cluster_config, name="c1",
                 accessConfig={"authenticationMode": "CONFIG_MAP"})
    eks.update_cluster_config(name="c1", deletionProtection=False)
    eks.update_cluster_config(name="c1", upgradePolicy={"supportType": "STANDARD"})
    eks.update_cluster_config(name="c1", logging={"clusterLogging": [
        {"types": ["api", "audit"], "enabled": True}]})
    key = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    eks.associate_encryption_config(clusterName="c1", encryptionConfig=[
        {"resources": ["secrets"], "provider": {"keyArn": key}}])
    require("the key is described", eks.describe_cluster(name="c1")["cluster"].get(
        "encryptionConfig", [{}])[0].get("provider", {}).get("keyArn") == key)
    expect_error("InvalidRequestException", eks.associate_encryption_config, clusterName="c1",
                 encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": key}}])

    # Add-ons.
    eks.create_addon(clusterName="c1", addonName="vpc-cni",
                     configurationValues='{"env":{"WARM_IP_TARGET":"2"}}')
    expect_error("ResourceInUseException", eks.create_addon, clusterName="c1", addonName="vpc-cni")
    expect_error("InvalidParameterException", eks.create_addon, clusterName="c1",
                 addonName="coredns", configurationValues="{not json")
    eks.create_addon(clusterName="c1", addonName="coredns")
    require("ListAddons pages", eks.list_addons(clusterName="c1", maxResults=1)["addons"] == ["coredns"])
    eks.update_addon(clusterName="c1", addonName="vpc-cni", resolveConflicts="PRESERVE",
                     configurationValues='{"enableNetworkPolicy":"true"}')
    addon = eks.describe_addon(clusterName="c1", addonName="vpc-cni")["addon"]
    require("UpdateAddon sets configurationValues",
            addon.get("configurationValues") == '{"enableNetworkPolicy":"true"}')
    eks.delete_addon(clusterName="c1", addonName="coredns")
    expect_error("ResourceNotFoundException", eks.describe_addon, clusterName="c1",
                 addonName="coredns")
    expect_error("ResourceNotFoundException", eks.list_addons, clusterName="nope")

    # Access entries and policies; principal ARNs with paths.
    admin = "arn:aws:iam::123456789012:role/team/ops-admin"
    viewer = "arn:aws:iam::123456789012:role/viewer"
    eks.create_access_entry(clusterName="c1", principalArn=admin, kubernetesGroups=["ops"])
    eks.create_access_entry(clusterName="c1", principalArn=viewer)
    expect_error("ResourceInUseException", eks.create_access_entry, clusterName="c1",
                 principalArn=viewer)
    eks.describe_access_entry(clusterName="c1", principalArn=admin)
    eks.update_access_entry(clusterName="c1", principalArn=viewer, username="viewer")
    cluster_admin = moto_eks_ext.ACCESS_POLICY_PREFIX + "AmazonEKSClusterAdminPolicy"
    view = moto_eks_ext.ACCESS_POLICY_PREFIX + "AmazonEKSViewPolicy"
    eks.associate_access_policy(clusterName="c1", principalArn=admin, policyArn=cluster_admin,
                                accessScope={"type": "cluster"})
    eks.associate_access_policy(clusterName="c1", principalArn=viewer, policyArn=view,
                                accessScope={"type": "namespace", "namespaces": ["apps"]})
    expect_error("InvalidParameterException", eks.associate_access_policy, clusterName="c1",
                 principalArn=viewer, policyArn="arn:aws:eks::aws:cluster-access-policy/Nope",
                 accessScope={"type": "cluster"})
    require("ListAccessEntries filters by associated policy",
            eks.list_access_entries(clusterName="c1", associatedPolicyArn=cluster_admin)[
                "accessEntries"] == [admin])
    require("ListAccessEntries lists all", len(eks.list_access_entries(clusterName="c1")[
        "accessEntries"]) == 2)
    policies = eks.list_associated_access_policies(clusterName="c1", principalArn=viewer)
    require("the namespace scope is kept",
            policies["associatedAccessPolicies"][0]["accessScope"]["namespaces"] == ["apps"])
    eks.disassociate_access_policy(clusterName="c1", principalArn=viewer, policyArn=view)
    eks.delete_access_entry(clusterName="c1", principalArn=viewer)
    expect_error("ResourceNotFoundException", eks.describe_access_entry, clusterName="c1",
                 principalArn=viewer)
    eks.list_access_policies()

    # CONFIG_MAP (the API's default): no access entries; the mode only moves forward.
    eks.create_cluster(name="c2", roleArn=role, resourcesVpcConfig={"subnetIds": subnets},
                       version="1.19")
    c2 = eks.describe_cluster(name="c2")["cluster"]
    require("the default mode is CONFIG_MAP",
            c2.get("accessConfig", {}).get("authenticationMode") == "CONFIG_MAP")
    require("deletion protection is off by default", c2.get("deletionProtection") is False)
    expect_error("InvalidRequestException", eks.list_access_entries, clusterName="c2")
    eks.update_cluster_config(name="c2", accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    require("the caller is not made admin after creation",
            eks.list_access_entries(clusterName="c2")["accessEntries"] == [])
    # Created in API mode with the default bootstrap: the caller becomes cluster admin.
    eks.create_cluster(name="c3", roleArn=role, resourcesVpcConfig={"subnetIds": subnets},
                       accessConfig={"authenticationMode": "API"})
    require("the creator gets an admin entry",
            len(eks.list_access_entries(clusterName="c3", associatedPolicyArn=cluster_admin)[
                "accessEntries"]) == 1)

    # Versions.
    every = eks.describe_cluster_versions(includeAll=True)["clusterVersions"]
    require("includeAll lists the whole table", len(every) == len(eks_version_calendar.VERSIONS))
    supported = eks.describe_cluster_versions()["clusterVersions"]
    require("without includeAll only supported versions",
            all(v["versionStatus"] != "UNSUPPORTED" for v in supported))
    require("the table is current: some version is in standard support (update VERSIONS)",
            any(v["versionStatus"] == "STANDARD_SUPPORT" for v in supported))
    old = eks.describe_cluster_versions(clusterVersions=["1.19"], includeAll=True)["clusterVersions"]
    require("1.19 is unsupported", [v["versionStatus"] for v in old] == ["UNSUPPORTED"])
    require("one default version", len(eks.describe_cluster_versions(defaultOnly=True)[
        "clusterVersions"]) == 1)

    # Nodegroups: remote access as EKS does it.
    eks.create_nodegroup(clusterName="c1", nodegroupName="none", subnets=subnets, nodeRole=role)
    ng = eks.describe_nodegroup(clusterName="c1", nodegroupName="none")["nodegroup"]
    require("no remote access invented", "remoteAccess" not in ng
            and "remoteAccessSecurityGroup" not in ng.get("resources", {}))
    for name, remote, source in [
        ("world", {"ec2SshKey": "k"}, None),
        ("bastion", {"ec2SshKey": "k", "sourceSecurityGroups": [bastion]}, bastion),
    ]:
        eks.create_nodegroup(clusterName="c1", nodegroupName=name, subnets=subnets, nodeRole=role,
                             remoteAccess=remote)
        ng = eks.describe_nodegroup(clusterName="c1", nodegroupName=name)["nodegroup"]
        group = ng.get("resources", {}).get("remoteAccessSecurityGroup")
        found = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"] if group else []
        perms = found[0]["IpPermissions"] if found else []
        require(f"nodegroup {name}: its remote access group exists", len(found) == 1)
        require(f"nodegroup {name}: port 22 only",
                [(p.get("FromPort"), p.get("ToPort")) for p in perms] == [(22, 22)])
        if source:
            require(f"nodegroup {name}: from the source group",
                    [g["GroupId"] for g in perms[0]["UserIdGroupPairs"]] == [source]
                    and not perms[0]["IpRanges"])
        else:
            require(f"nodegroup {name}: from anywhere",
                    [r["CidrIp"] for r in perms[0]["IpRanges"]] == ["0.0.0.0/0"] if perms else False)
    expect_error("InvalidParameterException", eks.create_nodegroup, clusterName="c1",
                 nodegroupName="ghost", subnets=subnets, nodeRole=role,
                 remoteAccess={"ec2SshKey": "k", "sourceSecurityGroups": ["sg-0000000000000000a"]})
    expect_error("ResourceNotFoundException", eks.describe_nodegroup, clusterName="c1",
                 nodegroupName="ghost")
    eks.delete_nodegroup(clusterName="c1", nodegroupName="world")
    eks.delete_cluster(name="c2")


def main() -> int:
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test",
                            region_name=REGION)
    conf = Config(retries={"max_attempts": 1})
    url = f"http://127.0.0.1:{port}"
    eks = session.client("eks", endpoint_url=url, config=conf)
    ec2 = session.client("ec2", endpoint_url=url, config=conf)
    eks.meta.events.register("after-call.eks", on_response)
    try:
        scenario(eks, ec2)
    finally:
        server.stop()
    served = {
        "".join(p.capitalize() for p in name.split("_")) for name in moto_eks_ext.OPERATIONS
    } | {"DescribeCluster", "DescribeNodegroup"}
    for op in sorted(served - set(checked)):
        problems.append(f"{op}: never exercised")
    for p in problems:
        print(p)
    print(f"{len(checked)} operations, {sum(checked.values())} responses checked against botocore "
          f"{boto3.__version__ and __import__('botocore').__version__}'s EKS model; "
          f"{len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
