"""Turn what this machine has (hardware, benchmark, job runtimes) and asks (price, region,
network policy) into a ``NodeRegistration``, checked by the same protocol rules the
indexer applies. The runtimes and the network policy let the indexer send a node only
the jobs it can run; the check URL tells checkers where to probe it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, cast

from gpunet import __version__
from gpunet.api.models import HardwareClaimModel, NodeRegistration, OfferModel
from gpunet.errors import UnknownGpuModel, ValidationError
from gpunet.node.benchmark import BenchmarkResult
from gpunet.node.hardware import GpuInfo, Hardware
from gpunet.node.misbehave import CLAIM_FACTOR, HONEST, Misbehaviour
from gpunet.protocol.catalogue import CATALOGUE, CPU_MODEL, identify_gpu
from gpunet.protocol.jobspec import RUNTIMES as JOB_RUNTIMES
from gpunet.protocol.offers import (
    MAX_BENCHMARK_GFLOPS,
    MAX_GPUS_PER_NODE,
    validate_claim,
    validate_offer,
)

RuntimeName = Literal["bwrap", "docker"]


def build_registration(
    hardware: Hardware,
    benchmark: BenchmarkResult,
    price_micros: int,
    region: str,
    agent_version: str = __version__,
    *,
    runtimes: Sequence[str] = (),
    allows_network: bool = False,
    check_url: str | None = None,
    misbehaviour: Misbehaviour = HONEST,
) -> NodeRegistration:
    """The registration for this machine; raises ValidationError before any request.

    ``runtimes`` are the job runtimes this node offers (none: it takes no jobs);
    ``allows_network`` says whether jobs that ask for the network may have it;
    ``check_url`` is the node's check endpoint. ``misbehaviour.claim_faster`` (demos
    and checker tests only) inflates the claim, see ``inflated_claim``.
    """
    model, count, vram_mib = gpu_claim(hardware.gpus)
    claim = HardwareClaimModel(
        gpu_model=model,
        gpu_count=count,
        vram_mib=vram_mib,
        cpu_cores=hardware.cpu_cores,
        memory_mib=hardware.memory_mib,
        disk_gib=hardware.disk_free_gib,
        benchmark_gflops=round(float(benchmark.gflops), 1),
        detection=hardware.source,
    )
    if misbehaviour.claim_faster:
        claim = inflated_claim(claim)
    offer = OfferModel(price_micros=price_micros, region=region)
    validate_claim(claim.to_protocol())
    validate_offer(offer.to_protocol())
    return NodeRegistration(
        hardware=claim,
        offer=offer,
        agent_version=agent_version,
        runtimes=_runtime_names(runtimes),
        allows_network=allows_network,
        check_url=check_url,
    )


def inflated_claim(claim: HardwareClaimModel) -> HardwareClaimModel:
    """``claim`` with ``CLAIM_FACTOR`` x the GPUs (up to the per-node limit) and benchmark.

    The ``claim-faster`` lie: the capacity a checker expects grows by that factor
    (GPU nodes by their count, CPU nodes by their benchmark), the real speed does not.
    """
    gpus = min(claim.gpu_count * CLAIM_FACTOR, MAX_GPUS_PER_NODE)
    gflops = min(claim.benchmark_gflops * CLAIM_FACTOR, MAX_BENCHMARK_GFLOPS)
    return claim.model_copy(update={"gpu_count": gpus, "benchmark_gflops": round(gflops, 1)})


def gpu_claim(gpus: Sequence[GpuInfo]) -> tuple[str, int, int]:
    """Catalogue model, GPU count and per-GPU VRAM (the smallest) for ``gpus``.

    No GPUs make a CPU node ("CPU", 0, 0). Every GPU must be a catalogue model, and all
    of the same model, since a node sells one kind of GPU.
    """
    if not gpus:
        return CPU_MODEL, 0, 0
    models = {_catalogue_name(gpu) for gpu in gpus}
    if len(models) > 1:
        raise ValidationError(
            "gpu_model",
            sorted(models),
            "a node sells one GPU model; run the agent on a machine whose GPUs are all alike",
        )
    return models.pop(), len(gpus), min(gpu.vram_mib for gpu in gpus)


def _runtime_names(runtimes: Sequence[str]) -> list[RuntimeName]:
    names: list[RuntimeName] = []
    for name in runtimes:
        if name not in JOB_RUNTIMES:
            raise ValidationError(
                "runtimes", name, f"unknown job runtime; known: {', '.join(JOB_RUNTIMES)}"
            )
        if name not in names:
            names.append(cast(RuntimeName, name))
    return names


def _catalogue_name(gpu: GpuInfo) -> str:
    model = identify_gpu(gpu.name, gpu.vram_mib)
    if model is None:
        known = ", ".join(name for name in CATALOGUE if name != CPU_MODEL)
        raise UnknownGpuModel(
            "gpu_model",
            gpu.name,
            f"this GPU is not in the catalogue, so it cannot be offered yet (known: {known}); "
            "open an issue with its name and specs to have it added",
        )
    return model.name
