from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import fields
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import UnknownGpuModel, ValidationError
from gpunet.protocol.catalogue import CATALOGUE, CPU_MODEL
from gpunet.protocol.jobspec import (
    DEFAULT_MAX_DURATION_S,
    DEFAULT_SESSION_HOLD_S,
    MAX_DEADLINE_S,
    MAX_DURATION_S,
    MAX_FILES,
    MAX_FP16_TFLOPS,
    MAX_VRAM_GIB,
    SPEC_VERSION,
    EnvVars,
    InputFile,
    JobSpec,
    Resources,
    billing_units,
    input_sources,
    job_spec_from_dict,
    job_spec_to_dict,
    max_cost_micros,
    parse_job_spec,
)
from gpunet.protocol.offers import MAX_CPU_CORES, MAX_MEMORY_MIB, MAX_PRICE_MICROS
from gpunet.protocol.units import format_usd

ROOT = Path(__file__).parents[3]
EXAMPLES = ROOT / "examples" / "jobs"
REFERENCE = ROOT / "docs" / "job-spec.md"
BASE: dict[str, Any] = {"name": "bench", "command": "python bench.py", "max_price": "1.00"}

FULL_YAML = """\
name: train-small
command: [python, train.py, --epochs, "3"]
resources:
  gpu_count: 2
  gpu_model: a100-80gb
  min_vram: 40GiB
  min_fp16_tflops: 200
  cpu_cores: 8
  memory: 32GiB
  disk: 100
inputs:
  - train.py
  - source: ../data/train.csv
    target: ./data//train.csv
outputs: [out/*.csv, ./model.pt]
env: {EPOCHS: "3", DATA_DIR: data}
max_price: 2.50
max_duration: 1h30m
deadline: 6h
region: eu
redundancy: 2
network: true
checkpoint_dir: ckpt/
"""


def spec(**changes: Any) -> JobSpec:
    return job_spec_from_dict({**BASE, **changes})


def refused(**changes: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        spec(**changes)
    return info.value


def assert_names(error: ValidationError, field: str, value: Any) -> None:
    """The error names the field and shows the value, as buyers see it."""
    assert error.field == field
    assert error.value == value
    assert field in str(error)
    assert repr(value) in str(error)


# --- the full example and the defaults ---


def test_full_spec_reads_every_friendly_form() -> None:
    parsed = parse_job_spec(FULL_YAML)

    assert parsed.resources == Resources(2, "A100-80GB", 200.0, 40, 8, 32 * 1024, 100)
    assert parsed.command == ("python", "train.py", "--epochs", "3")
    assert parsed.inputs == (
        InputFile("train.py", "train.py"),
        InputFile("../data/train.csv", "data/train.csv"),
    )
    assert parsed.outputs == ("out/*.csv", "model.pt")
    assert dict(parsed.env) == {"EPOCHS": "3", "DATA_DIR": "data"}
    assert parsed.max_price_micros == 2_500_000
    assert (parsed.max_duration_s, parsed.deadline_s) == (5400, 6 * 3600)
    assert (parsed.region, parsed.redundancy, parsed.network) == ("eu", 2, True)
    assert parsed.checkpoint_dir == "ckpt"


def test_a_minimal_spec_takes_the_documented_defaults() -> None:
    parsed = spec()

    assert parsed.kind == "job"
    assert parsed.resources == Resources()
    assert parsed.resources.memory_mib == 1024
    assert parsed.command == ("python", "bench.py")
    assert (parsed.inputs, parsed.outputs, dict(parsed.env)) == ((), (), {})
    assert parsed.max_duration_s == DEFAULT_MAX_DURATION_S == 3600
    assert parsed.deadline_s is None
    assert (parsed.redundancy, parsed.network, parsed.runtime) == (1, False, "bwrap")
    assert (parsed.image, parsed.checkpoint_dir, parsed.expose_port) == (None, None, None)


def test_null_values_mean_the_default() -> None:
    assert spec(region=None, redundancy=None, resources=None, env=None) == spec()


def test_friendly_and_canonical_keys_give_equal_specs() -> None:
    friendly = spec(max_price="2.5", max_duration="30m", resources={"memory": "4GiB"})
    canonical = job_spec_from_dict(
        {
            "name": "bench",
            "command": ["python", "bench.py"],
            "max_price_micros": 2_500_000,
            "max_duration_s": 1800,
            "resources": {"memory_mib": 4096},
        }
    )
    assert friendly == canonical


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_price_micros": 1_000_000}, "max_price"),
        ({"max_duration": "1h", "max_duration_s": 3600}, "max_duration"),
        ({"resources": {"memory": "1GiB", "memory_mib": 1024}}, "resources.memory"),
    ],
)
def test_both_spellings_of_one_field_are_refused(changes: dict[str, Any], field: str) -> None:
    error = refused(**changes)
    assert error.field == field
    assert "not both" in error.message


