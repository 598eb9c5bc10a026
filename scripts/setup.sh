#!/usr/bin/env bash
# Installs what netloom's tests and demo need on a Debian machine. Idempotent
# and quiet when everything is present. Run as root.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	echo "setup: run as root (the tests create network namespaces and OVS daemons)" >&2
	exit 1
fi

# command → Debian package that provides it
declare -A need=(
	[ovs-vsctl]=openvswitch-switch
	[ovsdb-server]=openvswitch-switch
	[ip]=iproute2
	[ping]=iputils-ping
	[ethtool]=ethtool
	[make]=make
	[gcc]=gcc # go test -race needs cgo
	[dockerd]=docker.io # the container runtime's tests run a private daemon
	[mmdebstrap]=mmdebstrap # builds the frr node image (scripts/images.sh)
	[chromium]=chromium # the web view's test drives a headless browser
	[iptables]=iptables # the underlay test drops VXLAN inside a simulated host
)
missing=()
for cmd in "${!need[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# cgo also needs the C library's headers, only recommended by gcc.
if [ ! -r /usr/include/stdlib.h ]; then
	missing+=(libc6-dev)
fi
if [ ! -r /usr/share/openvswitch/vswitch.ovsschema ]; then
	missing+=(openvswitch-switch)
fi
# The store tests start a throwaway PostgreSQL server with initdb.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	missing+=(postgresql)
fi
# Node images are built from Debian's BusyBox (scripts/images.sh), which must
# be the static one: the image holds no C library.
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
	missing+=(busybox-static)
fi
if ! command -v nsenter >/dev/null 2>&1; then
	missing+=(util-linux)
fi
if [ ${#missing[@]} -gt 0 ]; then
	mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
	echo "setup: installing ${pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
	echo "setup: Go is missing: install Go 1.26 or newer (https://go.dev/doc/install)" >&2
	exit 1
fi
