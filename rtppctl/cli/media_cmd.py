"""play, stop-play, record, stop-record, stats, query: a call's media on its relay.

Each command takes the six call-addressing options (`cli.options.call_options`), finds the call
(its Call-ID and tags from the options, a SIP message, or the session ledger: one `ops.Call`),
calls one function of `rtppctl.ops.media`, and renders the result.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from rtppctl.cli.common import PlainCommand, PlainGroup, finite, run_context
from rtppctl.cli.options import CallOptions, call_options, named_call
from rtppctl.proto import limits

if TYPE_CHECKING:
    from rtppctl.cli.output import Table
    from rtppctl.ops.media import StatsResult

PartyOption = Annotated[str, typer.Option("--to", metavar="uac|uas", help="Who hears it: uac (the party that sent the request: the message's From party, or the call's creator) or uas (the other).")]
#: None: the party that sent the message (the uas for a reply), as the module's record and copy.
RecordPartyOption = Annotated[str | None, typer.Option("--party", metavar="uac|uas", show_default=False, help="With --dest or --one-way: whose media (default: the party that sent the message: the uac, or the uas for a reply).")]


def _party(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    word = value.strip().lower()
    if word not in ("uac", "uas"):
        raise typer.BadParameter(f"{value!r}: give uac or uas", param_hint=option)
    return word


@call_options
def play(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(metavar="PROMPT", help="The prompt's name without .<pt>: the relay opens PROMPT.0, PROMPT.8, ...")],
    to: PartyOption,
    count: Annotated[int, typer.Option("--count", "-c", metavar="N", min=limits.MIN_PLAY_COUNT, max=limits.MAX_PLAY_COUNT, help="Times to play; -1 loops until stop-play.")] = 1,
    codecs: Annotated[str, typer.Option("--codecs", metavar="LIST", help="Payload types to look for, e.g. 0,8 (default: the stream's own, 'session').")] = "session",
    call: CallOptions = CallOptions(),
) -> None:
    """Play a prompt to one party of a call (rtpproxy_stream2uac / stream2uas).

    The prompt replaces the relayed stream toward that party while it plays. Prompt files are raw payload bytes named PROMPT.<payload type> (rtppctl prompt encode writes them).

    Examples:

      rtppctl play /var/lib/prompts/welcome --to uac --call-id c1@host

      rtppctl play moh --to uas --count -1 --message bye.txt
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import media  # noqa: PLC0415

    s = run_context(ctx)
    party = _party(to, "--to")
    found = named_call(ctx, call)
    result = media.play(found, prompt, to=party, count=count, codecs=codecs)
    for note in result.notes:
        s.output.status(note)
    times = "in a loop until stop-play" if count == -1 else "stopping what played" if count == 0 else f"{count} time(s)"
    s.output.emit(ops.as_dict(result), f"playing {prompt} to the {party} of {found.call_id} on {result.node}, {times}")


