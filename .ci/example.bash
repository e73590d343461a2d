#!/usr/bin/env bash
# The example shop's tests, including the end-to-end test in headless
# Chromium, from any directory:
#
#   bash .ci/example.bash
#
# It installs Debian's chromium package when it is missing, then runs the
# example module's tests with CI=true (unless CI is already set), under
# which the browser test fails instead of skipping. Set
# GINSESSION_REDIS_URL (e.g. redis://127.0.0.1:6379/9) to run the browser
# test against Redis too.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CI="${CI:-true}"

command -v chromium >/dev/null || { apt-get update && apt-get install -y chromium; }

go test -race -count=1 ./example/...
