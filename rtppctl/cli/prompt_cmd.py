"""`rtppctl prompt`: make RTPProxy prompt files from WAV files, and describe prompt files.

Both commands work on local files only (no relay is contacted) through `rtppctl.media`, which
knows the WAV formats, the G.711 encoding and the `PROMPT.<payload type>` naming; the commands
parse their options and render the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from rtppctl.cli.common import PlainCommand, run_context

if TYPE_CHECKING:
    from rtppctl.media import PromptEncoding, PromptInfo

prompt_app = typer.Typer(
    help="Encode WAV files into the prompt files RTPProxy plays (PROMPT.0 for PCMU, PROMPT.8 for PCMA), and "
         "describe them. No relay is contacted.",
    no_args_is_help=True,
)


def _codec_list(value: str) -> list[str]:
    """--codec: comma-separated codec names, checked now so a typo is a usage error (exit 2)."""
    from rtppctl.proto import rtp  # noqa: PLC0415
    from rtppctl.proto.errors import InputError  # noqa: PLC0415

    names = [word.strip() for word in value.split(",") if word.strip()]
    if not names:
        raise typer.BadParameter(f"no codec given: use {', '.join(rtp.CODECS)}", param_hint="--codec")
    try:
        return [rtp.codec_named(name).name for name in names]
    except InputError as exc:
        raise typer.BadParameter(exc.message, param_hint="--codec") from None


def _level(dbfs: float | None) -> str:
    return "silent" if dbfs is None else f"{dbfs:.1f} dBFS"


def _channels(count: int) -> str:
    return {1: "mono", 2: "stereo"}.get(count, f"{count} channels")


@prompt_app.command(cls=PlainCommand)
def encode(
    ctx: typer.Context,
    wav: Annotated[str, typer.Argument(metavar="IN.wav", help="A PCM WAV file (plain or WAVE_FORMAT_EXTENSIBLE): 8 to 48 kHz, mono or stereo, 8- or 16-bit.")],
    out_template: Annotated[str, typer.Argument(metavar="OUT_TEMPLATE",
                                                help="The prompt's name: OUT_TEMPLATE.0 and/or OUT_TEMPLATE.8 are written.")],
    codec: Annotated[str, typer.Option("--codec", metavar="LIST", callback=_codec_list,
                                       help="Codecs to write, comma-separated: pcmu (OUT_TEMPLATE.0), pcma (OUT_TEMPLATE.8).")] = "pcmu,pcma",
) -> None:
    """Encode a WAV file into RTPProxy prompt files: raw G.711 payload, 8000 bytes a second.

    The audio is mixed to mono, resampled to 8 kHz (low-passed at 4 kHz) and encoded as PCMU into OUT_TEMPLATE.0 and as PCMA into OUT_TEMPLATE.8. The relay is then given OUT_TEMPLATE as the prompt and opens the file of the codec it plays (the files must be on the relay's host). Every check comes first: a bad WAV file or output path writes nothing (exit 6); existing files are replaced atomically, all of them or none. An output that is a FIFO, a device or a link to /dev/stdout is written through.

    Examples:

      rtppctl prompt encode welcome.wav /var/lib/rtpproxy/prompts/welcome

      rtppctl prompt encode hold-music.wav prompts/hold --codec pcma

      rtppctl prompt encode welcome.wav prompts/welcome --json
    """
    from dataclasses import asdict  # noqa: PLC0415

    from rtppctl import media  # noqa: PLC0415
    from rtppctl.files import writes_to_stdout  # noqa: PLC0415

    out = run_context(ctx).output
    result: PromptEncoding = media.encode_prompt(wav, out_template, codec)
    lines = [f"wrote {file.path} ({file.encoding}, payload type {file.payload_type}, {file.bytes} bytes)" for file in result.files]
    lines.append(
        f"{result.source}: {result.source_rate} Hz {_channels(result.source_channels)} {result.source_bits}-bit -> "
        f"8000 Hz mono, {result.duration:.2f} s, {result.packets} packets of 20 ms; "
        f"peak {_level(result.peak_dbfs)}, RMS {_level(result.rms_dbfs)}"
    )
    lines.append(f"prompt name for the relay: {result.prompt}")
    if any(writes_to_stdout(file.path) for file in result.files):
        for line in lines:
            out.status(line)  # stdout holds the prompt's bytes (a link to /dev/stdout): nothing may follow them
        return
    out.emit(asdict(result), *lines)


@prompt_app.command(cls=PlainCommand)
def info(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="A prompt file: NAME.0 (PCMU) or NAME.8 (PCMA).")],
) -> None:
    """Describe a prompt file: its codec (from the suffix), duration, size, packets and level.

    The codec comes from the file name's suffix, as the relay sees it: .0 is PCMU, .8 is PCMA. Peak and RMS levels are of the decoded audio, in dBFS (a full-scale sine has an RMS of
    -3 dBFS).

    Examples:

      rtppctl prompt info /var/lib/rtpproxy/prompts/welcome.0

      rtppctl prompt info prompts/hold.8 --json
    """
    from dataclasses import asdict  # noqa: PLC0415

    from rtppctl import media  # noqa: PLC0415
    from rtppctl.proto.rtp import SAMPLES_PER_PACKET  # noqa: PLC0415

    result: PromptInfo = media.prompt_info(file)
    tail = result.bytes % SAMPLES_PER_PACKET  # G.711: a byte per sample
    packets = f"{result.packets} packets of 20 ms" + (f" (the last one {tail} bytes)" if tail else "")
    run_context(ctx).output.emit(
        asdict(result),
        f"{result.path}: {result.encoding} (payload type {result.payload_type}), {result.duration:.2f} s, "
        f"{result.bytes} bytes, {packets}; peak {_level(result.peak_dbfs)}, RMS {_level(result.rms_dbfs)}",
    )
