"""Scenario files and overrides: values land in the parameters; mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpunet.sim import ScenarioError, load_scenario
from gpunet.sim.errors import SimError
from gpunet.sim.params import Params
from gpunet.sim.scenario import Scenario, apply_overrides, scenario_from_mapping

EXAMPLES = Path(__file__).parents[3] / "examples" / "sim"


def write(tmp_path: Path, text: str, name: str = "bear.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_values_land_in_the_parameters(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'name = "my bear"\n[market]\ndrift = -1\nvolatility = 0.5\n'
        "[design]\nstaking = false\n[simulation]\npaths = 7\n"
        '[[providers.templates]]\ngpu_model = "L40S"\ngpus = 100\n',
    )
    scenario = load_scenario(path)
    assert scenario.name == "my bear"
    assert scenario.params.market.drift == -1.0
    assert isinstance(scenario.params.market.drift, float)
    assert scenario.params.market.volatility == 0.5
    assert scenario.params.design.staking is False
    assert scenario.params.simulation.paths == 7
    assert [t.gpu_model for t in scenario.params.providers.templates] == ["L40S"]
    assert scenario.params.demand == Params().demand


def test_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    assert load_scenario(write(tmp_path, "", "quiet.toml")).name == "quiet"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[market]\nvolatility = -0.2\n",
            "scenario 'bear.toml': market.volatility has value -0.2; must be >= 0",
        ),
        ("[market]\nvolatilty = 0.2\n", "scenario 'bear.toml': market.volatilty has value 0.2"),
        ("[markets]\ndrift = 0.2\n", "markets has value"),
        ('[design]\nstaking = "yes"\n', "design.staking has value 'yes'; must be true or false"),
        ("[design]\nprotocol_fee = 1.5\n", "design.protocol_fee has value 1.5; must be <= 1"),
        ("[simulation]\npaths = 2.5\n", "simulation.paths has value 2.5; must be a whole number"),
        ("[market]\ndrift = true\n", "market.drift has value True"),
        ("market = 3\n", "market has value 3; must be a table"),
        (
            '[[providers.templates]]\ngpu_model = "Z80"\n',
            "providers.templates.0.gpu_model has value 'Z80'",
        ),
        ("[demand]\nnetwork_price_per_hour = 9.0\n", "must be below hyperscaler_price_per_hour"),
        ("name = 3\n", "name has value 3; must be a string"),
        ("[market\n", "not valid TOML"),
    ],
)
def test_mistakes_are_refused_with_key_and_value(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    assert message in str(caught.value)


def test_unknown_keys_list_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="known: initial_price, pool_liquidity_usd"):
        load_scenario(write(tmp_path, "[market]\nprice = 1\n"))


def test_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="cannot read"):
        load_scenario(tmp_path / "absent.toml")


def test_overrides_set_dotted_keys_and_list_items() -> None:
    params = apply_overrides(
        Params(),
        {"market.drift": 0.3, "providers.templates.1.capex_usd": 9000, "design.staking": False},
    )
    assert params.market.drift == 0.3
    assert params.providers.templates[1].capex_usd == 9000.0
    assert params.design.staking is False
    assert Params().providers.templates[1].capex_usd == 12_000.0  # the original is untouched


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"market.drfit": 0.1}, "market.drfit has value 0.1; unknown key"),
        ({"providers.templates.9.gpus": 1}, "providers.templates.9.gpus has value 1"),
        ({"market.volatility": -1}, "market.volatility has value -1.0; must be >= 0"),
    ],
)
def test_bad_overrides_are_named(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace(".", r"\.")):
        Scenario("sweep", Params()).with_overrides(overrides)


def test_with_overrides_keeps_name_and_description() -> None:
    scenario = scenario_from_mapping({"name": "a", "description": "b"})
    changed = scenario.with_overrides({"simulation.years": 2})
    assert (changed.name, changed.description) == ("a", "b")
    assert changed.params.simulation.years == 2.0


def test_shipped_examples_load_with_a_description() -> None:
    names = {load_scenario(path).name for path in EXAMPLES.glob("*.toml")}
    assert names == {
        "default-bull",
        "default-sideways",
        "default-bear",
        "one-way",
        "staking-partners",
        "burn-and-mint",
    }
    for path in EXAMPLES.glob("*.toml"):
        assert path.read_text(encoding="utf-8").startswith("#")
        assert load_scenario(path).description


def test_one_way_is_rewards_and_nothing_else() -> None:
    design = load_scenario(EXAMPLES / "one-way.toml").params.design
    assert not design.staking
    assert design.partner_rewards_usd_per_year == 0
    assert design.fee_burn_share == 0
    assert not design.burn_and_mint
