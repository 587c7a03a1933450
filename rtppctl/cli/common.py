"""What every command shares: the per-run `RunContext` and the options reused across commands.

The root callback builds one `RunContext` from the global options and stores it on the Typer context;
commands fetch it with `run_context(ctx)`. It loads the configuration lazily (a command given
`--target` and no config file never reads TOML), builds the run's one `RelayService` from the
config and the options (the only way to a relay: channels opened with the effective timeout and
retries, the state file opened only when a command needs it; which relays, from where, is the
service's), owns the one `Output`, and closes both when the run ends. Option types defined here
keep help texts identical everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from rtppctl.proto import limits

if TYPE_CHECKING:
    from pathlib import Path

    from rtppctl.cli.output import Output
    from rtppctl.config import Config
    from rtppctl.net.client import RelayClient
    from rtppctl.net.pipeline import Pipeline
    from rtppctl.ops import Route
    from rtppctl.proto.url import NodeSpec
    from rtppctl.relays.health import StatusEvent
    from rtppctl.relays.service import Member, RelayService

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


#: `--set` of the commands that look at every relay by default (check, metrics): without it and
#: without -t, every node of every configured set (`observed_members`).
EverySetOption = Annotated[
    int | None,
    typer.Option("--set", metavar="ID", min=0, max=limits.MAX_SET_ID, show_default=False,
                 help="This set's nodes only (default: every node of every configured set)."),
]


def observed_members(s: RunContext, targets: list[str] | None, set_id: int | None) -> list[Member]:
    """The relays an observing command looks at: the targets, else the set, else every set."""
    return s.relays.members(targets, set_id, all_sets=not targets and set_id is None)


def finite(value: float | None) -> float | None:
    """Callback for every float option: Click's FloatRange lets NaN through in some versions
    (every comparison with NaN is false), so it is refused here, as a usage error."""
    if value is not None and value != value:
        raise typer.BadParameter("must be a number, not NaN")
    return value


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


def collect_garbage_from_now() -> None:
    """Turn the cyclic garbage collector back on once a command runs, if the console script
    turned it off for loading (`rtppctl.cli.main`). What was loaded until now is frozen first
    (`gc.freeze`): the collector never walks it again, and a long run (`listen`, `shell`,
    `--watch`) collects its own garbage as usual. When the collector was on (rtppctl run in
    process, as the tests do), nothing changes."""
    import gc  # noqa: PLC0415

    if not gc.isenabled():
        gc.freeze()
        gc.enable()


class PlainCommand(TyperCommand):
    """A command whose help shows no type label for flags (`--all`, not `--all <bool>`)."""

    def get_params(self, ctx):  # noqa: ANN001, ANN201
        return _plain_metavars(super().get_params(ctx))

    def invoke(self, ctx):  # noqa: ANN001, ANN201
        collect_garbage_from_now()
        return super().invoke(ctx)


class PlainGroup(TyperGroup):
    """A command group whose help shows no type label for flags."""

    def get_params(self, ctx):  # noqa: ANN001, ANN201
        return _plain_metavars(super().get_params(ctx))

    def invoke(self, ctx):  # noqa: ANN001, ANN201
        # The root group runs first: the collector is back on for the command's own parsing and work.
        collect_garbage_from_now()
        return super().invoke(ctx)


@dataclass
class RunContext:
    """Global options of one run, and the objects built from them on demand."""

    json: bool = False
    verbose: int = 0
    timeout: float | None = None
    retries: int | None = None
    color: bool | None = None
    config_path: str | None = None
    #: --state: the state file, "none", or None for RTPPCTL_STATE / the default.
    state: str | None = None
    _config: Config | None = field(default=None, repr=False)
    _output: Output | None = field(default=None, repr=False)
    _relays: RelayService | None = field(default=None, repr=False)

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

    @property
    def relays(self) -> RelayService:
        """The run's relay service, built on first use."""
        if self._relays is None:
            from rtppctl.relays.service import RelayService, RelaySources  # noqa: PLC0415

            self._relays = RelayService(
                RelaySources(lambda: self.config, warn=self.output.warn), self._open_client,
                state_path=self._state_path, on_status=self._status_changed, on_note=self.output.note,
                open_pipeline=self._open_pipeline,
            )
        return self._relays

    def close(self) -> None:
        """End of the run: close the relay channels and the state file."""
        if self._relays is not None:
            self._relays.close()

    def _state_path(self) -> Path | str | None:
        from rtppctl.relays.location import resolve_state_path  # noqa: PLC0415 - the store itself only when used

        return resolve_state_path(self.state, state_url=self.config.state_url)

    def _open_client(self, node: NodeSpec, *, timeout: float | None = None, retries: int | None = None) -> RelayClient:
        """A client for `node` with the effective timeout, retries (unless given) and -vv wire trace."""
        from rtppctl.net.client import RelayClient  # noqa: PLC0415

        trace = self.output.trace if self.verbose >= 2 else None
        timeout = self.effective_timeout if timeout is None else timeout
        retries = self.effective_retries if retries is None else retries
        tries = f", {retries} tries" if node.is_datagram else ""
        self.output.note(f"channel: {node.url} (timeout {timeout:g} s{tries})")
        return RelayClient.open(node, timeout=timeout, retries=retries, trace=trace)

    def _open_pipeline(self, window: int) -> Pipeline:
        """A pipelined engine with the effective timeout, retries and -vv wire trace."""
        from rtppctl.net.pipeline import Pipeline  # noqa: PLC0415

        trace = self.output.trace if self.verbose >= 2 else None
        return Pipeline(window=window, timeout=self.effective_timeout, retries=self.effective_retries, trace=trace)

    def _status_changed(self, event: StatusEvent) -> None:
        # E_RTPPROXY_STATUS as the operator sees it: on stderr, beside the command's own output.
        where = f"{event.socket} (set {event.set})"
        if event.status == "active":
            self.output.status(f"relay {where} is active again ({event.reason})")
        else:
            self.output.warn(f"relay {where} is now {event.state} ({event.reason})")


def route_for(s: RunContext, targets: list[str] | None, set_id: int | None) -> Route:
    """The ops.Route an SDP operation uses: the service, the command's target or set, and the
    config's SDP settings."""
    from rtppctl.ops import Route  # noqa: PLC0415

    config = s.config
    if targets:
        s.relays.one_target(targets)  # a bad spec or two targets fail now, before any input is read
    else:
        s.relays.members(set_id=set_id)  # an unknown set fails now
    return Route(s.relays, targets, set_id, marker=config.nortpproxy_str, notify_socket=config.rtpp_notify_socket)


def run_context(ctx: typer.Context) -> RunContext:
    """The run's RunContext (the root callback always sets one; tests calling commands directly get a fresh one)."""
    obj = ctx.find_object(RunContext)
    if obj is None:
        obj = RunContext()
        ctx.obj = obj
    return obj