def test_specs_are_hashable_and_env_order_does_not_matter() -> None:
    one = spec(env={"A": "1", "B": "2"})
    two = spec(env={"B": "2", "A": "1"})
    assert one == two
    assert hash(one) == hash(two)
    assert one.env == {"A": "1", "B": "2"}
    assert list(one.env) == ["A", "B"]


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(ValidationError) as info:
        JobSpec(name="x", command=("run",), max_price_micros=0)
    assert info.value.field == "max_price_micros"
    made = JobSpec(name="x", command=["run"], max_price_micros=1, env={"Z": "z"})  # type: ignore[arg-type]
    assert made.command == ("run",)
    assert isinstance(made.env, EnvVars)


# --- unknown and missing fields ---


@pytest.mark.parametrize(
    ("changes", "field", "hint"),
    [
        ({"max_duraton": "1h"}, "max_duraton", "did you mean 'max_duration'?"),
        ({"resources": {"gpu_cuont": 1}}, "resources.gpu_cuont", "did you mean 'gpu_count'?"),
        ({"inputs": [{"source": "a", "taget": "b"}]}, "inputs[0].taget", "'target'"),
        ({"gpu_count": 1}, "gpu_count", "belongs under resources"),
        ({"zzzz": 1}, "zzzz", "known: "),
    ],
)
def test_unknown_fields_are_refused_with_a_suggestion(
    changes: dict[str, Any], field: str, hint: str
) -> None:
    error = refused(**changes)
    assert error.field == field
    assert "unknown field" in error.message
    assert hint in error.message


@pytest.mark.parametrize(
    ("missing", "field"),
    [("name", "name"), ("max_price", "max_price"), ("command", "command")],
)
def test_required_fields_are_named_when_missing(missing: str, field: str) -> None:
    data = {key: value for key, value in BASE.items() if key != missing}
    with pytest.raises(ValidationError) as info:
        job_spec_from_dict(data)
    assert info.value.field == field
    assert "required" in info.value.message


@pytest.mark.parametrize("command", ["", "   ", [], [""]])
def test_an_empty_command_is_refused(command: Any) -> None:
    assert refused(command=command).field == "command"


def test_command_strings_are_split_like_a_shell() -> None:
    parsed = spec(command="python -c 'print(1 + 1)' --flag")
    assert parsed.command == ("python", "-c", "print(1 + 1)", "--flag")
    assert "split" in refused(command="python 'unclosed").message


def test_command_items_must_be_text() -> None:
    assert_names(refused(command=["python", "train.py", 3]), "command[2]", 3)


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "slash/name", "ünï"])
def test_bad_names_are_refused(name: str) -> None:
    assert_names(refused(name=name), "name", name)


def test_name_must_be_text() -> None:
    assert refused(name=12).field == "name"


# --- resources ---


