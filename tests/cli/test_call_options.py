"""The options that name a call are defined once (rtppctl/cli/options.py): one help text each, and
the same six on every command about a call on its relay."""

from __future__ import annotations

import typer

from rtppctl.cli.app import build_app

#: The commands that address a call on its relay, with all six call-addressing options.
CALL_COMMANDS = ("play", "stop-play", "record", "stop-record", "stats", "query", "unforce")
CALL_OPTIONS = {"--call-id", "--from-tag", "--to-tag", "--message", "--target", "--set"}


def commands():
    root = typer.main.get_command(build_app())
    return root.commands


def options(command) -> dict[str, str]:
    return {name: param.help for param in command.params if getattr(param, "param_type_name", "") == "option"
            for name in param.opts}


#: Commands whose --call-id chooses among the calls of an input rather than naming the call to act
#: on (replay: a trace's calls, repeatable); their help says so.
SELECTING = {"replay"}


def test_each_call_option_has_one_help_text_wherever_it_appears():
    seen: dict[str, set[str]] = {}
    for command_name, command in commands().items():
        if command_name in SELECTING:
            assert "only" in options(command)["--call-id"] and "repeatable" in options(command)["--call-id"]
            continue
        for name, help_text in options(command).items():
            if name in ("--call-id", "--from-tag", "--to-tag", "--message"):
                seen.setdefault(name, set()).add(help_text)
    assert set(seen) == {"--call-id", "--from-tag", "--to-tag", "--message"}
    assert all(len(texts) == 1 for texts in seen.values()), seen


def test_every_command_about_a_call_takes_the_six_options():
    known = commands()
    for name in CALL_COMMANDS:
        assert CALL_OPTIONS <= set(options(known[name])), name


def test_offer_answer_and_engage_share_the_tag_options_but_read_the_message_from_their_input():
    known = commands()
    for name in ("offer", "answer", "engage"):
        assert {"--call-id", "--from-tag", "--to-tag"} <= set(options(known[name])) and "--message" not in options(known[name])
