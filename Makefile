# netloom: the two commands a newcomer needs are `make test` and, once it
# exists, `make demo`. Both run as root and install what is missing.

.PHONY: test demo bench build setup images

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

# Node images from Debian packages, into the Docker daemon of DOCKER_HOST.
images:
	bash scripts/setup.sh
	bash scripts/images.sh

setup:
	bash scripts/setup.sh
