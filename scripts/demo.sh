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
step rtppctl info -t "$relay"
step rtppctl raw -t "$relay" VF 20081224
step rtppctl embedded stop
