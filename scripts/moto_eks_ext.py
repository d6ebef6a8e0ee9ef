"""Teaches moto 5.2.5's EKS backend the operations and response fields it lacks, the way EKS answers them.

Loaded by scripts/moto_serve.py before the server takes its first request (it adds URL rules that the
server reads when it builds the EKS application). Nothing in moto's installed files changes: the module
adds methods to moto's EKS response class and routes to its URL table, wraps CreateCluster, DeleteCluster,
CreateNodegroup and DeleteNodegroup, and replaces UpdateClusterConfig.

What it adds (docs/emulator.md lists it for users):
* add-ons: CreateAddon, DescribeAddon, ListAddons, UpdateAddon, DeleteAddon (with configurationValues);
* access entries: Create/Describe/List/Update/DeleteAccessEntry, Associate/DisassociateAccessPolicy,
  ListAssociatedAccessPolicies, ListAccessPolicies; entries need an authentication mode other than
  CONFIG_MAP, as in EKS;
* DescribeClusterVersions from the EKS release calendar in eks_version_calendar.py (dated there);
* clusters: accessConfig, deletionProtection, upgradePolicy, vpcId and a real cluster security group
  (clusterSecurityGroupId) on create and describe; UpdateClusterConfig with accessConfig,
  deletionProtection and upgradePolicy, one kind of change per call, returning its `update`;
  AssociateEncryptionConfig; DescribeUpdate and ListUpdates; DeleteCluster refused while deletion
  protection is on;
* nodegroups: no invented remote access; with `remoteAccess`, a real security group opening port 22
  (to 0.0.0.0/0 without source groups, to the source groups with them), deleted with the nodegroup.

Every change applies at once: the cluster stays ACTIVE and an update's status is Successful.
The responses are validated against botocore's EKS model by scripts/check_moto_eks_ext.py.
"""

