#!/usr/bin/env bash
# The test command: installs what is missing, checks formatting and vet, runs
# the unit tests with the race detector, then runs every test, including those
# against real OVS daemons, namespaces and processes. Run as root from the
# repository root.
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
# The unit tests under the race detector (it needs cgo, hence gcc in setup.sh):
# -short skips the real-system tests, which the full run below covers. About
# 25 s on two cores with a warm build cache, 2 min cold.
echo "unit tests with the race detector"
go test -race -short -count=1 "$@" ./...
go test -count=1 -timeout 30m "$@" ./...

# Every decoder and validator of outside input is fuzzed, for a bounded
# number of executions: a time budget (-fuzztime 5s) trips a race in Go
# 1.26's fuzz coordinator that fails a run with "context deadline exceeded"
# and no finding (go.dev/issue/75804). NETLOOM_FUZZ_SCALE multiplies the
# budgets for a longer run.
scale=${NETLOOM_FUZZ_SCALE:-1}
for target in \
	./internal/wire:FuzzDeclareState:100000 ./internal/wire:FuzzPortDeclare:100000 ./internal/wire:FuzzAttach:100000 \
	./internal/wire:FuzzDetach:100000 ./internal/wire:FuzzHostDeclaration:100000 ./internal/topology:FuzzDecode:30000 ./internal/ident:FuzzIdentifiers:100000; do
	IFS=: read -r pkg name execs <<<"$target"
	execs=$((execs * scale))
	echo "fuzz $name (${execs} runs)"
	if ! out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "${execs}x" "$pkg" 2>&1); then
		echo "$out"
		exit 1
	fi
done
echo "fuzzing: 7 targets passed"
