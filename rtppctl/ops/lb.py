"""Load balancing as the module does it, predicted and simulated: `rtppctl lb explain | simulate`.

Both work on a set's nodes as configured (weights, and the nodes the operator marks disabled) and
on the pure selector in `rtppctl.proto.select`; neither talks to a relay. `explain` shows the
numbers behind one Call-ID's node; `simulate` counts the nodes a stream of Call-IDs goes to. The
choice depends only on the 8-bit hash, so a simulation works out the node of each of the 256 hash
values once and then only hashes: a million calls take about a second.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from rtppctl.proto.errors import InputError
from rtppctl.proto.select import HASH_VALUES, Candidate, Choice, call_id_hash, choose, ranges, unreachable
from rtppctl.proto.text import shown
from rtppctl.proto.url import NodeSpec


@dataclass(frozen=True)
class NodeRange:
    """One node as `explain` shows it."""

    url: str
    weight: int
    enabled: bool
    #: The first cuts that fall on this node: start <= cut < end.
    range_start: int
    range_end: int
    chosen: bool


@dataclass(frozen=True)
class Explanation:
    """Why a Call-ID goes to the node it goes to (docs/protocol.md §3)."""

    call_id: str
    set_id: int | None
    hash: int
    total_weight: int
    enabled_weight: int
    #: hash % total_weight; -1 when every enabled weight is 0.
    cut: int
    #: hash % enabled_weight when the cut fell on a disabled node; else None.
    forced_cut: int | None
    #: "single node", "weight range", "forced walk", "weight 0", "single node disabled" or "none enabled".
    reason: str
    #: The chosen node's url; None when no node is enabled.
    node: str | None
    nodes: list[NodeRange]
    warnings: list[str] = field(default_factory=list)
    #: How the walk went, in words: the cut, the forced walk, or why no node was chosen.
    walk: str = ""


@dataclass(frozen=True)
class NodeShare:
    """One node's part of a simulation."""

    url: str
    weight: int
    enabled: bool
    #: The share its weight promises among the enabled nodes (0..1).
    expected_share: float
    calls: int
    #: The share it got (0..1).
    share: float


@dataclass(frozen=True)
class Simulation:
    """Where a stream of Call-IDs went."""

    set_id: int | None
    calls: int
    #: "generated" (with `seed`) or the file the Call-IDs came from.
    source: str
    seed: int | None
    nodes: list[NodeShare]
    #: Calls no node could take (every node disabled).
    unassigned: int
    warnings: list[str] = field(default_factory=list)


def _candidates(nodes: Sequence[NodeSpec], disabled: Iterable[str]) -> list[Candidate]:
    off = set(disabled)
    unknown = off - {node.url for node in nodes}
    if unknown:
        known = ", ".join(node.url for node in nodes)
        raise InputError(f"--disable {shown(sorted(unknown)[0], 120)}: no such relay in the set (it has {known})",
                         "name a relay as `rtppctl config show` lists it, without |advertised or =weight")
    return [Candidate(node.weight, node.url not in off) for node in nodes]


def set_warnings(nodes: Sequence[NodeSpec]) -> list[str]:
    """What the module's hash makes of this set's weights that an operator would not expect."""
    candidates = [Candidate(node.weight, True) for node in nodes]
    warnings = []
    total = sum(node.weight for node in nodes)
    lost = unreachable(candidates)
    if total > HASH_VALUES:
        far = [nodes[index].url for index in lost if nodes[index].weight]
        warnings.append(
            f"the weights add up to {total}, more than the hash's {HASH_VALUES} values: "
            + (f"{', '.join(far)} can never be chosen" if far else "the later nodes get less than their weight")
        )
    zero = [nodes[index].url for index in lost if nodes[index].weight == 0]
    if zero:
        warnings.append(f"weight 0: {', '.join(zero)} is chosen only when every node with a weight is disabled")
    return warnings


