"""``gpunet node start``: detect, benchmark, register, heartbeat and run jobs until Ctrl-C.

Two loops run side by side over one SDK client: the heartbeat loop (``NodeAgent``) in the
main thread, which owns the signals, and the job loop (``JobWorker``) in a thread. The
check endpoint, where checkers probe the node, is served in a third (``node.setup``). On
Ctrl-C or SIGTERM the job loop stops first, so a running job is cancelled and reported
before the node leaves the network; the check endpoint stops last.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gpunet.cli import node_checks
from gpunet.cli.console import INDEXER_OPTION, gpunet_home, note, setup_logging
from gpunet.cli.keys import KeysDir, load_or_create_key
from gpunet.sdk import DEFAULT_INDEXER_URL

if TYPE_CHECKING:
    from gpunet.api.models import NodeRegistration
    from gpunet.node.agent import NodeAgent
    from gpunet.node.benchmark import BenchmarkResult
    from gpunet.node.misbehave import Misbehaviour
    from gpunet.node.runtime import Runtime
    from gpunet.node.worker import JobWorker

app = typer.Typer(help="Run a provider node on this machine.", no_args_is_help=True)
app.command("checks")(node_checks.checks)

NO_RUNTIME = "none"
NOBODY_UID = 65534
STOP_GRACE_S = 90.0  # a cancelled job's last checkpoint and receipt, with retries


def default_node_dir() -> Path:
    return gpunet_home() / "node"


# The options of ``gpunet node start``, one alias each, so its signature stays readable.
Key = Annotated[str, typer.Option(help="Operator key name; created (and printed) if missing.")]
Price = Annotated[
    str, typer.Option(help="Asking price in USD per GPU-hour (per node-hour for CPU nodes).")
]
Region = Annotated[str, typer.Option(help="Region, lowercase words and dashes.")]
DataDir = Annotated[
    Path | None,
    typer.Option(
        help="Node data directory (holds node.json with the node id). "
        "Default: $GPUNET_HOME/node, else ~/.gpunet/node.",
        show_default=False,
    ),
]
Interval = Annotated[
    float,
    typer.Option(min=0.1, help="Seconds between heartbeats (shorter if the indexer asks for it)."),
]
BenchmarkSize = Annotated[
    int, typer.Option(help="Benchmark matrix size N (N x N product, 16-32768).")
]
RuntimeNames = Annotated[
    list[str] | None,
    typer.Option(
        "--runtime",
        metavar="NAME",
        help="Job runtime to offer: bwrap (bubblewrap sandbox) or docker; repeat for "
        "both. Default: every runtime usable on this machine. --runtime none: take no "
        "jobs, only heartbeat.",
        show_default=False,
    ),
]
AllowNetwork = Annotated[
    bool,
    typer.Option(
        help="Let jobs that ask for it use the network, and let sessions expose a port. "
        "Off: such jobs are refused and run elsewhere.",
    ),
]
JobUid = Annotated[
    int,
    typer.Option(
        min=1,
        help="When the node runs as root, jobs run as this user and group id (65534 is nobody).",
    ),
]
WorkDir = Annotated[
    Path | None,
    typer.Option(
        help="Where each job gets its own work dir, removed after the job. "
        "Default: <data dir>/work.",
        show_default=False,
    ),
]
SessionHost = Annotated[
    str,
    typer.Option(
        help="Address that sessions' ports are forwarded on; buyers connect to it. "
        "Set this machine's public address to serve sessions beyond this host.",
    ),
]
KeepFailedWork = Annotated[
    bool, typer.Option(help="Keep the work dir of a job that did not succeed, for debugging.")
]
CheckpointEvery = Annotated[
    float,
    typer.Option(
        min=0.5,
        help="Seconds between checks of a job's checkpoint folder; a changed folder is "
        "uploaded, so a job moved to another node resumes from there.",
    ),
]
CheckHost = Annotated[
    str,
    typer.Option(
        help="Address the check endpoint listens on and advertises; checkers connect to it. "
        "Set this machine's public address to be checked beyond this host.",
    ),
]
CheckPort = Annotated[
    int, typer.Option(min=0, max=65535, help="Port of the check endpoint; 0 picks a free one.")
]
Misbehave = Annotated[
    list[str] | None,
    typer.Option(
        "--misbehave",
        metavar="MODE",
        help="For demos and tests of the checkers only: make this node lie. Repeatable: "
        "claim-faster, random-outputs, replay, impersonate, offline-idle, skip-jobs=F.",
        show_default=False,
    ),
]


@app.command("start")
def start(
    indexer: Annotated[str, INDEXER_OPTION] = DEFAULT_INDEXER_URL,
    key: Key = "operator",
    keys_dir: KeysDir = None,
    price: Price = "1.99",
    region: Region = "eu-west",
    data_dir: DataDir = None,
    interval: Interval = 60.0,
    benchmark_size: BenchmarkSize = 1024,
    runtime: RuntimeNames = None,
    allow_network: AllowNetwork = False,
    job_uid: JobUid = NOBODY_UID,
    work_dir: WorkDir = None,
    session_host: SessionHost = "127.0.0.1",
    keep_failed_work: KeepFailedWork = False,
    checkpoint_every: CheckpointEvery = 10.0,
    check_host: CheckHost = "127.0.0.1",
    check_port: CheckPort = 0,
    misbehave: Misbehave = None,
) -> None:
    """Register this machine with an indexer, heartbeat, and run the jobs it is given.

    Jobs run one at a time in a sandbox (bubblewrap, or Docker for jobs that ask for
    it), with the CPU, memory and time their spec asks for, and no network unless
    --allow-network. Checkers probe the node at its check endpoint (--check-host,
    --check-port). Logs one line per state change (registered, indexer lost, back
    online, left) and one when a job is taken and when it finishes. Runs until Ctrl-C
    or SIGTERM; a running job is then cancelled and reported, so the indexer can give it
    to another node.
    """
    from gpunet.node.agent import NodeAgent
    from gpunet.node.identity import load_or_create_node_id
    from gpunet.node.misbehave import parse_misbehaviour
    from gpunet.node.setup import CheckServer, JobOptions, job_worker, serve_checks
    from gpunet.protocol.units import parse_usd
    from gpunet.sdk import Client

    setup_logging()
    price_micros = parse_usd(price, "price")
    lies = parse_misbehaviour(misbehave or ())
    runtimes = choose_runtimes(runtime, job_uid)
    account, key_info, created = load_or_create_key(key, keys_dir)
    if created:
        note(f"created key {key_info.name}: address {key_info.address}, file {key_info.path}")
    node_dir = data_dir or default_node_dir()
    node_id = load_or_create_node_id(node_dir)
    jobs = JobOptions(
        work_dir or node_dir / "work",
        allow_network,
        session_host,
        keep_failed_work,
        checkpoint_every,
    )
    with CheckServer(check_host, check_port) as checks:
        registration, gpus = describe_machine(
            node_dir,
            benchmark_size,
            price_micros,
            region,
            runtimes=sorted(runtimes),
            allows_network=allow_network,
            check_url=checks.url,
            misbehaviour=lies,
        )
        note(f"node {node_id}, operator {account.address}, indexer {indexer}")
        note(_jobs_summary(runtimes, allow_network, session_host))
        note(_checks_summary(checks.url, lies))
        with Client(indexer, account) as client:
            agent = NodeAgent(client, node_id, registration, interval_s=interval)
            worker = job_worker(client, node_id, runtimes, gpus, jobs, lies)
            serve_checks(checks, node_id, account, registration, worker, lies)
            _run_node(agent, worker, take_jobs=bool(runtimes))


def choose_runtimes(names: list[str] | None, job_uid: int) -> dict[str, Runtime]:
    """The runtimes to offer: those named (each must work here), else all that work."""
    from gpunet.errors import ConfigError
    from gpunet.node.runtime import BwrapRuntime, DockerRuntime, detect_runtimes

    if names == [NO_RUNTIME]:
        return {}
    known: dict[str, Runtime] = {
        "bwrap": BwrapRuntime(job_uid=job_uid, job_gid=job_uid),
        "docker": DockerRuntime(job_uid=job_uid, job_gid=job_uid),
    }
    if not names:
        return {name: known.get(name, found) for name, found in detect_runtimes().items()}
    chosen: dict[str, Runtime] = {}
    for name in names:
        if name not in known:
            raise ConfigError(
                f"--runtime {name!r} is not a job runtime; use bwrap, docker, or none alone"
            )
        problem = known[name].available()
        if problem is not None:
            raise ConfigError(f"--runtime {name} cannot run jobs on this machine: {problem}")
        chosen[name] = known[name]
    return chosen


def _run_node(agent: NodeAgent, worker: JobWorker, *, take_jobs: bool) -> None:
    """Heartbeat in this thread and run jobs in another; on a signal, stop jobs first."""
    from gpunet.node.signals import stop_on_signals

    jobs = threading.Thread(target=worker.run, name="job-worker", daemon=True)

    def stop_jobs() -> None:
        worker.stop()
        if jobs.is_alive():
            jobs.join(timeout=STOP_GRACE_S)

    def stop_all() -> None:
        stop_jobs()
        agent.stop()

    with stop_on_signals(stop_all):
        if take_jobs:
            jobs.start()
        try:
            agent.run()
        finally:
            stop_jobs()


def describe_machine(
    node_dir: Path,
    benchmark_size: int,
    price_micros: int,
    region: str,
    *,
    runtimes: list[str] | None = None,
    allows_network: bool = False,
    check_url: str | None = None,
    misbehaviour: Misbehaviour | None = None,
) -> tuple[NodeRegistration, int]:
    """Detect hardware, run the benchmark, and build the checked registration.

    Returns the registration and the number of GPUs the machine really has (a
    ``claim-faster`` registration claims more).
    """
    from gpunet.node.benchmark import run_benchmark
    from gpunet.node.hardware import detect_hardware
    from gpunet.node.misbehave import HONEST
    from gpunet.node.registration import build_registration

    hardware = detect_hardware(node_dir)
    # Without a detected GPU, importing torch or CuPy only to find no device would
    # cost the agent some 200 MB of memory for as long as it runs.
    benchmark = run_benchmark(size=benchmark_size, prefer_gpu=bool(hardware.gpus))
    registration = build_registration(
        hardware,
        benchmark,
        price_micros,
        region,
        runtimes=runtimes or (),
        allows_network=allows_network,
        check_url=check_url,
        misbehaviour=misbehaviour or HONEST,
    )
    note(_summary(registration, benchmark))
    return registration, len(hardware.gpus)


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


def _jobs_summary(runtimes: dict[str, Runtime], allow_network: bool, session_host: str) -> str:
    if not runtimes:
        return "jobs: none (no --runtime); this node only heartbeats"
    network = "allowed" if allow_network else "off (--allow-network to allow)"
    return (
        f"jobs: runtimes {', '.join(sorted(runtimes))}; network {network}; "
        f"sessions forwarded on {session_host}"
    )


def _checks_summary(url: str, lies: Misbehaviour) -> str:
    line = f"checks: endpoint {url}"
    if lies.honest:
        return line
    return f"{line}; MISBEHAVING on purpose ({lies.describe()}), for demos and tests only"
