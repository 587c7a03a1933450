"""Prompts, recording, copies and statistics with real RTP through a real relay.

Two agents (tests/ua.py) set a call up through rtppctl and send RTP; what each receives, and the
files the relay writes, are checked against what was sent.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import pytest

from tests.cli.helpers import cli
from tests.ua import Dialog, parse_rtp


@pytest.fixture(scope="module")
def media_relay(relays, tmp_path_factory):
    """A relay with a record directory; prompts are written to its working directory."""
    records = tmp_path_factory.mktemp("records")
    relay = relays.start(extra_args=["-r", str(records)])
    relay.extra["records"] = records
    return relay


@pytest.fixture
def dialog(capsys, tmp_path, media_relay):
    call = Dialog(capsys, tmp_path, f"media-{uuid.uuid4().hex[:8]}@test", media_relay.udp).establish()
    yield call
    call.close()


def prompt_file(relay, name: str, size: int = 1600) -> bytes:
    """A prompt of distinctive bytes (raw PCMU payload), written where the relay looks for it."""
    data = bytes((n * 7 + 3) % 256 for n in range(size))
    (relay.workdir / f"{name}.0").write_bytes(data)
    return data


def prompt_payload(packets: list[bytes]) -> bytes:
    return b"".join(parse_rtp(packet)[4] for packet in packets if parse_rtp(packet)[0] == 0)


def run(capsys, dialog: Dialog, *args: str):
    return cli(capsys, *args, "--call-id", dialog.call_id, "-t", dialog.spec)


def tone_wav(path: Path, rate: int = 16000, seconds: float = 0.3) -> Path:
    """A 1 kHz tone as a 16-bit mono WAV file."""
    import math
    import struct
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * 1000 * n / rate)))
                                 for n in range(int(rate * seconds))))
    return path


@pytest.mark.parametrize("party", ["uac", "uas"])
def test_an_encoded_tone_reaches_the_chosen_party_in_order_and_not_the_other(capsys, media_relay, dialog, party, tmp_path):
    encoded = cli(capsys, "prompt", "encode", str(tone_wav(tmp_path / "tone.wav")), str(media_relay.workdir / "hello"))
    assert encoded.code == 0, encoded.stderr
    data = (media_relay.workdir / "hello.0").read_bytes()
    assert len(data) == 2400  # 0.3 s of PCMU
    result = run(capsys, dialog, "--json", "play", "hello", "--to", party)
    assert result.code == 0, result.stderr
    assert result.json()["command"].startswith(f"P1 {dialog.call_id} hello session ")
    assert "relative: the relay opens it in its own working directory" in result.stderr
    hearer, other = (dialog.caller, dialog.callee) if party == "uac" else (dialog.callee, dialog.caller)
    heard = prompt_payload(hearer.receive(0.6))
    assert heard == data  # every byte, in order
    assert data[:160] not in prompt_payload(other.receive(0.1))


def test_a_looping_prompt_plays_until_stopped(capsys, media_relay, dialog):
    data = prompt_file(media_relay, "loop", size=800)
    assert run(capsys, dialog, "play", "loop", "--to", "uac", "--count", "-1").code == 0
    heard = prompt_payload(dialog.caller.receive(0.5))
    assert len(heard) > 2 * len(data) and heard.startswith(data + data)
    stopped = run(capsys, dialog, "stop-play", "--to", "uac")
    assert stopped.code == 0, stopped.stderr
    dialog.caller.receive(0.1)
    assert prompt_payload(dialog.caller.receive(0.3)) == b""


def test_a_missing_prompt_names_the_files_the_relay_looked_for(capsys, dialog):
    result = run(capsys, dialog, "play", "/nonexistent/prompt", "--to", "uac")
    assert result.code == 3 and result.stdout == ""
    assert "E60" in result.stderr and "/nonexistent/prompt.0, /nonexistent/prompt.8" in result.stderr
    assert "rtppctl prompt encode" in result.stderr


def test_playing_to_a_call_the_relay_does_not_know_says_what_to_do(capsys, media_relay):
    result = cli(capsys, "play", "hello", "--to", "uac", "--call-id", "nosuch@test", "--from-tag", "x", "-t", media_relay.udp)
    assert result.code == 3 and "E50" in result.stderr and "has no session for this call" in result.stderr
    unknown = cli(capsys, "play", "hello", "--to", "uac", "--call-id", "nosuch@test", "-t", media_relay.udp)
    assert unknown.code == 6 and "the ledger has no call 'nosuch@test'" in unknown.stderr


def test_recording_writes_both_directions_with_the_packets_sent(capsys, media_relay, dialog, tmp_path):
    result = run(capsys, dialog, "--json", "record")
    assert result.code == 0, result.stderr
    data = result.json()
    assert [c.split()[0] for c in data["commands"]] == ["R", "R"]
    caller_payload, callee_payload = b"\x11" * 160, b"\x22" * 160
    dialog.caller.send(5, payload=caller_payload, spacing=0.005)
    dialog.callee.send(4, payload=callee_payload, spacing=0.005)
    time.sleep(0.3)
    assert run(capsys, dialog, "stop-record").code == 0
    assert cli(capsys, "unforce", "--call-id", dialog.call_id, "--from-tag", dialog.from_tag, "-t", dialog.spec).code == 0
    time.sleep(0.3)
    records: Path = media_relay.extra["records"]
    caller_file = records / f"{dialog.call_id}={dialog.from_tag}.o.rtp"
    callee_file = records / f"{dialog.call_id}={dialog.from_tag}.a.rtp"
    assert sorted(data["files"]) == sorted([caller_file.name, callee_file.name])
    assert caller_file.read_bytes().count(caller_payload) == 5 and caller_payload not in callee_file.read_bytes()
    assert callee_file.read_bytes().count(callee_payload) == 4 and callee_payload not in caller_file.read_bytes()
    # And back into audio: the 5 packets sent while recording, 160 samples each.
    wav = tmp_path / "caller.wav"
    decoded = cli(capsys, "--json", "record", "decode", str(caller_file), str(wav))
    assert decoded.code == 0, decoded.stderr
    assert decoded.json()["packets"] == 5 and decoded.json()["codec"] == "pcmu"
    import wave

    with wave.open(str(wav)) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getnframes()) == (8000, 1, 5 * 160)


def test_a_copy_to_udp_carries_only_the_chosen_partys_stream(capsys, dialog):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.3)
    result = run(capsys, dialog, "--json", "record", "--dest", f"udp:127.0.0.1:{sink.getsockname()[1]}", "--party", "uas")
    assert result.code == 0, result.stderr
    assert result.json()["directions"] == [f"the uas's media (tag {dialog.to_tag!r}) of stream 1"]
    dialog.callee.send(3, payload=b"\x33" * 160)
    dialog.caller.send(3, payload=b"\x44" * 160)
    got = []
    try:
        while True:
            got.append(sink.recv(65535))
    except TimeoutError:
        pass
    sink.close()
    payloads = [parse_rtp(packet)[4] for packet in got]
    assert payloads == [b"\x33" * 160] * 3


def test_stats_count_each_sides_packets(capsys, dialog):
    dialog.caller.send(5)
    dialog.callee.send(3)
    time.sleep(0.2)
    result = run(capsys, dialog, "--json", "stats")
    assert result.code == 0, result.stderr
    data = result.json()
    # establish() sent 2 from each side first.
    assert (data["up"], data["down"], data["relayed"], data["dropped"]) == (7, 5, 12, 0)
    assert data["up_is"] == "uac"


def test_all_stats_give_the_lost_and_duplicate_counts(capsys, media_relay, tmp_path):
    call = Dialog(capsys, tmp_path, f"gaps-{uuid.uuid4().hex[:8]}@test", media_relay.udp).establish()
    try:
        # establish() sent 1 and 2; with these the caller's sequence is §6.2's example.
        call.caller.send_sequence([3, 6, 7, 7, 8, 9, 10])
        time.sleep(0.2)
        result = cli(capsys, "--json", "stats", "--all", "--call-id", call.call_id, "-t", call.spec)
        assert result.code == 0, result.stderr
        counters = result.json()["counters"]
        assert {k: counters[k] for k in ("rtpa_nsent", "rtpa_nrcvd", "rtpa_ndups", "rtpa_nlost", "rtpa_perrs")} == {
            "rtpa_nsent": 10, "rtpa_nrcvd": 8, "rtpa_ndups": 1, "rtpa_nlost": 2, "rtpa_perrs": 0}
    finally:
        call.close()


def test_stats_on_a_deleted_session_says_so(capsys, dialog):
    assert cli(capsys, "unforce", "--call-id", dialog.call_id, "--from-tag", dialog.from_tag, "-t", dialog.spec).code == 0
    result = run(capsys, dialog, "stats", "--from-tag", dialog.from_tag, "--to-tag", dialog.to_tag)
    assert result.code == 3 and "E50" in result.stderr and "the call has ended" in result.stderr


def test_query_reads_any_counter_and_explains_an_unknown_one(capsys, dialog):
    result = run(capsys, dialog, "--json", "query", "npkts_ina", "nrelayed")
    assert result.code == 0, result.stderr
    assert result.json()["counters"]["npkts_ina"] == 2
    bad = run(capsys, dialog, "query", "no_such_counter")
    assert bad.code == 3 and "E62" in bad.stderr and "knows no counter named 'no_such_counter'" in bad.stderr


def test_an_unknown_counter_among_several_is_named(capsys, dialog):
    # The relay's E62 does not say which name it refused (src/commands/rpcpv1_query.c only logs it).
    bad = run(capsys, dialog, "query", "npkts_ina", "bogus_one", "nrelayed", "bogus_two")
    assert bad.code == 3 and bad.stdout == ""
    assert "E62" in bad.stderr and "knows no counters named 'bogus_one', 'bogus_two'" in bad.stderr


def bye_from(dialog: Dialog, party: str, path: Path) -> Path:
    """A BYE of the dialog as `party` ("caller" or "callee") sends it: its own tag in From."""
    own, other = (dialog.from_tag, dialog.to_tag) if party == "caller" else (dialog.to_tag, dialog.from_tag)
    path.write_text(
        f"BYE sip:{party}-peer@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
        f"From: <sip:{party}@example.org>;tag={own}\r\nTo: <sip:peer@example.org>;tag={other}\r\n"
        f"Call-ID: {dialog.call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
    return path


def test_from_a_callees_message_uac_is_the_callee(capsys, media_relay, dialog, tmp_path):
    """As checked against OpenSIPS (§17): uac is the party that sent the message."""
    data = prompt_file(media_relay, "bye-prompt")
    bye = bye_from(dialog, "callee", tmp_path / "bye.txt")
    result = cli(capsys, "--json", "play", "bye-prompt", "--to", "uac", "--message", str(bye), "-t", dialog.spec)
    assert result.code == 0, result.stderr
    assert prompt_payload(dialog.callee.receive(0.6)) == data
    assert prompt_payload(dialog.caller.receive(0.1)) == b""


@pytest.mark.parametrize("state", ["ledger", "none"])
def test_recording_from_a_callees_bye_is_named_after_the_caller_who_created_the_session(
        capsys, media_relay, dialog, tmp_path, state):
    """The bug of issue 15: the files were said to be CALLID=<callee>.o.rtp, "the caller's media
    (uac)". The relay names them after the session's creator whoever is recorded (src/rtpp_record.c:
    sp->from_tag_nmn, the first tag of the U that made the session, src/rtpp_session.c), .o for its
    media and .a for the other party's; the module's R puts the message sender's tag first
    (rtpproxy_recording in modules/rtpproxy/rtpproxy.c). Without a ledger, rtppctl asks the relay
    who created the session."""
    bye = bye_from(dialog, "callee", tmp_path / "bye.txt")
    states = ("--state", "none") if state == "none" else ()
    result = cli(capsys, *states, "--json", "record", "--message", str(bye), "-t", dialog.spec)
    assert result.code == 0, result.stderr
    data = result.json()
    caller_file, callee_file = (f"{dialog.call_id}={dialog.from_tag}.{kind}.rtp" for kind in ("o", "a"))
    assert data["files"] == [callee_file, caller_file]
    assert [c.split()[:4] for c in data["commands"]] == [
        ["R", dialog.call_id, dialog.to_tag, dialog.from_tag], ["R", dialog.call_id, dialog.from_tag, dialog.to_tag]]
    assert data["directions"] == [f"the uac's media (tag {dialog.to_tag!r})", f"the uas's media (tag {dialog.from_tag!r})"]
    dialog.caller.send(3, payload=b"\x61" * 160)
    dialog.callee.send(2, payload=b"\x62" * 160)
    time.sleep(0.2)
    assert cli(capsys, "unforce", "--message", str(bye), "-t", dialog.spec).code == 0
    time.sleep(0.3)
    records: Path = media_relay.extra["records"]
    written = sorted(path.name for path in records.glob(f"{dialog.call_id}=*.rtp"))
    assert written == sorted(data["files"])  # what the relay actually wrote
    assert (records / callee_file).read_bytes().count(b"\x62" * 160) == 2
    assert (records / caller_file).read_bytes().count(b"\x61" * 160) == 3


@pytest.mark.parametrize("sender", ["caller", "callee"])
def test_play_stats_query_and_record_from_a_bye_of_each_party(capsys, media_relay, dialog, tmp_path, sender):
    """uac is the BYE's sender: the prompt reaches it, "up" and npkts_ina count its packets, and
    its media is recorded first; the files keep the creator's (the caller's) name."""
    bye = bye_from(dialog, sender, tmp_path / "bye.txt")
    own, other = (dialog.caller, dialog.callee) if sender == "caller" else (dialog.callee, dialog.caller)
    own.send(5)
    other.send(1)
    time.sleep(0.2)
    by_message = ("--message", str(bye), "-t", dialog.spec)
    stats = cli(capsys, "--json", "stats", *by_message)
    assert stats.code == 0, stats.stderr
    assert (stats.json()["up_is"], stats.json()["up"], stats.json()["down"]) == ("uac", 7, 3)  # 2 each from establish()
    query = cli(capsys, "--json", "query", "npkts_ina", "npkts_ino", *by_message)
    assert query.json()["counters"] == {"npkts_ina": 7, "npkts_ino": 3}
    data = prompt_file(media_relay, f"bye-{sender}", size=800)
    own.receive(0.05)  # what the other party sent, relayed
    other.receive(0.05)
    assert cli(capsys, "play", f"bye-{sender}", "--to", "uac", *by_message).code == 0
    assert prompt_payload(own.receive(0.4)) == data
    assert data[:160] not in prompt_payload(other.receive(0.05))
    record = cli(capsys, "--json", "record", "--one-way", *by_message)
    assert record.code == 0, record.stderr
    kind = "o" if sender == "caller" else "a"
    assert record.json()["files"] == [f"{dialog.call_id}={dialog.from_tag}.{kind}.rtp"]
    assert cli(capsys, "unforce", *by_message).code == 0
    time.sleep(0.3)
    assert (media_relay.extra["records"] / record.json()["files"][0]).exists()


def test_from_a_reply_stats_count_its_sender_and_play_still_names_the_from_party(capsys, media_relay, dialog, tmp_path):
    """A reply was sent by the uas: the module's rtpproxy_stats swaps the tags for it (rtpp_build_stats
    in modules/rtpproxy/rtpproxy.c), while stream2uac still plays to the From party
    (rtpproxy_stream in modules/rtpproxy/rtpproxy_stream.c does not look at the message type)."""
    reply = tmp_path / "200ok.txt"
    reply.write_text(
        f"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2\r\n"
        f"From: <sip:caller@example.org>;tag={dialog.from_tag}\r\nTo: <sip:callee@example.org>;tag={dialog.to_tag}\r\n"
        f"Call-ID: {dialog.call_id}\r\nCSeq: 3 INFO\r\nContent-Length: 0\r\n\r\n")
    dialog.callee.send(4)
    time.sleep(0.2)
    by_message = ("--message", str(reply), "-t", dialog.spec)
    stats = cli(capsys, "--json", "stats", *by_message)
    assert (stats.json()["up_is"], stats.json()["up"], stats.json()["down"]) == ("uas", 6, 2)
    data = prompt_file(media_relay, "reply-prompt", size=800)
    dialog.caller.receive(0.05)  # the callee's packets, relayed
    assert cli(capsys, "play", "reply-prompt", "--to", "uac", *by_message).code == 0
    assert prompt_payload(dialog.caller.receive(0.4)) == data


def test_a_late_offer_makes_the_callee_the_sessions_creator_and_its_name(capsys, media_relay, tmp_path):
    """rtpproxy_engage with late negotiation sends U ttag ftag for the 200 OK's SDP: the callee
    creates the session, so the relay names the recordings after the callee's tag; the ledger
    keeps that creator, so record says so without asking the relay."""
    from tests.ua import Agent, sdp_for

    call_id = f"late-{uuid.uuid4().hex[:8]}@test"
    caller, callee = Agent("caller"), Agent("callee")
    try:
        offer, answer = tmp_path / "offer.sdp", tmp_path / "answer.sdp"
        offer.write_text(sdp_for(callee))
        answer.write_text(sdp_for(caller))
        engaged = cli(capsys, "--json", "engage", "--late", "--offer", str(offer), "--answer", str(answer),
                      "--call-id", call_id, "--from-tag", "ft", "--to-tag", "tt", "-t", media_relay.udp)
        assert engaged.code == 0, engaged.stderr
        assert engaged.json()["offer"]["commands"][0]["command"].split()[-2:] == ["tt;1", "ft;1"]
        sessions = cli(capsys, "--json", "sessions").json()["sessions"]
        assert [(e["from_tag"], e["to_tag"]) for e in sessions if e["call_id"] == call_id] == [("tt", "ft")]
        result = cli(capsys, "-vv", "--json", "record", "--call-id", call_id, "-t", media_relay.udp)
        assert result.code == 0, result.stderr
        assert f"Q {call_id}" not in result.stderr  # the ledger knew the creator
        assert result.json()["files"] == [f"{call_id}=tt.o.rtp", f"{call_id}=tt.a.rtp"]
        assert cli(capsys, "unforce", "--call-id", call_id, "-t", media_relay.udp).code == 0
        time.sleep(0.3)
        written = sorted(path.name for path in media_relay.extra["records"].glob(f"{call_id}=*.rtp"))
        assert written == sorted(result.json()["files"])
    finally:
        caller.close()
        callee.close()


def test_a_re_offer_from_the_callee_keeps_the_caller_as_the_creator(capsys, media_relay, dialog, tmp_path):
    """A callee's re-INVITE sends U callee caller, which finds the caller's session (find_stream,
    src/rtpp_session.c): the ledger keeps the caller's tag as the creator's, so the files keep
    their name."""
    from tests.ua import sdp_for

    body = tmp_path / "reinvite.sdp"
    body.write_text(sdp_for(dialog.callee))
    again = cli(capsys, "offer", str(body), "--call-id", dialog.call_id, "--from-tag", dialog.to_tag,
                "--to-tag", dialog.from_tag, "-t", dialog.spec)
    assert again.code == 0, again.stderr
    entry = next(e for e in cli(capsys, "--json", "sessions").json()["sessions"] if e["call_id"] == dialog.call_id)
    assert (entry["from_tag"], entry["to_tag"]) == (dialog.from_tag, dialog.to_tag)
    result = run(capsys, dialog, "--json", "record")
    assert result.json()["files"] == [f"{dialog.call_id}={dialog.from_tag}.{kind}.rtp" for kind in ("o", "a")]


def test_single_file_is_said_to_need_pcap_before_it_is_sent(capsys, dialog):
    result = run(capsys, dialog, "-vv", "record", "--single-file")
    assert result.code == 0, result.stderr
    warning = result.stderr.index("--single-file works only when the relay runs with -P")
    assert warning < result.stderr.index(f"Rs {dialog.call_id}")  # said before the command went out


def test_with_the_embedded_relay_rtppctl_knows_its_record_dir_and_pcap(capsys, tmp_path):
    from rtppctl import embedded
    from tests.relay import free_port

    records = tmp_path / "rec"
    records.mkdir()
    control = f"udp:127.0.0.1:{free_port()}"
    started = cli(capsys, "embedded", "start", "--control", control, "--record-dir", str(records), "--pcap")
    assert started.code == 0, started.stderr
    try:
        call = Dialog(capsys, tmp_path, "embedded-rec@test", control).establish()
        result = cli(capsys, "record", "--single-file", "--call-id", call.call_id, "-t", control)
        assert result.code == 0, result.stderr
        assert "-P" not in result.stderr  # the embedded relay runs with -P: nothing to warn about
        assert f"the relay writes in {records}:" in result.stdout
        call.close()
    finally:
        embedded.stop()


def test_stats_watch_streams_samples_with_rates(dialog, tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "RTPPCTL_STATE": "none"}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "rtppctl", "--json", "stats", "--watch", "0.3", "--call-id", dialog.call_id,
         "--from-tag", dialog.from_tag, "--to-tag", dialog.to_tag, "-t", dialog.spec],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(watcher.stdout.readline())
        dialog.caller.send(30, spacing=0.005)
        second = json.loads(watcher.stdout.readline())
        third = json.loads(watcher.stdout.readline())
    finally:
        watcher.terminate()
        watcher.wait(10)
    assert first["type"] == "stats" and first["up"] == 2
    assert max(second["up"], third["up"]) == 32
    assert second["rates"]["up"] > 0 or third["rates"]["up"] > 0


def test_record_decode_refuses_what_is_not_a_recording_and_writes_nothing(capsys, tmp_path):
    bogus = tmp_path / "notes.rtp"
    bogus.write_bytes(b"hello, this is not a recording at all, just some text\n")
    out = tmp_path / "out.wav"
    result = cli(capsys, "record", "decode", str(bogus), str(out))
    assert result.code == 6 and str(bogus) in result.stderr and not out.exists()


def test_telephone_events_go_through_the_relay_to_the_other_party(dialog):
    from rtppctl.proto.rtp import parse_telephone_event

    dialog.caller.send_event("5")
    events = [parse_rtp(p) for p in dialog.callee.receive(0.3)]
    bodies = [parse_telephone_event(payload) for pt, _, _, _, payload in events if pt == 101]
    assert [b.digit for b in bodies] == ["5"] * 5 and bodies[-1].end and bodies[-1].duration == 800


def test_a_copy_to_a_file_name_writes_that_partys_stream_in_the_record_dir(capsys, media_relay, dialog):
    name = f"copy-{uuid.uuid4().hex[:6]}"
    result = run(capsys, dialog, "--json", "record", "--dest", name, "--stream", "1")
    assert result.code == 0, result.stderr
    assert result.json()["files"] == [f"{name}.rtp"]
    dialog.caller.send(3, payload=b"\x55" * 160)
    time.sleep(0.2)
    assert cli(capsys, "unforce", "--call-id", dialog.call_id, "--from-tag", dialog.from_tag, "-t", dialog.spec).code == 0
    time.sleep(0.3)
    written = (media_relay.extra["records"] / f"{name}.rtp").read_bytes()
    assert written.count(b"\x55" * 160) == 3


@pytest.mark.parametrize("call_id", ["../escape@test", ".hidden@test", "~home@test", "a/b@test"])
def test_a_call_id_that_would_leave_the_record_dir_is_refused_before_sending(capsys, media_relay, call_id):
    result = cli(capsys, "-vv", "record", "--call-id", call_id, "--from-tag", "ft", "--to-tag", "tt", "-t", media_relay.udp)
    assert result.code == 6 and result.stdout == ""
    assert "R " not in result.stderr  # no command went out


# -- what the relay would misread is refused before anything is sent ---------------------------------


@pytest.mark.parametrize(("dest", "says"), [
    ("../x", "contains '/': the relay would write outside its record directory"),
    ("sub/x", "contains '/'"),
    ("udp:127.0.0.1:70000", "port 70000 is out of range 1..65534"),
    ("udp:127.0.0.1:0", "port 0 is out of range 1..65534"),
    ("udp:127.0.0.1:65535", "port 65535 is out of range 1..65534"),
    ("udp:localhost:40000", "'localhost' is not a numeric IPv4 address"),
    ("udp:[::1]:40000", "copies over IPv4 only"),
    ("udp6:127.0.0.1:40000", "starts with 'udp6:'"),
])
def test_a_copy_destination_the_relay_would_misread_is_refused_before_sending(capsys, media_relay, dialog, dest, says):
    result = run(capsys, dialog, "-vv", "record", "--dest", dest)
    assert result.code == 6 and result.stdout == "", result.stderr
    assert f"rtppctl: error: copy target {dest!r}" in result.stderr and says in result.stderr
    assert "> " not in result.stderr  # the trace shows no datagram: nothing reached the relay
    records: Path = media_relay.extra["records"]
    assert not (records.parent / "x.rtp").exists() and not list(records.glob("*udp*"))


def test_why_ports_are_checked_a_relay_without_rtcp_copies_says_0_to_port_70000(capsys, relays, tmp_path):
    # With -R (no RTCP recording) nothing in rtpp_record.c checks the RTP copy's port: rtp.io 1.1.1
    # replies 0 to udp:127.0.0.1:70000 and to port 0, and copies nowhere; without -R it answers E65.
    relay = relays.start(extra_args=["-R"])
    call = Dialog(capsys, tmp_path, f"norctp-{uuid.uuid4().hex[:6]}@test", relay.udp).establish()
    try:
        for port in ("70000", "0"):
            raw = cli(capsys, "raw", "-t", relay.udp, f"C {call.call_id} udp:127.0.0.1:{port} {call.from_tag};1")
            assert (raw.code, raw.stdout) == (0, "0\n"), raw.stderr
        refused = cli(capsys, "record", "--dest", "udp:127.0.0.1:70000", "--call-id", call.call_id, "-t", relay.udp)
        assert refused.code == 6 and "out of range 1..65534" in refused.stderr
    finally:
        call.close()


def test_stop_record_on_a_call_that_is_not_recording_says_so(capsys, dialog):
    # N answers E50 both for an unknown call and for one with nothing to stop (handle_norecord in
    # src/commands/rpcpv1_norecord.c counts what it stopped): rtppctl asks Q to tell them apart.
    result = run(capsys, dialog, "--json", "stop-record")
    assert result.code == 0, result.stderr
    assert result.json()["was_recording"] is False and result.json()["replies"] == ["E50", "E50"]
    human = run(capsys, dialog, "stop-record")
    assert human.code == 0 and human.stdout == f"{dialog.spec} was not recording {dialog.call_id} (nothing to stop)\n"
    assert run(capsys, dialog, "record").code == 0
    stopped = run(capsys, dialog, "--json", "stop-record")
    assert stopped.code == 0 and stopped.json()["was_recording"] is True
    gone = cli(capsys, "stop-record", "--call-id", "nosuch@test", "--from-tag", "x", "--to-tag", "y", "-t", dialog.spec)
    assert gone.code == 3 and "E50" in gone.stderr and "has no session for this call" in gone.stderr


def test_stats_all_shows_each_counter_once(capsys, dialog):
    result = run(capsys, dialog, "stats", "--all")
    assert result.code == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()[2:] if line.strip()]
    assert names.count("ttl") == 1 and len(names) == len(set(names)), result.stdout
    assert "npkts_ina" not in names  # it is "up (from uac)"
    data = run(capsys, dialog, "--json", "stats", "--all").json()
    assert data["counters"]["npkts_ina"] == data["up"] and {"ttl", "rtpa_nlost", "rtpa_perrs"} <= set(data["counters"])


# -- IPv6: a call recorded through the real relay, decoded ----------------------------------------


@pytest.fixture(scope="module")
def media_relay6(relays, tmp_path_factory):
    """A relay with a record directory that also listens on ::1 (-6 v6@::1)."""
    records = tmp_path_factory.mktemp("records6")
    relay = relays.start(extra_args=["-r", str(records)], ipv6=True)
    relay.extra["records"] = records
    return relay


def test_a_call_over_ipv6_is_recorded_and_decoded(capsys, media_relay6, tmp_path):
    import json
    import struct

    from rtppctl.proto.recording import parse_recording

    caller, callee = (socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) for _ in range(2))
    try:
        for agent in (caller, callee):
            agent.bind(("::1", 0))
        call_id = f"v6-{uuid.uuid4().hex[:8]}@test"
        spec = media_relay6.udp
        ports = []
        for agent, extra in ((caller, ()), (callee, ("--to-tag", "tt"))):
            body = tmp_path / f"{agent.getsockname()[1]}.sdp"
            body.write_text(f"v=0\no=- 1 1 IN IP6 ::1\ns=-\nc=IN IP6 ::1\nt=0 0\n"
                            f"m=audio {agent.getsockname()[1]} RTP/AVP 0\n")
            letter = "offer" if not extra else "answer"
            done = cli(capsys, "--json", letter, str(body), "--call-id", call_id, "--from-tag", "ft", *extra, "-t", spec)
            assert done.code == 0, done.stderr
            ports.append(json.loads(done.stdout)["streams"][0]["port"])
        assert cli(capsys, "record", "--call-id", call_id, "-t", spec).code == 0
        payload = b"\x5a" * 160
        for seq in range(1, 6):
            caller.sendto(struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x600D) + payload, ("::1", ports[1]))
            time.sleep(0.005)
        time.sleep(0.3)
        assert cli(capsys, "unforce", "--call-id", call_id, "--from-tag", "ft", "-t", spec).code == 0
        time.sleep(0.3)
        recording = media_relay6.extra["records"] / f"{call_id}=ft.o.rtp"
        packets = parse_recording(recording.read_bytes())
        assert [(p.address, p.port) for p in packets] == [("::1", caller.getsockname()[1])] * 5
        wav = tmp_path / "caller.wav"
        decoded = cli(capsys, "--json", "record", "decode", str(recording), str(wav))
        assert decoded.code == 0, decoded.stderr
        assert (decoded.json()["packets"], decoded.json()["codec"], decoded.json()["ssrcs"]) == (5, "pcmu", 1)
        import wave

        with wave.open(str(wav)) as audio:
            assert audio.getnframes() == 5 * 160
    finally:
        caller.close()
        callee.close()


def test_the_creator_query_finds_the_party_whose_offer_made_the_session(dialog):
    # What `record` relies on to name the files when the ledger does not know the creator.
    from rtppctl.net.client import RelayClient
    from rtppctl.proto import command as cmd
    from rtppctl.proto.errors import ProxyError
    from rtppctl.proto.url import parse_node

    with RelayClient.open(parse_node(dialog.spec), timeout=1.0, retries=3) as client:
        assert cmd.parse_counters(client.call(cmd.creator_query(dialog.call_id, dialog.from_tag)))["ttl"] > 0
        with pytest.raises(ProxyError) as answered:
            client.call(cmd.creator_query(dialog.call_id, dialog.to_tag))
    assert answered.value.code == cmd.SESSION_NOT_FOUND
