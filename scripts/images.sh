#!/usr/bin/env bash
# Builds the node images netloom's tests use, from Debian packages (no
# registry is needed), into the Docker daemon DOCKER_HOST points at (the
# machine's own when unset). Run as root: scripts/images.sh [IMAGE[=TAG]...];
# with no argument (as `make images` runs it) it builds busybox and frr.
# IMAGE=TAG also tags the image as TAG, so a lab file that names another
# image (quay.io/frrouting/frr:10.2.1) runs this one unchanged.
#
#   netloom/busybox:latest  BusyBox from Debian's busybox-static: sh, ip,
#                           ping, sleep … and nothing else, 2 MB. Its command
#                           sleeps, so a node runs until it is removed.
#   netloom/frr:latest      Debian's frr (this machine's release, from its
#                           apt mirror) with iproute2, iputils-ping, procps and
#                           tini, built by mmdebstrap: 160 MB, no docs, man
#                           pages or locales. Under tini, its command starts
#                           FRR as the init script does (watchfrr and the
#                           daemons /etc/frr/daemons enables: zebra and
#                           staticd by default) and sleeps. zebra picks up
#                           interfaces added after the start.
#
# The frr root filesystem is cached as a tarball named for a hash of its
# recipe, in ${NETLOOM_IMAGE_CACHE:-/var/cache/netloom/images}: the first
# build takes about 30 s, later loads import the tarball in a few seconds.
# Clear the cache with rm -r on that folder; a changed recipe builds anew and
# removes the old tarball.
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

# frr_cmd starts FRR and keeps the container running, as FRR's own images
# do, under tini: the process 1 of a container must reap orphans, or a
# daemon that watchfrr or frrinit.sh stops stays a zombie and
# `frrinit.sh restart` waits 2 minutes for each. PATH is Debian's root one,
# for vtysh, ip and ping in exec.
frr_entrypoint='ENTRYPOINT ["/usr/bin/tini", "--"]'
frr_cmd='CMD ["/bin/sh", "-c", "/usr/lib/frr/frrinit.sh start; exec sleep infinity"]'
frr_env='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# mirror prints the first apt mirror of this machine that serves the suite
# (deb822 .sources or one-line .list files); deb.debian.org when none does.
mirror() {
	local suite=$1 m
	m=$(awk -v s="$suite" 'BEGIN { RS = "" }
		/(^|\n)Types:[^\n]*[ \t]deb([ \t]|\n|$)/ && $0 ~ ("(^|\n)Suites:[^\n]*[ \t]" s "([ \t]|\n|$)") {
			if (match($0, /(^|\n)URIs:[ \t]*[^ \t\n]+/)) {
				u = substr($0, RSTART, RLENGTH); sub(/^\n?URIs:[ \t]*/, "", u); print u; exit
			}
		}' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
	[ -n "$m" ] || m=$(awk -v s="$suite" '$1 == "deb" {
			i = 2; if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
			if ($(i + 1) == s) { print $i; exit }
		}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n1)
	echo "${m:-http://deb.debian.org/debian}"
}

frr() {
	command -v mmdebstrap >/dev/null || { echo "images: mmdebstrap is missing: run scripts/setup.sh" >&2; exit 1; }
	local suite cache key tar tmp fd img
	suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$suite" ] || { echo "images: no VERSION_CODENAME in /etc/os-release: frr needs a Debian release" >&2; exit 1; }
	local opts=(--variant=minbase --include=frr,iproute2,iputils-ping,procps,tini
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
		--dpkgopt='path-exclude=/usr/share/locale/*')
	cache=${NETLOOM_IMAGE_CACHE:-/var/cache/netloom/images}
	key=$(printf '%s\n' "$suite" "${opts[@]}" "$frr_entrypoint" "$frr_cmd" "$frr_env" | sha256sum | cut -c1-16)
	tar=$cache/frr-$key.tar
	mkdir -p "$cache"
	# Beds of several test packages load images at once: one builds, the
	# others wait and import what it cached.
	exec {fd}>"$cache/frr.lock"
	flock "$fd"
	if [ ! -s "$tar" ]; then
		# Under the lock nobody else builds: leftovers of a killed build and
		# tarballs of older recipes go.
		find "$cache" -maxdepth 1 \( -name 'frr-*.tar' -o -name '.frr-*.tar' \) ! -name "frr-$key.tar" -delete
		tmp=$cache/.frr-$key.$$.tar
		if ! mmdebstrap --quiet --format=tar "${opts[@]}" "$suite" "$tmp" "$(mirror "$suite")"; then
			rm -f "$tmp"
			exit 1
		fi
		mv "$tmp" "$tar"
		echo "images: built $tar"
	fi
	# Opened under the lock, the tarball stays readable if a later build of
	# another recipe removes it.
	exec {img}<"$tar"
	exec {fd}>&-
	"$docker" import -c "$frr_entrypoint" -c "$frr_cmd" -c "$frr_env" - netloom/frr:latest <&"$img" >/dev/null
	exec {img}<&-
	echo "images: netloom/frr:latest"
}

[ $# -gt 0 ] || set -- busybox frr
declare -A built # an image named with several tags is built once
for arg in "$@"; do
	image=${arg%%=*}
	case "$image" in
	busybox | frr) [ -n "${built[$image]:-}" ] || "$image" ;;
	*) echo "images: unknown image $image (known: busybox, frr)" >&2; exit 2 ;;
	esac
	built[$image]=1
	if [ "$arg" != "$image" ]; then
		"$docker" tag "netloom/$image:latest" "${arg#*=}"
		echo "images: netloom/$image:latest as ${arg#*=}"
	fi
done
