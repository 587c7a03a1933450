"""The promises every command keeps: exit codes, closed pipes, Ctrl-C, number ranges, help text.

Each test walks the whole surface (every command, every numeric option, every config key) rather
than one example, so a command added later is held to the same promises without a new test.
"""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import subprocess
import sys

import pytest
import typer

from rtppctl.cli.app import build_app, global_options, hoist_global_options
from tests.cli.helpers import cli, cli_process

RTPPCTL = [sys.executable, "-m", "rtppctl"]


def every_command():
    """(path, Click command) for every runnable command of the whole tree."""
    root = typer.main.get_command(build_app())

    def walk(command, path):
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                yield from walk(sub, (*path, name))
        else:
            yield path, command

    return list(walk(root, ()))


COMMAND_PATHS = [path for path, _ in every_command()]


# -- closed pipes ----------------------------------------------------------------------------------


def run_into_closed_pipe(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run rtppctl with a stdout whose reader has already gone: every write fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([*RTPPCTL, *args], stdout=write_end, stderr=subprocess.PIPE, input=stdin,
                              text=True, timeout=60, check=False)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [["--help"], ["version", "--help"], ["config", "show"], ["config", "show", "--json"]])
def test_a_closed_pipe_exits_0_silently_without_a_relay(args):
    result = run_into_closed_pipe(args)
    assert (result.returncode, result.stderr) == (0, "")


def test_a_closed_pipe_exits_0_silently_on_relay_output(relay):
    batch = "".join("V\n" for _ in range(3000))  # far more than a pipe buffer of replies
    for args, stdin in (
        (["version", "-t", relay.udp], None),
        (["--json", "info", "-t", relay.udp], None),
        (["raw", "-t", relay.udp, "-f", "-"], batch),
    ):
        result = run_into_closed_pipe(args, stdin)
        assert (result.returncode, result.stderr) == (0, ""), args


# -- Ctrl-C ------------------------------------------------------------------------------------------

INTERRUPT_DURING_IMPORT = """
import sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
sys.argv = ["rtppctl", "version", "-t", "udp:127.0.0.1:9"]
from rtppctl.cli import main
main()
"""


