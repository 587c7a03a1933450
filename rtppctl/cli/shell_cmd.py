"""rtppctl shell: an interactive session for rewriting SDP by hand.

This module owns the session a person drives from a terminal: the current input (an SDP body or a
whole SIP message, loaded from a file or pasted), the settings an offer or answer takes (Call-ID,
tags, flags, addresses, direction, relay), the last result, and the line editor and its history
file. It keeps the house rule for commands: every rewrite is one call to `ops.rewrite_sdp` (or
`ops.unforce`) and everything shown goes through the session's `Output`. The rule it adds: nothing
a user types ends the session except quit, exit and Ctrl-D; an error is one line (and a hint), and
Ctrl-C cancels the line being typed or the command running, never the shell.
"""

import cmd
import inspect
import os
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rtppctl.cli.common import RunContext, SetOption, TargetOption, route_for, run_context
from rtppctl.proto.errors import InputError, RtppctlError

if TYPE_CHECKING:
    from rtppctl.cli.output import Output
    from rtppctl.ops import Route, ResolvedCall, RewriteResult
    from rtppctl.proto.sip import SipMessage

#: Lines kept in the history file: enough for weeks of hand work, small enough to read at start.
HISTORY_LENGTH = 1000

HistoryOption = Annotated[
    str | None,
    typer.Option(
        "--history",
        metavar="FILE",
        show_default=False,
        help="History file for the line editor (default: $XDG_STATE_HOME/rtppctl/shell_history, "
        "XDG_STATE_HOME defaulting to ~/.local/state).",
    ),
]


def shell(
    ctx: typer.Context,
    target: TargetOption = None,
    set_id: SetOption = None,
    history: HistoryOption = None,
) -> None:
    """Rewrite SDP by hand in an interactive session: load or paste, set tags and flags, offer, answer.

    It keeps one input (an SDP body or a whole SIP message), the settings and the last result.

    Each offer or answer prints the rewritten text, then a diff against the input.

    Line editing and history where the terminal allows; an error prints one line and the session goes on.

    Ctrl-C cancels the line, Ctrl-D or quit leaves. Type help inside for the commands.

    Examples:

      rtppctl shell -t udp:127.0.0.1:22222

      rtppctl shell --set 1 --history ~/.rtppctl_shell_history
    """
    s = run_context(ctx)
    out = s.output
    if target or set_id is not None:
        # A relay named on the command line is checked now: a typo should not wait for the first offer.
        route_for(s, target, set_id)
    settings = Settings(target=target[0] if target else None, set_id=set_id)
    interactive = _isatty(sys.stdin)
    # Only a terminal gets the line editor: a script piped in has no use for history, and must
    # not rewrite the user's history file.
    line_editor = _line_editor() if interactive else None
    history_path = Path(history).expanduser() if history else default_history_path()
    loaded = _load_history(line_editor, history_path, out) if line_editor else 0
    rewriter = RewriteShell(s, settings, line_editor=line_editor, interactive=interactive, history_path=history_path)
    try:
        rewriter.cmdloop()
    finally:
        if line_editor:
            _save_history(line_editor, history_path, loaded, out)


def default_history_path() -> Path:
    """`$XDG_STATE_HOME/rtppctl/shell_history`, beside the other state rtppctl keeps."""
    from rtppctl.files import user_dir  # noqa: PLC0415

    return user_dir("state") / "shell_history"


# -- state ---------------------------------------------------------------------------------------


@dataclass
class Settings:
    """What an offer or answer takes besides the input; None means "from the message, or default"."""

    flags: str = ""
    ip: str | None = None
    call_id: str | None = None
    from_tag: str | None = None
    to_tag: str | None = None
    source_ip: str | None = None
    #: True: the SDP travels in a reply; False: in a request; None: from the message, else by command.
    in_reply: bool | None = None
    target: str | None = None
    set_id: int | None = None


@dataclass(frozen=True)
class ShellInput:
    """The text the next offer or answer rewrites, with where it came from."""

    text: str
    name: str
    #: The SIP message the text is, read once for the prompt and settings; None for a bare SDP
    #: (or a message that does not parse: the offer will say why).
    message: "SipMessage | None" = None
    is_sip: bool = False

    def describe(self) -> str:
        lines = self.text.count("\n") + (0 if self.text.endswith("\n") or not self.text else 1)
        crlf = self.text.count("\r\n")
        lf = self.text.count("\n") - crlf
        endings = "CRLF" if crlf and not lf else "LF" if lf and not crlf else "mixed" if crlf else "no"
        if self.message is not None:
            kind = f"SIP {self.message.method}" if self.message.is_request else f"SIP {self.message.status} reply"
        else:
            kind = "SIP message" if self.is_sip else "SDP"
        return f"{self.name}: {kind}, {lines} line{'s' if lines != 1 else ''}, {endings} line endings"


