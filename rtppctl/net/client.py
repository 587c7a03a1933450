"""A relay client: one channel to one node, replies decoded to text, `E<n>` raised as ProxyError.

The channel does the framing (cookies, retransmits, stream lines); this adds what every caller
wants on top: decoding the bytes with the protocol core, naming the node in errors, and timing
each round trip (ping and `raw` report it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rtppctl.net.channel import open_channel
from rtppctl.proto import command as cmd
from rtppctl.proto.errors import ProxyError

if TYPE_CHECKING:
    from rtppctl.net.channel import Channel, Trace
    from rtppctl.proto.url import NodeSpec


@dataclass(frozen=True)
class Exchange:
    """One command and the relay's reply."""

    command: str
    #: The reply text without its final newline (multi-line for `I`).
    reply: str
    #: Round-trip time in milliseconds, retransmits included.
    rtt_ms: float

    @property
    def error_code(self) -> int | None:
        return cmd.error_code(self.reply)


class RelayClient:
    """Talks to one node. Use as a context manager, or call close()."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.node: NodeSpec = channel.node

    @classmethod
    def open(cls, node: NodeSpec, *, timeout: float = 1.0, retries: int = 5, trace: Trace | None = None) -> RelayClient:
        return cls(open_channel(node, timeout=timeout, retries=retries, trace=trace))

    def exchange(self, command: str) -> Exchange:
        """Send `command`, return the reply as it came (an `E<n>` reply is returned, not raised)."""
        started = time.perf_counter()
        body = self.channel.request(command)
        rtt_ms = (time.perf_counter() - started) * 1000.0
        return Exchange(command, cmd.decode_reply_bytes(body), rtt_ms)

    def replies(self, commands: list[str]) -> list[str]:
        """Reply texts to independent commands, in order; pipelined where the transport allows."""
        return [cmd.decode_reply_bytes(body) for body in self.channel.request_many(commands)]

    def call(self, command: str) -> str:
        """Send `command` and return the reply text; an `E<n>` reply raises ProxyError."""
        reply = self.exchange(command).reply
        code = cmd.error_code(reply)
        if code is not None:
            raise ProxyError(code, command=command, node=self.node.url)
        return reply

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> RelayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
