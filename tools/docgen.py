"""Shell completions and the man page, generated from the command tree.

This module owns everything rtppctl ships about its own command line besides `--help`: the bash,
zsh and fish completion scripts in `completions/` and `man/rtppctl.1`. It walks the Click tree
that Typer builds from the app, turns it into a neutral model (`CommandDoc`, `OptionDoc`,
`ArgumentDoc`), and renders that model four ways. The rule it keeps: no command name, option or
help text is written here; whatever the app declares is what gets documented, so a new command
shows up everywhere by regenerating (`python scripts/gen_docs.py`), and a test fails until someone
does. Every renderer is a pure function of the model: no dates, no environment, no terminal width,
so regenerating gives byte-identical files.

The environment variables and the config file locations are the only prose here, because Click
knows nothing about them; the exit-code meanings come from `rtppctl.proto.errors.EXIT_MEANINGS`.
It is build tooling, not part of the installed package: `scripts/gen_docs.py` runs it from a
checkout, and so do the tests.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

PROG = "rtppctl"

#: (variable, meaning) for the ENVIRONMENT section, in the order a reader needs them.
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("RTPPCTL_CONFIG", "Config file to read when --config is not given."),
    (
        "XDG_CONFIG_HOME",
        "Base directory of the user's config file, $XDG_CONFIG_HOME/rtppctl/config.toml (default ~/.config).",
    ),
    (
        "XDG_STATE_HOME",
        (
            "Base directory of rtppctl's state (relay health, session ledger), $XDG_STATE_HOME/rtppctl/ "
            "(default ~/.local/state)."
        ),
    ),
    ("NO_COLOR", "When set to a non-empty value, output has no colour, as with --no-color."),
)

#: (path, meaning) for the FILES section, in lookup order.
FILES: tuple[tuple[str, str], ...] = (
    (
        "~/.config/rtppctl/config.toml",
        (
            "The user's config file ($XDG_CONFIG_HOME/rtppctl/config.toml when XDG_CONFIG_HOME is set), "
            "read when neither --config nor RTPPCTL_CONFIG names one."
        ),
    ),
    ("/etc/rtppctl/config.toml", "The system-wide config file, read when there is no user config file."),
    (
        "~/.local/state/rtppctl/",
        (
            "State kept between runs: relay health and the session ledger ($XDG_STATE_HOME/rtppctl/ when "
            "XDG_STATE_HOME is set)."
        ),
    ),
)

# Metavars that name a filesystem path; their values complete to files (or directories).
_FILE_WORDS = frozenset({"FILE", "PATH", "FILENAME", "FILES", "PATHS"})
_DIR_WORDS = frozenset({"DIR", "DIRECTORY", "DIRS"})
# Every word written unquoted into a generated script must match this; anything else is refused at
# generation time rather than producing a script that breaks (or runs something) at completion time.
_SAFE_COMMAND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SAFE_CHOICE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+,@/=-]*$")
_SAFE_OPTION = re.compile(r"^--?[A-Za-z0-9?][A-Za-z0-9_.-]*$")


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionDoc:
    """One option of one command."""

    #: Every spelling that turns it on, short ones first: ("-t", "--target").
    names: tuple[str, ...]
    #: The spellings that turn an on/off flag off: ("--no-color",); empty for most options.
    negations: tuple[str, ...]
    #: True when the option consumes the next word (or `=value`).
    takes_value: bool
    #: What the value is called (SPEC, FILE, INTEGER); empty for flags and counters.
    metavar: str
    #: The help text, markup removed, in one line.
    help: str
    #: Click's notes after the help: "[default: 1; 1<=x<=10000]"; empty when there are none.
    notes: str
    #: The allowed values when the type is a choice, in declaration order.
    choices: tuple[str, ...]
    #: "file", "dir" or "" (nothing specific) for the value's completion.
    completes: str
    #: A counter such as -v/-vv.
    count: bool
    #: May be given several times.
    multiple: bool
    #: The -h/--help option Click adds to every command.
    is_help: bool

    @property
    def spellings(self) -> tuple[str, ...]:
        return self.names + self.negations


@dataclass(frozen=True)
class ArgumentDoc:
    """One positional argument of one command."""

    #: How the synopsis shows it: "SPEC", "[COMMAND]...".
    synopsis: str
    #: The metavar alone, without brackets or dots: "COMMAND".
    name: str
    help: str
    required: bool
    #: Takes any number of words (nargs=-1).
    variadic: bool
    choices: tuple[str, ...]
    completes: str


@dataclass(frozen=True)
class CommandDoc:
    """One command path: the root, a group, or a leaf command."""

    #: ("rtppctl",), ("rtppctl", "config", "show").
    path: tuple[str, ...]
    #: The whole help text (markup removed, cut at a form feed), paragraphs kept.
    help: str
    #: The first paragraph in one line.
    summary: str
    options: tuple[OptionDoc, ...]
    arguments: tuple[ArgumentDoc, ...]
    #: In Click's order (the order the app registered them).
    subcommands: tuple[CommandDoc, ...]
    #: What the synopsis shows for the subcommand part of a group: "COMMAND [ARGS]...".
    subcommand_metavar: str

    @property
    def name(self) -> str:
        return self.path[-1]

    @property
    def full_name(self) -> str:
        return " ".join(self.path)

    @property
    def is_group(self) -> bool:
        return bool(self.subcommands)

    def walk(self) -> Iterator[CommandDoc]:
        """This command and every command below it, depth first, in Click's order."""
        yield self
        for sub in self.subcommands:
            yield from sub.walk()

    def synopsis(self) -> list[str]:
        """The words after the command path in a usage line."""
        words = ["[OPTIONS]"] if self.options else []
        words += [arg.synopsis for arg in self.arguments]
        if self.is_group:
            words.append(self.subcommand_metavar)
        return words


