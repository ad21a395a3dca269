#!/usr/bin/env bash
# Install logtriage into ./.venv (with the test tools when called with --dev).
# On a fresh Debian machine python3 may lack venv/ensurepip: install python3-venv when we can.
set -euo pipefail
cd "$(dirname "$0")/.."
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"
if [ ! -x .venv/bin/python ]; then
    if ! python3 -m venv .venv 2>/dev/null; then
        rm -rf .venv
        if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
            echo "python3 has no venv module: installing Debian's python3-venv ..."
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            python3 -m venv .venv
        else
            echo "logtriage: python3 cannot create a virtual environment; install python3-venv (Debian/Ubuntu) and retry." >&2
            exit 2
        fi
    fi
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra}"
# byte-compile now: with PYTHONDONTWRITEBYTECODE set (containers often set it) every run would
# otherwise compile the package again (~35 ms of each command's start)
.venv/bin/python -m compileall -q logtriage >/dev/null
