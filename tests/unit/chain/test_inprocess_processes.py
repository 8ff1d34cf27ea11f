"""Several processes on one in-process chain: each sees the others' transactions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpunet.chain.artifacts import Artifact, Artifacts
from gpunet.chain.inprocess import InProcessChain

from .conftest import DEPLOYER
from .test_inprocess import ALICE, BOB, balance, deploy_token, send

pytestmark = pytest.mark.slow  # each process imports py-evm and the compiler


@pytest.fixture
def token(artifacts: Artifacts) -> Artifact:
    return artifacts.get("Token")


SENDER_SCRIPT = """
import sys
from pathlib import Path
from gpunet.chain.abi import find_function
from gpunet.chain.artifacts import Artifacts
from gpunet.chain.inprocess import InProcessChain
transfer = find_function(Artifacts().get("Token").abi, "transfer")
chain = InProcessChain(Path(sys.argv[1]))
for _ in range(int(sys.argv[4])):
    chain.transact(None, sys.argv[2], transfer, [sys.argv[3], 1])
"""


def test_processes_sending_at_once_each_see_all_transactions(
    backend: InProcessChain, token: Artifact, data_dir: Path, cache_dir: Path
) -> None:
    address = deploy_token(backend, token)
    env = {**os.environ, "GPUNET_CACHE_DIR": str(cache_dir)}
    others = [
        subprocess.Popen(
            [sys.executable, "-c", SENDER_SCRIPT, str(data_dir), address, BOB, "20"], env=env
        )
        for _ in range(2)
    ]
    while balance(backend, token, address, BOB) == 0 and all(o.poll() is None for o in others):
        pass  # start sending once the others are sending, so that the three interleave
    for _ in range(20):
        send(backend, token, address, ALICE, 1)
    assert [other.wait(timeout=60) for other in others] == [0, 0]
    assert balance(backend, token, address, BOB) == 40
    assert balance(backend, token, address, ALICE) == 20
    assert balance(InProcessChain(data_dir), token, address, DEPLOYER) == 1_000 - 60