def build_model(command: Any | None = None) -> CommandDoc:
    """The model of `command` (a Click command), by default the root of rtppctl's app."""
    import typer

    if command is None:
        from rtppctl.cli.app import app  # late: the app imports every command

        command = typer.main.get_command(app)
    ctx = typer.Context(command, info_name=PROG, **command.context_settings)
    return _command_doc(command, ctx, (PROG,))


def _command_doc(command: Any, ctx: Any, path: tuple[str, ...]) -> CommandDoc:
    import typer

    help_text = _clean_help(command.help or "")
    summary = _summary(_clean_help(command.short_help)) if command.short_help else _summary(help_text)
    if command.deprecated:
        summary = f"{summary} (deprecated)".strip()
    options: list[OptionDoc] = []
    arguments: list[ArgumentDoc] = []
    help_option = command.get_help_option(ctx)
    # get_params() is the parameters in declaration order plus the help option at the end.
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "option":
            options.append(_option_doc(param, ctx, is_help=param is help_option))
        elif param.param_type_name == "argument":
            arguments.append(_argument_doc(param, ctx))
    subcommands: list[CommandDoc] = []
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = typer.Context(sub, parent=ctx, info_name=name, **sub.context_settings)
            subcommands.append(_command_doc(sub, sub_ctx, (*path, name)))
    return CommandDoc(
        path=path,
        help=help_text,
        summary=summary,
        options=tuple(options),
        arguments=tuple(arguments),
        subcommands=tuple(subcommands),
        subcommand_metavar=getattr(command, "subcommand_metavar", None) or "COMMAND [ARGS]...",
    )


def _option_doc(param: Any, ctx: Any, *, is_help: bool) -> OptionDoc:
    is_flag = bool(getattr(param, "is_flag", False))
    count = bool(getattr(param, "count", False))
    takes_value = not is_flag and not count
    choices = _choices(param)
    metavar = ""
    if takes_value:
        metavar = param.metavar or ("[" + "|".join(choices) + "]" if choices else _type_label(param, ctx))
    help_text = _one_line(_clean_help(param.help or ""))
    return OptionDoc(
        # The help option's names come from a set in Click; sorting makes every spelling list stable.
        names=tuple(sorted(param.opts, key=_option_sort_key)),
        negations=tuple(sorted(param.secondary_opts, key=_option_sort_key)),
        takes_value=takes_value,
        metavar=metavar,
        help=help_text,
        notes=_notes(param, ctx),
        choices=choices,
        completes=_completes(param, metavar) if takes_value else "",
        count=count,
        multiple=bool(param.multiple),
        is_help=is_help,
    )


def _argument_doc(param: Any, ctx: Any) -> ArgumentDoc:
    choices = _choices(param)
    variadic = param.nargs == -1
    raw = param.metavar or param.name.upper()
    name = re.sub(r"[^A-Za-z0-9_-]", "", raw) or raw
    if param.metavar and re.search(r"[\[\]{}<>.]", param.metavar):
        # The author already wrote the brackets and dots the way the usage should read.
        synopsis = param.metavar
    else:
        synopsis = raw if param.required else f"[{raw}]"
        if variadic:
            synopsis += "..."
    return ArgumentDoc(
        synopsis=synopsis,
        name=name,
        help=_one_line(_clean_help(getattr(param, "help", None) or "")),
        required=bool(param.required),
        variadic=variadic,
        choices=choices,
        completes=_completes(param, raw),
    )


