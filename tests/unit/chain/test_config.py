from __future__ import annotations

from pathlib import Path

import pytest

from gpunet.chain.config import load_config, parse_config
from gpunet.errors import ConfigError
from gpunet.protocol.allocation import DEFAULT_ALLOCATION, emission_capacity
from gpunet.protocol.penalties import k_value

EXAMPLES = Path(__file__).parents[3] / "examples" / "chain"


def test_an_empty_config_takes_the_design_defaults() -> None:
    config = parse_config({})
    assert config.payments.protocol_fee_bps == 2_000
    assert config.rewards.fee_vest_s == 45 * 86_400
    assert config.staking.unstake_delay_s == 180 * 86_400
    assert config.staking.max_multiplier_bps == 40_000
    assert config.emission.caps()[-1] == emission_capacity(DEFAULT_ALLOCATION)


def test_collateral_is_k_of_one_gpu_times_the_coefficient() -> None:
    config = parse_config({"staking": {"collateral": {"coefficient_bps": 5_000}}})
    requirements = config.staking.collateral.requirements()
    assert requirements["H100"] == k_value("H100", 1) // 2
    assert requirements["CPU"] == k_value("CPU", 0) // 2


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"roles": {"admin": "0x12"}}, "roles.admin"),
        ({"tokn": {}}, "tokn: unknown key"),
        ({"staking": {"max_lock_s": 10}}, "max_lock_s must be above min_lock_s"),
        ({"pools": {"teem": {"beneficiary": "0x" + "11" * 20}}}, "unknown vesting pool 'teem'"),
        ({"payments": {"token": "eth"}}, "payments.token"),
        ({"payments": {"protocol_fee_bps": 6_000}}, "payments.protocol_fee_bps"),
        ({"rewards": {"early_penalty_bps": "10"}}, "rewards.early_penalty_bps"),
        ({"emission": {"cap_months": 24}}, "raise cap_months"),
        ({"token": {"symbol": "TOOLONG"}}, "token.symbol"),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(data: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        parse_config(data, "config x.toml")


def test_a_file_that_is_not_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[roles\nadmin = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml is not valid TOML"):
        load_config(path)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.toml")


@pytest.mark.parametrize("name", ["local.toml", "hardhat.toml"])
def test_the_examples_are_valid(name: str) -> None:
    config = load_config(EXAMPLES / name)
    assert config.token.symbol


def test_the_config_hash_changes_with_any_value() -> None:
    assert parse_config({}).config_hash() == parse_config({}).config_hash()
    changed = parse_config({"rewards": {"claim_window_s": 86_400}})
    assert changed.config_hash() != parse_config({}).config_hash()
