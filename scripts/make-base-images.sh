#!/usr/bin/env bash
# Build the Debian base images used by Dockerfile.api / Dockerfile.worker
# locally, without pulling from any container registry:
#
#   docker.io/library/debian:bookworm       (build stage:  FROM debian:bookworm)
#   docker.io/library/debian:bookworm-slim  (run stage:    FROM debian:bookworm-slim)
#
# Short name "debian" resolves to docker.io/library/debian through
# /etc/containers/registries.conf.d/shortnames.conf, so tagging the imported
# images with the fully qualified name lets `podman build --pull=never` use
# them for `FROM debian:bookworm[-slim]` with no registry access at all.
#
# Both rootfs are made with debootstrap --variant=minbase from the Debian
# mirror (the only thing this machine can reach). The "slim" one is trimmed
# like the official -slim images (dpkg path excludes for docs/man/locales).
# The rootfs tarballs are cached under .local/base-images/ so reruns only
# re-import (seconds). Use FORCE=1 to rebuild the tarballs.
#
# Usage: scripts/make-base-images.sh [--force]
# Env:   MIRROR (http://deb.debian.org/debian), SUITE (bookworm), FORCE=1
set -euo pipefail

MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
SUITE="${SUITE:-bookworm}"
FORCE="${FORCE:-0}"
[[ "${1:-}" == "--force" ]] && FORCE=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.local/base-images"
mkdir -p "$CACHE"

log() { printf '[make-base-images] %s\n' "$*" >&2; }

TMP_ROOTFS=()
cleanup() { local d; for d in "${TMP_ROOTFS[@]}"; do rm -rf "$d"; done; }
trap cleanup EXIT

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (debootstrap and rootful podman storage)"
  exit 1
fi
for tool in debootstrap podman tar; do
  command -v "$tool" >/dev/null || { log "missing $tool (apt-get install debootstrap podman)"; exit 1; }
done

# Writes a deb822 sources file so apt works inside the image (main, updates,
# security), like the official images.
write_sources() {
  local rootfs=$1
  rm -f "$rootfs/etc/apt/sources.list"
  mkdir -p "$rootfs/etc/apt/sources.list.d"
  cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

# Settings the official docker images ship (debuerreotype): no apt caches
# kept, no recommends-driven bloat from autoremove, gzip indexes.
write_docker_apt_conf() {
  local rootfs=$1
  cat > "$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  cat > "$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes" <<'EOF'
Acquire::GzipIndexes "true";
EOF
  cat > "$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests" <<'EOF'
Apt::AutoRemove::SuggestsImportant "false";
EOF
}

write_slim_dpkg_conf() {
  local rootfs=$1
  cat > "$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
}

slim_prune() {
  local rootfs=$1
  # Remove what the dpkg excludes would have kept out had they been there
  # at install time.
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$rootfs/usr/share/groff/"* "$rootfs/usr/share/info/"* \
         "$rootfs/usr/share/linda/"* "$rootfs/usr/share/lintian/overrides/"* \
         "$rootfs/usr/share/locale/"* "$rootfs/usr/share/man/"*
}

# make_tarball NAME SLIM(0|1)
make_tarball() {
  local name=$1 slim=$2
  local tarball="$CACHE/$name.tar"
  if [[ -s "$tarball" && "$FORCE" != 1 ]]; then
    log "using cached $tarball"
    return
  fi
  local rootfs
  rootfs="$(mktemp -d "$CACHE/rootfs-$name.XXXXXX")"
  TMP_ROOTFS+=("$rootfs")
  log "debootstrap --variant=minbase $SUITE -> $rootfs (a few minutes)"
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" \
    > "$CACHE/debootstrap-$name.log" 2>&1 || {
      log "debootstrap failed, see $CACHE/debootstrap-$name.log"; tail -20 "$CACHE/debootstrap-$name.log" >&2; return 1; }
  write_sources "$rootfs"
  write_docker_apt_conf "$rootfs"
  if [[ "$slim" == 1 ]]; then
    write_slim_dpkg_conf "$rootfs"
    slim_prune "$rootfs"
  fi
  # Like the official images: no apt lists/caches, no logs, a fixed
  # machine-id slot, policy-rc.d so postinst scripts never start daemons.
  rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin \
         "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/log/"*.log \
         "$rootfs/var/log/apt/"* "$rootfs/tmp/"* "$rootfs/root/.bash_history"
  : > "$rootfs/etc/machine-id"
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  # resolv.conf/hosts/hostname are provided by the container engine.
  rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
  log "packing $tarball"
  tar --numeric-owner --xattrs --acls -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$rootfs"
}

# import_image NAME TAG
import_image() {
  local name=$1 tag=$2
  log "podman import $name.tar -> $tag"
  podman import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --message "debootstrap --variant=minbase $SUITE ($MIRROR)" \
    --quiet "$CACHE/$name.tar" "$tag" >/dev/null
}

make_tarball "$SUITE" 0
make_tarball "$SUITE-slim" 1
import_image "$SUITE" "docker.io/library/debian:$SUITE"
import_image "$SUITE-slim" "docker.io/library/debian:$SUITE-slim"
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep "debian:$SUITE" >&2
log "done"
