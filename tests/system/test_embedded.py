"""`rtppctl embedded` runs the real engine: start, answer, refuse what is in the way, stop cleanly.

Every engine goes to the per-test state dir (the autouse fixture isolates XDG_STATE_HOME) and is
stopped at teardown whatever the test did.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rtppctl import embedded
from rtppctl.embedded import EmbeddedOptions, default_state_dir, engine_args
from rtppctl.net.client import RelayClient
from rtppctl.proto import command as cmd
from rtppctl.proto.errors import ConfigError, ExitCode, InputError, ProxyError
from rtppctl.proto.url import parse_node
from tests.cli.helpers import cli, cli_process
from tests.relay import free_port

pytestmark = pytest.mark.relay


@pytest.fixture
def state_dir() -> Path:
    return default_state_dir()


@pytest.fixture(autouse=True)
def stop_engine_afterwards():
    yield
    embedded.stop()


@pytest.fixture
def control() -> str:
    return f"udp:127.0.0.1:{free_port()}"


def ask_version(spec: str, cookie: str = "t1") -> str:
    """A real `V` over UDP; the reply without its cookie."""
    host, port = spec.split(":", 1)[1].rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(f"{cookie} V\n".encode(), (host, int(port)))
        reply = sock.recv(1024).decode()
    assert reply.startswith(cookie + " ")
    return reply.split()[1]


def port_is_free(spec: str) -> bool:
    host, port = spec.split(":", 1)[1].rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, int(port)))
        except OSError:
            return False
    return True


def process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def after(args: list[str], switch: str, count: int) -> list[str]:
    """`count` items of `args` from the first `switch` on."""
    start = args.index(switch)
    return args[start : start + count]


def offer(spec: str, address: str, call_id: str) -> cmd.PortReply:
    """A real offer from `address` to the relay at `spec`, through the real client."""
    ipv6 = ":" in address
    command = cmd.update(call_id, address, 5000, "ft", modifiers=cmd.Modifiers(ipv6=ipv6) if ipv6 else None)
    with RelayClient.open(parse_node(spec), timeout=2.0) as client:
        return cmd.parse_port_reply(client.call(command))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# -- engine arguments ----------------------------------------------------------------------------


def test_engine_args_always_allow_root_and_quiet_logging():
    args = engine_args(EmbeddedOptions())
    assert args[:3] == ["-F", "-d", "err"]
    # IPv6 loopback as well by default; the engine wants a label on -6 once -l is given.
    assert args[3:] == ["-l", "127.0.0.1", "-6", "v6@::1", "-m", "35000", "-M", "65000", "-s", "udp:127.0.0.1:22222"]
    full = engine_args(EmbeddedOptions(
        control=["udp:127.0.0.1:1", "tcp:127.0.0.1:2"], notify=["tcp:127.0.0.1:9"], record_dir="/r", pcap=True,
        ttl=30, setup_ttl=5, extra_args=["-6", "mine@::1"],
    ))
    # The operator's own -6 wins: ours is left out rather than given twice.
    assert full[3:9] == ["-l", "127.0.0.1", "-m", "35000", "-M", "65000"]
    assert full[9:] == ["-s", "udp:127.0.0.1:1", "-s", "tcp:127.0.0.1:2", "-n", "tcp:127.0.0.1:9", "-r", "/r", "-P",
                        "-T", "30", "-W", "5", "-6", "mine@::1"]


def test_engine_args_ipv6_forms():
    assert engine_args(EmbeddedOptions(listen6=None))[3:7] == ["-l", "127.0.0.1", "-m", "35000"]
    assert engine_args(EmbeddedOptions(listen6="2001:db8::5"))[5:7] == ["-6", "v6@2001:db8::5"]
    assert engine_args(EmbeddedOptions(listen6="lan@2001:db8::5"))[5:7] == ["-6", "lan@2001:db8::5"]


def test_config_listen6_takes_an_address_or_empty_for_ipv4_only(tmp_path):
    from rtppctl.config import config_from_mapping

    path = tmp_path / "config.toml"
    assert config_from_mapping({}, path).embedded.listen6 == "::1"
    assert config_from_mapping({"embedded": {"listen6": ""}}, path).embedded.listen6 is None
    assert config_from_mapping({"embedded": {"listen6": "2001:db8::5"}}, path).embedded.listen6 == "2001:db8::5"
    with pytest.raises(ConfigError, match=r"embedded\.listen6: expected an IPv6 address without spaces"):
        config_from_mapping({"embedded": {"listen6": "::1 x"}}, path)


def test_media_addresses_read_from_the_engine_switches():
    assert embedded.media_addresses(engine_args(EmbeddedOptions())) == {"ipv4": "127.0.0.1", "ipv6": "::1"}
    assert embedded.media_addresses(engine_args(EmbeddedOptions(listen6=None))) == {"ipv4": "127.0.0.1", "ipv6": None}
    assert embedded.media_addresses(["-l", "10.0.0.5=203.0.113.5", "-6x@::1", "-s", "udp:127.0.0.1:1"]) == {
        "ipv4": "10.0.0.5=203.0.113.5", "ipv6": "::1"
    }


def test_ipv6_detection_binds_the_address():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    assert embedded.ipv6_unavailable("::1") is None
    assert embedded.ipv6_unavailable("v6@::1=2001:db8::5") is None  # only the local address is bound
    problem = embedded.ipv6_unavailable("2001:db8::5")  # documentation prefix: never this host's
    assert problem is not None and problem.startswith("cannot bind 2001:db8::5 (")


# -- start, status, stop -------------------------------------------------------------------------


def test_start_runs_a_real_relay_that_answers(state_dir, control):
    started = embedded.start(EmbeddedOptions(control=[control]))
    assert started.running and started.pid and started.control == [control]
    assert started.protocol_version == "20040107"
    assert ask_version(control) == "20040107"

    current = embedded.status()
    assert current.running and current.pid == started.pid and current.control == [control]
    assert current.engine_args[:3] == ["-F", "-d", "err"] and ["-s", control] == current.engine_args[-2:]
    assert current.uptime is not None and current.uptime >= 0
    assert (state_dir / "embedded.pid").read_text().strip() == str(started.pid)
    assert current.log_path == state_dir / "embedded.log" and current.log_path.exists()
    data = current.as_dict()
    assert data["running"] is True and data["pid"] == started.pid and data["workdir"] == str(state_dir)


def test_ipv6_offers_get_ipv6_media_by_default(capsys, control):
    if embedded.ipv6_unavailable("::1") is not None:
        pytest.skip("no IPv6 loopback here")
    started = embedded.start(EmbeddedOptions(control=[control]))
    assert started.media == {"ipv4": "127.0.0.1", "ipv6": "::1"} and started.media_note is None
    v6 = offer(control, "::1", "v6call@t")
    assert v6.ipv6 and v6.address == "::1" and v6.port > 0
    v4 = offer(control, "127.0.0.1", "v4call@t")
    assert not v4.ipv6 and v4.address == "127.0.0.1"

    data = embedded.status().as_dict()
    assert data["media"] == {"ipv4": "127.0.0.1", "ipv6": "::1"} and data["media_note"] is None
    shown = cli(capsys, "embedded", "status")
    assert shown.code == 0 and "IPv4 127.0.0.1, IPv6 ::1" in shown.stdout


def test_without_ipv6_it_starts_ipv4_only_and_says_so(capsys, monkeypatch, control):
    reason = "cannot bind ::1 (Address family not supported by protocol)"
    asked: list[str] = []
    monkeypatch.setattr(embedded, "ipv6_unavailable", lambda address: asked.append(address) or reason)
    started = embedded.start(EmbeddedOptions(control=[control]))
    assert asked == ["::1"]
    assert started.running and started.protocol_version == "20040107"
    assert "-6" not in started.engine_args
    assert started.media == {"ipv4": "127.0.0.1", "ipv6": None}
    assert started.media_note == f"no IPv6 media: {reason}"
    assert offer(control, "127.0.0.1", "v4only@t").address == "127.0.0.1"
    with pytest.raises(ProxyError) as refused:
        offer(control, "::1", "v6none@t")
    assert refused.value.code == 36  # the engine has no IPv6 address to offer

    # The note outlives the starting process: status reads it back from the state dir.
    data = embedded.status().as_dict()
    assert data["media"] == {"ipv4": "127.0.0.1", "ipv6": None} and data["media_note"] == started.media_note
    shown = cli(capsys, "embedded", "status")
    assert f"IPv4 127.0.0.1 (no IPv6 media: {reason})" in shown.stdout


def test_ipv4_only_on_request(capsys, monkeypatch, control):
    monkeypatch.setattr(embedded, "ipv6_unavailable", lambda address: pytest.fail("nothing to detect"))
    started = embedded.start(EmbeddedOptions(control=[control], listen6=None))
    assert started.media == {"ipv4": "127.0.0.1", "ipv6": None} and started.media_note is None
    assert "IPv4 127.0.0.1 (IPv4 only)" in cli(capsys, "embedded", "status").stdout


def test_a_not_running_status_has_no_media():
    data = embedded.status().as_dict()
    assert data["running"] is False and data["media"] is None and data["media_note"] is None


def test_engine_works_in_the_state_dir(state_dir, control):
    started = embedded.start(EmbeddedOptions(control=[control]))
    assert Path(f"/proc/{started.pid}/cwd").resolve() == state_dir.resolve()


def test_a_second_start_is_refused_with_what_runs(control):
    first = embedded.start(EmbeddedOptions(control=[control]))
    with pytest.raises(ConfigError) as info:
        embedded.start(EmbeddedOptions(control=[f"udp:127.0.0.1:{free_port()}"]))
    assert info.value.exit_code == ExitCode.CONFIG
    assert info.value.message == f"the embedded relay is already running (pid {first.pid}, {control})"
    assert info.value.hint == "stop it with: rtppctl embedded stop"
    assert embedded.status().pid == first.pid


def test_a_busy_control_port_is_reported_before_spawning(state_dir, control):
    host, port = control.split(":", 1)[1].rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((host, int(port)))
        with pytest.raises(ConfigError) as info:
            embedded.start(EmbeddedOptions(control=[control]))
    assert info.value.message == (
        f"control socket {control} is busy (Address already in use): another relay or program listens there"
    )
    assert "--control" in info.value.hint
    assert not (state_dir / "embedded.pid").exists()
    assert embedded.status().running is False


def test_a_busy_tcp_control_port_too(control):
    port = free_port(socket.SOCK_STREAM)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(ConfigError, match=f"control socket tcp:127.0.0.1:{port} is busy"):
            embedded.start(EmbeddedOptions(control=[control, f"tcp:127.0.0.1:{port}"]))
    assert port_is_free(control)


def test_stop_is_clean_and_idempotent(state_dir, control):
    started = embedded.start(EmbeddedOptions(control=[control]))
    result = embedded.stop()
    assert result == {"stopped": True, "pid": started.pid, "forced": False, "control": [control], "state_dir": str(state_dir)}
    assert process_gone(started.pid)
    assert not (state_dir / "embedded.pid").exists() and not (state_dir / "embedded.json").exists()
    assert port_is_free(control)
    assert embedded.status().running is False
    assert embedded.stop() == {"stopped": False, "reason": "not running", "state_dir": str(state_dir)}


def test_a_stale_pid_file_is_cleaned_up_and_does_not_block_start(state_dir, control):
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "embedded.pid").write_text(f"{dead_pid()}\n")
    (state_dir / "embedded.json").write_text('{"control": ["udp:127.0.0.1:1"]}')
    current = embedded.status()
    assert current.running is False and current.pid is None
    assert not (state_dir / "embedded.pid").exists() and not (state_dir / "embedded.json").exists()

    (state_dir / "embedded.pid").write_text(f"{dead_pid()}\n")
    assert embedded.start(EmbeddedOptions(control=[control])).running
    assert ask_version(control) == "20040107"


def test_a_pid_reused_by_another_program_is_not_ours_to_kill(state_dir):
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "embedded.pid").write_text(f"{stranger.pid}\n")
        assert embedded.status().running is False
        (state_dir / "embedded.pid").write_text(f"{stranger.pid}\n")
        assert embedded.stop()["stopped"] is False
        time.sleep(0.1)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_the_engines_own_refusal_is_quoted(state_dir, control):
    with pytest.raises(ConfigError) as info:
        embedded.start(EmbeddedOptions(control=[control], notify=["tcp:1.2.3.4"]))
    assert info.value.message.startswith("the embedded relay did not start: ")
    assert "Can't parse host:port" in info.value.message
    assert info.value.hint == f"full log: {state_dir / 'embedded.log'}"
    assert embedded.status().running is False and port_is_free(control)


def test_a_file_at_a_unix_control_path_is_never_replaced(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    with pytest.raises(ConfigError, match="exists and is not a socket"):
        embedded.start(EmbeddedOptions(control=[f"unix:{victim}"]))
    assert victim.read_text() == "keep me"


def test_unix_and_tcp_control_sockets(tmp_path, control):
    unix_path = tmp_path / "rtpp.sock"
    tcp = f"tcp:127.0.0.1:{free_port(socket.SOCK_STREAM)}"
    started = embedded.start(EmbeddedOptions(control=[control, tcp, f"unix:{unix_path}"]))
    assert started.control == [control, tcp, f"unix:{unix_path}"]
    with socket.create_connection(("127.0.0.1", int(tcp.rsplit(":", 1)[1])), timeout=2) as stream:
        stream.sendall(b"V\n")
        assert stream.recv(100) == b"20040107\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as local:
        local.settimeout(2)
        local.connect(str(unix_path))
        local.sendall(b"V")
        assert local.recv(100).strip() == b"20040107"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (EmbeddedOptions(control=[]), "at least one control socket"),
        (EmbeddedOptions(control=["udp:127.0.0.1:22222|1.2.3.4"]), "takes no |advertised"),
        (EmbeddedOptions(port_min=5000, port_max=5000), "media port range 5000-5000"),
        (EmbeddedOptions(pcap=True), "pcap recording needs a record directory"),
        (EmbeddedOptions(record_dir="/nonexistent/rtppctl"), "does not exist"),
    ],
)
def test_options_that_cannot_work_are_input_errors(options, fragment):
    with pytest.raises(InputError, match=fragment.replace("|", r"\|")):
        embedded.start(options)


def test_without_rtp_io_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "rtp", None)
    monkeypatch.setitem(sys.modules, "rtp.io", None)
    with pytest.raises(ConfigError) as info:
        embedded.start()
    assert "rtp.io" in info.value.message
    assert info.value.hint == embedded.INSTALL_HINT


# -- through the command line --------------------------------------------------------------------


def test_cli_start_status_stop_as_separate_processes(control):
    started = cli_process("embedded", "start", "--control", control, "--ports", "40000-40999", "--json")
    assert started.code == 0, started.stderr
    data = started.json()
    assert data["running"] is True and data["control"] == [control]
    assert ["-m", "40000", "-M", "40999"] == after(data["engine_args"], "-m", 4)
    # The starting process has exited; the relay lives on, detached.
    assert ask_version(control) == "20040107"

    status = cli_process("--json", "embedded", "status")
    assert status.code == 0 and status.json()["pid"] == data["pid"]
    text = cli_process("embedded", "status")
    assert "embedded relay running" in text.stdout and control in text.stdout and str(data["pid"]) in text.stdout

    again = cli_process("embedded", "start", "--control", control)
    assert again.code == 5
    assert "already running" in again.stderr and "rtppctl embedded stop" in again.stderr

    stopped = cli_process("embedded", "stop", "--json")
    assert stopped.code == 0 and stopped.json()["stopped"] is True
    assert process_gone(data["pid"]) and port_is_free(control)
    not_running = cli_process("embedded", "status", "--json")
    assert not_running.code == 0 and not_running.json()["running"] is False
    assert "not running" in cli_process("embedded", "stop").stdout


def test_cli_busy_port_exits_5_with_a_clear_message(capsys, control):
    host, port = control.split(":", 1)[1].rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((host, int(port)))
        result = cli(capsys, "embedded", "start", "-s", control)
    assert result.code == 5
    assert f"control socket {control} is busy (Address already in use)" in result.stderr


def test_cli_start_takes_its_defaults_from_the_config(capsys, tmp_path, control):
    config = tmp_path / "rtppctl.toml"
    config.write_text(f'[embedded]\ncontrol = ["{control}"]\nport_min = 41000\nport_max = 41999\nttl = 20\n')
    result = cli(capsys, "--config", str(config), "embedded", "start", "--json")
    assert result.code == 0, result.stderr
    args = result.json()["engine_args"]
    assert ["-s", control] == after(args, "-s", 2) and ["-m", "41000", "-M", "41999"] == after(args, "-m", 4)
    assert args[-2:] == ["-T", "20"]
    assert ask_version(control) == "20040107"


def test_cli_start_takes_pcap_and_extra_args_from_the_config_and_the_options_win(capsys, tmp_path, control):
    records = tmp_path / "records"
    records.mkdir()
    config = tmp_path / "rtppctl.toml"
    config.write_text(f'[embedded]\ncontrol = ["{control}"]\nrecord_dir = "{records}"\npcap = true\n'
                      'extra_args = ["-W", "30"]\n')
    result = cli(capsys, "--config", str(config), "embedded", "start", "--json")
    assert result.code == 0, result.stderr
    args = result.json()["engine_args"]
    assert "-P" in args and args[-2:] == ["-W", "30"]
    assert ask_version(control) == "20040107"
    embedded.stop()
    # --no-pcap turns the config's pcap off; --engine-arg comes after the config's extra_args.
    result = cli(capsys, "--config", str(config), "embedded", "start", "--no-pcap", "--engine-arg", "-T",
                 "--engine-arg", "25", "--json")
    assert result.code == 0, result.stderr
    args = result.json()["engine_args"]
    assert "-P" not in args and args[-4:] == ["-W", "30", "-T", "25"]


def test_cli_bad_port_range_is_a_usage_error(capsys):
    result = cli(capsys, "embedded", "start", "--ports", "9-3")
    assert result.code == 2 and "--ports" in result.stderr


@pytest.mark.parametrize("command", ["start", "stop", "status"])
def test_every_command_has_help_with_examples(capsys, command):
    result = cli(capsys, "embedded", command, "--help")
    assert result.code == 0 and "Examples:" in result.stdout and f"rtppctl embedded {command}" in result.stdout


def test_state_dir_follows_xdg_state_home(tmp_path):
    assert default_state_dir({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "rtppctl" / "embedded"
    assert default_state_dir({}) == Path.home() / ".local" / "state" / "rtppctl" / "embedded"
    assert os.environ["XDG_STATE_HOME"] in str(default_state_dir())


def test_an_engine_started_as_a_helper_ends_with_its_parent_even_when_the_parent_is_killed(tmp_path):
    # The tests and benchmarks start engines with RTPPCTL_ENGINE_EXIT_WITH_PARENT=1: a parent killed
    # by a timeout (SIGKILL, no clean-up) must not leave its engine behind.
    import signal
    import subprocess
    import sys
    import time

    from tests.relay import free_port

    spec = f"udp:127.0.0.1:{free_port()}"
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import os, subprocess, sys, time\n"
         "p = subprocess.Popen([sys.executable, '-m', 'rtppctl.embedded', 'serve', '--', '-F', '-d', 'err',"
         f" '-l', '127.0.0.1', '-s', '{spec}'], stdout=subprocess.PIPE, cwd={str(tmp_path)!r},"
         " env={**os.environ, 'RTPPCTL_ENGINE_EXIT_WITH_PARENT': '1'})\n"
         "assert p.stdout.readline().strip() == b'ready'\n"
         "print(p.pid, flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE)
    engine_pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(engine_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(engine_pid, signal.SIGKILL)
        raise AssertionError("the engine outlived its killed parent")