import datetime
import json
import uuid
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.eks import urls as eks_urls
from moto.eks.exceptions import (
    InvalidParameterException,
    InvalidRequestException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from moto.eks.models import EKSBackend
from moto.eks.responses import EKSResponse

import eks_version_calendar as calendar

ACCESS_POLICY_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"
ACCESS_POLICIES = [
    "AmazonEKSAdminPolicy",
    "AmazonEKSAdminViewPolicy",
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSViewPolicy",
]
# What EKS reports for the add-ons it publishes; any other name is accepted with version v1.0.0-eksbuild.1.
ADDON_VERSIONS = {
    "vpc-cni": "v1.19.2-eksbuild.1",
    "coredns": "v1.11.4-eksbuild.2",
    "kube-proxy": "v1.31.3-eksbuild.2",
    "aws-ebs-csi-driver": "v1.38.1-eksbuild.2",
    "eks-pod-identity-agent": "v1.3.4-eksbuild.1",
}
AUTH_MODES = ["CONFIG_MAP", "API_AND_CONFIG_MAP", "API"]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _not_found(message: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(
        clusterName=None, nodegroupName=None, fargateProfileName=None, addonName=None, message=message
    )


def _page(items: list, max_results: Any, next_token: Any) -> tuple[list, str | None]:
    """EKS's list pagination: at most maxResults (default 100) from the opaque token on."""
    size = int(max_results) if max_results else 100
    start = int(next_token) if next_token and str(next_token).isdigit() else 0
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


# ---- state kept on moto's Cluster objects, so POST /moto-api/reset wipes it with them --------------


def _state(cluster: Any) -> Any:
    if not hasattr(cluster, "addons"):
        cluster.addons = {}
        cluster.access_entries = {}
        cluster.updates = []
        cluster.access_config = {
            "bootstrapClusterCreatorAdminPermissions": True,
            "authenticationMode": "CONFIG_MAP",
        }
        cluster.deletion_protection = False
        cluster.upgrade_policy = {"supportType": "EXTENDED"}
    return cluster


def _cluster(backend: EKSBackend, name: str) -> Any:
    cluster = backend.clusters.get(name)
    if cluster is None:
        raise _not_found(f"No cluster found for name: {name}.")
    return _state(cluster)


def _record_update(cluster: Any, kind: str, params: list[dict[str, str]]) -> dict[str, Any]:
    update = {
        "id": str(uuid.uuid4()),
        "status": "Successful",
        "type": kind,
        "params": params,
        "createdAt": _now(),
        "errors": [],
    }
    cluster.updates.append(update)
    return update


def _ec2(backend: EKSBackend) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[backend.account_id][backend.region_name]


def _vpc_of(ec2: Any, subnets: list[str] | None) -> str | None:
    for subnet in subnets or []:
        try:
            return ec2.get_subnet(subnet).vpc_id
        except Exception:
            continue
    return None


def _cluster_security_group(backend: EKSBackend, cluster: Any, vpc_id: str) -> str:
    """The group EKS creates for every cluster: all traffic from itself in, everything out."""
    ec2 = _ec2(backend)
    name = f"eks-cluster-sg-{cluster.name}-{uuid.uuid4().hex[:10]}"
    group = ec2.create_security_group(
        name=name,
        description="EKS created security group applied to ENI that is attached to EKS Control Plane"
        " master nodes, as well as any managed workloads.",
        vpc_id=vpc_id,
        tags={
            "Name": name,
            "aws:eks:cluster-name": cluster.name,
            f"kubernetes.io/cluster/{cluster.name}": "owned",
        },
    )
    ec2.authorize_security_group_ingress(
        group.id, "-1", None, None, [], source_groups=[{"GroupId": group.id}], vpc_id=vpc_id
    )
    return group.id


def _remote_access_group(backend: EKSBackend, nodegroup: Any, remote: dict[str, Any]) -> str:
    """The group EKS creates for a nodegroup's SSH access: port 22 from the source groups, else from anywhere."""
    ec2 = _ec2(backend)
    vpc_id = _vpc_of(ec2, nodegroup.subnets)
    if vpc_id is None:
        raise InvalidParameterException(message="The nodegroup's subnets do not exist.")
    name = f"eks-remoteAccess-{nodegroup.uuid}"
    sources = remote.get("sourceSecurityGroups") or []
    for source in sources:
        if ec2.get_security_group_from_id(source) is None:
            raise InvalidParameterException(
                message=f"The security group '{source}' does not exist"
            )
    group = ec2.create_security_group(
        name=name,
        description="Security group for all nodes in the nodeGroup to allow SSH access",
        vpc_id=vpc_id,
        tags={
            "Name": name,
            "eks:cluster-name": nodegroup.cluster_name,
            "eks:nodegroup-name": nodegroup.nodegroup_name,
        },
    )
    if sources:
        ec2.authorize_security_group_ingress(
            group.id, "tcp", "22", "22", [],
            source_groups=[{"GroupId": s} for s in sources], vpc_id=vpc_id,
        )
    else:
        ec2.authorize_security_group_ingress(
            group.id, "tcp", "22", "22", [{"CidrIp": "0.0.0.0/0"}], vpc_id=vpc_id
        )
    return group.id


# ---- clusters -------------------------------------------------------------------------------------

_original = {
    "create_cluster": EKSResponse.create_cluster,
    "create_nodegroup": EKSResponse.create_nodegroup,
    "delete_cluster": EKSResponse.delete_cluster,
    "delete_nodegroup": EKSResponse.delete_nodegroup,
}


def create_cluster(self: EKSResponse) -> ActionResult:
    access = self._get_param("accessConfig") or {}
    mode = access.get("authenticationMode", "CONFIG_MAP")
    if mode not in AUTH_MODES:
        raise InvalidParameterException(message=f"Unsupported authentication mode: {mode}")
    if not self._get_param("version"):
        # moto's own default (1.19) left standard support years ago; EKS takes its default version.
        self.body = json.dumps({**json.loads(self.body or "{}"), "version": calendar.default_version()})
    result = _original["create_cluster"](self)
    cluster = _state(result.result["cluster"])
    cluster.access_config = {
        "bootstrapClusterCreatorAdminPermissions": access.get(
            "bootstrapClusterCreatorAdminPermissions", True
        ),
        "authenticationMode": mode,
    }
    cluster.deletion_protection = bool(self._get_param("deletionProtection", False))
    cluster.upgrade_policy = {
        "supportType": (self._get_param("upgradePolicy") or {}).get("supportType", "EXTENDED")
    }
    vpc = dict(cluster.resources_vpc_config or {})
    vpc.setdefault("subnetIds", [])
    vpc.setdefault("securityGroupIds", [])
    vpc.setdefault("endpointPublicAccess", True)
    vpc.setdefault("endpointPrivateAccess", False)
    vpc.setdefault("publicAccessCidrs", ["0.0.0.0/0"])
    vpc_id = _vpc_of(_ec2(self.eks_backend), vpc["subnetIds"])
    if vpc_id:
        vpc["vpcId"] = vpc_id
        vpc["clusterSecurityGroupId"] = _cluster_security_group(self.eks_backend, cluster, vpc_id)
    cluster.resources_vpc_config = vpc
    if mode != "CONFIG_MAP" and cluster.access_config["bootstrapClusterCreatorAdminPermissions"]:
        # EKS makes the caller a cluster admin through an access entry.
        from moto.sts.models import sts_backends

        caller = sts_backends[self.current_account]["global"].get_caller_identity(
            self.get_access_key(), self.region
        )[1]
        caller = _iam_principal(caller)
        _new_entry(self.eks_backend, cluster, caller, [], None, "STANDARD", {})
        _associate(cluster, caller, ACCESS_POLICY_PREFIX + "AmazonEKSClusterAdminPolicy",
                   {"type": "cluster"})
    return result


def _iam_principal(arn: str) -> str:
    """The IAM ARN EKS records for a caller: an assumed role's session becomes its role."""
    prefix, _, resource = arn.partition(":sts:")
    if not resource:
        return arn
    account, _, rest = resource.partition(":")
    if rest.startswith("assumed-role/"):
        rest = "role/" + rest.split("/")[1]
    return f"{prefix}:iam::{account}:{rest}"


def delete_cluster(self: EKSResponse) -> ActionResult:
    name = self._get_param("name")
    cluster = self.eks_backend.clusters.get(name)
    if cluster is not None and getattr(cluster, "deletion_protection", False):
        raise InvalidRequestException(
            message=f"Cannot delete cluster {name} because deletion protection is enabled."
            " Disable deletion protection with UpdateClusterConfig first."
        )
    result = _original["delete_cluster"](self)
    group = (result.result["cluster"].resources_vpc_config or {}).get("clusterSecurityGroupId")
    if group:
        try:
            _ec2(self.eks_backend).delete_security_group(group_id=group)
        except Exception:
            pass  # still in use (by nodes): EKS leaves it too
    return result


_VPC_PARAMS = {
    "subnetIds": "Subnets",
    "securityGroupIds": "SecurityGroups",
    "endpointPublicAccess": "EndpointPublicAccess",
    "endpointPrivateAccess": "EndpointPrivateAccess",
    "publicAccessCidrs": "PublicAccessCidrs",
}


def _param(kind: str, value: Any) -> dict[str, str]:
    """An update's parameter as EKS reports it: a string, lists and objects JSON-encoded inside it."""
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = str(value)
    return {"type": kind, "value": text}


def update_cluster_config(self: EKSResponse) -> ActionResult:
    """One kind of change per call, as EKS takes it; fields a request leaves out keep their values."""
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    changes = {
        k: self._get_param(k)
        for k in [
            "resourcesVpcConfig", "logging", "accessConfig", "upgradePolicy", "deletionProtection",
            "kubernetesNetworkConfig", "remoteNetworkConfig", "zonalShiftConfig", "computeConfig",
            "storageConfig",
        ]
        if self._get_param(k) is not None
    }
    if len(changes) != 1:
        raise InvalidParameterException(
            message="Only one type of update can be allowed." if changes
            else "No changes needed"
        )
    (kind, value), = changes.items()
    if kind == "resourcesVpcConfig":
        vpc = dict(cluster.resources_vpc_config or {})
        if value.get("endpointPublicAccess") is False and not value.get(
            "endpointPrivateAccess", vpc.get("endpointPrivateAccess", False)
        ):
            raise InvalidParameterException(
                message="Private and public endpoint access cannot be both disabled"
            )
        vpc.update({k: v for k, v in value.items() if k in _VPC_PARAMS})
        if vpc.get("endpointPublicAccess") and "publicAccessCidrs" not in vpc:
            vpc["publicAccessCidrs"] = ["0.0.0.0/0"]
        cluster.resources_vpc_config = vpc
        endpoint = any(k.startswith("endpoint") or k == "publicAccessCidrs" for k in value)
        update = _record_update(
            cluster,
            "EndpointAccessUpdate" if endpoint else "VpcConfigUpdate",
            [_param(_VPC_PARAMS[k], v) for k, v in value.items() if k in _VPC_PARAMS],
        )
    elif kind == "logging":
        cluster.logging = value
        update = _record_update(cluster, "LoggingUpdate", [_param("ClusterLogging", value)])
    elif kind == "accessConfig":
        mode = value.get("authenticationMode")
        current = cluster.access_config["authenticationMode"]
        if mode not in AUTH_MODES or AUTH_MODES.index(mode) < AUTH_MODES.index(current):
            raise InvalidParameterException(
                message=f"Unsupported authentication mode update from {current} to {mode}"
            )
        if mode == current:
            raise InvalidParameterException(message=f"Cluster is already in {mode} mode")
        cluster.access_config["authenticationMode"] = mode
        update = _record_update(cluster, "AccessConfigUpdate", [_param("AuthenticationMode", mode)])
    elif kind == "deletionProtection":
        cluster.deletion_protection = bool(value)
        update = _record_update(
            cluster, "DeletionProtectionUpdate", [_param("DeletionProtection", bool(value))]
        )
    elif kind == "upgradePolicy":
        cluster.upgrade_policy = {"supportType": value.get("supportType", "EXTENDED")}
        update = _record_update(
            cluster, "UpgradePolicyUpdate", [_param("UpgradePolicy", value.get("supportType"))]
        )
    else:
        setattr(cluster, {"kubernetesNetworkConfig": "kubernetes_network_config",
                          "remoteNetworkConfig": "remote_network_config"}.get(kind, kind), value)
        update = _record_update(cluster, "ConfigUpdate", [])
    return ActionResult({"update": update})


def associate_encryption_config(self: EKSResponse) -> ActionResult:
    """Envelope encryption of Secrets with a KMS key: once set, EKS never lets it go or change."""
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    config = self._get_param("encryptionConfig") or []
    if cluster.encryption_config:
        raise InvalidRequestException(message="Encryption is already enabled on the cluster")
    if not config or not all((c.get("provider") or {}).get("keyArn") for c in config):
        raise InvalidParameterException(message="EncryptionConfig must name a provider keyArn")
    cluster.encryption_config = config
    update = _record_update(
        cluster, "AssociateEncryptionConfig", [_param("EncryptionConfig", config)]
    )
    return ActionResult({"update": update})


def describe_update(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    update_id = self._get_param("updateId")
    addon = self._get_param("addonName")
    pool = cluster.addons[addon]["updates"] if addon in cluster.addons else cluster.updates
    for update in pool:
        if update["id"] == update_id:
            return ActionResult({"update": update})
    raise _not_found(f"No update found for ID: {update_id}")


def list_updates(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    addon = self._get_param("addonName")
    pool = cluster.addons[addon]["updates"] if addon in cluster.addons else cluster.updates
    ids, token = _page([u["id"] for u in pool], self._get_param("maxResults"),
                       self._get_param("nextToken"))
    return ActionResult({"updateIds": ids, "nextToken": token})


# ---- nodegroups -----------------------------------------------------------------------------------


def create_nodegroup(self: EKSResponse) -> ActionResult:
    remote = self._get_param("remoteAccess")
    result = _original["create_nodegroup"](self)
    nodegroup = result.result["nodegroup"]
    if remote:
        try:
            group = _remote_access_group(self.eks_backend, nodegroup, remote)
        except Exception:
            cluster = self.eks_backend.clusters[nodegroup.cluster_name]
            cluster.nodegroups.pop(nodegroup.nodegroup_name, None)
            cluster.nodegroup_count -= 1
            raise
        nodegroup.remote_access = remote
        nodegroup.resources = {**nodegroup.resources, "remoteAccessSecurityGroup": group}
    else:
        # moto invents {"ec2SshKey": "eksKeypair"} and a group id that exists nowhere; EKS returns neither.
        nodegroup.remote_access = None
        nodegroup.resources = {
            k: v for k, v in nodegroup.resources.items() if k != "remoteAccessSecurityGroup"
        }
    return result


def delete_nodegroup(self: EKSResponse) -> ActionResult:
    result = _original["delete_nodegroup"](self)
    group = (result.result["nodegroup"].resources or {}).get("remoteAccessSecurityGroup")
    if group:
        try:
            _ec2(self.eks_backend).delete_security_group(group_id=group)
        except Exception:
            pass  # still in use: EKS leaves it too
    return result


# ---- add-ons --------------------------------------------------------------------------------------

_ADDON_FIELDS = [
    "addonName", "clusterName", "status", "addonVersion", "health", "addonArn", "createdAt",
    "modifiedAt", "serviceAccountRoleArn", "tags", "publisher", "owner", "configurationValues",
]


def _addon_view(addon: dict[str, Any]) -> dict[str, Any]:
    return {k: addon[k] for k in _ADDON_FIELDS if addon.get(k) is not None}


def _check_configuration(values: Any) -> None:
    """EKS validates configurationValues against the add-on's JSON schema; here: JSON or YAML text."""
    if values is None:
        return
    text = values.strip()
    if text.startswith("{") or text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError as e:
            raise InvalidParameterException(message=f"ConfigurationValue is not valid JSON: {e}")
        if not isinstance(parsed, dict):
            raise InvalidParameterException(message="ConfigurationValue must be a JSON object")


def _addon(cluster: Any, name: str) -> dict[str, Any]:
    addon = cluster.addons.get(name)
    if addon is None:
        raise _not_found(f"No addon: {name} found in cluster: {cluster.name}")
    return addon


def create_addon(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    name = self._get_param("addonName")
    if name in cluster.addons:
        raise ResourceInUseException(
            clusterName=cluster.name, nodegroupName=None, addonName=name,
            message=f"Addon already exists with name: {name} on cluster: {cluster.name}",
        )
    values = self._get_param("configurationValues")
    _check_configuration(values)
    now = _now()
    cluster.addons[name] = {
        "addonName": name,
        "clusterName": cluster.name,
        "status": "ACTIVE",
        "addonVersion": self._get_param("addonVersion") or ADDON_VERSIONS.get(name, "v1.0.0-eksbuild.1"),
        "health": {"issues": []},
        "addonArn": cluster.arn.replace(":cluster/", ":addon/") + f"/{name}/{uuid.uuid4()}",
        "createdAt": now,
        "modifiedAt": now,
        "serviceAccountRoleArn": self._get_param("serviceAccountRoleArn"),
        "tags": self._get_param("tags") or {},
        "configurationValues": values,
        "publisher": "eks" if name in ADDON_VERSIONS else None,
        "owner": "aws" if name in ADDON_VERSIONS else None,
        "updates": [],
    }
    return ActionResult({"addon": _addon_view(cluster.addons[name])})


def describe_addon(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    return ActionResult({"addon": _addon_view(_addon(cluster, self._get_param("addonName")))})


def list_addons(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    names, token = _page(sorted(cluster.addons), self._get_param("maxResults"),
                         self._get_param("nextToken"))
    return ActionResult({"addons": names, "nextToken": token})


def update_addon(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    addon = _addon(cluster, self._get_param("addonName"))
    params = []
    values = self._get_param("configurationValues")
    if values is not None:
        _check_configuration(values)
        addon["configurationValues"] = values
        params.append(_param("ConfigurationValues", values))
    for field, kind in [("addonVersion", "AddonVersion"),
                        ("serviceAccountRoleArn", "ServiceAccountRoleArn"),
                        ("resolveConflicts", "ResolveConflicts")]:
        value = self._get_param(field)
        if value is not None:
            if field != "resolveConflicts":
                addon[field] = value
            params.append(_param(kind, value))
    addon["modifiedAt"] = _now()
    update = {"id": str(uuid.uuid4()), "status": "Successful", "type": "AddonUpdate",
              "params": params, "createdAt": addon["modifiedAt"], "errors": []}
    addon["updates"].append(update)
    return ActionResult({"update": update})


def delete_addon(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    addon = _addon(cluster, self._get_param("addonName"))
    del cluster.addons[addon["addonName"]]
    return ActionResult({"addon": _addon_view({**addon, "status": "DELETING"})})


# ---- access entries -------------------------------------------------------------------------------


def _entries_allowed(cluster: Any) -> None:
    if cluster.access_config["authenticationMode"] == "CONFIG_MAP":
        raise InvalidRequestException(
            message="The cluster's authentication mode must be set to one of [API, API_AND_CONFIG_MAP]"
            " to perform this operation."
        )


def _new_entry(backend: EKSBackend, cluster: Any, principal: str, groups: list, username: Any,
               kind: str, tags: dict) -> dict[str, Any]:
    if not principal.startswith("arn:"):
        raise InvalidParameterException(message=f"The principalArn {principal} is not a valid ARN")
    if principal in cluster.access_entries:
        raise ResourceInUseException(
            clusterName=cluster.name, nodegroupName=None, addonName=None,
            message=f"The specified access entry resource is already in use on this cluster.",
        )
    now = _now()
    tail = principal.split(":", 5)[-1]
    entry = {
        "clusterName": cluster.name,
        "principalArn": principal,
        "kubernetesGroups": groups,
        "accessEntryArn": cluster.arn.replace(":cluster/", ":access-entry/")
        + f"/{tail}/{uuid.uuid4()}",
        "createdAt": now,
        "modifiedAt": now,
        "tags": tags,
        "username": username or principal.replace(":sts:", ":iam:"),
        "type": kind,
        "policies": {},
    }
    cluster.access_entries[principal] = entry
    return entry


def _entry_view(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "policies"}


def _entry(cluster: Any, principal: str) -> dict[str, Any]:
    entry = cluster.access_entries.get(principal)
    if entry is None:
        raise _not_found(f"The specified principalArn could not be found: {principal}")
    return entry


def _associate(cluster: Any, principal: str, policy: str, scope: dict) -> dict[str, Any]:
    entry = _entry(cluster, principal)
    if not policy.startswith(ACCESS_POLICY_PREFIX) or policy[len(ACCESS_POLICY_PREFIX):] not in ACCESS_POLICIES:
        raise InvalidParameterException(message=f"The policyArn {policy} is not a valid access policy")
    if scope.get("type") not in ("cluster", "namespace"):
        raise InvalidParameterException(message="accessScope.type must be cluster or namespace")
    if scope["type"] == "namespace" and not scope.get("namespaces"):
        raise InvalidParameterException(message="A namespace scope needs at least one namespace")
    now = _now()
    previous = entry["policies"].get(policy)
    entry["policies"][policy] = {
        "policyArn": policy,
        "accessScope": {"type": scope["type"], "namespaces": scope.get("namespaces") or []},
        "associatedAt": previous["associatedAt"] if previous else now,
        "modifiedAt": now,
    }
    return entry["policies"][policy]


def create_access_entry(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    _entries_allowed(cluster)
    entry = _new_entry(
        self.eks_backend, cluster, self._get_param("principalArn"),
        self._get_param("kubernetesGroups") or [], self._get_param("username"),
        self._get_param("type") or "STANDARD", self._get_param("tags") or {},
    )
    return ActionResult({"accessEntry": _entry_view(entry)})


def describe_access_entry(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    _entries_allowed(cluster)
    return ActionResult({"accessEntry": _entry_view(_entry(cluster, self._get_param("principalArn")))})


def update_access_entry(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    _entries_allowed(cluster)
    entry = _entry(cluster, self._get_param("principalArn"))
    if self._get_param("kubernetesGroups") is not None:
        entry["kubernetesGroups"] = self._get_param("kubernetesGroups")
    if self._get_param("username") is not None:
        entry["username"] = self._get_param("username")
    entry["modifiedAt"] = _now()
    return ActionResult({"accessEntry": _entry_view(entry)})


def delete_access_entry(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    _entries_allowed(cluster)
    principal = self._get_param("principalArn")
    _entry(cluster, principal)
    del cluster.access_entries[principal]
    return EmptyResult()


def list_access_entries(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    _entries_allowed(cluster)
    policy = self._get_param("associatedPolicyArn")
    principals = sorted(p for p, e in cluster.access_entries.items()
                        if policy is None or policy in e["policies"])
    page, token = _page(principals, self._get_param("maxResults"), self._get_param("nextToken"))
    return ActionResult({"accessEntries": page, "nextToken": token})


def associate_access_policy(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    _entries_allowed(cluster)
    principal = self._get_param("principalArn")
    policy = _associate(cluster, principal, self._get_param("policyArn") or "",
                        self._get_param("accessScope") or {})
    return ActionResult({"clusterName": cluster.name, "principalArn": principal,
                         "associatedAccessPolicy": policy})


def disassociate_access_policy(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    _entries_allowed(cluster)
    entry = _entry(cluster, self._get_param("principalArn"))
    policy = self._get_param("policyArn")
    if entry["policies"].pop(policy, None) is None:
        raise _not_found(f"The policy {policy} is not associated with this access entry")
    return EmptyResult()


def list_associated_access_policies(self: EKSResponse) -> ActionResult:
    cluster = _cluster(self.eks_backend, self._get_param("name"))
    _entries_allowed(cluster)
    principal = self._get_param("principalArn")
    entry = _entry(cluster, principal)
    policies = [entry["policies"][p] for p in sorted(entry["policies"])]
    page, token = _page(policies, self._get_param("maxResults"), self._get_param("nextToken"))
    return ActionResult({"clusterName": cluster.name, "principalArn": principal,
                         "nextToken": token, "associatedAccessPolicies": page})


def list_access_policies(self: EKSResponse) -> ActionResult:
    policies = [{"name": n, "arn": ACCESS_POLICY_PREFIX + n} for n in ACCESS_POLICIES]
    page, token = _page(policies, self._get_param("maxResults"), self._get_param("nextToken"))
    return ActionResult({"accessPolicies": page, "nextToken": token})


# ---- Kubernetes versions ---------------------------------------------------------------------------


def describe_cluster_versions(self: EKSResponse) -> ActionResult:
    """From the dated calendar; without includeAll, only versions still in standard or extended support,
    as EKS answers."""
    query = self.querystring

    def flag(name: str) -> bool:
        return (query.get(name) or ["false"])[0].lower() == "true"

    wanted = query.get("clusterVersions") or []
    status = (query.get("versionStatus") or [None])[0]
    cluster_type = (query.get("clusterType") or [None])[0]
    infos = [
        v for v in calendar.version_infos()
        if (not wanted or v["clusterVersion"] in wanted)
        and (flag("includeAll") or wanted or v["versionStatus"] != "UNSUPPORTED")
        and (not flag("defaultOnly") or v["defaultVersion"])
        and (status is None or v["versionStatus"] == status)
        and cluster_type in (None, "eks")
    ]
    page, token = _page(infos, self._get_param("maxResults"), self._get_param("nextToken"))
    return ActionResult({"clusterVersions": page, "nextToken": token})


# ---- registration ---------------------------------------------------------------------------------

OPERATIONS = {
    "create_cluster": create_cluster,
    "delete_cluster": delete_cluster,
    "update_cluster_config": update_cluster_config,
    "associate_encryption_config": associate_encryption_config,
    "describe_update": describe_update,
    "list_updates": list_updates,
    "create_nodegroup": create_nodegroup,
    "delete_nodegroup": delete_nodegroup,
    "create_addon": create_addon,
    "describe_addon": describe_addon,
    "list_addons": list_addons,
    "update_addon": update_addon,
    "delete_addon": delete_addon,
    "create_access_entry": create_access_entry,
    "describe_access_entry": describe_access_entry,
    "update_access_entry": update_access_entry,
    "delete_access_entry": delete_access_entry,
    "list_access_entries": list_access_entries,
    "associate_access_policy": associate_access_policy,
    "disassociate_access_policy": disassociate_access_policy,
    "list_associated_access_policies": list_associated_access_policies,
    "list_access_policies": list_access_policies,
    "describe_cluster_versions": describe_cluster_versions,
}

# Flask routes only pick the EKS application; moto then matches the operation on botocore's model.
ROUTES = [
    "{0}/clusters/(?P<name>[^/]+)/addons$",
    "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)$",
    "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)/update$",
    "{0}/clusters/(?P<name>[^/]+)/access-entries$",
    # A principal ARN holds slashes (role/path/name), and so does a policy ARN after it.
    "{0}/clusters/(?P<name>[^/]+)/access-entries/(?P<principalArn>.+)$",
    "{0}/clusters/(?P<name>[^/]+)/encryption-config/associate$",
    "{0}/clusters/(?P<name>[^/]+)/updates$",
    "{0}/clusters/(?P<name>[^/]+)/updates/(?P<updateId>[^/]+)$",
    "{0}/cluster-versions$",
    "{0}/access-policies$",
]


def install() -> None:
    """Registers the operations; call before the server answers its first request. Idempotent."""
    if getattr(EKSResponse, "_eks_warden_extension", False):
        return
    for name, fn in OPERATIONS.items():
        setattr(EKSResponse, name, fn)
    for route in ROUTES:
        eks_urls.url_paths.setdefault(route, eks_urls.response.dispatch)
    EKSResponse._eks_warden_extension = True
