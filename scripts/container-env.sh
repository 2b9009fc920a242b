# shellcheck shell=bash
# Sourced by the container scripts (make-base-images.sh, container-test.sh,
# compose-test.sh): one private podman/buildah storage and engine
# configuration under .local/containers/, never the machine's default
# (/var/lib/containers, /etc/containers/networks, /run/libpod), which other
# users of podman on the same machine share. Every podman and buildah
# command run after `container_env_init` reads these files through
# CONTAINERS_STORAGE_CONF and CONTAINERS_CONF.
#
# The engine settings are what `podman run` needs on these machines (no
# systemd, cgroup v1 without delegation): no default rlimits (podman cannot
# raise them here), Debian's runc, cgroupfs. Networks (netavark) keep their
# configuration here too, so `docker compose` networks never appear in the
# machine's podman.
#
# Requires ROOT (the repository root) to be set by the caller.

CT_HOME="$ROOT/.local/containers"
export CONTAINERS_STORAGE_CONF="$CT_HOME/storage.conf"
export CONTAINERS_CONF="$CT_HOME/containers.conf"

container_env_init() {
  mkdir -p "$CT_HOME/storage" "$CT_HOME/run" "$CT_HOME/tmp" "$CT_HOME/networks" \
    "$CT_HOME/volumes" || return 1
  cat >"$CONTAINERS_STORAGE_CONF.tmp" <<EOF || return 1
# written by scripts/container-env.sh: private storage of the container tests
[storage]
driver = "overlay"
graphroot = "$CT_HOME/storage"
runroot = "$CT_HOME/run"
EOF
  cat >"$CONTAINERS_CONF.tmp" <<EOF || return 1
# written by scripts/container-env.sh: engine settings of the container tests
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$CT_HOME/events.log"
tmp_dir = "$CT_HOME/tmp"
# exec sessions (health checks) clean up after 5 s, not 5 min
exit_command_delay = 5
volume_path = "$CT_HOME/volumes"

[network]
network_backend = "netavark"
network_config_dir = "$CT_HOME/networks"
EOF
  mv "$CONTAINERS_STORAGE_CONF.tmp" "$CONTAINERS_STORAGE_CONF" &&
    mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
}
