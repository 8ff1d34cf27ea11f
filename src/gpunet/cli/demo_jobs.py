"""The demo's job steps: a buyer deposits, quotes, runs a job, and survives a node's crash.

The specs are inline so that the demo runs from an installed package too; the same
jobs live as files under ``examples/jobs``.
"""

from __future__ import annotations

import threading
import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from gpunet.api.jobs import JobDetail, LogLine
from gpunet.cli.console import out
from gpunet.cli.job_views import describe_event, print_bill, print_event, print_log_line
from gpunet.cli.localnet import LocalNetwork, wait_until
from gpunet.errors import GpunetError
from gpunet.protocol.units import MICROS_PER_USD, format_usd
from gpunet.sdk import Client
from gpunet.sdk.jobs import follow

DEPOSIT_USD = 5
JOB_TIMEOUT_S = 120.0
KILL_AFTER_S = 2.5

MATRIX_SPEC: dict[str, Any] = {
    "name": "matrix-cpu",
    "command": [
        "python",
        "-c",
        "import time, numpy as np\n"
        "a = np.random.default_rng(1).random((512, 512))\n"
        "t = time.perf_counter(); a @ a; s = time.perf_counter() - t\n"
        "print(f'512 x 512 product: {2 * 512**3 / s / 1e9:.2f} GFLOPS')\n"
        "open('result.txt', 'w').write(f'{s:.6f}')",
    ],
    "outputs": ["result.txt"],
    "max_price": "1.00",
    "max_duration": "2m",
    "resources": {"cpu_cores": 1, "memory": "1GiB"},
    "env": {"OPENBLAS_NUM_THREADS": "1"},
}

# Counts to 24, a quarter second a step, saving its step in ckpt/ as it goes; on a
# new node it starts from the saved step. done.txt says where the last run began.
CHECKPOINTED_SPEC: dict[str, Any] = {
    "name": "checkpointed",
    "command": [
        "python",
        "-c",
        "import os, time, pathlib\n"
        "saved = pathlib.Path('ckpt/step')\n"
        "start = int(saved.read_text()) if saved.exists() else 0\n"
        "print(f'starting at step {start}', flush=True)\n"
        "os.makedirs('ckpt', exist_ok=True)\n"
        "for step in range(start, 24):\n"
        "    time.sleep(0.25)\n"
        "    tmp = pathlib.Path('ckpt/step.tmp'); tmp.write_text(str(step + 1))\n"
        "    os.replace(tmp, saved)\n"
        "    print(f'step {step + 1}', flush=True)\n"
        "open('done.txt', 'w').write(str(start))",
    ],
    "outputs": ["done.txt"],
    "checkpoint_dir": "ckpt",
    "max_price": "1.00",
    "max_duration": "2m",
    "resources": {"cpu_cores": 1, "memory": "512MiB"},
}


class DemoJobFailed(GpunetError):
    """A job step of the demo did not show what it should have."""


@dataclass
class Buyer:
    """The demo's buyer: an in-memory key and a client signing with it."""

    network: LocalNetwork
    account: LocalAccount = field(default_factory=Account.create)

    def client(self) -> Client:
        return Client(self.network.spec.url, self.account, timeout=10.0)


def deposit_and_quote(buyer: Buyer) -> None:
    with buyer.client() as client:
        view = client.deposit(DEPOSIT_USD * MICROS_PER_USD)
        out.print(f"buyer {buyer.account.address} deposited {DEPOSIT_USD} USD")
        out.print(f"available: {format_usd(view.available_micros)} USD")
        quote = client.quote(MATRIX_SPEC)
    if quote.best is None:
        raise DemoJobFailed(f"no offer qualifies for the demo job: {quote.advice}")
    out.print(
        f"quote: {quote.qualifying} of {quote.checked} offers qualify; best "
        f"{format_usd(quote.best.price_micros)} USD per node-hour on {quote.best.node_id}, "
        f"at most {format_usd(quote.estimated_micros or 0)} USD for 2 minutes"
    )


def _watch(client: Client, job_id: str) -> JobDetail:
    feed = follow(client, job_id, poll_s=5)
    with closing(feed):
        for item in feed:
            if isinstance(item, LogLine):
                print_log_line(item)
            else:
                print_event(item, describe_event(client, job_id, item))
    return client.get_job(job_id)


def run_job(buyer: Buyer) -> None:
    with buyer.client() as client:
        job = client.submit_job(MATRIX_SPEC)
        finished = _watch(client, job.job_id)
        if finished.state != "succeeded":
            raise DemoJobFailed(f"job {job.job_id} ended {finished.state}: {finished.message}")
        result = client.download_output(job.job_id, "result.txt")
        out.print(f"output result.txt ({len(result)} bytes) downloaded, SHA-256 checked")
        print_bill(finished)


def survive_a_crash(buyer: Buyer, network: LocalNetwork) -> None:
    """Kill the node running a checkpointed job; the job resumes on another node."""
    killed: list[str] = []
    with buyer.client() as client:
        job = client.submit_job(CHECKPOINTED_SPEC)
        killer = threading.Thread(
            target=_kill_when_running, args=(buyer, network, job.job_id, killed), daemon=True
        )
        killer.start()
        finished = _watch(client, job.job_id)
        killer.join(timeout=JOB_TIMEOUT_S)
        if not killed:
            raise DemoJobFailed("the checkpointed job ended before its node could be killed")
        if finished.state != "succeeded" or finished.attempts < 2:
            raise DemoJobFailed(
                f"job {job.job_id} ended {finished.state} after {finished.attempts} attempt(s)"
            )
        resumed_at = client.download_output(job.job_id, "done.txt").decode().strip()
        out.print(f"the second node resumed at step {resumed_at} from the last checkpoint")
        if resumed_at == "0":
            raise DemoJobFailed("the job started over instead of resuming from its checkpoint")
        out.print("the killed attempt cost nothing; the bill covers the delivered run only:")
        print_bill(finished)
    network.start_node(killed[0])


def _kill_when_running(buyer: Buyer, network: LocalNetwork, job_id: str, killed: list[str]) -> None:
    """Once the job has run for a while (and checkpointed), SIGKILL its node."""
    with buyer.client() as client:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while client.get_job(job_id).state != "running":
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)
        time.sleep(KILL_AFTER_S)
        lease = client.get_job(job_id).lease
        if lease is None:
            return
        name = _node_name(network, lease.node_id)
        out.print(f"[bold red]killing {name} ({lease.node_id}) with SIGKILL[/]")
        network.kill_node(name)
        killed.append(name)


def _node_name(network: LocalNetwork, node_id: str) -> str:
    for name in network.nodes:
        if network.node_id(name) == node_id:
            return name
    raise DemoJobFailed(f"node {node_id} is not one of this network's nodes")


def show_earnings(network: LocalNetwork) -> None:
    with network.client() as client:
        nodes = client.list_nodes(limit=1000).nodes
        for operator in sorted({node.operator for node in nodes}):
            view = client.get_account(operator)
            if view.earned_micros:
                out.print(f"operator {operator}: earned {format_usd(view.earned_micros)} USD")


def wait_for_idle(network: LocalNetwork, count: int, timeout_s: float = 60.0) -> None:
    with network.client() as client:
        wait_until(
            lambda: client.list_offers(where="state=idle").total >= count,
            timeout_s,
            f"fewer than {count} idle nodes after {timeout_s:g}s",
        )