@call_options
def stop_play(ctx: typer.Context, to: PartyOption, call: CallOptions = CallOptions()) -> None:
    """Stop a prompt playing to one party (rtpproxy_stop_stream2uac / stop_stream2uas).

    Examples:

      rtppctl stop-play --to uac --call-id c1@host
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import media  # noqa: PLC0415

    s = run_context(ctx)
    party = _party(to, "--to")
    result = media.stop_play(named_call(ctx, call), to=party)
    s.output.emit(ops.as_dict(result), f"stopped the prompt to the {party} of {result.call_id} on {result.node}")


record_app = typer.Typer(invoke_without_command=True)


@record_app.callback(cls=PlainGroup)
@call_options
def record(
    ctx: typer.Context,
    dest: Annotated[str | None, typer.Option("--dest", metavar="udp:IPv4:PORT|NAME", help="Copy one party's stream there instead (C): udp:IPv4:PORT (PORT up to 65534: RTCP goes to PORT+1), or a plain file NAME (NAME.rtp in the relay's record dir).", show_default=False)] = None,
    stream: Annotated[int, typer.Option("--stream", metavar="N", min=1, max=limits.MAX_MEDIA_NUMBER, help="With --dest: the media stream (m-line, from 1).")] = 1,
    party: RecordPartyOption = None,
    one_way: Annotated[bool, typer.Option("--one-way", help="Record only --party's direction, as the module does (default: both).")] = False,
    single_file: Annotated[bool, typer.Option("--single-file", help="Both directions in one file (the 's' flag; needs a relay run with -P).")] = False,
    call: CallOptions = CallOptions(),
) -> None:
    """Record a call on its relay (rtpproxy_start_recording): both directions by default.

    One R records only the party of its first tag, so rtppctl sends one per direction. The relay names the files after the party whose offer created the session, whoever is recorded: CALLID=TAG.o.rtp holds that party's media, CALLID=TAG.a.rtp the other's, in its record directory (-r).

    Examples:

      rtppctl record --call-id c1@host

      rtppctl record --call-id c1@host --dest udp:127.0.0.1:40000 --party uas

      rtppctl record decode 'c1@host=ft.o.rtp' caller.wav
    """
    if ctx.invoked_subcommand is not None:
        return  # `record decode`: nothing to record
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import media  # noqa: PLC0415

    s = run_context(ctx)
    who = _party(party, "--party")
    found = named_call(ctx, call)
    if dest is not None:
        result = media.copy(found, dest, stream=stream, party=who)
    else:
        result = media.record(found, both=not one_way, single_file=single_file, party=who, warn=s.output.warn)
    for note in result.notes:
        s.output.status(note)
    lines = [f"recording {direction} on {result.node}" for direction in result.directions]
    if result.files:
        where = result.record_dir or "its record dir (-r)"
        lines.append(f"the relay writes in {where}: " + ", ".join(result.files))
    from rtppctl.cli.output import Lines  # noqa: PLC0415

    s.output.emit(ops.as_dict(result), Lines(tuple(lines)))


@record_app.command("decode", cls=PlainCommand)
def decode(
    ctx: typer.Context,
    recording: Annotated[str, typer.Argument(metavar="FILE", help="A recording the relay wrote without -P: CALLID=TAG.o.rtp or .a.rtp.")],
    output: Annotated[str, typer.Argument(metavar="OUT.wav", help="The WAV file to write (8 kHz, mono, 16-bit); '-': stdout.")],
) -> None:
    """Turn a recording the relay wrote back into audio (G.711: PCMU or PCMA).

    OUT.wav may be - (stdout), /dev/stdout, a FIFO or a device: written through; what was written is then said on stderr.

    Examples:

      rtppctl record decode 'c1@host=ft.o.rtp' caller.wav

      rtppctl record decode 'c1@host=ft.a.rtp' callee.wav --json

      rtppctl record decode 'c1@host=ft.o.rtp' - | sox -t wav - caller.flac
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.files import writes_to_stdout  # noqa: PLC0415
    from rtppctl.media import decode_recording  # noqa: PLC0415

    out = run_context(ctx).output
    result = decode_recording(recording, output)
    line = (f"wrote {'stdout' if output == '-' else result.output}: {result.duration:.2f} s of {result.codec} "
            f"from {result.packets} packets" + (f" ({result.skipped} other packets left out)" if result.skipped else ""))
    if writes_to_stdout(output):
        out.status(line)  # stdout holds the WAV file: nothing may follow it there
        return
    out.emit(ops.as_dict(result), line)


