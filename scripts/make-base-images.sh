#!/usr/bin/env bash
# Makes the Debian base images used by Dockerfile.api / Dockerfile.worker
# locally, without pulling from any container registry, in the container
# tests' private podman storage (scripts/container-env.sh):
#
#   docker.io/library/debian:bookworm       (build stage:  FROM debian:bookworm)
#   docker.io/library/debian:bookworm-slim  (run stage:    FROM debian:bookworm-slim)
#
# Short name "debian" resolves to docker.io/library/debian through
# /etc/containers/registries.conf.d/shortnames.conf, so tagging the imported
# images with the fully qualified name lets `podman build --pull=never` use
# them for `FROM debian:bookworm[-slim]` with no registry access at all.
#
# The decision that shapes it: a tag proves nothing, so an image is used only
# when it is the one this script imported from the current rootfs. Each
# import records its image id in .local/base-images/NAME.image, and carries
# the labels org.order-service.base.inputs (hash of the recipe) and
# org.order-service.base.rootfs (sha256 of the rootfs tarball, which is also
# the image's only layer digest). An image under the tag is kept only when
# its id is the recorded one, its single layer is the tarball's digest and
# both labels match; otherwise (stale import, foreign image, forged labels)
# the tag is re-imported from the tarball. --check reports without changing.
#
# The rootfs is made once with debootstrap --variant=minbase from the Debian
# mirror (the only thing this machine can reach) and packed twice: as is, and
# trimmed like the official -slim images (dpkg path excludes for
# docs/man/locales). The tarballs are cached under .local/base-images/ and
# made again when the recipe (the functions below, the suite, the mirrors)
# changes, so reruns only verify (seconds) or re-import.
#
# Usage: scripts/make-base-images.sh [--check] [--force]
#   --check   change nothing; exit 0 when both tags hold the images recorded
#             here from the current rootfs, 1 otherwise (reasons on stderr)
#   --force   run debootstrap again even when the cached tarballs are current
# Env:   MIRROR (http://deb.debian.org/debian), SECURITY_MIRROR, SUITE (bookworm)
set -euo pipefail

MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
SUITE="${SUITE:-bookworm}"
FORCE=0
CHECK=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --check) CHECK=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) printf 'make-base-images: unknown argument %s\n' "$arg" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/container-env.sh disable=SC1091
. "$ROOT/scripts/container-env.sh"
CACHE="$ROOT/.local/base-images"
LABEL_INPUTS=org.order-service.base.inputs
LABEL_ROOTFS=org.order-service.base.rootfs
# what podman import adds on top of the rootfs (part of the image's identity)
IMPORT_CHANGES=(
  'CMD ["bash"]'
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
)

log() { printf '[make-base-images] %s\n' "$*" >&2; }

TMP_ROOTFS=()
cleanup() { local d; for d in "${TMP_ROOTFS[@]}"; do rm -rf "$d"; done; }
trap cleanup EXIT

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (debootstrap and rootful podman storage)"
  exit 1
fi
for tool in debootstrap podman tar sha256sum; do
  command -v "$tool" >/dev/null || { log "missing $tool (apt-get install debootstrap podman)"; exit 1; }
done
container_env_init
mkdir -p "$CACHE"

# ------------------------------------------------------------------ the recipe
# Everything that shapes the rootfs is in these functions: their text (as
# bash prints it, without comments) is hashed into the recipe's identity.

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

# Removes what the dpkg excludes would have kept out had they been there at
# install time.
slim_prune() {
  local rootfs=$1
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$rootfs/usr/share/groff/"* "$rootfs/usr/share/info/"* \
         "$rootfs/usr/share/linda/"* "$rootfs/usr/share/lintian/overrides/"* \
         "$rootfs/usr/share/locale/"* "$rootfs/usr/share/man/"*
}

# debootstrap plus what the official images do on top of it.
build_rootfs() {
  local rootfs=$1
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" || return 1
  write_sources "$rootfs"
  write_docker_apt_conf "$rootfs"
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
}

pack_rootfs() {
  local rootfs=$1 tarball=$2
  tar --numeric-owner --xattrs --acls -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
}

# ------------------------------------------------------------------ identity

sha256_of() { sha256sum | cut -d' ' -f1; }

# The recipe's identity: the functions above as bash prints them (comments
# dropped, so only a change of behaviour counts), the suite and the mirrors.
RECIPE_HASH="$(
  {
    declare -f write_sources write_docker_apt_conf write_slim_dpkg_conf slim_prune \
      build_rootfs pack_rootfs
    printf '%s\n' "$SUITE" "$MIRROR" "$SECURITY_MIRROR"
  } | sha256_of
)"

# image_inputs NAME: the recipe, which tarball (full or slim) and what
# podman import adds.
image_inputs() {
  { printf '%s\n' "$RECIPE_HASH" "$1"; printf '%s\n' "${IMPORT_CHANGES[@]}"; } | sha256_of
}