def _option_sort_key(name: str) -> tuple[bool, str]:
    return (name.startswith("--"), name)


def _choices(param: Any) -> tuple[str, ...]:
    descriptor = getattr(param, "type_descriptor", None)
    values = getattr(descriptor, "choices", None) if descriptor is not None else None
    if not values:
        return ()
    return tuple(str(v.value) if isinstance(v, Enum) else str(v) for v in values)


# Typer's own type labels (int, str, path...) as the metavars Click users know.
_TYPE_METAVARS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "BOOLEAN"}


def _type_label(param: Any, ctx: Any) -> str:
    try:
        label = param.display_type(ctx).strip("<>")
    except Exception:  # noqa: BLE001 - a label is cosmetic; never fail generation over it
        return "VALUE"
    label = re.sub(r"^list\[(.*)\]$", r"\1", label).split(" ")[0]
    return _TYPE_METAVARS.get(label, label.upper() or "VALUE")


def _completes(param: Any, metavar: str) -> str:
    word = re.sub(r"[^A-Z]", "", metavar.upper())
    descriptor = getattr(param, "type_descriptor", None)
    is_path = bool(descriptor is not None and getattr(descriptor, "is_path", False))
    is_file = bool(descriptor is not None and getattr(descriptor, "is_file", False))
    if word in _DIR_WORDS or (is_path and descriptor.path_type == "dir"):
        return "dir"
    if word in _FILE_WORDS or is_path or is_file:
        return "file"
    return ""


def _notes(param: Any, ctx: Any) -> str:
    """Click's bracketed notes (default, range, required), exactly as `--help` prints them."""
    try:
        record = param.get_help_record(ctx)
    except Exception:  # noqa: BLE001 - notes are a courtesy; the option is documented without them
        return ""
    if not record:
        return ""
    text = record[1]
    own = param.help or ""
    # Typer writes the record as f"{help}  [{notes}]"; anything else is not a note we can trust.
    rest = text[len(own) :].strip() if text.startswith(own) else ""
    return rest if rest.startswith("[") and rest.endswith("]") else ""


def _clean_help(text: str) -> str:
    """Help text as a reader sees it: dedented, cut at a form feed, Rich markup removed."""
    text = inspect.cleandoc(text).partition("\f")[0].expandtabs(8)
    try:
        from rich.text import Text  # only generation needs Rich

        # Typer renders help with Rich markup; "[bold]x[/bold]" must read as "x" here too.
        # Emoji codes stay literal: "udp:1.2.3.4:5" must never meet an emoji table.
        plain = "\n".join(Text.from_markup(line, emoji=False).plain for line in text.split("\n"))
    except Exception:  # noqa: BLE001 - text that is not valid markup is shown as written
        plain = text
    return plain.strip()


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


def _one_line(text: str) -> str:
    return " ".join(text.replace("\b", " ").split())


def _summary(help_text: str) -> str:
    paragraphs = _paragraphs(help_text)
    return _one_line(paragraphs[0]) if paragraphs else ""


@dataclass(frozen=True)
class _Block:
    """A piece of help text: prose to fill, or an example to print line by line."""

    example: bool
    lines: tuple[str, ...]


def _blocks(text: str) -> list[_Block]:
    """Prose and examples of a help text. Indented lines (and Click's \\b paragraphs) are examples."""
    blocks: list[_Block] = []

    def add(example: bool, lines: list[str]) -> None:
        if not lines:
            return
        if example:
            lines = textwrap.dedent("\n".join(lines)).split("\n")
            # Examples written one per paragraph (so Rich keeps them on their own lines) read as one block.
            if blocks and blocks[-1].example:
                blocks[-1] = _Block(True, blocks[-1].lines + tuple(lines))
                return
            blocks.append(_Block(True, tuple(lines)))
        else:
            blocks.append(_Block(False, (_one_line(" ".join(lines)),)))

    for paragraph in _paragraphs(text):
        lines = paragraph.rstrip().split("\n")
        if lines[0].strip() == "\b":
            add(True, [line for line in lines[1:] if line.strip()])
            continue
        run: list[str] = []
        run_is_example = False
        for line in lines:
            if not line.strip():
                continue
            is_example = line[0] in " \t"
            if run and is_example != run_is_example:
                add(run_is_example, run)
                run = []
            run_is_example = is_example
            run.append(line)
        add(run_is_example, run)
    return blocks


