"""The Amazon EKS Kubernetes release calendar the emulator's DescribeClusterVersions answers from.

Source: the EKS user guide, "Understand the Kubernetes version lifecycle on EKS", section "Amazon EKS
Kubernetes release calendar" (docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html), for
1.29-1.34 as read on VERSIONS_AS_OF; 1.35 and 1.19-1.28 from earlier and later editions of the same table
(versions retired before extended support existed, 1.22 and older, end both supports on one day).
A support status is computed for today, or for EKS_WARDEN_EMULATOR_TODAY (YYYY-MM-DD) when set. When no
version is left in standard support the table is stale: scripts/check_moto_eks_ext.py says so.
"""

import datetime
import os
from typing import Any

VERSIONS_AS_OF = "2026-02-12"
# version, Amazon EKS release, end of standard support, end of extended support
VERSIONS = [
    ("1.35", "2026-01-28", "2027-03-27", "2028-03-27"),
    ("1.34", "2025-10-02", "2026-12-02", "2027-12-02"),
    ("1.33", "2025-05-29", "2026-07-29", "2027-07-29"),
    ("1.32", "2025-01-23", "2026-03-23", "2027-03-23"),
    ("1.31", "2024-09-26", "2025-11-26", "2026-11-26"),
    ("1.30", "2024-05-23", "2025-07-23", "2026-07-23"),
    ("1.29", "2024-01-23", "2025-03-23", "2026-03-23"),
    ("1.28", "2023-09-26", "2024-11-26", "2025-11-26"),
    ("1.27", "2023-05-24", "2024-07-24", "2025-07-24"),
    ("1.26", "2023-04-11", "2024-06-11", "2025-06-11"),
    ("1.25", "2023-02-21", "2024-05-01", "2025-05-01"),
    ("1.24", "2022-11-15", "2024-01-31", "2025-01-31"),
    ("1.23", "2022-08-11", "2023-10-11", "2024-10-11"),
    ("1.22", "2022-04-04", "2023-06-04", "2023-06-04"),
    ("1.21", "2021-07-19", "2023-02-15", "2023-02-15"),
    ("1.20", "2021-05-18", "2022-11-01", "2022-11-01"),
    ("1.19", "2021-02-16", "2022-08-01", "2022-08-01"),
]


def day(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)


def today() -> datetime.datetime:
    pinned = os.environ.get("EKS_WARDEN_EMULATOR_TODAY")
    return day(pinned) if pinned else datetime.datetime.now(datetime.timezone.utc)


def status(standard_end: str, extended_end: str, now: datetime.datetime) -> str:
    """Extended support (and its billing) starts at the beginning of the end-of-standard-support day, UTC."""
    if now < day(standard_end):
        return "STANDARD_SUPPORT"
    if now < day(extended_end):
        return "EXTENDED_SUPPORT"
    return "UNSUPPORTED"


def default_version() -> str:
    """EKS's default for a cluster created without a version: here the newest in standard support."""
    now = today()
    for version, _, standard_end, extended_end in VERSIONS:
        if status(standard_end, extended_end, now) == "STANDARD_SUPPORT":
            return version
    return VERSIONS[0][0]


def version_infos() -> list[dict[str, Any]]:
    """Every version as a ClusterVersionInformation, newest first."""
    now, default = today(), default_version()
    out = []
    for version, released, standard_end, extended_end in VERSIONS:
        current = status(standard_end, extended_end, now)
        out.append({
            "clusterVersion": version,
            "clusterType": "eks",
            "defaultPlatformVersion": "eks.1",
            "defaultVersion": version == default,
            "releaseDate": day(released),
            "endOfStandardSupportDate": day(standard_end),
            "endOfExtendedSupportDate": day(extended_end),
            "status": current.lower().replace("_", "-"),
            "versionStatus": current,
        })
    return out
