#!/usr/bin/env bash
# The test command: installs what is missing, checks formatting and vet, then
# runs every test, including those against real OVS daemons, namespaces and
# processes. Run as root from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt: these files need formatting:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go test -count=1 -timeout 20m "$@" ./...