@dataclass(frozen=True)
class Rewrite:
    """One offer or answer that went through, and the input it was given."""

    offer: bool
    input: ShellInput
    result: "RewriteResult"

    @property
    def kind(self) -> str:
        return "offer" if self.offer else "answer"


@dataclass
class _Effective:
    """A value the next operation will use, and whether it comes from the SIP message."""

    value: str | None
    from_message: bool = False

    def shown(self) -> str:
        if self.value is None:
            return "-"
        return f"{self.value} (from the message)" if self.from_message else self.value


# -- the shell -----------------------------------------------------------------------------------

#: The commands as `help` lists them, grouped the way a session goes.
HELP_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Input", ("load", "paste", "show")),
    ("Call and flags", ("call-id", "from-tag", "to-tag", "flags", "ip", "source-ip", "reply", "settings")),
    ("Relay", ("offer", "answer", "rerun", "unforce", "target", "set")),
    ("Results", ("result", "diff", "save")),
    ("Session", ("help", "quit")),
)

#: Lines that are SDP (`v=0`) or a SIP start line typed at the prompt: the text was meant for `paste`.
_LOOKS_LIKE_INPUT = re.compile(r"^(?:[a-z]=|SIP/2\.0 |[A-Z]+ [a-zA-Z]+:\S+ SIP/2\.0)")