@pytest.mark.parametrize(
    ("resources", "field", "value"),
    [
        ({"gpu_count": 17}, "resources.gpu_count", 17),
        ({"gpu_count": -1}, "resources.gpu_count", -1),
        ({"gpu_count": True}, "resources.gpu_count", True),
        ({"gpu_count": 1, "min_vram_gib": MAX_VRAM_GIB + 1}, "resources.min_vram_gib", 142),
        ({"gpu_count": 1, "min_vram": "200GiB"}, "resources.min_vram", "200GiB"),
        ({"gpu_count": 1, "min_fp16_tflops": 5000}, "resources.min_fp16_tflops", 5000.0),
        ({"gpu_count": 1, "min_fp16_tflops": -1}, "resources.min_fp16_tflops", -1.0),
        ({"gpu_count": 1, "min_fp16_tflops": "fast"}, "resources.min_fp16_tflops", "fast"),
        ({"cpu_cores": 0}, "resources.cpu_cores", 0),
        ({"cpu_cores": MAX_CPU_CORES + 1}, "resources.cpu_cores", MAX_CPU_CORES + 1),
        ({"memory_mib": 0}, "resources.memory_mib", 0),
        ({"memory": "20TiB"}, "resources.memory", "20TiB"),
        ({"disk_gib": -1}, "resources.disk_gib", -1),
    ],
)
def test_impossible_resources_are_refused(
    resources: dict[str, Any], field: str, value: Any
) -> None:
    assert_names(refused(resources=resources), field, value)


def test_fp16_tflops_limit_is_the_fastest_catalogue_model() -> None:
    top = MAX_FP16_TFLOPS
    assert top in {m.fp16_tflops for m in CATALOGUE.values()}
    assert spec(resources={"gpu_count": 1, "min_fp16_tflops": top}).resources.min_fp16_tflops == top
    assert refused(resources={"gpu_count": 1, "min_fp16_tflops": top + 1}).field == (
        "resources.min_fp16_tflops"
    )


def test_not_a_number_tflops_is_refused() -> None:
    with pytest.raises(ValidationError, match="finite"):
        Resources(gpu_count=1, min_fp16_tflops=float("nan"))


def test_unknown_gpu_model_lists_the_known_ones() -> None:
    with pytest.raises(UnknownGpuModel) as info:
        spec(resources={"gpu_count": 1, "gpu_model": "B300X"})
    assert_names(info.value, "resources.gpu_model", "B300X")
    assert "H100" in info.value.message
    assert "RTX4090" in info.value.message


@pytest.mark.parametrize(("written", "name"), [("h100", "H100"), ("a100-80gb", "A100-80GB")])
def test_gpu_models_take_the_catalogue_spelling(written: str, name: str) -> None:
    parsed = spec(resources={"gpu_count": 1, "gpu_model": written})
    assert parsed.resources.gpu_model == name


def test_cpu_is_not_a_gpu_model() -> None:
    error = refused(resources={"gpu_count": 1, "gpu_model": CPU_MODEL})
    assert_names(error, "resources.gpu_model", CPU_MODEL)
    assert "gpu_count: 0" in error.message


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ({"gpu_model": "T4"}, "resources.gpu_model"),
        ({"min_vram": 8}, "resources.min_vram"),
        ({"min_fp16_tflops": 10}, "resources.min_fp16_tflops"),
    ],
)
def test_gpu_requirements_need_gpus(resources: dict[str, Any], field: str) -> None:
    error = refused(resources=resources)
    assert error.field == field
    assert "gpu_count is 0" in error.message


def test_requirements_above_the_chosen_model_are_refused() -> None:
    vram = refused(resources={"gpu_count": 1, "gpu_model": "T4", "min_vram": "20GiB"})
    assert_names(vram, "resources.min_vram", "20GiB")
    assert "16 GiB of a T4" in vram.message
    tflops = refused(resources={"gpu_count": 1, "gpu_model": "T4", "min_fp16_tflops": 100})
    assert_names(tflops, "resources.min_fp16_tflops", 100.0)
    assert "65 TFLOPS" in tflops.message


@pytest.mark.parametrize(
    ("written", "mib"),
    [
        ("4GiB", 4096),
        ("512MiB", 512),
        (2048, 2048),
        ("1.5GiB", 1536),
        ("2 gi", 2048),
        ("1TiB", 2**20),
    ],
)
def test_memory_sizes(written: Any, mib: int) -> None:
    assert spec(resources={"memory": written}).resources.memory_mib == mib


