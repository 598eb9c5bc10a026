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
go test -count=1 -timeout 30m "$@" ./...

# Every decoder and validator of outside input is fuzzed for a bounded time.
fuzztime=${NETLOOM_FUZZTIME:-5s}
for target in \
	./internal/wire:FuzzDeclareState ./internal/wire:FuzzPortDeclare ./internal/wire:FuzzAttach \
	./internal/wire:FuzzDetach ./internal/topology:FuzzDecode ./internal/ident:FuzzIdentifiers; do
	pkg=${target%%:*} name=${target##*:}
	echo "fuzz $name ($fuzztime)"
	if ! out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
		echo "$out"
		exit 1
	fi
done
echo "fuzzing: 6 targets passed"
