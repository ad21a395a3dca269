#!/usr/bin/env bash
# Install logtriage with its test dependencies in .venv and run the whole test suite.
# Installs what the tests meet for real when missing (Debian packages: chromium for the HTML
# report test); a machine without apt just skips those tests, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing Debian's chromium for the report test ..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "could not install chromium: the browser test will be skipped"
fi
exec .venv/bin/python -m pytest "$@"
