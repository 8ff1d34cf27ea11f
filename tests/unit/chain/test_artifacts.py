from __future__ import annotations

from pathlib import Path

import pytest

from gpunet.chain import artifacts as artifacts_module
from gpunet.chain.artifacts import Artifacts
from gpunet.chain.errors import ChainError

COUNTER = """# pragma version ~=0.4.3
count: public(uint256)

@external
def bump(by: uint256):
    self.count += by
"""


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    directory = tmp_path / "contracts"
    directory.mkdir()
    (directory / "Counter.vy").write_text(COUNTER)
    return directory


def test_a_contract_compiles_once_then_comes_from_the_cache(
    sources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Artifacts(sources, tmp_path / "cache").get("Counter")
    assert first.bytecode and any(e.get("name") == "bump" for e in first.abi)

    def refuse(path: Path) -> None:
        raise AssertionError(f"compiled {path} again")

    monkeypatch.setattr(artifacts_module, "_compile", refuse)
    again = Artifacts(sources, tmp_path / "cache").get("Counter")
    assert again == first


def test_an_edited_source_gets_a_new_key_and_is_compiled_again(
    sources: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    before = Artifacts(sources, cache).get("Counter")
    (sources / "Counter.vy").write_text(COUNTER + "\n@external\ndef zero():\n    self.count = 0\n")
    after = Artifacts(sources, cache).get("Counter")
    assert after.source_hash != before.source_hash
    assert any(e.get("name") == "zero" for e in after.abi)


def test_a_damaged_cache_entry_is_replaced(sources: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = Artifacts(sources, cache).get("Counter")
    entry = next((cache / "contracts").glob("Counter-*.json"))
    entry.write_text("{not json")
    assert Artifacts(sources, cache).get("Counter") == good


def test_an_unknown_contract_and_a_compile_error_are_chain_errors(
    sources: Path, tmp_path: Path
) -> None:
    with pytest.raises(ChainError, match="no contract source"):
        Artifacts(sources, tmp_path / "cache").get("Absent")
    (sources / "Broken.vy").write_text("# pragma version ~=0.4.3\nx: public(uint257)\n")
    with pytest.raises(ChainError, match="cannot compile"):
        Artifacts(sources, tmp_path / "cache").get("Broken")


def test_the_project_contracts_compile(artifacts: Artifacts) -> None:
    for name in ("Token", "PartnerToken", "Vesting", "RewardDistributor", "Staking", "Escrow"):
        assert artifacts.get(name).bytecode


def test_a_module_it_imports_is_part_of_the_key_and_others_are_not(
    sources: Path, tmp_path: Path
) -> None:
    (sources / "Shared.vy").write_text("# pragma version ~=0.4.3\nLIMIT: constant(uint256) = 5\n")
    (sources / "User.vy").write_text(
        "# pragma version ~=0.4.3\nimport Shared\n\n@external\n@view\n"
        "def limit() -> uint256:\n    return Shared.LIMIT\n"
    )
    arts = Artifacts(sources, tmp_path / "cache")
    user, counter = arts.source_hash("User"), arts.source_hash("Counter")
    (sources / "Shared.vy").write_text("# pragma version ~=0.4.3\nLIMIT: constant(uint256) = 6\n")
    assert arts.source_hash("User") != user
    assert arts.source_hash("Counter") == counter
    assert any(e.get("name") == "limit" for e in arts.get("User").abi)
