#!/usr/bin/env bash
# The main job as a demo: start the real RTPProxy engine (rtp.io) on loopback, talk to it with
# rtppctl, stop it. State goes to a temp dir so a relay you already run is left alone.
set -euo pipefail

demo_state=$(mktemp -d)
export XDG_STATE_HOME="$demo_state"
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
relay="udp:127.0.0.1:$port"

cleanup() {
    rtppctl embedded stop >/dev/null 2>&1 || true
    rm -rf "$demo_state"
}
trap cleanup EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step rtppctl embedded start --control "$relay"
step rtppctl embedded status
step rtppctl version -t "$relay"
step rtppctl ping -t "$relay" --count 3
step rtppctl raw -t "$relay" VF 20081224

# The main job: an INVITE's SDP offer and the 200 OK's answer put through the relay.
offer=$(mktemp --suffix=.sdp) answer=$(mktemp --suffix=.sdp)
printf 'v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n' >"$offer"
printf 'v=0\r\no=bob 2 2 IN IP4 198.51.100.20\r\ns=-\r\nc=IN IP4 198.51.100.20\r\nt=0 0\r\nm=audio 51372 RTP/AVP 0 101\r\n' >"$answer"
step rtppctl offer "$offer" -t "$relay" --call-id demo@example.com --from-tag alice --flags o --diff
step rtppctl answer "$answer" -t "$relay" --call-id demo@example.com --from-tag alice --to-tag bob
step rtppctl info -t "$relay"
# Does the relay really carry media? Real RTP both ways, measured; then the same as Nagios sees it.
step rtppctl check -t "$relay" --packets 25
step rtppctl check -t "$relay" --packets 25 --nagios -w loss=1,latency=50 -c loss=5,latency=150
# The relay as Prometheus sees it (metrics --serve PORT serves the same over HTTP).
prom=$(mktemp --suffix=.prom)
step rtppctl metrics -t "$relay" -o "$prom"
step grep -E '^rtppctl_relay_(up|sessions_active|ncmds_rcvd_total|npkts_relayed_total)' "$prom"
# Many calls at once: 500 offer/answer/delete cycles, measured; then a batch of operations as NDJSON.
step rtppctl load -t "$relay" --calls 500 --seed 7
batch=$(mktemp --suffix=.ndjson)
printf '{"op": "offer", "id": 1, "sdp": "v=0\\r\\no=- 1 1 IN IP4 192.0.2.10\\r\\ns=-\\r\\nc=IN IP4 192.0.2.10\\r\\nt=0 0\\r\\nm=audio 4000 RTP/AVP 0\\r\\n", "call_id": "b1@example.com", "from_tag": "f1", "target": "%s"}\n{"op": "stats", "id": 2, "call_id": "b1@example.com", "from_tag": "f1", "target": "%s"}\n{"op": "unforce", "id": 3, "call_id": "b1@example.com", "from_tag": "f1", "target": "%s"}\n' "$relay" "$relay" "$relay" >"$batch"
step rtppctl --state none batch "$batch"
# A customer's trace, replayed call by call as the proxy would have handled it: the calls found,
# then each offer, answer and unforce through the relay, the rewritten SDP against the captured one.
trace="$(dirname "$0")/../tests/data/traces/sngrep.txt"
step rtppctl replay --list "$trace"
step rtppctl --state none replay "$trace" -t "$relay" --diff
# The session ledger: which relay holds the call; unforce finds it there without -t.
step rtppctl sessions
step rtppctl unforce --call-id demo@example.com --from-tag alice --to-tag bob
# A relay set as the module sees one: the relay, and a second one nobody runs. ping disables the
# dead one; show says until when.
sets=$(mktemp --suffix=.toml)
printf 'rtpproxy_sock = ["%s=2 udp:127.0.0.1:9"]\nrtpproxy_timeout = 0.2\nrtpproxy_retr = 1\n' "$relay" >"$sets"
step rtppctl --config "$sets" ping || true
step rtppctl --config "$sets" show
step rtppctl --config "$sets" lb explain demo@example.com
# An IPv6 offer: the embedded relay serves ::1 as well (flag r sends the SDP's own address).
offer6=$(mktemp --suffix=.sdp)
printf 'v=0\r\no=carol 3 3 IN IP6 2001:db8::10\r\ns=-\r\nc=IN IP6 2001:db8::10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n' >"$offer6"
step rtppctl offer "$offer6" -t "$relay" --call-id demo6@example.com --from-tag carol --flags r
# What the relay would misread is refused before anything is sent (exit 6): here a copy that
# would land outside the relay's record directory.
step rtppctl record -t "$relay" --call-id demo6@example.com --from-tag carol --dest ../outside || true
step rtppctl unforce -t "$relay" --call-id demo6@example.com --from-tag carol
rm -f "$offer" "$answer" "$offer6" "$sets" "$prom" "$batch"
step rtppctl embedded stop
