#!/usr/bin/env bash
# The Debian packages the tests use besides what pip installs, installed with apt-get when they
# are missing and this runs as root: groff renders the man page in its test, zsh and fish check
# the completion scripts, postgresql and mariadb-server are the real database servers the tests
# start in temp dirs (the packages' own clusters are not used). As another user it only says
# what is missing. `make test` runs it first, so the README's command sets a fresh machine up.
set -euo pipefail

missing() {
    ! command -v groff >/dev/null 2>&1 || ! command -v zsh >/dev/null 2>&1 || ! command -v fish >/dev/null 2>&1 \
        || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v mariadbd >/dev/null 2>&1
}

missing || exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq groff-base zsh fish postgresql mariadb-server >/dev/null \
        || echo "system_deps: some Debian packages were not installed" >&2
else
    echo "system_deps: install groff-base, zsh, fish, postgresql and mariadb-server (the tests use them)" >&2
fi
