"""The SDP corpus: every case of tests/data/sdp/ through offer then answer against a real relay.

A case is a TOML file: the call (call_id, from_tag, to_tag, flags, options), the offer body and the
answer body, and for each the exact rewritten body and the exact commands sent. Relay ports are
not known in advance: `${o1}` in an expected text stands for the port the relay gave the offer's
stream 1, `${a2}` for the answer's stream 2, and `${o1+1}` for that port plus one (RTCP).
`crlf = true` turns every line ending of the bodies into CRLF.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.cli.helpers import cli

pytestmark = pytest.mark.relay

CASES = sorted((Path(__file__).parent.parent / "data" / "sdp").glob("*.toml"))
PLACEHOLDER = re.compile(r"\$\{([oa])(\d+)(\+1)?\}")


def load(path: Path) -> dict:
    case = tomllib.loads(path.read_text())
    if case.get("crlf"):
        for key in ("offer", "answer", "expect_offer", "expect_answer"):
            if key in case:
                case[key] = case[key].replace("\r\n", "\n").replace("\n", "\r\n")
    return case


def substitute(text: str, ports: dict[str, dict[int, int]], relay_spec: str) -> str:
    def port(match: re.Match) -> str:
        value = ports[match[1]][int(match[2])]
        return str(value + 1 if match[3] else value)

    return PLACEHOLDER.sub(port, text).replace("${relay}", relay_spec)


def run_step(capsys, relay, case: dict, step: str, tmp_path: Path):
    body = tmp_path / f"{step}.sdp"
    body.write_bytes(case[step].encode())
    target = relay.specs[case.get("transport", "udp")] + case.get("target_suffix", "")
    args = [step if step == "offer" else "answer", str(body), "--json", "-t", target, "--call-id", case["call_id"], "--from-tag", case["from_tag"]]
    options = {**case.get("options", {}), **case.get(f"{step}_options", {})}
    if "to_tag" in case and (step == "answer" or options.pop("offer_to_tag", False)):
        args += ["--to-tag", case["to_tag"]]
    for name, value in options.items():
        if value is True:
            args.append(f"--{name}")
        elif value is not False:
            args += [f"--{name}", str(value)]
    flags = case.get(f"{step}_flags", case.get("flags", ""))
    if flags:
        args += ["--flags", flags]
    if step == "offer" and case.get("verb_offer") == "answer":
        args[0] = "answer"
    if step == "answer" and case.get("verb_answer") == "offer":
        args[0] = "offer"
    return cli(capsys, *args), body


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_sdp_case(capsys, relay, path, tmp_path):
    case = load(path)
    ports: dict[str, dict[int, int]] = {"o": {}, "a": {}}
    try:
        for step, key in (("offer", "o"), ("answer", "a")):
            if step not in case:
                continue
            result, body = run_step(capsys, relay, case, step, tmp_path)
            if f"expect_{step}_error" in case:
                assert result.code == case.get(f"expect_{step}_exit", 6), result.stderr
                assert case[f"expect_{step}_error"] in result.stderr
                assert result.stdout == ""
                assert body.read_bytes() == case[step].encode()
                continue
            assert result.code == 0, result.stderr
            data = result.json()
            ports[key] = {s["medianum"]: s["port"] for s in data["streams"]}
            assert [e["command"] for e in data["commands"]] == [
                substitute(c, ports, relay.udp) for c in case[f"expect_{step}_commands"]
            ]
            assert data["sdp"] == substitute(case[f"expect_{step}"], ports, relay.udp)
            for warning in case.get(f"expect_{step}_warnings", []):
                assert warning in result.stderr
            if f"expect_{step}_ret" in case:
                assert data["ret"] == substitute(case[f"expect_{step}_ret"], ports, relay.udp)
    finally:
        tags = ["--from-tag", case["from_tag"]] + (["--to-tag", case["to_tag"]] if "to_tag" in case else [])
        cli(capsys, "unforce", "-t", relay.udp, "--call-id", case["call_id"], *tags)


def test_corpus_has_enough_cases():
    assert len(CASES) >= 25