@pytest.mark.parametrize("written", ["4GB", "lots", "0.5MiB", "-1GiB", True, 1.5])
def test_bad_memory_sizes_name_the_value(written: Any) -> None:
    assert_names(refused(resources={"memory": written}), "resources.memory", written)


@pytest.mark.parametrize(("written", "gib"), [(20, 20), ("20GiB", 20), ("2TiB", 2048), ("0", 0)])
def test_disk_sizes_are_whole_gib(written: Any, gib: int) -> None:
    assert spec(resources={"disk": written}).resources.disk_gib == gib


def test_disk_in_part_gib_is_refused() -> None:
    error = refused(resources={"disk": "512MiB"})
    assert_names(error, "resources.disk", "512MiB")
    assert "whole GiB" in error.message


# --- money and time ---


@pytest.mark.parametrize(
    ("written", "micros"), [("2.50", 2_500_000), (2.5, 2_500_000), (3, 3_000_000)]
)
def test_max_price_in_usd(written: Any, micros: int) -> None:
    assert spec(max_price=written).max_price_micros == micros


@pytest.mark.parametrize("written", [0, "-1", "501", "abc", "0.0000001", True, [1]])
def test_bad_max_prices_are_refused(written: Any) -> None:
    error = refused(max_price=written)
    assert error.field == "max_price"
    assert repr(written) in str(error)


def test_price_limit_is_the_offers_limit() -> None:
    top = spec(max_price=None, max_price_micros=MAX_PRICE_MICROS)
    assert top.max_price_micros == MAX_PRICE_MICROS
    above = refused(max_price=None, max_price_micros=MAX_PRICE_MICROS + 1)
    assert_names(above, "max_price_micros", MAX_PRICE_MICROS + 1)


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1.5h", 5400),
        (45, 45),
        ("120", 120),
    ],
)
def test_durations(written: Any, seconds: int) -> None:
    assert spec(max_duration=written).max_duration_s == seconds


@pytest.mark.parametrize("written", ["soon", "30min", "-5", "0.5s", "1h-", True, 2.5, "²"])
def test_bad_durations_are_refused(written: Any) -> None:
    assert_names(refused(max_duration=written), "max_duration", written)


@pytest.mark.parametrize("written", [0, "8d", MAX_DURATION_S + 1])
def test_max_duration_is_1s_to_7_days(written: Any) -> None:
    assert_names(refused(max_duration=written), "max_duration", written)
    assert spec(max_duration="7d").max_duration_s == MAX_DURATION_S


def test_deadline_shorter_than_max_duration_is_refused() -> None:
    error = refused(max_duration="2h", deadline="1h")
    assert_names(error, "deadline", "1h")
    assert "max_duration" in error.message
    assert spec(max_duration="2h", deadline="2h").deadline_s == 7200


def test_deadline_has_an_upper_limit() -> None:
    assert_names(refused(deadline_s=MAX_DEADLINE_S + 1), "deadline_s", MAX_DEADLINE_S + 1)


# --- files ---


def test_input_targets_default_to_the_source_file_name() -> None:
    parsed = spec(inputs=["data/a.csv", "/abs/b.csv", "..\\win\\c.csv"])
    assert [item.target for item in parsed.inputs] == ["a.csv", "b.csv", "c.csv"]
    assert input_sources(parsed) == ("data/a.csv", "/abs/b.csv", "..\\win\\c.csv")


