"""`rtppctl embedded`: start, stop and inspect the real RTPProxy engine (rtp.io) on this machine.

Options left out fall back to the config's `[embedded]` table, then to the built-in defaults
(udp:127.0.0.1:22222, media on 127.0.0.1 and, where IPv6 works, ::1, ports 35000-65000). Running, stopping and the state files
belong to `rtppctl.embedded`; these commands only turn options into `EmbeddedOptions` and render.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rtppctl.cli.common import PlainCommand, run_context
from rtppctl.proto import limits

if TYPE_CHECKING:
    from rtppctl.cli.output import Table
    from rtppctl.embedded import EmbeddedStatus

embedded_app = typer.Typer(
    help="Run the real RTPProxy engine (rtp.io) on this machine: start, stop, status.",
    no_args_is_help=True,
)


def _notify_from_config(config) -> list[str]:  # noqa: ANN001
    """rtpp_notify_socket as the relay's -n, so `offer --flags n` and `listen` work together out
    of the box; the relay matches the socket sent with U against -n byte for byte (§9.1)."""
    return [config.rtpp_notify_socket] if config.rtpp_notify_socket else []


@embedded_app.command(cls=PlainCommand)
def start(
    ctx: typer.Context,
    control: Annotated[
        list[str] | None,
        typer.Option("--control", "-s", metavar="SPEC", show_default=False,
                     help="Control socket (repeatable): udp:HOST:PORT, udp6:, tcp:, tcp6:, unix:/path, cunix:/path "
                     "(default: the config's embedded.control, else udp:127.0.0.1:22222)."),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option("--listen", "-l", metavar="ADDR", show_default=False,
                     help="IPv4 address media is relayed on (default: the config's embedded.listen, else 127.0.0.1; "
                          "IPv6 media goes to embedded.listen6, ::1 by default)."),
    ] = None,
    ports: Annotated[
        str | None,
        typer.Option("--ports", metavar="MIN-MAX", show_default=False,
                     help="Media port range (default: the config's embedded.port_min-port_max, else 35000-65000)."),
    ] = None,
    notify: Annotated[
        list[str] | None,
        typer.Option("--notify", "-n", metavar="TARGET", show_default=False,
                     help="Send timeout and DTMF notifications here (repeatable): tcp:HOST:PORT or unix:/path."),
    ] = None,
    record_dir: Annotated[
        Path | None,
        typer.Option("--record-dir", metavar="DIR", show_default=False, help="Directory for recordings (must exist)."),
    ] = None,
    pcap: Annotated[
        bool | None,
        typer.Option("--pcap/--no-pcap", show_default=False,
                     help="Record to pcap files, or not (default: the config's embedded.pcap, else not; needs --record-dir)."),
    ] = None,
    ttl: Annotated[
        int | None,
        typer.Option("--ttl", metavar="SECONDS", min=limits.MIN_TTL, max=limits.MAX_TTL, show_default=False,
                     help="End a session after this long without media (engine default: 60)."),
    ] = None,
    setup_ttl: Annotated[
        int | None,
        typer.Option("--setup-ttl", metavar="SECONDS", min=limits.MIN_TTL, max=limits.MAX_TTL, show_default=False,
                     help="End a session that got no media at all after this long."),
    ] = None,
    engine_arg: Annotated[
        list[str] | None,
        typer.Option("--engine-arg", metavar="ARG", show_default=False,
                     help="Pass one more switch to the engine verbatim (repeatable), after the config's embedded.extra_args, "
                          "e.g. --engine-arg -d --engine-arg info."),
    ] = None,
) -> None:
    """Start the embedded relay in the background and check that it answers.

    Refused (exit 5) when it already runs or a control socket is busy. Its pid, log and
    accounting file live in $XDG_STATE_HOME/rtppctl/embedded/.

    Examples:

      rtppctl embedded start

      rtppctl embedded start -s udp:127.0.0.1:22223 -s tcp:127.0.0.1:22224 --ports 40000-41000

      rtppctl embedded start -n tcp:127.0.0.1:9999 --record-dir /tmp/rec --ttl 30

      rtppctl embedded start --engine-arg -d --engine-arg info   # the engine's own log level
    """
    from dataclasses import replace  # noqa: PLC0415

    from rtppctl import embedded  # noqa: PLC0415

    s = run_context(ctx)
    out = s.output
    defaults = s.config.embedded
    port_min, port_max = _port_range(ports) if ports else (defaults.port_min, defaults.port_max)
    options = replace(
        defaults,
        control=control or defaults.control,
        listen=listen or defaults.listen,
        port_min=port_min,
        port_max=port_max,
        notify=notify if notify is not None else (defaults.notify or _notify_from_config(s.config)),
        record_dir=str(record_dir) if record_dir is not None else defaults.record_dir,
        pcap=defaults.pcap if pcap is None else pcap,
        ttl=ttl if ttl is not None else defaults.ttl,
        setup_ttl=setup_ttl if setup_ttl is not None else defaults.setup_ttl,
        extra_args=[*defaults.extra_args, *(engine_arg or [])],
    )
    status = embedded.start(options)
    out.emit(status.as_dict(), _status_table(status, "embedded relay started"))


@embedded_app.command(cls=PlainCommand)
def stop(ctx: typer.Context) -> None:
    """Stop the embedded relay (SIGTERM, then SIGKILL after 5 s). Not running is not an error.

    Examples:

      rtppctl embedded stop

      rtppctl embedded stop --json
    """
    from rtppctl import embedded  # noqa: PLC0415

    out = run_context(ctx).output
    result = embedded.stop()
    if not result["stopped"]:
        line = "the embedded relay is not running"
    else:
        how = " (killed: it ignored SIGTERM)" if result["forced"] else ""
        line = f"stopped the embedded relay (pid {result['pid']}, {', '.join(result['control'])}){how}"
    out.emit(result, line)


@embedded_app.command(cls=PlainCommand)
def status(ctx: typer.Context) -> None:
    """Is the embedded relay running, and where: pid, control sockets, uptime, engine switches, log.

    Exits 0 either way; scripts read "running" from --json.

    Examples:

      rtppctl embedded status

      rtppctl embedded status --json | jq .running
    """
    from rtppctl import embedded  # noqa: PLC0415

    out = run_context(ctx).output
    current = embedded.status()
    if not current.running:
        out.emit(current.as_dict(), "the embedded relay is not running", "start it with: rtppctl embedded start")
        return
    out.emit(current.as_dict(), _status_table(current, "embedded relay running"))


def _port_range(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*", text)
    if not match or not limits.MIN_PORT <= int(match[1]) < int(match[2]) <= limits.MAX_PORT:
        raise typer.BadParameter(f"{text!r} is not MIN-MAX within {limits.MIN_PORT}-{limits.MAX_PORT}, e.g. 35000-65000", param_hint="--ports")
    return int(match[1]), int(match[2])


def _status_table(current: EmbeddedStatus, title: str) -> Table:
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415

    data = current.as_dict()
    uptime = data["uptime"]
    rows = [
        ["pid", data["pid"]],
        ["control", " ".join(data["control"])],
        ["protocol", data["protocol_version"]],
        ["media", _media_text(data["media"], data["media_note"])],
        ["started", data["started_at"]],
        ["uptime", f"{uptime:.0f} s" if uptime is not None else None],
        ["engine", " ".join(data["engine_args"])],
        ["log", data["log"]],
        ["workdir", data["workdir"]],
    ]
    return Table([Column("what"), Column("value")], rows, title=title)


def _media_text(media: dict[str, str | None] | None, note: str | None) -> str | None:
    """"IPv4 127.0.0.1, IPv6 ::1"; a missing family is named with the reason when there is one."""
    if not media:
        return None
    served = [f"{label} {media[family]}" for family, label in (("ipv4", "IPv4"), ("ipv6", "IPv6")) if media.get(family)]
    text = ", ".join(served) or None
    if note:
        text = f"{text} ({note})" if text else note
    elif not media.get("ipv6"):
        text = f"{text} (IPv4 only)" if text else None
    return text
