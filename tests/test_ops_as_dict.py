"""`ops.as_dict` gives what `dataclasses.asdict` gives, without its deep copy of every leaf."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from rtppctl.ops import as_dict


class Pair(NamedTuple):
    a: int
    b: str


@dataclass
class Inner:
    x: int
    t: tuple = (1, 2)
    pair: Pair = Pair(1, "z")


@dataclass
class Outer:
    inner: Inner
    items: list = field(default_factory=list)
    by_name: dict = field(default_factory=dict)
    nothing: None = None


leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
inners = st.builds(Inner, x=st.integers(), t=st.tuples(leaves, leaves), pair=st.builds(Pair, st.integers(), st.text(max_size=3)))


@given(st.builds(Outer, inner=inners, items=st.lists(inners | leaves, max_size=4),
                 by_name=st.dictionaries(st.text(max_size=3), inners | leaves, max_size=3)))
def test_as_dict_equals_asdict_with_the_same_types(result):
    plain, reference = as_dict(result), asdict(result)
    assert plain == reference
    assert type(plain["inner"]["t"]) is tuple and type(plain["inner"]["pair"]) is Pair
    assert plain is not reference and plain["inner"] is not result.inner


def test_a_real_result_converts_as_before():
    from rtppctl.ops.relay import CapabilityStatus, VersionResult

    result = VersionResult("udp:127.0.0.1:22222", 0, 20040107, [CapabilityStatus("20050322", "EXTENDED", "x", True)])
    assert as_dict(result) == asdict(result)