class RewriteShell(cmd.Cmd):
    """The command loop: one `do_<name>` per command (dashes in names become underscores)."""

    # Dashes belong to command names (call-id, from-tag), so cmd.Cmd must not split at them.
    identchars = cmd.Cmd.identchars + "-"

    def __init__(
        self,
        s: RunContext,
        settings: Settings,
        *,
        line_editor: ModuleType | None = None,
        interactive: bool = True,
        history_path: Path | None = None,
    ) -> None:
        super().__init__(stdout=s.output.stdout)
        self.session = s
        self.out: Output = s.output
        self.settings = settings
        self.line_editor = line_editor
        self.interactive = interactive
        self.history_path = history_path
        self.input: ShellInput | None = None
        self.last: Rewrite | None = None
        #: "offer" or "answer": what rerun runs; set before the relay is asked, so a failed
        #: attempt (relay down) can be retried with rerun.
        self.last_kind: str | None = None

    # -- the loop --------------------------------------------------------------------------------

    def cmdloop(self, intro: Any = None) -> None:
        """cmd.Cmd's loop, except that Ctrl-C cancels the line or the running command, not the shell."""
        editor = self.line_editor
        saved = None
        if editor is not None:
            saved = (editor.get_completer(), editor.get_completer_delims())
            editor.set_completer(self.complete)
            # Words are separated by blanks only: dashes belong to command names and file paths.
            editor.set_completer_delims(" \t\n")
            self._bind_tab(editor, "complete")
        try:
            self._greet()
            while True:
                self.prompt = self._prompt() if self.interactive else ""
                try:
                    line = input(self.prompt)
                except EOFError:
                    if self.interactive:
                        self.out.raw("\n")  # leave the user's shell prompt on a line of its own
                    break
                except KeyboardInterrupt:
                    # The line is abandoned; the cursor still sits after it.
                    self.out.raw("\n")
                    continue
                try:
                    stop = self.onecmd(self.precmd(line))
                except KeyboardInterrupt:
                    self._flush()
                    self.out.warn("interrupted")
                    stop = False
                self._flush()
                if stop:
                    break
        finally:
            if editor is not None and saved is not None:
                editor.set_completer(saved[0])
                editor.set_completer_delims(saved[1])

    @staticmethod
    def _bind_tab(editor: ModuleType, action: str) -> None:
        """Tab completes ("complete") or is typed as itself ("tab-insert")."""
        if "libedit" in (editor.__doc__ or ""):
            # libedit (macOS) has its own binding syntax and names.
            editor.parse_and_bind("bind ^I rl_complete" if action == "complete" else "bind ^I ed-insert")
        else:
            editor.parse_and_bind(f"tab: {action}")

    def _greet(self) -> None:
        if not self.interactive:
            return
        try:
            relay = self._route().describe()
        except RtppctlError as err:
            relay = f"none yet ({err.message}); use: target SPEC"
        self.out.line(f"rtppctl shell: relay {relay}", style="bold")
        self.out.line("Type help for the commands; load FILE or paste an SDP, then offer or answer. Ctrl-D leaves.")

    def parseline(self, line: str) -> tuple[str | None, str | None, str]:
        command, arg, line = super().parseline(line)
        return (command.replace("-", "_") if command else command), arg, line

    def onecmd(self, line: str) -> bool:
        try:
            return bool(super().onecmd(line))
        except RtppctlError as err:
            self._flush()
            self.out.error(err)
        except Exception as err:  # noqa: BLE001 - a bug: said in one line, and the session's state survives it
            self._flush()
            if self.out.verbose >= 2:
                import traceback  # noqa: PLC0415

                traceback.print_exc()
            from rtppctl.cli.output import escape  # noqa: PLC0415 - the message may quote anything

            self.out.stderr.write(escape(f"rtppctl: internal error: {type(err).__name__}: {err} "
                                         "(run with -vv for the traceback)", tabs=True) + "\n")
            self.out.stderr.flush()
        return False

    def emptyline(self) -> bool:
        # cmd.Cmd repeats the last command on an empty line; here that would send another offer.
        return False

    def default(self, line: str) -> bool:
        word = line.split()[0] if line.split() else line
        if _LOOKS_LIKE_INPUT.match(line):
            raise InputError(f"{word!r} is not a command", "to give an SDP or a SIP message, type paste first (or load FILE)")
        raise InputError(f"unknown command {word!r}", "type help for the commands")

    def _flush(self) -> None:
        # Errors go to stderr unbuffered; what was printed before them must reach the terminal first.
        self.out.stdout.flush()

    # -- help and completion -----------------------------------------------------------------------

    def do_help(self, arg: str) -> None:
        """help [COMMAND]: list the commands, or explain one."""
        topic = arg.strip()
        if topic:
            method = getattr(self, "do_" + topic.replace("-", "_"), None)
            if method is None or topic == "EOF":
                raise InputError(f"no command {topic!r}", "type help for the commands")
            self.out.line(inspect.cleandoc(method.__doc__ or topic))
            return
        width = max(len(self._usage(name)[0]) for _, names in HELP_GROUPS for name in names)
        for group, names in HELP_GROUPS:
            self.out.line(f"{group}:", style="bold")
            for name in names:
                usage, summary = self._usage(name)
                self.out.line(f"  {usage.ljust(width)}  {summary}")
        self.out.line("Ctrl-C cancels the line or the running command; Ctrl-D, quit or exit leaves.")

    def _usage(self, name: str) -> tuple[str, str]:
        """(usage, summary) from the first line of a command's docstring, "usage: summary"."""
        doc = inspect.cleandoc(getattr(self, "do_" + name.replace("-", "_")).__doc__ or name)
        usage, _, summary = doc.splitlines()[0].partition(": ")
        return usage, summary

    def _command_names(self) -> list[str]:
        return [name[3:].replace("_", "-") for name in self.get_names() if name.startswith("do_") and name != "do_EOF"]

    def completenames(self, text: str, *ignored: Any) -> list[str]:
        # Python's readline appends nothing to a completion; the space is ours, ready for the argument.
        return sorted(name + " " for name in self._command_names() if name.startswith(text))

    def complete_help(self, text: str, *ignored: Any) -> list[str]:
        return self.completenames(text)

    def _complete_path(self, text: str, *ignored: Any) -> list[str]:
        import glob  # noqa: PLC0415

        expanded = os.path.expanduser(text)
        matches = sorted(glob.glob(glob.escape(expanded) + "*"))
        return [match + ("/" if os.path.isdir(match) else "") for match in matches]

    complete_load = _complete_path
    complete_save = _complete_path

    def complete_reply(self, text: str, *ignored: Any) -> list[str]:
        return [word for word in ("on", "off", "auto") if word.startswith(text)]

    # -- input ---------------------------------------------------------------------------------------

    def do_load(self, arg: str) -> None:
        """load FILE: read an SDP body or a whole SIP message from FILE (line endings kept).

        A SIP message gives the Call-ID, the tags, the direction (request or reply) and the
        source address, unless set with call-id, from-tag, to-tag, reply and source-ip.
        """
        from rtppctl.files import read_input  # noqa: PLC0415

        path = _one_path(arg, "load FILE")
        if path == "-":
            raise InputError("load reads a file, not stdin", "to type or paste the text, use paste")
        text, name = read_input(os.path.expanduser(path))
        self._take_input(text, name)

    def do_paste(self, arg: str) -> None:
        """paste: read an SDP body or a SIP message from the terminal, up to a line holding a single '.' (or Ctrl-D).

        Lines are kept exactly as typed, each ending in a newline (LF).
        """
        if arg.strip():
            raise InputError("paste takes no argument", "type paste, then the text, then a line with a single '.'")
        if self.interactive:
            self.out.line("Paste the text, then a line with a single '.' (or press Ctrl-D).", style="dim")
            self._flush()
        lines = self._pasted_lines()
        if not lines:
            raise InputError("nothing was pasted; the input is unchanged")
        self._take_input("".join(lines), "pasted text")

    def _pasted_lines(self) -> list[str]:
        """Lines up to a single '.' or end of input, each ending in LF; none of them kept in the history.

        They are read through the line editor like commands, because text typed or pasted before
        the editor handed the terminal back would otherwise sit where a plain read cannot see it.
        """
        editor = self.line_editor
        kept = editor.get_current_history_length() if editor else 0
        lines: list[str] = []
        if editor:
            # A tab in pasted text is text, not a request to complete a command name.
            self._bind_tab(editor, "tab-insert")
        try:
            while True:
                try:
                    chunk = input("")
                except EOFError:
                    if self.interactive:
                        self.out.raw("\n")
                    return lines
                # One read may carry several lines (a terminal's bracketed paste).
                for content in chunk.split("\n"):
                    content = content.rstrip("\r")
                    if content.strip() == ".":
                        return lines
                    lines.append(content + "\n")
        finally:
            if editor:
                self._bind_tab(editor, "complete")
                while editor.get_current_history_length() > kept:
                    editor.remove_history_item(editor.get_current_history_length() - 1)

    def _take_input(self, text: str, name: str) -> None:
        from rtppctl.proto.sip import looks_like_sip, parse_sip  # noqa: PLC0415

        message = None
        is_sip = looks_like_sip(text)
        if is_sip:
            try:
                message = parse_sip(text, source=name)
            except RtppctlError as err:
                # Kept anyway: the user may want to show it, and offer will refuse it with the reason.
                self.out.warn(f"{err.message} (offer and answer will refuse it)")
        self.input = ShellInput(text, name, message, is_sip)
        self.out.line(f"loaded {self.input.describe()}")

    def do_show(self, arg: str) -> None:
        """show: print the current input, exactly as it is."""
        current = self._require_input()
        self.out.line(f"# {current.describe()}", style="dim")
        self.out.raw(_ended(current.text))

    # -- settings ------------------------------------------------------------------------------------

    def do_flags(self, arg: str) -> None:
        """flags [FLAGS]: the module's flags for offer and answer, e.g. co or swz20; nothing clears them.

        Letters: a l k i e f r o c s w n[<SOCKET>] d[PT] tNN TNN zNN (see rtppctl offer --help).
        """
        from rtppctl.proto.flags import parse_flags  # noqa: PLC0415

        text = arg.strip()
        parse_flags(text)
        self.settings.flags = text
        self.out.line(f"flags {text or '(none)'}")

    def do_ip(self, arg: str) -> None:
        """ip ADDR|-: the address to write into the SDP (the module's ip_address); - for the relay's."""
        self.settings.ip = self._address(arg, "ip ADDR|-", "ip")
        self.out.line("ip " + (self.settings.ip or "- (the relay's address)"))

    def do_source_ip(self, arg: str) -> None:
        """source-ip ADDR|-: where the SIP message came from; - for the message's top Via (or the SDP's address)."""
        self.settings.source_ip = self._address(arg, "source-ip ADDR|-", "source-ip")
        self.out.line(f"source-ip {self._effective_source_ip().shown()}")

    def do_call_id(self, arg: str) -> None:
        """call-id ID|-: the Call-ID; - takes it from the SIP message again."""
        self.settings.call_id = self._token(arg, "call-id ID|-", "call-id", tag=False)
        self.out.line(f"call-id {self._effective('call_id').shown()}")

    def do_from_tag(self, arg: str) -> None:
        """from-tag TAG|-: the From tag; - takes it from the SIP message again."""
        self.settings.from_tag = self._token(arg, "from-tag TAG|-", "from-tag", tag=True)
        self.out.line(f"from-tag {self._effective('from_tag').shown()}")

    def do_to_tag(self, arg: str) -> None:
        """to-tag TAG|-: the To tag (an answer needs it); - takes it from the SIP message again, or none."""
        self.settings.to_tag = self._token(arg, "to-tag TAG|-", "to-tag", tag=True)
        self.out.line(f"to-tag {self._effective('to_tag').shown()}")

    def do_reply(self, arg: str) -> None:
        """reply on|off|auto: the SDP travels in a reply (on) or a request (off), which decides the tag order.

        auto: from the SIP message; for a bare SDP, a request for offer and a reply for answer.
        """
        word = arg.strip().lower()
        choices = {"on": True, "off": False, "auto": None}
        if word not in choices:
            raise InputError(f"reply takes on, off or auto, not {arg.strip()!r}" if word else "reply takes on, off or auto")
        self.settings.in_reply = choices[word]
        self.out.line(f"reply {self._direction()}")

    def do_target(self, arg: str) -> None:
        """target SPEC|-: talk to this relay, e.g. udp:127.0.0.1:22222; - goes back to the configured set."""
        value = _one_word(arg, "target SPEC|-")
        target = None if value == "-" else value
        route = route_for(self.session, [target] if target else None, self.settings.set_id)
        self.settings.target = target
        self.out.line(f"relay {route.describe()}")

    def do_set(self, arg: str) -> None:
        """set N|-: use relay set N of the configuration (when no target is given); - for the default set."""
        value = _one_word(arg, "set N|-")
        if value == "-":
            set_id = None
        else:
            try:
                set_id = int(value)
            except ValueError:
                raise InputError(f"set takes a set number or -, not {value!r}") from None
        route = route_for(self.session, [self.settings.target] if self.settings.target else None, set_id)
        self.settings.set_id = set_id
        self.out.line(f"relay {route.describe()}" + (" (target wins over set)" if self.settings.target else ""))

    def do_settings(self, arg: str) -> None:
        """settings: print every setting, and where the ones not set come from."""
        s = self.settings
        try:
            relay = self._route().describe()
            relay += " (target)" if s.target else "" if s.set_id is not None else " (the default set)"
        except RtppctlError as err:
            relay = f"none ({err.message})"
        rows = [
            ("input", self.input.describe() if self.input else "none (load FILE or paste)"),
            ("relay", relay),
            ("call-id", self._effective("call_id").shown()),
            ("from-tag", self._effective("from_tag").shown()),
            ("to-tag", self._effective("to_tag").shown()),
            ("flags", s.flags or "-"),
            ("ip", s.ip or "- (the relay's address)"),
            ("source-ip", self._effective_source_ip().shown()),
            ("reply", self._direction()),
            ("last", f"{self.last.kind} of {self.last.input.name} via {self.last.result.node}" if self.last else "-"),
            ("history", str(self.history_path) if self.line_editor and self.history_path else "off"),
        ]
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            self.out.line(f"{name.ljust(width)}  {value}")

    # -- the relay ---------------------------------------------------------------------------------

    def do_offer(self, arg: str) -> None:
        """offer: put the input through the relay as an offer (U), then show the result and a diff."""
        self._no_argument(arg, "offer")
        self._rewrite(offer=True)

    def do_answer(self, arg: str) -> None:
        """answer: put the input through the relay as an answer (L), then show the result and a diff."""
        self._no_argument(arg, "answer")
        self._rewrite(offer=False)

    def do_rerun(self, arg: str) -> None:
        """rerun: the last offer or answer again, with the current input and settings."""
        self._no_argument(arg, "rerun")
        if self.last_kind is None:
            raise InputError("nothing to run again yet", "run offer or answer first")
        self._rewrite(offer=self.last_kind == "offer")

    def do_unforce(self, arg: str) -> None:
        """unforce: tear the current call's relay session down (D with the Call-ID and tags)."""
        from rtppctl import ops  # noqa: PLC0415

        self._no_argument(arg, "unforce")
        call_id, from_tag = self._effective("call_id").value, self._effective("from_tag").value
        if not call_id:
            raise InputError("no Call-ID", "set call-id ID, or load a SIP message")
        if not from_tag:
            raise InputError("no From tag", "set from-tag TAG, or load a SIP message")
        call = ops.find_call(self._route(), call_id=call_id, from_tag=from_tag, to_tag=self._effective("to_tag").value)
        result = ops.unforce(call)
        if result.had_session:
            self.out.line(f"deleted the session of {call_id} on {result.node}")
        else:
            self.out.line(f"{result.node} had no session for {call_id} (nothing to delete)")

    def _rewrite(self, *, offer: bool) -> None:
        from rtppctl import ops  # noqa: PLC0415

        current = self._require_input()
        s = self.settings
        self.last_kind = "offer" if offer else "answer"
        request = ops.RewriteRequest(
            text=current.text, source=current.name, flags=s.flags, call_id=s.call_id, from_tag=s.from_tag,
            to_tag=s.to_tag, in_reply=s.in_reply, source_ip=s.source_ip, ip=s.ip,
        )
        result = ops.rewrite_sdp(self._route(), request, offer=offer)
        self.last = Rewrite(offer, current, result)
        for warning in result.warnings:
            self.out.warn(warning)
        self._flush()
        ret = f", media at {result.ret}" if result.ret else ", no stream proxied"
        self.out.line(f"# {self.last.kind} ({result.letter}) via {result.node}{ret}", style="bold")
        for exchange in result.commands:
            self.out.line(f"#   {exchange['command']}  ->  {exchange['reply']}", style="dim")
        self.out.raw(_ended(result.output))
        self._show_diff(self.last)

    # -- results -------------------------------------------------------------------------------------

    def do_result(self, arg: str) -> None:
        """result: print the last rewritten output again (the whole message when the input was one)."""
        self.out.raw(_ended(self._require_result().result.output))

    def do_diff(self, arg: str) -> None:
        """diff: the diff between the last offer's or answer's input and its output."""
        self._show_diff(self._require_result())

    def do_save(self, arg: str) -> None:
        """save FILE: write the last rewritten output to FILE, exactly (atomically: FILE is whole or untouched)."""
        from rtppctl.files import write_atomically  # noqa: PLC0415

        path = os.path.expanduser(_one_path(arg, "save FILE"))
        done = self._require_result()
        write_atomically(path, done.result.output)
        self.out.line(f"saved the {done.kind} to {path}")

    def _show_diff(self, done: Rewrite) -> None:
        before, after = done.input.text, done.result.output
        if before == after:
            self.out.line("# no changes", style="dim")
            return
        self.out.diff(before, after, done.input.name, done.kind)

    # -- leaving ---------------------------------------------------------------------------------------

    def do_quit(self, arg: str) -> bool:
        """quit: leave the shell (also exit, or Ctrl-D)."""
        return True

    do_exit = do_quit

    def do_EOF(self, arg: str) -> bool:  # noqa: N802 - cmd.Cmd's name for end of input
        """EOF: leave the shell."""
        return True

    # -- helpers ---------------------------------------------------------------------------------------

    def _route(self) -> "Route":
        target = self.settings.target
        return route_for(self.session, [target] if target else None, self.settings.set_id)

    def _require_input(self) -> ShellInput:
        if self.input is None:
            raise InputError("no input yet", "load FILE, or paste an SDP or SIP message")
        return self.input

    def _require_result(self) -> Rewrite:
        if self.last is None:
            raise InputError("no result yet", "run offer or answer first")
        return self.last

    def _call(self) -> "ResolvedCall":
        """The call leg the next offer or answer will use, worked out as the operation does."""
        from rtppctl import ops  # noqa: PLC0415

        s = self.settings
        request = ops.RewriteRequest(
            text=self.input.text if self.input else "", call_id=s.call_id, from_tag=s.from_tag,
            to_tag=s.to_tag, in_reply=s.in_reply, source_ip=s.source_ip,
        )
        return ops.resolve_call(request, self.input.message if self.input else None, offer=None)

    def _effective(self, name: str) -> _Effective:
        """A Call-ID, tag or source address as the next operation will see it."""
        sourced = getattr(self._call(), name)
        return _Effective(sourced.value, sourced.origin == "message")

    def _effective_source_ip(self) -> _Effective:
        return self._effective("source_ip")

    def _direction(self) -> str:
        in_reply = self._call().in_reply
        if in_reply.origin == "given":
            return "on (the SDP is in a reply)" if in_reply.value else "off (the SDP is in a request)"
        if in_reply.origin == "message":
            return "auto (a reply)" if in_reply.value else "auto (a request)"
        return "auto (a request for offer, a reply for answer)"

    def _token(self, arg: str, usage: str, what: str, *, tag: bool) -> str | None:
        """A Call-ID or tag, checked as the relay will read it (a tag refuses ';') when it is set."""
        from rtppctl.proto.command import validate_call_id, validate_tag  # noqa: PLC0415

        value = _one_word(arg, usage)
        if value == "-":
            return None
        return validate_tag(value, what) if tag else validate_call_id(value)

    def _address(self, arg: str, usage: str, what: str) -> str | None:
        from rtppctl.proto.command import validate_address  # noqa: PLC0415

        value = _one_word(arg, usage)
        return None if value == "-" else validate_address(value, what)

    @staticmethod
    def _no_argument(arg: str, name: str) -> None:
        if arg.strip():
            raise InputError(f"{name} takes no argument", "set the Call-ID, tags and flags with their own commands first")

    def _prompt(self) -> str:
        """`rtppctl [c1@host ft/tt flags=co]> `: the call and flags the next offer or answer will use."""
        call_id, from_tag, to_tag = (self._effective(name).value for name in ("call_id", "from_tag", "to_tag"))
        parts = []
        if call_id:
            parts.append(_short(call_id, 24))
        if call_id or from_tag or to_tag:
            parts.append(f"{_short(from_tag or '?', 12)}/{_short(to_tag or '-', 12)}")
        if self.settings.flags:
            parts.append(f"flags={_short(self.settings.flags, 12)}")
        if self.input is None:
            parts.append("no input")
        return f"rtppctl [{' '.join(parts)}]> " if parts else "rtppctl> "