@pytest.mark.parametrize(
    ("inputs", "field", "value"),
    [
        ([{"source": "a", "target": "/etc/passwd"}], "inputs[0].target", "/etc/passwd"),
        ([{"source": "a", "target": "x/../../y"}], "inputs[0].target", "x/../../y"),
        ([{"source": "a", "target": "x\\y"}], "inputs[0].target", "x\\y"),
        ([{"source": "a", "target": "./"}], "inputs[0].target", "./"),
        (["ok.csv", {"source": "b", "target": "ok.csv"}], "inputs[1].target", "ok.csv"),
        (["data", {"source": "y", "target": "data/x.csv"}], "inputs[1].target", "data/x.csv"),
        ([{"source": "y", "target": "data/x.csv"}, "data"], "inputs[1].target", "data"),
        (["data/"], "inputs[0].source", "data/"),
        ([""], "inputs[0].source", ""),
        ([{"target": "x"}], "inputs[0].source", None),
        ([3], "inputs[0]", 3),
        ("a.csv", "inputs", "a.csv"),
    ],
)
def test_bad_inputs_are_refused(inputs: Any, field: str, value: Any) -> None:
    assert_names(refused(inputs=inputs), field, value)


@pytest.mark.parametrize("field", ["inputs", "outputs"])
def test_file_lists_have_a_limit(field: str) -> None:
    names = [f"f{i}" for i in range(MAX_FILES + 1)]
    assert_names(refused(**{field: names}), field, MAX_FILES + 1)
    assert len(getattr(spec(**{field: names[:MAX_FILES]}), field)) == MAX_FILES


@given(st.lists(st.lists(st.sampled_from(["a", "b", "a-1"]), min_size=1, max_size=3), max_size=5))
def test_inputs_are_refused_exactly_when_two_targets_overlap(paths: list[list[str]]) -> None:
    targets = ["/".join(parts) for parts in paths]

    def overlap(a: str, b: str) -> bool:
        return a == b or a.startswith(b + "/") or b.startswith(a + "/")

    clash = any(overlap(a, b) for i, a in enumerate(targets) for b in targets[:i])
    inputs = [{"source": f"src{i}", "target": t} for i, t in enumerate(targets)]
    if clash:
        assert "clashes" in refused(inputs=inputs).message
    else:
        assert [item.target for item in spec(inputs=inputs).inputs] == targets


def test_clashing_inputs_say_which_ones_clash() -> None:
    error = refused(inputs=["a/x.csv", "b/x.csv"])
    assert "'a/x.csv'" in error.message
    assert "clashes" in error.message


def test_outputs_are_normalized() -> None:
    assert spec(outputs=["./out//*.csv", "result.json"]).outputs == ("out/*.csv", "result.json")


@pytest.mark.parametrize(
    ("outputs", "field", "value"),
    [
        (["/tmp/*.csv"], "outputs[0]", "/tmp/*.csv"),
        (["ok", "../*.csv"], "outputs[1]", "../*.csv"),
        (["out/../../x"], "outputs[0]", "out/../../x"),
        (["out/*.csv", "./out/*.csv"], "outputs[1]", "out/*.csv"),
        ([""], "outputs[0]", ""),
        ([1], "outputs[0]", 1),
        ("out/*.csv", "outputs", "out/*.csv"),
    ],
)
def test_bad_outputs_are_refused(outputs: Any, field: str, value: Any) -> None:
    assert_names(refused(outputs=outputs), field, value)


def test_checkpoint_dir_is_a_folder_inside_the_work_dir() -> None:
    assert spec(checkpoint_dir="./ckpt/").checkpoint_dir == "ckpt"
    assert_names(refused(checkpoint_dir="/ckpt"), "checkpoint_dir", "/ckpt")
    assert_names(refused(checkpoint_dir=".."), "checkpoint_dir", "..")
    clash = refused(checkpoint_dir="model.pt", inputs=["model.pt"])
    assert_names(clash, "checkpoint_dir", "model.pt")


# --- env ---


@pytest.mark.parametrize("name", ["lower", "1ST", "WITH-DASH", "GPUNET_TOKEN", ""])
def test_bad_env_names_are_refused(name: str) -> None:
    assert_names(refused(env={name: "x"}), "env", name)


@pytest.mark.parametrize("value", [1, True, None, 2.5])
def test_env_values_must_be_quoted_text(value: Any) -> None:
    error = refused(env={"DEBUG": value})
    assert_names(error, "env.DEBUG", value)
    assert "quote" in error.message


def test_env_must_be_a_mapping() -> None:
    assert refused(env=["A=1"]).field == "env"


