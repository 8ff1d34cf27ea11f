"""build_registration's job fields: the runtimes a node offers and its network policy."""

from __future__ import annotations

import pytest

from gpunet.errors import ValidationError
from gpunet.node.benchmark import BenchmarkResult
from gpunet.node.hardware import Hardware
from gpunet.node.registration import build_registration

BENCH = BenchmarkResult("numpy", "cpu", "float32", 1024, 0.01, 214.7483)
CPU_NODE = Hardware(
    gpus=(),
    cpu_model="Test CPU",
    cpu_cores=8,
    memory_mib=32768,
    disk_free_gib=200,
    source="cpu",
)


def test_a_node_without_runtimes_takes_no_jobs_and_no_network() -> None:
    reg = build_registration(CPU_NODE, BENCH, 450_000, "eu-west")

    assert (reg.runtimes, reg.allows_network) == ([], False)


def test_runtimes_and_network_policy_are_registered_once_each() -> None:
    reg = build_registration(
        CPU_NODE,
        BENCH,
        450_000,
        "eu-west",
        runtimes=["docker", "bwrap", "docker"],
        allows_network=True,
    )

    assert (reg.runtimes, reg.allows_network) == (["docker", "bwrap"], True)


def test_an_unknown_runtime_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="unknown job runtime") as caught:
        build_registration(CPU_NODE, BENCH, 450_000, "eu-west", runtimes=["podman"])

    assert caught.value.value == "podman"