# -- history ---------------------------------------------------------------------------------------


def _line_editor() -> ModuleType | None:
    """The readline module, or None where Python has none (the shell then works without editing)."""
    try:
        import readline  # noqa: PLC0415 - only the shell pays for it
    except ImportError:
        return None
    return readline


def _load_history(editor: ModuleType, path: Path, out: "Output") -> int:
    """Read the history file into the line editor; returns how many entries it holds now."""
    editor.set_history_length(HISTORY_LENGTH)
    try:
        editor.read_history_file(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        out.warn(f"cannot read the history file {path}: {exc.strerror or exc}")
    return editor.get_current_history_length()


def _save_history(editor: ModuleType, path: Path, loaded: int, out: "Output") -> None:
    """Add this session's lines to the history file, which is cut to its last HISTORY_LENGTH lines.

    Appending rather than rewriting keeps what another shell running at the same time saved.
    """
    added = editor.get_current_history_length() - loaded
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if hasattr(editor, "append_history_file") and path.exists():
            if added > 0:
                editor.append_history_file(min(added, HISTORY_LENGTH), path)
        else:
            # History may hold call ids and addresses: only the user may read it.
            path.touch(mode=0o600, exist_ok=True)
            editor.write_history_file(path)
    except OSError as exc:
        out.warn(f"cannot write the history file {path}: {exc.strerror or exc}")


# -- small helpers -----------------------------------------------------------------------------------


def _one_word(arg: str, usage: str) -> str:
    words = arg.split()
    if not words:
        raise InputError(f"usage: {usage}")
    if len(words) > 1:
        raise InputError(f"one value expected, not {len(words)}: {arg.strip()!r}", f"usage: {usage}")
    return words[0]


def _one_path(arg: str, usage: str) -> str:
    """One file name; quotes allow spaces in it (`save "my offer.sdp"`)."""
    try:
        words = shlex.split(arg)
    except ValueError as exc:
        raise InputError(f"cannot read the file name: {exc}", f"usage: {usage}") from None
    if not words:
        raise InputError(f"usage: {usage}")
    if len(words) > 1:
        raise InputError(f"one file name expected, not {len(words)}: {arg.strip()!r}", "quote a file name that holds spaces")
    return words[0]


def _ended(text: str) -> str:
    # The shell's own lines must not run on after an SDP given without a final newline.
    return text if text.endswith("\n") or not text else text + "\n"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