def _identifier(path: tuple[str, ...]) -> str:
    """A shell function name for a command path: ("rtppctl", "config", "show") -> _rtppctl__config__show."""
    return "_" + "__".join(re.sub(r"[^A-Za-z0-9_]", "_", part) for part in path)


def _check_names(model: CommandDoc) -> None:
    """Refuse names that cannot go unquoted into a shell script, and function-name collisions."""
    seen: dict[str, str] = {}
    for cmd in model.walk():
        for part in cmd.path:
            if not _SAFE_COMMAND.match(part):
                raise ValueError(f"command name {part!r} of {cmd.full_name!r} cannot be completed safely")
        ident = _identifier(cmd.path)
        if seen.setdefault(ident, cmd.full_name) != cmd.full_name:
            raise ValueError(f"{cmd.full_name!r} and {seen[ident]!r} map to the same completion function")
        for opt in cmd.options:
            for spelling in opt.spellings:
                if not _SAFE_OPTION.match(spelling):
                    raise ValueError(f"option {spelling!r} of {cmd.full_name!r} cannot be completed safely")
        for values in [opt.choices for opt in cmd.options] + [arg.choices for arg in cmd.arguments]:
            for value in values:
                if not _SAFE_CHOICE.match(value):
                    raise ValueError(f"choice {value!r} of {cmd.full_name!r} cannot be completed safely")


def _value_kind(choices: tuple[str, ...], completes: str) -> str:
    """How a value completes: "words" (choices), "file", "dir" or "" (nothing)."""
    return "words" if choices else completes


def _argument_completion(cmd: CommandDoc) -> ArgumentDoc | None:
    # Static scripts do not count positions; the first argument with something to offer decides.
    for arg in cmd.arguments:
        if _value_kind(arg.choices, arg.completes):
            return arg
    return None


_HEADER = "Generated by scripts/gen_docs.py from the rtppctl command tree; do not edit."


# --------------------------------------------------------------------------------------------
# bash
# --------------------------------------------------------------------------------------------


def _sq(text: str) -> str:
    """A single-quoted shell word (bash, zsh)."""
    return "'" + text.replace("'", "'\\''") + "'"