@call_options
def stop_record(ctx: typer.Context, call: CallOptions = CallOptions()) -> None:
    """Stop recording and copying a call (N, for both directions).

    A call the relay holds but is not recording is not an error: it says so (was_recording false in JSON).

    Examples:

      rtppctl stop-record --call-id c1@host
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import media  # noqa: PLC0415

    s = run_context(ctx)
    result = media.stop_record(named_call(ctx, call))
    line = (f"stopped recording {result.call_id} on {result.node}" if result.was_recording
            else f"{result.node} was not recording {result.call_id} (nothing to stop)")
    s.output.emit(ops.as_dict(result), line)


@call_options
def stats(
    ctx: typer.Context,
    all_counters: Annotated[bool, typer.Option("--all", help="Every counter of rtpproxy_all_stats, plus jitter and the longest gap where the relay has them.")] = False,
    stream: Annotated[int, typer.Option("--stream", metavar="N", min=1, max=limits.MAX_MEDIA_NUMBER, help="The media stream (m-line, from 1).")] = 1,
    watch: Annotated[float | None, typer.Option("--watch", metavar="SECONDS", min=limits.MIN_WATCH_SECONDS, max=limits.MAX_WATCH_SECONDS, callback=finite, help="Refresh every SECONDS until Ctrl-C, with rates per second.", show_default=False)] = None,
    call: CallOptions = CallOptions(),
) -> None:
    """Packet counters of a call (rtpproxy_stats): up, down, relayed, dropped.

    "up" counts the packets of the party that sent the message (the uac, or the uas for a reply; without a message, the call's creator), "down" those of the other party; relayed counts both directions.

    Examples:

      rtppctl stats --call-id c1@host

      rtppctl stats --call-id c1@host --all --json

      rtppctl stats --call-id c1@host --watch 1
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.ops import media  # noqa: PLC0415

    s = run_context(ctx)
    found = named_call(ctx, call)
    result = media.stats(found, stream=stream, all_counters=all_counters)
    if watch is None:
        s.output.emit(ops.as_dict(result), _stats_table(result))
        return
    with s.output.watch() as view:
        for sample in media.watch_stats(found, result, interval=watch, stream=stream, all_counters=all_counters):
            current, rates = sample.result, sample.rates
            data = {"type": "stats", "time": sample.time, **ops.as_dict(current), "rates": rates}
            text = (f"{time.strftime('%H:%M:%S', time.localtime(sample.time))}  up {current.up} ({rates['up']}/s)  "
                    f"down {current.down} ({rates['down']}/s)  relayed {current.relayed}  dropped {current.dropped}")
            view.sample(data, text, _stats_table(current, rates))


def _stats_table(result: StatsResult, rates: dict[str, float] | None = None) -> Table:
    """The counters under their names (up and down saying whose packets), the other counters of
    --all after them, and with --watch the rates."""
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415
    from rtppctl.ops.media import RATE_FIELDS  # noqa: PLC0415
    from rtppctl.proto.command import QUERY_DEFAULT_COUNTERS  # noqa: PLC0415

    down_is = "uas" if result.up_is == "uac" else "uac"
    named = {"up": f"up (from {result.up_is})", "down": f"down (from {down_is})", "relayed": "relayed",
             "dropped": "dropped"}
    rows = [[named[key], getattr(result, key)] for key in RATE_FIELDS] + [["ttl", result.ttl]]
    # The first group of --all is what the rows above show under their own names.
    rows += [[name, value] for name, value in result.counters.items() if name not in QUERY_DEFAULT_COUNTERS]
    columns = [Column("counter", keep=True), Column("value", "right", keep=True)]
    if rates is not None:
        columns.append(Column("per s", "right", keep=True))
        by_label = {named[key]: rate for key, rate in rates.items()}
        rows = [row + [by_label.get(row[0])] for row in rows]
    return Table(columns, rows, title=f"{result.call_id} on {result.node}, stream {result.stream}")


@call_options
def query(
    ctx: typer.Context,
    counters: Annotated[list[str], typer.Argument(metavar="COUNTER...", help="Counter names, e.g. npkts_ina rtpa_nlost longest_ipi.")],
    stream: Annotated[int, typer.Option("--stream", metavar="N", min=1, max=limits.MAX_MEDIA_NUMBER, help="The media stream (m-line, from 1).")] = 1,
    call: CallOptions = CallOptions(),
) -> None:
    """Any Q counters of a call by name, the party that sent the message first (its packets are npkts_ina).

    Examples:

      rtppctl query npkts_ina npkts_ino --call-id c1@host

      rtppctl query rtpa_nlost rtpa_jmax --call-id c1@host --json
    """
    from rtppctl import ops  # noqa: PLC0415
    from rtppctl.cli.output import Column, Table  # noqa: PLC0415
    from rtppctl.ops import media  # noqa: PLC0415

    s = run_context(ctx)
    result = media.query(named_call(ctx, call), counters, stream=stream)
    s.output.emit(ops.as_dict(result), Table([Column("counter", keep=True), Column("value", "right", keep=True)],
                                             [[k, v] for k, v in result.counters.items()]))