# --- placement, runtime, sessions ---


@pytest.mark.parametrize("region", ["EU", "e", "eu_west", "eu-"])
def test_bad_regions_are_refused(region: str) -> None:
    assert_names(refused(region=region), "region", region)


@pytest.mark.parametrize("latency", [0, 10_001, "fast"])
def test_latency_bound_is_1ms_to_10s(latency: Any) -> None:
    assert_names(refused(max_latency_ms=latency), "max_latency_ms", latency)


@pytest.mark.parametrize("redundancy", [0, 3, "2"])
def test_redundancy_is_1_or_2(redundancy: Any) -> None:
    assert_names(refused(redundancy=redundancy), "redundancy", redundancy)


def test_a_session_runs_on_one_node() -> None:
    error = refused(kind="session", redundancy=2)
    assert_names(error, "redundancy", 2)
    assert "session" in error.message


def test_network_must_be_a_boolean() -> None:
    assert spec(network=True).network is True
    assert_names(refused(network="yes please"), "network", "yes please")


def test_docker_needs_an_image_and_bwrap_refuses_one() -> None:
    assert spec(runtime="docker", image="python:3.11-slim").image == "python:3.11-slim"
    assert_names(refused(runtime="docker"), "image", None)
    assert_names(refused(image="python:3.11"), "image", "python:3.11")
    assert_names(refused(runtime="docker", image="has space"), "image", "has space")
    assert_names(refused(runtime="podman"), "runtime", "podman")


def test_kind_must_be_job_or_session() -> None:
    assert_names(refused(kind="batch"), "kind", "batch")


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"expose_port": 8888}, "expose_port", 8888),
        ({"session_hold": "10m"}, "session_hold", "10m"),
        ({"session_hold_s": 600}, "session_hold_s", 600),
    ],
)
def test_a_job_refuses_session_fields(changes: dict[str, Any], field: str, value: Any) -> None:
    error = refused(**changes)
    assert_names(error, field, value)
    assert "kind: session" in error.message


def test_session_fields() -> None:
    session = spec(kind="session", expose_port=8888, session_hold="15m", max_latency_ms=40)
    assert (session.expose_port, session.session_hold_s, session.max_latency_ms) == (8888, 900, 40)
    assert spec(kind="session").session_hold_s == DEFAULT_SESSION_HOLD_S == 600
    assert_names(refused(kind="session", expose_port=80), "expose_port", 80)
    assert_names(refused(kind="session", expose_port=70000), "expose_port", 70000)
    assert_names(refused(kind="session", session_hold="10s"), "session_hold", "10s")


def test_a_job_built_by_hand_cannot_carry_session_fields() -> None:
    with pytest.raises(ValidationError) as info:
        JobSpec(name="x", command=("run",), max_price_micros=1, session_hold_s=60)
    assert info.value.field == "session_hold_s"


def test_other_spec_versions_are_refused() -> None:
    assert spec(version=SPEC_VERSION).name == "bench"
    error = refused(version=2)
    assert_names(error, "version", 2)
    assert "upgrade" in error.message


# --- the YAML document ---


def test_a_yaml_syntax_error_names_the_line() -> None:
    text = "name: x\ncommand: python a.py\nmax_price: 1\nenv:\n  A: b: c\n"
    with pytest.raises(ValidationError) as info:
        parse_job_spec(text, source="train.yaml")
    assert info.value.field == "train.yaml"
    assert "line 5" in info.value.message
    assert info.value.value == "  A: b: c"


def test_a_key_written_twice_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        parse_job_spec("name: x\ncommand: a\nmax_price: 1\nmax_price: 100\n")
    assert "line 4" in info.value.message
    assert "'max_price' is written twice" in info.value.message