@pytest.mark.parametrize("module", ["typer", "rtppctl.cli.app", "rtppctl.config", "rtppctl.cli.relay_cmd", "rtppctl.net.channel"])
def test_ctrl_c_while_starting_up_prints_one_line_and_exits_130(module):
    result = subprocess.run([sys.executable, "-c", INTERRUPT_DURING_IMPORT.format(module=module)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stderr) == (130, "rtppctl: interrupted\n")


@pytest.mark.parametrize("command", [["version"], ["ping"], ["raw", "V"], ["info"]])
def test_ctrl_c_during_a_pending_reply_prints_one_line_and_exits_130(command):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        target = f"udp:127.0.0.1:{silent.getsockname()[1]}"
        child = subprocess.Popen([*RTPPCTL, "-vv", *command, "-t", target, "--timeout", "20"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = child.stderr.readline()
            while line and not line.startswith("> "):  # -v notes, then the trace of the first datagram
                line = child.stderr.readline()
            assert line.startswith("> "), "no datagram was traced"  # now it waits for the reply
            child.send_signal(signal.SIGINT)
            _, rest = child.communicate(timeout=20)
        finally:
            child.kill()
    assert child.returncode == 130
    assert rest == "rtppctl: interrupted\n"


# -- numbers out of range ------------------------------------------------------------------------------

OUT_OF_RANGE = ["1e10", "inf", "nan", "-1e10", "9" * 30, "-1"]


def numeric_options():
    """(command path, option name) for every option of every command that takes a number."""
    found = []
    root = typer.main.get_command(build_app())
    for param in root.params:
        if _is_numeric(param):
            found.append(((), param.opts[0], param))
    for path, command in every_command():
        for param in command.params:
            if _is_numeric(param):
                found.append((path, param.opts[0], param))
    return found


def _is_numeric(param) -> bool:
    if getattr(param, "param_type_name", "") != "option" or param.is_flag or param.count:
        return False
    descriptor = getattr(param, "type_descriptor", None)  # Typer >= 0.29
    if descriptor is not None:
        return descriptor.annotation in (int, float)
    return getattr(param.type, "name", "") in ("integer", "float", "integer range", "float range")


def _bounds(param) -> tuple[object, object]:
    if hasattr(param, "type_descriptor"):
        return param.min, param.max
    return getattr(param.type, "min", None), getattr(param.type, "max", None)


def test_there_are_numeric_options_to_check():
    names = {name for _, name, _ in numeric_options()}
    assert {"--timeout", "--retries", "--set", "--count"} <= names


def _takes_target(path) -> bool:
    command = dict(every_command()).get(path)
    return command is not None and any("--target" in param.opts for param in command.params)


def _inside(value: str, param) -> bool:
    """`value` is a number the option takes (such as -1 for `play --count`, which loops)."""
    low, high = _bounds(param)
    try:
        number = float(value)
    except ValueError:
        return False
    if number != number or number in (float("inf"), float("-inf")) or number != int(number):
        return False
    return (low is None or number >= low) and (high is None or number <= high)


@pytest.mark.parametrize(("path", "option"), [(p, o) for p, o, _ in numeric_options()])
def test_every_number_out_of_range_is_a_usage_error(capsys, path, option):
    # Should a value get through, it must not reach a real relay or start anything: a dead target.
    target = ["-t", "udp:127.0.0.1:9"] if _takes_target(path) else []
    param = next(p for q, o, p in numeric_options() if (q, o) == (path, option))
    for value in [v for v in OUT_OF_RANGE if not _inside(v, param)]:
        args = ["--timeout", "0.05", "--retries", "1"] if option not in ("--timeout", "--retries") else []
        result = cli(capsys, *path, option, value, *target, *args) if path else cli(
            capsys, option, value, "version", "-t", "udp:127.0.0.1:9")
        assert result.code == 2, (path, option, value, result.stderr)
        assert option in result.stderr or option.lstrip("-") in result.stderr, result.stderr


def test_every_numeric_option_has_both_bounds():
    for path, name, param in numeric_options():
        low, high = _bounds(param)
        assert low is not None and high is not None, (path, name)


def numeric_config_keys():
    from rtppctl.config import EMBEDDED_PARAMETERS, PARAMETERS, Config

    defaults = Config()
    keys = [(p.name, None) for p in PARAMETERS if isinstance(getattr(defaults, p.name), (int, float)) and not isinstance(getattr(defaults, p.name), bool)]
    keys += [(p.name, "embedded") for p in EMBEDDED_PARAMETERS
             if p.name in ("port_min", "port_max", "ttl", "setup_ttl")]
    return keys


@pytest.mark.parametrize(("key", "table"), numeric_config_keys())
def test_every_number_out_of_range_in_the_config_file_is_a_config_error(capsys, tmp_path, key, table):
    # rtpproxy_disable_tout takes negative values, as the module does (0 or less: re-probe on
    # every call); past its bound it is out of range like any other key.
    below = "-99999999999" if key == "rtpproxy_disable_tout" else "-1"
    for value in ("1e10", "inf", "nan", "-inf", below, "99999999999999999", "true"):
        config = tmp_path / "config.toml"
        config.write_text((f"[{table}]\n" if table else "") + f"{key} = {value}\n")
        result = cli(capsys, "--config", str(config), "config", "show")
        assert result.code == 5, (key, value, result.stdout, result.stderr)
        assert key in result.stderr and result.stderr.count("\n") <= 2


def test_a_finite_timeout_inside_the_range_is_accepted(capsys, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('rtpproxy_timeout = "0.25"\n')
    result = cli(capsys, "--config", str(config), "--json", "config", "show")
    assert result.code == 0 and math.isclose(result.json()["settings"]["rtpproxy_timeout"], 0.25)


# -- the pre-parser --------------------------------------------------------------------------------------


def test_a_commands_option_value_is_never_taken_for_a_global_option():
    root = typer.main.get_command(build_app("embedded"))
    args = ["embedded", "start", "--engine-arg", "-v", "--engine-arg", "--json", "-v"]
    assert hoist_global_options(args, root) == ["-v", "embedded", "start", "--engine-arg", "-v", "--engine-arg", "--json"]
    root = typer.main.get_command(build_app("offer"))
    args = ["offer", "x.sdp", "--flags", "-vv", "--json", "--call-id", "--timeout"]
    assert hoist_global_options(args, root) == ["--json", "offer", "x.sdp", "--flags", "-vv", "--call-id", "--timeout"]


def test_the_pre_parser_knows_exactly_the_root_commands_options():
    # Read from the root callback's signature: an option added there is a global option at once,
    # and whether it takes a value is what Click makes of it.
    root = typer.main.get_command(build_app("version"))
    click_options = {name: not (param.is_flag or param.count) for param in root.params
                     if getattr(param, "param_type_name", "") == "option" for name in param.opts}
    assert global_options() == click_options
    assert {"--json", "--timeout", "--retries", "--state", "--config", "--no-color", "--verbose", "-v"} <= set(click_options)


@pytest.mark.parametrize("option", ["--timeout", "--retries", "--state", "--config"])
def test_a_global_option_with_a_value_may_follow_the_command(option):
    root = typer.main.get_command(build_app("ping"))
    assert hoist_global_options(["ping", option, "2", "--json"], root) == [option, "2", "--json", "ping"]


def test_json_works_before_and_after_every_command_name(capsys, relay):
    for args in (["--json", "raw", "-t", relay.udp, "V"], ["raw", "-t", relay.udp, "V", "--json"],
                 ["raw", "--json", "-t", relay.udp, "V"]):
        result = cli(capsys, *args)
        assert result.code == 0 and result.json()["replies"][0]["reply"] == "20040107", args


# -- help text -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", COMMAND_PATHS + [()], ids=lambda p: " ".join(p) or "rtppctl")
def test_help_shows_what_to_type_not_python_types_and_examples_alike(path):
    result = cli_process(*path, "--help", env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.code == 0
    assert not re.search(r"<(bool|int|float|str|path|list\[\w+\]|int range|float range)>", result.stdout), result.stdout
    if path and path != ("config",) and path != ("embedded",):
        text = result.stdout
        assert "Examples:" in text, path
        examples = text.split("Examples:", 1)[1].split("╭", 1)[0]
        lines = [line.strip(" │") for line in examples.splitlines() if line.strip(" │")]
        assert lines and all(line.startswith("rtppctl ") or line.startswith(("RTPPCTL_", "printf ")) for line in lines), lines


def test_unforce_to_tag_does_not_claim_to_read_a_message():
    result = cli_process("unforce", "--help", env={"COLUMNS": "200"})
    line = next(line for line in result.stdout.splitlines() if "--to-tag" in line)
    assert "SIP message" not in line


def test_usage_lines_bracket_each_optional_argument_once():
    """A metavar written with its own brackets gets Click's too: `[[FILE]]`."""
    for path, command in every_command():
        for param in command.params:
            if getattr(param, "param_type_name", "") == "argument":
                assert not (param.metavar or "").startswith("["), (path, param.metavar)


# -- required arguments ------------------------------------------------------------------------------


REQUIRED = [(path, [p.metavar or p.name.upper() for p in command.params
                    if getattr(p, "param_type_name", "") == "argument" and p.required])
            for path, command in every_command()]


@pytest.mark.parametrize(("path", "names"), [(p, n) for p, n in REQUIRED if n], ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_a_missing_required_argument_is_a_usage_error(capsys, path, names):
    # Typer before 0.18 with Click 8.3 let a required argument through as None (the command then
    # failed inside): pyproject's lower bound keeps that out, and this holds every command to it.
    result = cli(capsys, *path)
    assert result.code == 2, (path, result.stderr)
    assert "Missing argument" in result.stderr and names[0] in result.stderr, result.stderr
