#!/usr/bin/env bash
# Builds the node images netloom's tests use, from Debian packages (no
# registry is needed), into the Docker daemon DOCKER_HOST points at (the
# machine's own when unset). Run as root: scripts/images.sh [busybox].
#
#   netloom/busybox:latest  BusyBox from Debian's busybox-static: sh, ip,
#                           ping, sleep … and nothing else, 2 MB. Its command
#                           sleeps, so a node runs until it is removed.
set -euo pipefail

docker=/usr/bin/docker # another docker CLI may come first on PATH

busybox() {
	local bin=/bin/busybox root
	[ -x "$bin" ] || { echo "images: $bin is missing: apt-get install busybox-static" >&2; exit 1; }
	root=$(mktemp -d)
	trap 'rm -rf "$root"' RETURN
	mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
	cp "$bin" "$root/bin/busybox"
	local applet
	while read -r applet; do
		[ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$root/$applet"
	done < <("$bin" --list-full)
	echo "root:x:0:0:root:/:/bin/sh" > "$root/etc/passwd"
	tar -C "$root" -c . | "$docker" import -c 'CMD ["/bin/sleep", "2147483647"]' - netloom/busybox:latest >/dev/null
	echo "images: netloom/busybox:latest"
}

for image in "${@:-busybox}"; do
	case "$image" in
	busybox) busybox ;;
	*) echo "images: unknown image $image (known: busybox)" >&2; exit 2 ;;
	esac
done
