"""The module's node selection: the reference vectors, and properties over any call-id and set."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from rtppctl.proto.select import HASH_VALUES, Candidate, call_id_hash, choose, ranges, unreachable

# checked against a running OpenSIPS (docs/protocol.md §3, which shows some of them).
VECTORS = """
b'a84b4c76e66710@pc33.atlanta.example.com'    hash=175  [A=1,B=1]->B  [A=2,B=1]->A  [A=1,B=1 (A disabled)]->B  [A=1,B=0]->A  [A=1,B=0 (A disabled)]->B  [A=0,B=0]->A  [A=0,B=0,C=2 (C disabled)]->A
b'abc'                                        hash= 38  [A=1,B=1]->A  [A=2,B=1]->B  [A=1,B=1 (A disabled)]->B  [A=1,B=0]->A  [A=1,B=0 (A disabled)]->B  [A=0,B=0]->A  [A=0,B=0,C=2 (C disabled)]->A
b'1-2345@10.0.0.1'                            hash=232  [A=1,B=1]->A  [A=2,B=1]->A  [A=1,B=1 (A disabled)]->B  [A=1,B=0]->A  [A=1,B=0 (A disabled)]->B  [A=0,B=0]->A  [A=0,B=0,C=2 (C disabled)]->A
b'call-0001'                                  hash=138  [A=1,B=1]->A  [A=2,B=1]->A  [A=1,B=1 (A disabled)]->B  [A=1,B=0]->A  [A=1,B=0 (A disabled)]->B  [A=0,B=0]->A  [A=0,B=0,C=2 (C disabled)]->A
b'call-0002'                                  hash=139  [A=1,B=1]->B  [A=2,B=1]->A  [A=1,B=1 (A disabled)]->B  [A=1,B=0]->A  [A=1,B=0 (A disabled)]->B  [A=0,B=0]->A  [A=0,B=0,C=2 (C disabled)]->A
b'call-0003'                                  hash=140  [A=1,B=1]->A  [A=2,B=1]->B  [A=1,B=1 (A disabled)]->B  [A=1,B=0]->A  [A=1,B=0 (A disabled)]->B  [A=0,B=0]->A  [A=0,B=0,C=2 (C disabled)]->A
"""

_CASE = re.compile(r"\[([^\]]+)\]->([A-Z])")


def vectors():
    for line in VECTORS.strip().splitlines():
        call_id = re.match(r"b'([^']*)'", line)[1]
        hashed = int(re.search(r"hash=\s*(\d+)", line)[1])
        for spec, expected in _CASE.findall(line):
            weights, _, disabled = spec.partition(" (")
            nodes = []
            for item in weights.split(","):
                name, weight = item.split("=")
                nodes.append((name, Candidate(int(weight), not disabled.startswith(name + " "))))
            yield call_id, hashed, [node for _, node in nodes], "ABC".index(expected)


def test_every_reference_vector():
    count = 0
    for call_id, hashed, nodes, expected in vectors():
        assert call_id_hash(call_id) == hashed, call_id
        assert choose(call_id, nodes).index == expected, (call_id, nodes)
        count += 1
    assert count == 42


def test_high_bytes_count_as_signed_chars_without_changing_the_low_bits():
    # 0xE9 is -23 as a signed char: (97 - 23) & 0xFF == (97 + 233) & 0xFF == 74.
    assert call_id_hash(b"a\xe9") == 74
    assert call_id_hash("aé") == sum("aé".encode()) & 0xFF


def test_reasons_say_why():
    assert choose("abc", [Candidate(1, True)]).reason == "single node"
    # rtpproxy.c, select_rtpp_node: a set of one node is not hashed ("Most popular case: 1 proxy")
    # and gives NULL when that node is disabled: the reason says so, not "weight 0".
    lone = choose("abc", [Candidate(1, False)])
    assert (lone.index, lone.reason) == (None, "single node disabled")
    assert choose("abc", [Candidate(1, True), Candidate(1, True)]).reason == "weight range"
    forced = choose("abc", [Candidate(1, False), Candidate(1, True)])
    assert (forced.index, forced.reason, forced.forced_cut) == (1, "forced walk", 0)
    assert choose("abc", [Candidate(0, True), Candidate(0, True)]).reason == "weight 0"
    assert choose("abc", [Candidate(1, False), Candidate(1, False)]).reason == "none enabled"


def test_ranges_and_unreachable_nodes():
    assert ranges([Candidate(2, True), Candidate(1, True)]) == [(0, 2), (2, 3)]
    assert unreachable([Candidate(200, True), Candidate(100, True), Candidate(1, True)]) == [2]
    assert unreachable([Candidate(1, True), Candidate(0, True)]) == [1]
    assert unreachable([Candidate(0, True), Candidate(0, True)]) == []


sets = st.lists(st.tuples(st.integers(0, 300), st.booleans()), min_size=1, max_size=8).map(
    lambda items: [Candidate(weight, enabled) for weight, enabled in items]
)
call_ids = st.one_of(st.text(max_size=80), st.binary(max_size=80))


@given(call_ids, sets)
def test_a_disabled_node_is_never_chosen_while_another_is_enabled(call_id, nodes):
    choice = choose(call_id, nodes)
    if any(node.enabled for node in nodes):
        assert choice.index is not None and nodes[choice.index].enabled
    else:
        assert choice.index is None


@given(call_ids, sets)
def test_weight_0_is_chosen_only_when_every_enabled_weight_is_0(call_id, nodes):
    choice = choose(call_id, nodes)
    if choice.index is not None and nodes[choice.index].weight == 0 and len(nodes) > 1:
        assert all(node.weight == 0 for node in nodes if node.enabled)


@given(call_ids, sets)
def test_the_choice_depends_only_on_the_hash_weights_and_states(call_id, nodes):
    same_hash = bytes([call_id_hash(call_id)])  # one byte with the same sum
    assert choose(call_id, nodes) == choose(same_hash, nodes)
    assert choose(call_id, list(nodes)) == choose(call_id, tuple(nodes))


@given(sets)
def test_with_every_node_enabled_each_hash_lands_in_its_weight_range(nodes):
    nodes = [Candidate(node.weight, True) for node in nodes]
    if len(nodes) < 2 or not any(node.weight for node in nodes):
        return
    spans = ranges(nodes)
    total = sum(node.weight for node in nodes)
    for hashed in range(HASH_VALUES):
        cut = hashed % total
        expected = next(i for i, (start, end) in enumerate(spans) if start <= cut < end)
        assert choose(bytes([hashed]), nodes).index == expected