def bash_completion(model: CommandDoc) -> str:
    """A static bash completion for rtppctl: subcommands and options from tables, no Python run."""
    _check_names(model)
    out: list[str] = [
        f"# bash completion for {PROG}",
        f"# {_HEADER}",
        "#",
        "# Completing runs no Python: every command path's subcommands and options are in the tables",
        "# below. Source this file, or install it as /usr/share/bash-completion/completions/rtppctl.",
        "",
        "# _rtppctl_spec PATH: the tables of one command path, into the caller's locals:",
        "# subs (subcommands), opts (option spellings), valued (spellings that take a value),",
        "# argkind/argwords (what its positional arguments complete to).",
        "_rtppctl_spec()",
        "{",
        '    subs="" opts="" valued="" argkind="" argwords=""',
        '    case "$1" in',
    ]
    for cmd in model.walk():
        arg = _argument_completion(cmd)
        out.append(f"        {_sq(cmd.full_name)})")
        if cmd.subcommands:
            out.append(f"            subs={_sq(' '.join(sub.name for sub in cmd.subcommands))}")
        opts = [s for opt in cmd.options for s in opt.spellings]
        if opts:
            out.append(f"            opts={_sq(' '.join(opts))}")
        valued = [s for opt in cmd.options if opt.takes_value for s in opt.names]
        if valued:
            out.append(f"            valued={_sq(' '.join(valued))}")
        if arg is not None:
            out.append(f"            argkind={_value_kind(arg.choices, arg.completes)}")
            if arg.choices:
                out.append(f"            argwords={_sq(' '.join(arg.choices))}")
        out.append("            ;;")
    out += [
        "    esac",
        "}",
        "",
        "# _rtppctl_value PATH OPTION: what the value of OPTION completes to, into kind/words.",
        "_rtppctl_value()",
        "{",
        '    kind="" words=""',
        '    case "$1 $2" in',
    ]
    for cmd in model.walk():
        for opt in cmd.options:
            kind = _value_kind(opt.choices, opt.completes) if opt.takes_value else ""
            if not kind:
                continue
            patterns = "|".join(_sq(f"{cmd.full_name} {name}") for name in opt.names)
            body = f"kind={kind}"
            if opt.choices:
                body += f" words={_sq(' '.join(opt.choices))}"
            out.append(f"        {patterns}) {body} ;;")
    out += [
        "    esac",
        "}",
        "",
        "# _rtppctl_offer KIND WORDS PREFIX CUR: fill COMPREPLY.",
        "_rtppctl_offer()",
        "{",
        '    case "$1" in',
        "        file)",
        "            compopt -o filenames 2>/dev/null",
        '            mapfile -t COMPREPLY < <(compgen -f -P "$3" -- "$4") ;;',
        "        dir)",
        "            compopt -o filenames 2>/dev/null",
        '            mapfile -t COMPREPLY < <(compgen -d -P "$3" -- "$4") ;;',
        "        words)",
        '            mapfile -t COMPREPLY < <(compgen -W "$2" -P "$3" -- "$4") ;;',
        "    esac",
        "}",
        "",
        "_rtppctl()",
        "{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" prefix="" path=rtppctl word i=1 dashdash=""',
        "    local subs opts valued argkind argwords kind words",
        "    COMPREPLY=()",
        '    _rtppctl_spec "$path"',
        "    # Find the command path: skip options and the values of those that take one.",
        "    while (( i < COMP_CWORD )); do",
        '        word="${COMP_WORDS[i]}"',
        '        if [[ -n "$dashdash" ]]; then',
        "            :",
        '        elif [[ "$word" == -- ]]; then',
        "            dashdash=1",
        '        elif [[ "$word" == -* ]]; then',
        '            if [[ "$word" != *=* && " $valued " == *" $word "* ]]; then',
        "                i=$((i + 1))",
        "                # With '=' in COMP_WORDBREAKS, bash splits --opt=value into three words.",
        '                [[ "${COMP_WORDS[i]}" == = ]] && i=$((i + 1))',
        "            fi",
        '        elif [[ " $subs " == *" $word "* ]]; then',
        '            path="$path $word"',
        '            _rtppctl_spec "$path"',
        "        fi",
        "        i=$((i + 1))",
        "    done",
        "    # The option whose value is being completed, if any: '--opt VALUE', '--opt=VALUE', '--opt = VALUE'.",
        "    if (( COMP_CWORD >= 1 )); then",
        '        prev="${COMP_WORDS[COMP_CWORD-1]}"',
        "    fi",
        '    if [[ "$cur" == = && "$prev" == -* ]]; then',
        '        cur=""',
        '    elif [[ "$prev" == = ]] && (( COMP_CWORD >= 2 )); then',
        '        prev="${COMP_WORDS[COMP_CWORD-2]}"',
        '    elif [[ "$cur" == -*=* ]]; then',
        '        prev="${cur%%=*}" prefix="${cur%%=*}="',
        '        cur="${cur#*=}"',
        "    fi",
        '    if [[ -z "$dashdash" && " $valued " == *" $prev "* ]]; then',
        '        _rtppctl_value "$path" "$prev"',
        '        _rtppctl_offer "$kind" "$words" "$prefix" "$cur"',
        "        return 0",
        "    fi",
        '    if [[ -z "$dashdash" && "$cur" == -* ]]; then',
        '        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")',
        '    elif [[ -n "$subs" ]]; then',
        '        mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")',
        "    else",
        '        _rtppctl_offer "$argkind" "$argwords" "" "$cur"',
        "    fi",
        "    return 0",
        "}",
        "",
        f"complete -F _rtppctl {PROG}",
    ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# zsh
# --------------------------------------------------------------------------------------------


def _zsh_text(text: str) -> str:
    """Text inside an _arguments spec's [explanation]."""
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def _zsh_message(text: str) -> str:
    """Text in an _arguments spec's :message: part, where only a colon is special."""
    return text.replace(":", "\\:")


def _zsh_action(choices: tuple[str, ...], completes: str) -> str:
    if choices:
        return "(" + " ".join(choices) + ")"
    return {"file": "_files", "dir": "_files -/"}.get(completes, " ")


def _zsh_option_specs(opt: OptionDoc) -> list[str]:
    repeatable = opt.multiple or opt.count
    if opt.is_help:
        exclusion = "(- *)"
    elif repeatable:
        exclusion = "*"
    elif len(opt.spellings) > 1:
        exclusion = "(" + " ".join(opt.spellings) + ")"
    else:
        exclusion = ""
    explanation = "[" + _zsh_text(opt.help or opt.metavar or opt.names[-1]) + "]"
    specs = []
    for name in opt.names:
        if opt.takes_value:
            # "-t+" and "--target=": the value may be in the same word or the next one.
            spelling = name + ("=" if name.startswith("--") else "+")
            value = ":" + _zsh_message(opt.metavar) + ":" + _zsh_action(opt.choices, opt.completes)
        else:
            spelling, value = name, ""
        specs.append(exclusion + spelling + explanation + value)
    for name in opt.negations:
        specs.append(exclusion + name + "[" + _zsh_text(f"Turn off {opt.names[-1]}") + "]")
    return specs


def _zsh_argument_specs(cmd: CommandDoc) -> list[str]:
    specs = []
    for arg in cmd.arguments:
        message = _zsh_message(arg.help or arg.name) or " "
        action = _zsh_action(arg.choices, arg.completes)
        if arg.variadic:
            specs.append(f"*:{message}:{action}")
        elif arg.required:
            specs.append(f":{message}:{action}")
        else:
            specs.append(f"::{message}:{action}")
    return specs


def zsh_completion(model: CommandDoc) -> str:
    """A #compdef file: one function per command path, _arguments for options, _describe for commands."""
    _check_names(model)
    out: list[str] = [
        f"#compdef {PROG}",
        f"# zsh completion for {PROG}",
        f"# {_HEADER}",
        "#",
        "# Install as _rtppctl in a directory of $fpath. Completing runs no Python.",
        "",
    ]
    for cmd in model.walk():
        func = _identifier(cmd.path)
        specs = [s for opt in cmd.options for s in _zsh_option_specs(opt)]
        if cmd.is_group:
            out += [f"{func}_commands() {{", "  local -a commands", "  commands=("]
            for sub in cmd.subcommands:
                out.append("    " + _sq(sub.name.replace(":", "\\:") + ":" + sub.summary))
            out += [
                "  )",
                f"  _describe -t commands {_sq(cmd.full_name + ' command')} commands",
                "}",
                "",
                f"{func}() {{",
                '  local curcontext="$curcontext" state state_descr line ret=1',
                "  typeset -A opt_args",
                "  _arguments -C -s -S : \\",
            ]
            specs += _zsh_argument_specs(cmd)
            specs += [f"1: :{func}_commands", "*:: :->args"]
            out += [f"    {_sq(spec)} \\" for spec in specs[:-1]]
            out.append(f"    {_sq(specs[-1])} && ret=0")
            out += [
                "  case $state in",
                "    (args)",
                # Click parses a group's arguments before its subcommand; here the subcommand is first.
                '      curcontext="${curcontext%:*:*}:' + "-".join(cmd.path) + '-$words[1]:"',
                "      case $words[1] in",
            ]
            for sub in cmd.subcommands:
                out.append(f"        ({sub.name}) {_identifier(sub.path)} && ret=0 ;;")
            out += ["      esac", "      ;;", "  esac", "  return ret", "}", ""]
        else:
            specs += _zsh_argument_specs(cmd)
            out.append(f"{func}() {{")
            if specs:
                out.append("  _arguments -s -S : \\")
                out += [f"    {_sq(spec)} \\" for spec in specs[:-1]]
                out.append(f"    {_sq(specs[-1])}")
            else:
                out.append("  _message 'no arguments'")
            out += ["}", ""]
    out += [
        # Autoloaded from $fpath the file body runs as _rtppctl: define everything, then complete.
        # Sourced by hand, it only registers the function.
        'if [[ "$zsh_eval_context[-1]" == loadautofunc ]]; then',
        f'  {_identifier(model.path)} "$@"',
        "else",
        f"  compdef {_identifier(model.path)} {PROG}",
        "fi",
    ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# fish
# --------------------------------------------------------------------------------------------


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_condition(cmd: CommandDoc, model: CommandDoc) -> str:
    """When the words typed so far put fish inside `cmd` (before any of its subcommands)."""
    if len(cmd.path) == 1:
        return "__fish_use_subcommand"
    parts = [f"__fish_seen_subcommand_from {name}" for name in cmd.path[1:]]
    # The same name may live at two places ("status" and "embedded status"): a command is only
    # "seen" when none of the words that lead to its namesakes elsewhere are.
    others: set[str] = set()
    for other in model.walk():
        if other.path != cmd.path and other.name == cmd.name:
            others.update(word for word in other.path[1:] if word not in cmd.path)
    if cmd.is_group:
        others.update(sub.name for sub in cmd.subcommands)
    if others:
        parts.append("not __fish_seen_subcommand_from " + " ".join(sorted(others)))
    return "; and ".join(parts)


def _fish_spellings(names: tuple[str, ...]) -> list[str]:
    words: list[str] = []
    for name in names:
        if name.startswith("--"):
            words += ["-l", name[2:]]
        elif len(name) == 2:
            words += ["-s", name[1:]]
        else:
            words += ["-o", name[1:]]
    return words


def _fish_options(opt: OptionDoc) -> list[str]:
    """The arguments of one `complete` line per option (and one more for an on/off flag's "off")."""
    words = _fish_spellings(opt.names)
    if opt.takes_value:
        if opt.choices:
            words += ["-r", "-f", "-a", _fish_quote(" ".join(opt.choices))]
        elif opt.completes:
            words += ["-r", "-F"]
        else:
            words += ["-r", "-f"]
    if opt.help:
        words += ["-d", _fish_quote(opt.help)]
    lines = [" ".join(words)]
    if opt.negations:
        lines.append(" ".join([*_fish_spellings(opt.negations), "-d", _fish_quote(f"Turn off {opt.names[-1]}")]))
    return lines


def fish_completion(model: CommandDoc) -> str:
    """`complete -c rtppctl` lines, one block per command path."""
    _check_names(model)
    out: list[str] = [
        f"# fish completion for {PROG}",
        f"# {_HEADER}",
        "#",
        "# Install as ~/.config/fish/completions/rtppctl.fish. Completing runs no Python.",
        "",
        "# Only options and values declared as files complete to file names.",
        f"complete -c {PROG} -f",
    ]
    for cmd in model.walk():
        condition = _fish_quote(_fish_condition(cmd, model))
        out += ["", f"# {cmd.full_name}"]
        for sub in cmd.subcommands:
            out.append(f"complete -c {PROG} -n {condition} -a {sub.name} -d {_fish_quote(sub.summary)}")
        for opt in cmd.options:
            out += [f"complete -c {PROG} -n {condition} {words}" for words in _fish_options(opt)]
        arg = _argument_completion(cmd)
        if arg is not None and not cmd.is_group:
            if arg.choices:
                out.append(f"complete -c {PROG} -n {condition} -a {_fish_quote(' '.join(arg.choices))}")
            else:
                out.append(f"complete -c {PROG} -n {condition} -F")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# man page
# --------------------------------------------------------------------------------------------

# An option, or a negative number, in prose: its hyphens are minus signs so that a reader who
# copies "--target" out of the rendered page gets ASCII hyphen-minus, not a typographic hyphen.
_OPTION_IN_PROSE = re.compile(r"(?<![\w-])--?[A-Za-z0-9][\w-]*")


def _roff_chars(text: str) -> str:
    """Escape backslashes and encode non-ASCII, so groff reads the text as written."""
    text = text.replace("\\", "\\e")
    return "".join(ch if ord(ch) < 128 else f"\\[u{ord(ch):04X}]" for ch in text)


def _roff_line(line: str) -> str:
    # A line starting with "." or "'" would be read as a request.
    return "\\&" + line if line.startswith((".", "'")) else line


def _roff_prose(text: str) -> str:
    text = _roff_chars(text)
    return _roff_line(_OPTION_IN_PROSE.sub(lambda m: m.group(0).replace("-", "\\-"), text))


def _roff_code(text: str) -> str:
    """Literal text (commands, option names, examples): every hyphen is a minus."""
    return _roff_line(_roff_chars(text).replace("-", "\\-"))


def _roff_blocks(text: str) -> list[str]:
    out: list[str] = []
    for block in _blocks(text):
        out.append(".PP")
        if block.example:
            out += [".RS 4", ".nf"]
            out += [_roff_code(line) if line.strip() else ".sp" for line in block.lines]
            out += [".fi", ".RE"]
        else:
            out.append(_roff_prose(block.lines[0]))
    return out


def _roff_option_tag(opt: OptionDoc) -> str:
    names = ", ".join(f"\\fB{_roff_code(name)}\\fR" for name in opt.names)
    if opt.negations:
        names += " / " + ", ".join(f"\\fB{_roff_code(name)}\\fR" for name in opt.negations)
    if opt.takes_value:
        names += f" \\fI{_roff_code(opt.metavar)}\\fR"
    return names


def _roff_options(options: tuple[OptionDoc, ...]) -> list[str]:
    out: list[str] = []
    for opt in options:
        out += [".TP", _roff_option_tag(opt)]
        text = " ".join(part for part in (opt.help, opt.notes) if part)
        if opt.choices and not any(choice in opt.metavar for choice in opt.choices):
            text += f" One of: {', '.join(opt.choices)}."
        out.append(_roff_prose(text.strip() or "(no description)"))
    return out


def _roff_synopsis(cmd: CommandDoc) -> str:
    words = [f"\\fB{_roff_code(cmd.full_name)}\\fR"]
    words += [f"\\fI{_roff_code(word)}\\fR" if word.isupper() else _roff_code(word) for word in cmd.synopsis()]
    return " ".join(words)


def _exit_codes() -> list[tuple[int, str]]:
    from rtppctl.proto.errors import EXIT_MEANINGS

    return [(int(code), meaning[0].upper() + meaning[1:] + ".") for code, meaning in sorted(EXIT_MEANINGS.items())]


def man_page(model: CommandDoc) -> str:
    """rtppctl(1) in roff (man macros), from the model, the exit codes and the tables above."""
    from rtppctl import __version__

    out: list[str] = [
        f'.\\" {PROG}(1). {_HEADER}',
        f'.TH {PROG.upper()} 1 "" "{PROG} {_roff_code(__version__)}" "User Commands"',
        # Left-aligned and unhyphenated: option names and addresses must not be split or stretched.
        ".ad l",
        ".nh",
        ".SH NAME",
        f"{PROG} \\- {_roff_prose(model.summary.rstrip('.'))}",
        ".SH SYNOPSIS",
        _roff_synopsis(model),
        ".br",
        f"\\fB{PROG}\\fR \\fICOMMAND\\fR \\fB\\-\\-help\\fR",
        ".SH DESCRIPTION",
    ]
    out += _roff_blocks(model.help)
    out += [
        ".PP",
        _roff_prose(
            f"Every command below accepts the options listed with it, after its name; the global "
            f"options go before the command. Every command also takes -h, --help. "
            f"'{PROG} COMMAND --help' prints the same text as this page."
        ),
        ".SH GLOBAL OPTIONS",
    ]
    out += _roff_options(model.options)
    out.append(".SH COMMANDS")
    for cmd in model.walk():
        if cmd is model:
            continue
        out += [f'.SS "{_roff_code(cmd.full_name)}"', _roff_synopsis(cmd)]
        out += _roff_blocks(cmd.help or cmd.summary)
        if cmd.arguments:
            out += [".PP", "Arguments:"]
            for arg in cmd.arguments:
                text = arg.help or "(no description)"
                if arg.choices:
                    text += f" One of: {', '.join(arg.choices)}."
                out += [".TP", f"\\fI{_roff_code(arg.synopsis)}\\fR", _roff_prose(text)]
        options = tuple(opt for opt in cmd.options if not opt.is_help)
        if options:
            out += [".PP", "Options:"]
            out += _roff_options(options)
        if cmd.subcommands:
            out += [".PP", "Commands:"]
            for sub in cmd.subcommands:
                out += [".TP", f"\\fB{_roff_code(sub.name)}\\fR", _roff_prose(sub.summary or "(no description)")]
    out.append(".SH EXIT STATUS")
    for code, meaning in _exit_codes():
        out += [".TP", f".B {code}", _roff_prose(meaning)]
    out.append(".SH ENVIRONMENT")
    for name, meaning in ENVIRONMENT:
        out += [".TP", f".B {name}", _roff_prose(meaning)]
    out.append(".SH FILES")
    for path, meaning in FILES:
        out += [".TP", f"\\fI{_roff_code(path)}\\fR", _roff_prose(meaning)]
    out += [".SH SEE ALSO", "\\fBrtpproxy\\fR(8)"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# All outputs
# --------------------------------------------------------------------------------------------

#: Where each output lives, relative to the project root, and what renders it.
OUTPUTS = (
    ("completions/rtppctl.bash", bash_completion),
    ("completions/_rtppctl", zsh_completion),
    ("completions/rtppctl.fish", fish_completion),
    ("man/rtppctl.1", man_page),
)


def generate(root: Path, model: CommandDoc | None = None) -> dict[Path, str]:
    """Every generated file under the project `root`, and the content it must have."""
    model = model if model is not None else build_model()
    return {root / relative: render(model) for relative, render in OUTPUTS}
