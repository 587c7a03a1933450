"""Which relay of a set a call goes to: the module's call-id hash and weighted walk (docs/protocol.md §3).

The OpenSIPS module picks a node per call by hashing the Call-ID to 0..255 and walking the set's
nodes by weight; offer, answer and unforce meet on the same node only because they hash the same
Call-ID over the same weights and states. This module reproduces that choice exactly, including
its quirks: the cut is taken modulo the weight of *every* node (disabled ones too), a disabled
node's range triggers one "forced" walk over the enabled weight, weight-0 nodes are chosen only
when every enabled weight is 0, and a set of one node is never hashed. Pure: the caller says which
nodes are enabled (health and re-probing belong to the relay service); `choose` says which node
and why, in terms `rtppctl lb explain` can show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

#: The hash takes 256 values, so a set whose weights add up to more cannot reach its later nodes.
HASH_VALUES = 256


class Candidate(NamedTuple):
    """One node of a set as selection sees it, in configuration order."""

    weight: int
    enabled: bool


@dataclass(frozen=True)
class Choice:
    """The node chosen for a call, and the numbers that chose it."""

    #: Index of the chosen node in the set; None when no node is enabled.
    index: int | None
    #: The Call-ID hash, 0..255.
    hash: int
    #: Sum of every node's weight, disabled ones included (the module's modulus).
    total_weight: int
    #: Sum of the enabled nodes' weights.
    enabled_weight: int
    #: The first cut, hash % total_weight (-1 when every enabled weight is 0).
    cut: int
    #: The cut of the forced walk, hash % enabled_weight, when the first walk met a disabled
    #: node's range; None when there was no forced walk.
    forced_cut: int | None
    #: Why this node: "single node", "weight range", "forced walk", "weight 0"; or why none:
    #: "single node disabled" (a set of one whose relay is disabled) or "none enabled".
    reason: str


def call_id_hash(call_id: str | bytes) -> int:
    """The module's hash: the Call-ID's bytes summed as C chars into an unsigned int, & 0xFF.

    Bytes >= 0x80 count as negative chars on x86, but subtracting 256 per such byte leaves the
    low eight bits unchanged, so the plain byte sum masked to 0..255 is the same number.
    """
    data = call_id.encode("utf-8", "surrogateescape") if isinstance(call_id, str) else call_id
    return sum(data) & 0xFF


def choose(call_id: str | bytes, nodes: Sequence[Candidate]) -> Choice:
    """The node the module picks for `call_id` among `nodes` (§3 steps 1-6)."""
    total = sum(node.weight for node in nodes)
    enabled_weight = sum(node.weight for node in nodes if node.enabled)
    hashed = call_id_hash(call_id)
    if len(nodes) == 1:
        # A set of one is not hashed: the node, if it is enabled (rtpproxy.c, select_rtpp_node:
        # "Most popular case: 1 proxy", NULL when that proxy is disabled).
        index = 0 if nodes[0].enabled else None
        reason = "single node" if index == 0 else "single node disabled"
        return Choice(index, hashed, total, enabled_weight, -1, None, reason)
    if not any(node.enabled for node in nodes):
        return Choice(None, hashed, total, enabled_weight, -1, None, "none enabled")
    cut = hashed % total if enabled_weight else -1
    sumcut = cut
    forced_cut: int | None = None
    index = 0
    while index < len(nodes):
        node = nodes[index]
        if sumcut < node.weight:
            if node.enabled:
                reason = "weight 0" if node.weight == 0 else ("forced walk" if forced_cut is not None else "weight range")
                return Choice(index, hashed, total, enabled_weight, cut, forced_cut, reason)
            if forced_cut is None:
                # The node the cut falls on is disabled: walk again over the enabled weight only.
                forced_cut = sumcut = hashed % enabled_weight if enabled_weight else -1
                index = 0
                continue
        if forced_cut is None or node.enabled:
            sumcut -= node.weight
        index += 1
    return Choice(None, hashed, total, enabled_weight, cut, forced_cut, "none enabled")


def ranges(nodes: Sequence[Candidate]) -> list[tuple[int, int]]:
    """Each node's slice [start, end) of 0..total_weight-1: the first cuts that fall on it."""
    spans = []
    start = 0
    for node in nodes:
        spans.append((start, start + node.weight))
        start += node.weight
    return spans


def unreachable(nodes: Sequence[Candidate]) -> list[int]:
    """Indexes of nodes no hash value can reach while every node is enabled: those whose range
    starts at or beyond 256, and weight-0 nodes when another node has a weight."""
    has_weight = any(node.weight for node in nodes)
    lost = []
    for index, ((start, end), node) in enumerate(zip(ranges(nodes), nodes)):
        if (node.weight == 0 and has_weight) or (node.weight and start >= HASH_VALUES):
            lost.append(index)
    return lost


__all__ = ["HASH_VALUES", "Candidate", "Choice", "call_id_hash", "choose", "ranges", "unreachable"]
