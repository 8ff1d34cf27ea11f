"""``gpunet node start``: detect, benchmark, register, heartbeat until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gpunet.cli.console import INDEXER_OPTION, gpunet_home, note, setup_logging
from gpunet.cli.keys import KeysDir, load_or_create_key
from gpunet.sdk import DEFAULT_INDEXER_URL

if TYPE_CHECKING:
    from gpunet.api.models import NodeRegistration
    from gpunet.node.benchmark import BenchmarkResult

app = typer.Typer(help="Run a provider node on this machine.", no_args_is_help=True)


def default_node_dir() -> Path:
    return gpunet_home() / "node"


@app.command("start")
def start(
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    key: Annotated[
        str, typer.Option(help="Operator key name; created (and printed) if missing.")
    ] = "operator",
    keys_dir: KeysDir = None,
    price: Annotated[
        str, typer.Option(help="Asking price in USD per GPU-hour (per node-hour for CPU nodes).")
    ] = "1.99",
    region: Annotated[str, typer.Option(help="Region, lowercase words and dashes.")] = "eu-west",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Node data directory (holds node.json with the node id). "
            "Default: $GPUNET_HOME/node, else ~/.gpunet/node.",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[
        float,
        typer.Option(
            min=0.1, help="Seconds between heartbeats (shorter if the indexer asks for it)."
        ),
    ] = 60.0,
    benchmark_size: Annotated[
        int, typer.Option(help="Benchmark matrix size N (N x N product, 16-32768).")
    ] = 1024,
) -> None:
    """Register this machine with an indexer and heartbeat until Ctrl-C or SIGTERM.

    Logs one line per state change (registered, indexer lost, back online, left).
    """
    from gpunet.node.agent import NodeAgent
    from gpunet.node.identity import load_or_create_node_id
    from gpunet.node.signals import stop_on_signals
    from gpunet.protocol.units import parse_usd
    from gpunet.sdk import Client

    setup_logging()
    price_micros = parse_usd(price, "price")
    account, key_info, created = load_or_create_key(key, keys_dir)
    if created:
        note(f"created key {key_info.name}: address {key_info.address}, file {key_info.path}")
    node_dir = data_dir or default_node_dir()
    node_id = load_or_create_node_id(node_dir)
    registration = describe_machine(node_dir, benchmark_size, price_micros, region)
    note(f"node {node_id}, operator {account.address}, indexer {indexer}")
    with Client(indexer, account) as client:
        agent = NodeAgent(client, node_id, registration, interval_s=interval)
        with stop_on_signals(agent.stop):
            agent.run()


def describe_machine(
    node_dir: Path, benchmark_size: int, price_micros: int, region: str
) -> NodeRegistration:
    """Detect hardware, run the benchmark, and build the checked registration."""
    from gpunet.node.benchmark import run_benchmark
    from gpunet.node.hardware import detect_hardware
    from gpunet.node.registration import build_registration

    hardware = detect_hardware(node_dir)
    benchmark = run_benchmark(size=benchmark_size)
    registration = build_registration(hardware, benchmark, price_micros, region)
    note(_summary(registration, benchmark))
    return registration


def _summary(registration: NodeRegistration, benchmark: BenchmarkResult) -> str:
    from gpunet.protocol.units import format_usd

    hw, offer = registration.hardware, registration.offer
    gpus = f"{hw.gpu_count} x {hw.gpu_model}" if hw.gpu_count else "CPU only"
    return (
        f"hardware ({hw.detection}): {gpus}, {hw.cpu_cores} cores, "
        f"{hw.memory_mib // 1024} GiB RAM, {hw.disk_gib} GiB free disk; "
        f"benchmark {benchmark.gflops:.1f} GFLOPS ({benchmark.backend}, {benchmark.dtype}, "
        f"n={benchmark.size}); offer {format_usd(offer.price_micros)} USD/h in {offer.region}"
    )