tarball_current() {
  local name=$1
  [[ -s "$CACHE/$name.tar" && "$(cat "$CACHE/$name.recipe" 2>/dev/null)" == "$RECIPE_HASH" ]]
}

# verify_image NAME TAG: 0 when TAG is the image recorded for NAME's current
# tarball; otherwise prints why and returns 1.
verify_image() {
  local name=$1 tag=$2 tarball="$CACHE/$1.tar"
  local want_id want_layer want_inputs got
  if ! tarball_current "$name"; then
    log "$tag: rootfs tarball $name.tar missing or made from another recipe"
    return 1
  fi
  want_id="$(cat "$CACHE/$name.image" 2>/dev/null || true)"
  want_layer="sha256:$(sha256_of <"$tarball")"
  want_inputs="$(image_inputs "$name")"
  if ! got="$(podman image inspect "$tag" --format \
      "{{.Id}} {{len .RootFS.Layers}} {{index .RootFS.Layers 0}} {{index .Labels \"$LABEL_INPUTS\"}} {{index .Labels \"$LABEL_ROOTFS\"}}" \
      2>/dev/null)"; then
    log "$tag: no such image"
    return 1
  fi
  local id count layer inputs rootfs
  read -r id count layer inputs rootfs <<<"$got"
  if [[ -z "$want_id" || "$id" != "$want_id" ]]; then
    log "$tag: image ${id:0:12} is not the one imported here (recorded: ${want_id:0:12})"
    return 1
  fi
  if [[ "$count" != 1 || "$layer" != "$want_layer" ]]; then
    log "$tag: layers ($count, first $layer) are not the rootfs $want_layer"
    return 1
  fi
  if [[ "$inputs" != "$want_inputs" || "$rootfs" != "$want_layer" ]]; then
    log "$tag: labels do not match the current recipe"
    return 1
  fi
  return 0
}

# import_image NAME TAG: imports the tarball and records the new image's id.
import_image() {
  local name=$1 tag=$2 tarball="$CACHE/$1.tar" id args=()
  local change
  for change in "${IMPORT_CHANGES[@]}"; do args+=(--change "$change"); done
  args+=(--change "LABEL $LABEL_INPUTS=$(image_inputs "$name")")
  args+=(--change "LABEL $LABEL_ROOTFS=sha256:$(sha256_of <"$tarball")")
  log "podman import $name.tar -> $tag"
  id="$(podman import "${args[@]}" \
    --message "debootstrap --variant=minbase $SUITE ($MIRROR)" \
    --quiet "$tarball" "$tag")"
  id="${id#sha256:}"
  printf '%s\n' "$id" >"$CACHE/$name.image"
}

# ------------------------------------------------------------------ main

NAMES=("$SUITE" "$SUITE-slim")
TAGS=("docker.io/library/debian:$SUITE" "docker.io/library/debian:$SUITE-slim")

if [[ $CHECK == 1 ]]; then
  status=0
  for i in 0 1; do verify_image "${NAMES[$i]}" "${TAGS[$i]}" || status=1; done
  exit "$status"
fi

if [[ $FORCE == 1 ]] || ! tarball_current "$SUITE" || ! tarball_current "$SUITE-slim"; then
  rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
  TMP_ROOTFS+=("$rootfs")
  log "debootstrap --variant=minbase $SUITE -> $rootfs (a few minutes)"
  if ! build_rootfs "$rootfs" >"$CACHE/debootstrap.log" 2>&1; then
    log "debootstrap failed, see $CACHE/debootstrap.log"
    tail -20 "$CACHE/debootstrap.log" >&2
    exit 1
  fi
  rm -f "$CACHE"/*.recipe "$CACHE"/*.image
  log "packing $SUITE.tar"
  pack_rootfs "$rootfs" "$CACHE/$SUITE.tar"
  write_slim_dpkg_conf "$rootfs"
  slim_prune "$rootfs"
  log "packing $SUITE-slim.tar"
  pack_rootfs "$rootfs" "$CACHE/$SUITE-slim.tar"
  printf '%s\n' "$RECIPE_HASH" >"$CACHE/$SUITE.recipe"
  printf '%s\n' "$RECIPE_HASH" >"$CACHE/$SUITE-slim.recipe"
  rm -rf "$rootfs"
fi

for i in 0 1; do
  if verify_image "${NAMES[$i]}" "${TAGS[$i]}" 2>/dev/null; then
    log "${TAGS[$i]}: verified ($(cut -c1-12 "$CACHE/${NAMES[$i]}.image"))"
  else
    verify_image "${NAMES[$i]}" "${TAGS[$i]}" || true # say why
    import_image "${NAMES[$i]}" "${TAGS[$i]}"
    verify_image "${NAMES[$i]}" "${TAGS[$i]}" || { log "${TAGS[$i]}: still wrong after import"; exit 1; }
    log "${TAGS[$i]}: imported and verified ($(cut -c1-12 "$CACHE/${NAMES[$i]}.image"))"
  fi
done
podman images --format '{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}' | grep "debian:$SUITE" >&2
log "done"