@pytest.mark.parametrize(
    ("text", "hint"),
    [("", "empty"), ("- a\n- b\n", "mapping"), ("a: 2024-13-45\n", "YAML"), ("[" * 5000, "YAML")],
    ids=["empty", "list", "bad-date", "nested-too-deep"],
)
def test_documents_that_are_not_specs_are_refused(text: str, hint: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_job_spec(text, source="job.yaml")
    assert info.value.field == "job.yaml"
    assert hint in info.value.message


def test_a_huge_document_is_refused() -> None:
    with pytest.raises(ValidationError, match="256 KiB"):
        parse_job_spec("name: x\n" + "#" * 300_000)


def test_errors_on_friendly_keys_report_the_value_as_written() -> None:
    with pytest.raises(ValidationError) as info:
        parse_job_spec("name: x\ncommand: a\nmax_price: 1\nmax_duration: 8d\n")
    assert_names(info.value, "max_duration", "8d")


# --- billing ---


@pytest.mark.parametrize(("gpus", "units"), [(0, 1), (1, 1), (4, 4), (16, 16)])
def test_billing_units(gpus: int, units: int) -> None:
    assert billing_units(spec(resources={"gpu_count": gpus})) == units


def test_max_cost_is_the_budget_for_the_whole_duration_on_every_copy() -> None:
    one = spec(max_price="2", max_duration="30m", resources={"gpu_count": 4})
    assert max_cost_micros(one) == 4_000_000
    two = spec(max_price="2", max_duration="30m", resources={"gpu_count": 4}, redundancy=2)
    assert max_cost_micros(two) == 8_000_000


@given(st.integers(1, MAX_PRICE_MICROS), st.integers(0, 16), st.integers(1, MAX_DURATION_S))
def test_max_cost_covers_any_hold_at_or_under_budget(price: int, gpus: int, seconds: int) -> None:
    parsed = spec(
        max_price=None,
        max_price_micros=price,
        max_duration_s=seconds,
        resources={"gpu_count": gpus},
    )
    exact = Fraction(price * billing_units(parsed) * seconds, 3600)
    assert exact <= max_cost_micros(parsed) < exact + 1


# --- round trips ---


@st.composite
def resources(draw: st.DrawFn) -> Resources:
    host = Resources(
        cpu_cores=draw(st.integers(1, MAX_CPU_CORES)),
        memory_mib=draw(st.integers(1, MAX_MEMORY_MIB)),
        disk_gib=draw(st.integers(0, 10**6)),
    )
    gpus = draw(st.integers(0, 16))
    if gpus == 0:
        return host
    model = draw(st.sampled_from([m for m in CATALOGUE.values() if m.name != CPU_MODEL]))
    return dataclasses.replace(
        host,
        gpu_count=gpus,
        gpu_model=draw(st.sampled_from([model.name, None])),
        min_fp16_tflops=draw(st.floats(0, model.fp16_tflops)),
        min_vram_gib=draw(st.integers(0, model.vram_gib)),
    )


# Printable text: YAML itself folds control characters and line separators.
_TEXT = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"), codec="utf-8"), max_size=20
)
_SEGMENT = st.from_regex(r"[A-Za-z0-9_*.-]{1,8}", fullmatch=True).filter(
    lambda s: s not in (".", "..")
)
_PATH = st.lists(_SEGMENT, min_size=1, max_size=3).map("/".join)
_ENV_NAME = st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True).filter(
    lambda name: not name.startswith("GPUNET_")
)


