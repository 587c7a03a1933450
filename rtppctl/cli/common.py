"""What every command shares: the per-run `RunContext` and the options reused across commands.

The root callback builds one `RunContext` from the global options and stores it on the Typer context;
commands fetch it with `run_context(ctx)`. It loads the configuration lazily (a command given
`--target` and no config file never reads TOML), opens channels with the effective timeout and
retries, and owns the one `Output`. Option types defined here keep help texts identical everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from rtppctl.proto import limits

if TYPE_CHECKING:
    from rtppctl.cli.output import Output
    from rtppctl.config import Config
    from rtppctl.net.client import RelayClient
    from rtppctl.proto.url import NodeSpec

TargetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        "-t",
        metavar="SPEC",
        help="Talk to this relay directly, bypassing the configured sets, e.g. udp:127.0.0.1:22222 "
        "(repeatable where a command takes several relays).",
        show_default=False,
    ),
]
SetOption = Annotated[
    int | None,
    typer.Option("--set", metavar="ID", min=0, max=limits.MAX_SET_ID, help="Relay set to use (default: the config's default_set).", show_default=False),
]


def _no_type_label(ctx: object) -> None:
    return None


def _plain_metavars(params: list) -> list:  # noqa: ANN001 - Click parameters
    """Help shows what to type, not Python types: no `<bool>` after a flag (it takes no value),
    no `<str>` or `<list[str]>` after an argument (its metavar says it all)."""
    for param in params:
        kind = getattr(param, "param_type_name", "")
        if kind == "option" and (param.is_flag or param.count) and param.metavar is None:
            param.metavar = ""
        elif kind == "argument":
            param.display_type_rich = _no_type_label  # Typer >= 0.29 asks this for the type column
    return params


class PlainCommand(TyperCommand):
    """A command whose help shows no type label for flags (`--all`, not `--all <bool>`)."""

    def get_params(self, ctx):  # noqa: ANN001, ANN201
        return _plain_metavars(super().get_params(ctx))


class PlainGroup(TyperGroup):
    """A command group whose help shows no type label for flags."""

    def get_params(self, ctx):  # noqa: ANN001, ANN201
        return _plain_metavars(super().get_params(ctx))


@dataclass
class RunContext:
    """Global options of one run, and the objects built from them on demand."""

    json: bool = False
    verbose: int = 0
    timeout: float | None = None
    retries: int | None = None
    color: bool | None = None
    config_path: str | None = None
    _config: Config | None = field(default=None, repr=False)
    _output: Output | None = field(default=None, repr=False)

    @property
    def output(self) -> Output:
        if self._output is None:
            from rtppctl.cli.output import Output  # noqa: PLC0415

            self._output = Output(json_mode=self.json, color=self.color, verbose=self.verbose)
        return self._output

    @property
    def config(self) -> Config:
        if self._config is None:
            from rtppctl.config import load_config  # noqa: PLC0415

            self._config = load_config(self.config_path)
            self.output.note(f"config: {self._config.path or 'none found, built-in defaults'}")
        return self._config

    @property
    def effective_timeout(self) -> float:
        return self.timeout if self.timeout is not None else self.config.rtpproxy_timeout

    @property
    def effective_retries(self) -> int:
        return self.retries if self.retries is not None else self.config.rtpproxy_retr

    def connect(self, node: NodeSpec) -> RelayClient:
        """A client for `node` with the effective timeout, retries and -vv wire trace."""
        from rtppctl.net.client import RelayClient  # noqa: PLC0415

        trace = self.output.trace if self.verbose >= 2 else None
        timeout, retries = self.effective_timeout, self.effective_retries
        tries = f", {retries} tries" if node.is_datagram else ""
        self.output.note(f"relay: {node.url} (timeout {timeout:g} s{tries})")
        return RelayClient.open(node, timeout=timeout, retries=retries, trace=trace)

    def nodes(self, targets: list[str] | None, set_id: int | None, *, all_sets: bool = False):  # noqa: ANN201
        """(set id, node) pairs for the targets, or the chosen set, or every set."""
        from rtppctl.nodes import resolve_nodes  # noqa: PLC0415

        # A --target needs no config file, but still honours one for timeout/retries when present.
        return resolve_nodes(self.config, targets=targets, set_id=set_id, all_sets=all_sets)

    def node(self, targets: list[str] | None, set_id: int | None):  # noqa: ANN201
        """The single relay a one-relay command talks to."""
        from rtppctl.nodes import pick_node  # noqa: PLC0415

        return pick_node(self.config, targets=targets, set_id=set_id)


def relay_for(s: RunContext, targets: list[str] | None, set_id: int | None):  # noqa: ANN201
    """The ops.Relay an SDP operation talks to: the chosen node plus the config's SDP settings."""
    from rtppctl.ops import Relay  # noqa: PLC0415

    config = s.config
    return Relay(s.connect, s.node(targets, set_id), marker=config.nortpproxy_str, notify_socket=config.rtpp_notify_socket)


def run_context(ctx: typer.Context) -> RunContext:
    """The run's RunContext (the root callback always sets one; tests calling commands directly get a fresh one)."""
    obj = ctx.find_object(RunContext)
    if obj is None:
        obj = RunContext()
        ctx.obj = obj
    return obj
