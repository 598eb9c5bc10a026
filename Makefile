# netloom: the two commands a newcomer needs are `make test` and, once it
# exists, `make demo`. Both run as root and install what is missing.

.PHONY: test demo bench build setup

test:
	bash scripts/test.sh

demo:
	bash scripts/setup.sh
	go build -o bin/netloom ./cmd/netloom
	./bin/netloom demo

bench:
	bash scripts/setup.sh
	go run ./bench/run

build:
	go build -o bin/netloom ./cmd/netloom

setup:
	bash scripts/setup.sh