@st.composite
def job_specs(draw: st.DrawFn) -> JobSpec:
    kind = draw(st.sampled_from(["job", "session"]))
    duration = draw(st.integers(1, MAX_DURATION_S))
    runtime = draw(st.sampled_from(["bwrap", "docker"]))
    targets = draw(st.lists(_SEGMENT.filter(lambda s: s != "ckpt"), max_size=4, unique=True))
    session = kind == "session"
    return JobSpec(
        name=draw(st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)),
        kind=kind,
        resources=draw(resources()),
        command=tuple(draw(st.lists(_TEXT, min_size=1, max_size=4).filter(lambda c: c[0] != ""))),
        inputs=tuple(InputFile(draw(_PATH), target) for target in targets),
        outputs=tuple(draw(st.lists(_PATH, max_size=3, unique=True))),
        env=draw(st.dictionaries(_ENV_NAME, _TEXT)),
        max_price_micros=draw(st.integers(1, MAX_PRICE_MICROS)),
        max_duration_s=duration,
        deadline_s=draw(st.none() | st.integers(duration, MAX_DEADLINE_S)),
        region=draw(st.none() | st.sampled_from(["eu", "us-east-1", "ap-south"])),
        max_latency_ms=draw(st.none() | st.integers(1, 10_000)),
        redundancy=1 if session else draw(st.sampled_from([1, 2])),
        network=draw(st.booleans()),
        runtime=runtime,
        image="python:3.11-slim" if runtime == "docker" else None,
        checkpoint_dir=draw(st.none() | st.just("ckpt/state")),
        expose_port=draw(st.none() | st.integers(1024, 65535)) if session else None,
        session_hold_s=draw(st.integers(60, 86400)) if session else DEFAULT_SESSION_HOLD_S,
    )


@given(job_specs())
def test_dict_round_trip(original: JobSpec) -> None:
    assert job_spec_from_dict(job_spec_to_dict(original)) == original


@given(job_specs())
def test_json_and_yaml_round_trips(original: JobSpec) -> None:
    data = job_spec_to_dict(original)
    assert job_spec_from_dict(json.loads(json.dumps(data))) == original
    assert parse_job_spec(yaml.safe_dump(data, allow_unicode=True)) == original


@given(job_specs())
def test_canonical_dict_is_stable(original: JobSpec) -> None:
    data = job_spec_to_dict(original)
    assert data["version"] == SPEC_VERSION
    assert job_spec_to_dict(job_spec_from_dict(data)) == data
    assert ("session_hold_s" in data) == (original.kind == "session")


@given(st.integers(1, MAX_PRICE_MICROS))
def test_prices_written_in_usd_read_back_exactly(micros: int) -> None:
    assert spec(max_price=format_usd(micros)).max_price_micros == micros


@given(st.integers(0, 6), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_compound_durations_add_up(days: int, hours: int, minutes: int, seconds: int) -> None:
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    written = f"{days}d{hours}h{minutes}m{seconds}s"
    if total == 0:
        assert refused(max_duration=written).field == "max_duration"
    else:
        assert spec(max_duration=written).max_duration_s == total


# --- the shipped examples ---


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in EXAMPLES.glob("*/job.yaml")))
def test_example_jobs_parse_and_ship_their_inputs(folder: str) -> None:
    path = EXAMPLES / folder / "job.yaml"
    parsed = parse_job_spec(path.read_text(), source=str(path))

    assert parsed.name == folder
    assert parsed.resources.gpu_count == 0
    assert parsed.max_price_micros <= 1_000_000
    for source in input_sources(parsed):
        assert (path.parent / source).is_file(), source


def test_all_three_examples_are_present() -> None:
    names = {p.parent.name for p in EXAMPLES.glob("*/job.yaml")}
    assert {"matrix-cpu", "data-job", "embeddings"} <= names


# --- the reference page ---


def reference_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", REFERENCE.read_text(), re.DOTALL)


def test_every_spec_on_the_reference_page_parses() -> None:
    specs = [parse_job_spec(block) for block in reference_blocks("yaml") if "max_price" in block]
    assert len(specs) >= 3
    assert {parsed.kind for parsed in specs} == {"job", "session"}


def test_reference_page_shows_the_minimal_spec_in_its_json_form() -> None:
    minimal = parse_job_spec(reference_blocks("yaml")[0])
    assert json.loads(reference_blocks("json")[0]) == job_spec_to_dict(minimal)


def test_reference_page_names_every_field() -> None:
    text = REFERENCE.read_text()
    names = [f.name for f in fields(JobSpec)] + [f.name for f in fields(Resources)]
    friendly = ["max_price", "max_duration", "deadline", "session_hold", "memory", "disk"]
    missing = [
        name
        for name in [*names, *friendly, "min_vram", "version"]
        if f"`{name}" not in text and f".{name}`" not in text
    ]
    assert missing == []
