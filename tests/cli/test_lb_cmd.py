"""`rtppctl lb explain | simulate`: the module's choice of relay, from the command line."""

from __future__ import annotations

import pytest

from rtppctl.proto.select import Candidate, choose
from tests.cli.helpers import cli

A, B, C = "udp:10.0.0.5:22222", "udp:10.0.0.6:22222", "udp:10.0.0.7:22222"


def test_explain_gives_the_reference_node_and_the_numbers(capsys):
    result = cli(capsys, "--json", "lb", "explain", "abc", "-t", f"{A}=2", "-t", B)
    data = result.json()
    assert result.code == 0
    assert (data["hash"], data["total_weight"], data["cut"], data["node"], data["reason"]) == (38, 3, 2, B, "weight range")
    assert [(n["range_start"], n["range_end"], n["chosen"]) for n in data["nodes"]] == [(0, 2, False), (2, 3, True)]


def test_explain_a_disabled_node_takes_the_forced_walk(capsys):
    result = cli(capsys, "lb", "explain", "abc", "-t", A, "-t", B, "--disable", A)
    assert result.code == 0
    assert "forced walk over the enabled weight: 38 % 1 = 0" in result.stdout
    assert f"chosen: {B} (forced walk)" in result.stdout


def test_explain_reads_the_configured_set(capsys, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'rtpproxy_sock = ["1 == {A}=1 {B}=1"]\n')
    result = cli(capsys, "--config", str(config), "--json", "lb", "explain", "call-0002", "--set", "1")
    assert result.code == 0 and result.json()["node"] == B and result.json()["set_id"] == 1


def test_disabling_a_relay_not_in_the_set_is_refused(capsys):
    result = cli(capsys, "lb", "explain", "abc", "-t", A, "--disable", "udp:192.0.2.1:22222")
    assert result.code == 6 and "no such relay in the set" in result.stderr


def test_simulate_follows_the_weights(capsys):
    result = cli(capsys, "--json", "lb", "simulate", "--calls", "100000", "--seed", "7", "-t", f"{A}=2", "-t", B, "-t", C)
    data = result.json()
    assert result.code == 0 and data["calls"] == 100000 and data["unassigned"] == 0
    shares = [node["share"] for node in data["nodes"]]
    assert shares == pytest.approx([0.5, 0.25, 0.25], abs=0.02)
    assert sum(node["calls"] for node in data["nodes"]) == 100000


def test_simulate_counts_each_call_where_the_selector_sends_it(capsys, tmp_path):
    ids = [f"call-{n:04d}" for n in range(500)]
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n\n")
    result = cli(capsys, "--json", "lb", "simulate", "--call-ids", str(tmp_path / "ids.txt"),
                 "-t", f"{A}=3", "-t", f"{B}=2", "--disable", B)
    data = result.json()
    nodes = [Candidate(3, True), Candidate(2, False)]
    expected = [0, 0]
    for call_id in ids:
        expected[choose(call_id, nodes).index] += 1
    assert [node["calls"] for node in data["nodes"]] == expected == [500, 0]
    assert data["source"] == str(tmp_path / "ids.txt")


def test_simulate_warns_about_weights_the_hash_cannot_honour(capsys):
    result = cli(capsys, "lb", "simulate", "--calls", "2000", "-t", f"{A}=200", "-t", f"{B}=100", "-t", f"{C}=0")
    assert result.code == 0
    assert "add up to 300, more than the hash's 256 values" in result.stderr
    assert f"weight 0: {C}" in result.stderr
    assert "█" in result.stdout


def test_simulate_with_every_relay_disabled_says_so(capsys):
    result = cli(capsys, "--json", "lb", "simulate", "--calls", "100", "-t", A, "-t", B, "--disable", A, "--disable", B)
    assert result.code == 0 and result.json()["unassigned"] == 100


def test_explain_says_the_only_relay_is_disabled(capsys):
    result = cli(capsys, "lb", "explain", "abc", "-t", A, "--disable", A)
    assert result.code == 0
    assert (f"abc: hash 38; a set of one relay is not hashed, and its relay {A} is disabled: no relay is chosen; "
            "chosen: no relay (single node disabled)") in result.stdout
    assert "weight 0" not in result.stdout
    data = cli(capsys, "--json", "lb", "explain", "abc", "-t", A, "--disable", A).json()
    assert (data["node"], data["reason"]) == (None, "single node disabled") and "is disabled" in data["walk"]


def test_explain_with_every_relay_disabled_says_so_and_weight_0_keeps_its_words(capsys):
    result = cli(capsys, "lb", "explain", "abc", "-t", A, "-t", B, "--disable", A, "--disable", B)
    assert "every relay of the set is disabled: no relay is chosen; chosen: no relay (none enabled)" in result.stdout
    result = cli(capsys, "lb", "explain", "abc", "-t", f"{A}=0", "-t", f"{B}=0", "--disable", A)
    assert f"every enabled relay has weight 0: the first enabled one is chosen; chosen: {B} (weight 0)" in result.stdout


def test_a_long_disable_argument_is_echoed_bounded(capsys):
    result = cli(capsys, "lb", "explain", "abc", "-t", A, "--disable", "udp:" + "x" * 100_000)
    assert result.code == 6 and "(100004 characters)" in result.stderr and len(result.stderr) < 1_000