def explain(call_id: str, nodes: Sequence[NodeSpec], *, set_id: int | None = None, disabled: Iterable[str] = ()) -> Explanation:
    """The node the module picks for `call_id` among `nodes`, with every number that picked it."""
    if not nodes:
        raise InputError("the set has no relays")
    # The module hashes the Call-ID header's value with its padding trimmed.
    call_id = call_id.strip(" \t")
    if not call_id:
        raise InputError("the Call-ID is empty")
    candidates = _candidates(nodes, disabled)
    choice = choose(call_id, candidates)
    spans = ranges(candidates)
    rows = [
        NodeRange(node.url, node.weight, candidate.enabled, start, end, index == choice.index)
        for index, (node, candidate, (start, end)) in enumerate(zip(nodes, candidates, spans))
    ]
    return Explanation(
        call_id=call_id, set_id=set_id, hash=choice.hash, total_weight=choice.total_weight,
        enabled_weight=choice.enabled_weight, cut=choice.cut, forced_cut=choice.forced_cut, reason=choice.reason,
        node=nodes[choice.index].url if choice.index is not None else None, nodes=rows,
        warnings=set_warnings(nodes), walk=_walk(choice, nodes),
    )


def _walk(choice: Choice, nodes: Sequence[NodeSpec]) -> str:
    """The walk behind `choice` in words; each reason of `choose` has its own."""
    if choice.reason == "single node":
        return "a set of one relay is not hashed"
    if choice.reason == "single node disabled":
        return f"a set of one relay is not hashed, and its relay {nodes[0].url} is disabled: no relay is chosen"
    if choice.reason == "none enabled":
        return "every relay of the set is disabled: no relay is chosen"
    if choice.enabled_weight == 0:
        return "every enabled relay has weight 0: the first enabled one is chosen"
    if choice.forced_cut is not None:
        return (f"cut {choice.hash} % {choice.total_weight} = {choice.cut} falls on a disabled relay; forced walk over "
                f"the enabled weight: {choice.hash} % {choice.enabled_weight} = {choice.forced_cut}")
    return f"cut {choice.hash} % {choice.total_weight} = {choice.cut}"


def generated_call_ids(count: int, seed: int) -> Iterator[str]:
    """`count` Call-IDs shaped like real ones (random hex @ a host), the same for the same seed."""
    rng = random.Random(seed)
    hosts = ("pbx.example.com", "10.0.0.1", "sbc-1.example.net", "[2001:db8::1]")
    for _ in range(count):
        yield f"{rng.getrandbits(64):016x}-{rng.getrandbits(16):04x}@{rng.choice(hosts)}"


def simulate(call_ids: Iterable[str], nodes: Sequence[NodeSpec], *, set_id: int | None = None,
             disabled: Iterable[str] = (), source: str = "generated", seed: int | None = None) -> Simulation:
    """Count where each Call-ID goes, as the module would send it."""
    if not nodes:
        raise InputError("the set has no relays")
    candidates = _candidates(nodes, disabled)
    # One choice per hash value: the walk depends on nothing else (tests/proto/test_select.py).
    node_of_hash = [choose(bytes([value]), candidates).index for value in range(HASH_VALUES)]
    per_hash = [0] * HASH_VALUES
    calls = 0
    for call_id in call_ids:
        per_hash[call_id_hash(call_id.strip(" \t"))] += 1
        calls += 1
    counts = [0] * len(nodes)
    unassigned = 0
    for value, hits in enumerate(per_hash):
        index = node_of_hash[value]
        if index is None:
            unassigned += hits
        else:
            counts[index] += hits
    enabled_weight = sum(c.weight for c in candidates if c.enabled)
    shares = [
        NodeShare(
            url=node.url, weight=node.weight, enabled=candidate.enabled,
            expected_share=(candidate.weight / enabled_weight if candidate.enabled and enabled_weight else 0.0),
            calls=count, share=count / calls if calls else 0.0,
        )
        for node, candidate, count in zip(nodes, candidates, counts)
    ]
    return Simulation(set_id, calls, source, seed, shares, unassigned, set_warnings(nodes))


__all__ = [
    "Explanation", "NodeRange", "NodeShare", "Simulation", "call_id_hash", "explain", "generated_call_ids",
    "set_warnings", "simulate",
]
