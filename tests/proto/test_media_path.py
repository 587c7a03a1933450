"""The media-path meter: datagrams built, send and arrival times in, per-direction counts out. Pure:
times are made-up nanosecond readings, "the network" is a list of datagrams in some order."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtppctl.proto.errors import InputError
from rtppctl.proto.media_path import (
    DIRECTIONS,
    DirectionMeter,
    DirectionResult,
    payload_for,
    relay_split,
)
from rtppctl.proto.rtp import build_rtp, parse_rtp

SSRC = 0x1234_5678
SEED = b"test-seed"
MS = 1_000_000  # ns
T0 = 1_700_000_000 * 1_000_000_000  # a realistic CLOCK_REALTIME reading
PACING_NS = 20 * MS
SAMPLES = 160  # 20 ms at 8000 Hz


def send_all(meter: DirectionMeter, count: int, *, first_seq: int = 1000, first_timestamp: int = 5000,
             record_sent: bool = True) -> list[bytes]:
    """Build `count` packets and record each as sent at T0 + index * 20 ms."""
    datagrams = []
    for index in range(count):
        datagrams.append(meter.packet(index, first_seq=first_seq, first_timestamp=first_timestamp,
                                      samples_per_packet=SAMPLES, payload=payload_for(0, index, 160, SEED)))
        if record_sent:
            meter.sent(index, T0 + index * PACING_NS)
    return datagrams


def deliver(meter: DirectionMeter, datagrams: list[bytes], order: list[int] | None = None, *,
            latency_ns: int = 2 * MS, at_source: bool = False) -> None:
    """Deliver datagrams[i] for each i of `order` (default: all, in order), each `latency_ns` after
    its send time, so arrival times follow the send pacing."""
    for index in range(len(datagrams)) if order is None else order:
        meter.received(datagrams[index], T0 + index * PACING_NS + latency_ns, at_source=at_source)


def counts(result: DirectionResult) -> dict[str, int]:
    return {key: getattr(result, key) for key in
            ("sent", "received", "lost", "duplicates", "reordered", "late", "corrupted", "stray")}


def clean(**changes: int) -> dict[str, int]:
    expected = dict(sent=50, received=50, lost=0, duplicates=0, reordered=0, late=0, corrupted=0, stray=0)
    expected.update(changes)
    return expected


@pytest.fixture
def meter() -> DirectionMeter:
    return DirectionMeter("caller-to-callee", ssrc=SSRC)


# -- building -----------------------------------------------------------------------------------------


def test_packet_builds_the_datagram_it_remembers(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 3, first_seq=7, first_timestamp=100)
    parsed = [parse_rtp(datagram) for datagram in datagrams]
    assert [packet.sequence for packet in parsed] == [7, 8, 9]
    assert [packet.timestamp for packet in parsed] == [100, 260, 420]
    assert [packet.marker for packet in parsed] == [True, False, False]
    assert {(packet.ssrc, packet.payload_type) for packet in parsed} == {(SSRC, 0)}
    assert parsed[1].payload == payload_for(0, 1, 160, SEED)


def test_payload_for_is_deterministic_and_distinct() -> None:
    assert payload_for(1, 42, 160, SEED) == payload_for(1, 42, 160, SEED)
    assert [len(payload_for(0, 0, size, SEED)) for size in (0, 1, 63, 64, 65, 160)] == [0, 1, 63, 64, 65, 160]
    # A longer payload starts with the shorter one: blocks are appended, never recomputed.
    assert payload_for(0, 3, 200, SEED).startswith(payload_for(0, 3, 100, SEED))
    every = {payload_for(direction, index, 160, SEED) for direction in (0, 1) for index in range(10_000)}
    assert len(every) == 20_000
    assert payload_for(0, 0, 160, b"other") != payload_for(0, 0, 160, SEED)
    # The seed and the key are not merely concatenated: moving a byte between them changes the hash.
    assert payload_for(0, 0, 64, b"\x00") != payload_for(0, 0, 64, b"")


@pytest.mark.parametrize("arguments", [(-1, 0, 8), (256, 0, 8), (0, -1, 8), (0, 0, -1)])
def test_payload_for_refuses_out_of_range(arguments: tuple[int, int, int]) -> None:
    with pytest.raises(InputError):
        payload_for(*arguments, SEED)


def test_meter_refuses_bad_settings_and_calls(meter: DirectionMeter) -> None:
    with pytest.raises(InputError, match="direction"):
        DirectionMeter("sideways", ssrc=SSRC)
    with pytest.raises(InputError, match="SSRC"):
        DirectionMeter(DIRECTIONS[1], ssrc=-1)
    with pytest.raises(InputError, match="never built"):
        meter.sent(0, T0)
    with pytest.raises(InputError, match="out of range"):
        meter.packet(0x10000, first_seq=0, first_timestamp=0, samples_per_packet=SAMPLES, payload=b"")
    meter.packet(0, first_seq=5, first_timestamp=0, samples_per_packet=SAMPLES, payload=b"")
    with pytest.raises(InputError, match="reuse sequence number 5"):
        meter.packet(1, first_seq=4, first_timestamp=0, samples_per_packet=SAMPLES, payload=b"")


# -- a clean run and its numbers ----------------------------------------------------------------------


def test_clean_run(meter: DirectionMeter) -> None:
    deliver(meter, send_all(meter, 50))
    result = meter.result()
    assert counts(result) == clean()
    assert result.loss_pct == 0.0
    assert result.latency_ms == {"min": 2.0, "avg": 2.0, "p99": 2.0, "max": 2.0}
    assert result.jitter_ms == 0.0  # perfectly paced: every arrival spacing equals its timestamp spacing
    assert result.latched is False
    assert result.direction == "caller-to-callee"


def test_latency_from_known_times(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 50)
    for index, datagram in enumerate(datagrams):
        # 1.00, 1.01, ... 1.49 ms
        meter.received(datagram, T0 + index * PACING_NS + MS + index * 10_000, at_source=True)
    latency = meter.result().latency_ms
    # p99 of 50 readings is the largest; below 2048 µs the histogram's buckets are 1 µs wide.
    assert latency == {"min": 1.0, "avg": 1.245, "p99": 1.49, "max": 1.49}


def test_p99_comes_from_the_histogram_and_stays_within_the_readings(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 200)
    for index, datagram in enumerate(datagrams):
        latency = 100 * MS if index < 2 else MS + index * 1000  # two slow packets: the top 1%
        meter.received(datagram, T0 + index * PACING_NS + latency, at_source=True)
    latency_ms = meter.result().latency_ms
    assert latency_ms is not None
    assert latency_ms["max"] == 100.0
    # Rank 198 of 200 is the largest fast reading, 1.199 ms, exact at this resolution.
    assert latency_ms["p99"] == 1.199
    assert latency_ms["min"] == 1.002


def test_jitter_of_an_irregular_series_follows_rfc_3550(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 4)
    # Timestamps 160 apart (20 ms); arrivals 20, 30 and 10 ms apart: D = 0, +80, -80 timestamp units.
    # J: 0 -> 0 + (0 - 0)/16 = 0 -> 0 + (80 - 0)/16 = 5 -> 5 + (80 - 5)/16 = 9.6875 units = 1.2109375 ms.
    for datagram, arrival_ms in zip(datagrams, (0, 20, 50, 60)):
        meter.received(datagram, T0 + arrival_ms * MS, at_source=True)
    assert meter.result().jitter_ms == 1.211


def test_jitter_charges_the_path_not_the_senders_pacing(meter: DirectionMeter) -> None:
    # Sent 20, 27 and 18 ms apart (a sender thread woken late, then early), each packet 3 ms on
    # the way: the RTP timestamps say 20 ms apart, but the path added no variation at all.
    datagrams = [meter.packet(index, first_seq=0, first_timestamp=0, samples_per_packet=SAMPLES,
                              payload=payload_for(0, index, 160, SEED)) for index in range(4)]
    for index, sent_ms in enumerate((0, 20, 47, 65)):
        meter.sent(index, T0 + sent_ms * MS)
        meter.received(datagrams[index], T0 + (sent_ms + 3) * MS, at_source=True)
    assert meter.result().jitter_ms == 0.0
    # The same arrivals judged by the timestamps would have been D = 0, 56, -72 units: J = 7.5 units.


def test_nothing_arrived(meter: DirectionMeter) -> None:
    send_all(meter, 50)
    result = meter.result()
    assert counts(result) == clean(received=0, lost=50)
    assert (result.loss_pct, result.latency_ms, result.jitter_ms, result.latched) == (100.0, None, None, None)


def test_one_arrival_has_latency_but_no_jitter(meter: DirectionMeter) -> None:
    deliver(meter, send_all(meter, 50), [0])
    result = meter.result()
    assert result.latency_ms == {"min": 2.0, "avg": 2.0, "p99": 2.0, "max": 2.0}
    assert result.jitter_ms is None


def test_nothing_sent() -> None:
    result = DirectionMeter("caller-to-callee", ssrc=SSRC).result()
    assert counts(result) == clean(sent=0, received=0)
    assert result.loss_pct == 0.0


def test_sent_counts_only_recorded_sends(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 5, record_sent=False)
    meter.sent(0, T0)
    meter.sent(1, T0 + PACING_NS)
    meter.sent(1, T0 + PACING_NS)  # recorded twice, sent once
    deliver(meter, datagrams, [0])
    assert (meter.result().sent, meter.result().lost, meter.result().loss_pct) == (2, 1, 50.0)


# -- what the network does ----------------------------------------------------------------------------


def test_loss(meter: DirectionMeter) -> None:
    deliver(meter, send_all(meter, 50), [index for index in range(50) if index not in (3, 7, 49)])
    result = meter.result()
    assert counts(result) == clean(received=47, lost=3)
    assert result.loss_pct == 6.0


def test_loss_pct_is_rounded(meter: DirectionMeter) -> None:
    deliver(meter, send_all(meter, 3), [0, 1])
    assert meter.result().loss_pct == 33.333


def test_duplicates(meter: DirectionMeter) -> None:
    deliver(meter, send_all(meter, 50), [*range(50), 5, 5, 20])
    assert counts(meter.result()) == clean(duplicates=3)


def test_reordering_two_swapped(meter: DirectionMeter) -> None:
    order = list(range(50))
    order[10], order[11] = 11, 10
    deliver(meter, send_all(meter, 50), order)
    assert counts(meter.result()) == clean(reordered=1)


def test_a_packet_held_back_counts_once(meter: DirectionMeter) -> None:
    # Packet 0 arrives last: one packet late in order, not 49.
    deliver(meter, send_all(meter, 50), [*range(1, 50), 0])
    assert counts(meter.result()) == clean(reordered=1)


def test_late(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 50)
    for index, datagram in enumerate(datagrams):
        latency = {4: 151 * MS, 9: 150 * MS, 30: 400 * MS}.get(index, 2 * MS)  # 150 ms is not above
        meter.received(datagram, T0 + index * PACING_NS + latency, at_source=True)
    result = meter.result()
    # Arrival order is the order of the calls, whatever the times: nothing reordered.
    assert counts(result) == clean(late=2)
    assert result.latency_ms is not None and result.latency_ms["max"] == 400.0


def test_late_threshold_is_the_meters() -> None:
    meter = DirectionMeter("caller-to-callee", ssrc=SSRC, late_ms=1.5)
    deliver(meter, send_all(meter, 50), latency_ns=2 * MS)
    assert meter.result().late == 50


def test_corrupted_payload(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 50)
    flipped = bytearray(datagrams[4])
    flipped[-1] ^= 0x01
    deliver(meter, [*datagrams[:4], bytes(flipped), *datagrams[5:]])
    assert counts(meter.result()) == clean(received=49, lost=1, corrupted=1)


def test_corrupted_header_fields(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 50)
    packet = parse_rtp(datagrams[8])
    wrong_timestamp = build_rtp(packet.payload_type, packet.sequence, packet.timestamp + 1, SSRC, packet.payload)
    wrong_type = build_rtp(8, packet.sequence, packet.timestamp, SSRC, packet.payload)
    # Packet 9's payload under packet 8's header: what arrives on the wrong stream slot.
    swapped = build_rtp(packet.payload_type, packet.sequence, packet.timestamp, SSRC, parse_rtp(datagrams[9]).payload)
    for datagram in (wrong_timestamp, wrong_type, swapped):
        meter.received(datagram, T0, at_source=True)
    assert counts(meter.result()) == clean(received=0, lost=50, corrupted=3)
    # An intact copy afterwards is received, not a duplicate; altered copies stay corrupted.
    deliver(meter, datagrams)
    meter.received(wrong_timestamp, T0, at_source=True)
    assert counts(meter.result()) == clean(corrupted=4)


def test_a_changed_marker_is_not_corruption(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 2)
    packet = parse_rtp(datagrams[1])
    meter.received(build_rtp(packet.payload_type, packet.sequence, packet.timestamp, SSRC, packet.payload,
                             marker=True), T0, at_source=True)
    assert (meter.result().received, meter.result().corrupted) == (1, 0)


def test_stray(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 50)
    packet = parse_rtp(datagrams[0])
    foreign_ssrc = build_rtp(packet.payload_type, packet.sequence, packet.timestamp, SSRC + 1, packet.payload)
    unknown_seq = build_rtp(packet.payload_type, 999, packet.timestamp, SSRC, packet.payload)
    for datagram in (foreign_ssrc, b"garbage bytes", b"", unknown_seq, b"\x80\xc8\x00\x06" + bytes(8)):
        meter.received(datagram, T0, at_source=True)
    assert counts(meter.result()) == clean(received=0, lost=50, stray=5)
    assert meter.result().latched is None  # strays say nothing about where the relay sends
    deliver(meter, datagrams)
    assert counts(meter.result()) == clean(stray=5)


@given(st.binary(max_size=200))
def test_any_bytes_are_counted_never_raise(data: bytes) -> None:
    meter = DirectionMeter("caller-to-callee", ssrc=SSRC)
    send_all(meter, 3)
    meter.received(data, T0, at_source=False)
    result = meter.result()
    assert result.stray + result.corrupted + result.received == 1


def test_sequence_numbers_and_timestamps_wrap(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 20, first_seq=65530, first_timestamp=2**32 - 3 * SAMPLES)
    assert [parse_rtp(datagram).sequence for datagram in datagrams[4:8]] == [65534, 65535, 0, 1]
    assert [parse_rtp(datagram).timestamp for datagram in datagrams[2:4]] == [2**32 - SAMPLES, 0]
    order = list(range(20))
    order[5], order[6] = 6, 5  # seq 0 before seq 65535: reordered by index, not by sequence number
    deliver(meter, datagrams, order)
    result = meter.result()
    assert counts(result) == clean(sent=20, received=20, reordered=1)
    # Each arrival keeps its send spacing, swapped or not, so D is 0 throughout, across the
    # timestamp wrap too (a difference taken without the wrap would be about 2**32 units).
    assert result.jitter_ms == 0.0


# -- threads: arrival before its send time is recorded -------------------------------------------------


def test_arrival_before_sent_is_recorded(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 2, record_sent=False)
    meter.received(datagrams[0], T0 + 3 * MS, at_source=True)
    meter.received(datagrams[1], T0 + PACING_NS + 200 * MS, at_source=True)
    early = meter.result()
    assert (early.sent, early.received, early.lost, early.latency_ms) == (0, 2, 0, None)
    meter.sent(0, T0)
    meter.sent(1, T0 + PACING_NS)
    result = meter.result()
    assert counts(result) == clean(sent=2, received=2, late=1)
    assert result.latency_ms == {"min": 3.0, "avg": 101.5, "p99": 200.0, "max": 200.0}


# -- latching -----------------------------------------------------------------------------------------


def test_latched_follows_the_last_intact_arrival(meter: DirectionMeter) -> None:
    datagrams = send_all(meter, 4)
    assert meter.result().latched is None
    meter.received(datagrams[0], T0, at_source=False)
    assert meter.result().latched is False
    meter.received(datagrams[1], T0, at_source=True)
    assert meter.result().latched is True
    meter.received(datagrams[0], T0, at_source=False)  # a duplicate still says where the relay sends
    assert meter.result().latched is False
    meter.received(datagrams[2], T0, at_source=True)
    meter.received(b"stray", T0, at_source=False)
    flipped = bytearray(datagrams[3])
    flipped[-1] ^= 0xFF
    meter.received(bytes(flipped), T0, at_source=False)
    assert meter.result().latched is True


# -- the result and the relay's share -----------------------------------------------------------------


def test_result_has_the_specs_keys_and_is_json(meter: DirectionMeter) -> None:
    deliver(meter, send_all(meter, 5))
    result = meter.result()
    assert list(result.as_dict()) == [
        "direction", "sent", "received", "lost", "loss_pct", "duplicates", "reordered", "late", "corrupted",
        "stray", "latency_ms", "jitter_ms", "latched",
    ]
    assert result.as_dict() == asdict(result)
    assert json.loads(json.dumps(result.as_dict()))["latency_ms"] == {"min": 2.0, "avg": 2.0, "p99": 2.0, "max": 2.0}
    with pytest.raises(AttributeError):
        result.sent = 1  # type: ignore[misc]


@pytest.mark.parametrize(("sent", "relay_received", "received", "split"), [
    (50, None, 40, (None, None)),
    (50, 50, 50, (0, 0)),
    (50, 48, 45, (2, 3)),
    (50, 52, 50, (0, 2)),  # the relay also counted two datagrams we did not (duplicates, corrupted)
    (50, 40, 45, (10, 0)),  # the relay counted fewer than arrived: never a negative loss
    (0, 0, 0, (0, 0)),
])
def test_relay_split(sent: int, relay_received: int | None, received: int,
                     split: tuple[int | None, int | None]) -> None:
    assert relay_split(sent, relay_received, received) == split


# -- any delivery adds up -----------------------------------------------------------------------------


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[int, int, list[int]]:
    count = draw(st.integers(1, 40))
    first_seq = draw(st.integers(0, 0xFFFF))
    # Any multiset of indices in any order: drops, duplicates and permutations at once.
    order = draw(st.lists(st.integers(0, count - 1), max_size=3 * count))
    return count, first_seq, order


@given(deliveries())
def test_any_delivery_adds_up(delivery: tuple[int, int, list[int]]) -> None:
    count, first_seq, order = delivery
    meter = DirectionMeter("callee-to-caller", ssrc=SSRC)
    datagrams = send_all(meter, count, first_seq=first_seq)
    deliver(meter, datagrams, order)
    result = meter.result()

    firsts: list[int] = []
    for index in order:
        if index not in firsts:
            firsts.append(index)
    arrived_after_higher = sum(1 for position, index in enumerate(firsts) if any(
        earlier > index for earlier in firsts[:position]))

    assert result.received + result.lost == result.sent == count
    assert result.received == len(firsts)
    assert result.duplicates == len(order) - len(firsts)
    assert result.reordered == arrived_after_higher
    assert result.stray == result.corrupted == result.late == 0
    assert result.latched is (False if order else None)


def test_a_payload_starts_with_its_direction_marker_when_room_is_left_for_randomness() -> None:
    assert payload_for(0, 7, 160, SEED).startswith(b"rtppctl check caller-to-callee ")
    assert payload_for(1, 7, 160, SEED).startswith(b"rtppctl check callee-to-caller ")
    room = len(b"rtppctl check caller-to-callee ") + 16
    assert payload_for(0, 7, room, SEED).startswith(b"rtppctl check ")
    assert not payload_for(0, 7, room - 1, SEED).startswith(b"rtppctl")  # too small: all random, still distinct
    assert payload_for(0, 7, 160, SEED) != payload_for(0, 8, 160, SEED)


def test_a_captured_meter_matches_arrivals_byte_for_byte():
    from rtppctl.proto.media_path import CapturedMeter

    meter = CapturedMeter("caller-to-callee", late_ms=5)
    packets = [bytes([0x80, 0, 0, n]) + b"x" * 20 for n in range(4)] + [bytes([0x80, 0, 0, 1]) + b"x" * 20]
    for index, packet in enumerate(packets):  # the capture held packet 1 twice: two sends, two expected
        meter.sent(packet, 1_000_000 * index)
    arrivals = [packets[0], packets[2], packets[1], packets[1], packets[1], b"not ours", packets[3]]
    for offset, data in enumerate(arrivals):
        meter.received(data, 1_000_000 * offset + 2_000_000, at_source=True)
    result = meter.result()
    # 1 came three times for two sends (indices 1 and 4): one duplicate. Reordered: index 1 after 2,
    # and 3 after the second 1 (index 4). Nothing lost.
    assert (result.sent, result.received, result.lost, result.duplicates, result.stray) == (5, 5, 0, 1, 1)
    assert result.reordered == 2 and result.latched is True and result.corrupted == 0
    assert result.latency_ms is not None and result.jitter_ms is not None
