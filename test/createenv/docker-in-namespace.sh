#!/usr/bin/env bash
# Runs CMD next to a private dockerd inside the network and mount namespaces
# this script is started in:
#   unshare --net --mount --propagation private docker-in-namespace.sh SCRATCH CMD...
# The daemon has its own socket, data root, exec root, pid file, config and
# containerd (the machine's dockerd and its containerd are neither seen nor
# touched: /run/containerd and /run/docker are scratch directories here);
# its bridges and iptables rules exist only in this network namespace, so
# the bosh CLI's traffic to the containers never leaves it. On exit every
# container of the private daemon is removed, the daemon is stopped by its
# pid and its directories are unmounted and removed, also on failure.
# CMD finds the daemon in BOSH_LIBVIRT_CPI_DOCKER (unix://SCRATCH/docker.sock).
set -euo pipefail
scratch=$1
shift

die() { echo "docker-in-namespace.sh: $*" >&2; exit 1; }
[ "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ] ||
  die "not in a network namespace of its own: start me under unshare --net --mount"

ip link set lo up
dockerd_dir=$scratch/dockerd
mkdir -p "$dockerd_dir"/{data,exec,run-containerd,run-docker}
# dockerd uses a containerd at /run/containerd/containerd.sock when one is
# there, and /run/docker for plugins: both scratch here.
mount --bind "$dockerd_dir/run-containerd" /run/containerd 2>/dev/null ||
  { mkdir -p /run/containerd && mount --bind "$dockerd_dir/run-containerd" /run/containerd; }
mkdir -p /run/docker
mount --bind "$dockerd_dir/run-docker" /run/docker
echo '{}' >"$dockerd_dir/daemon.json"
sock=$dockerd_dir/docker.sock
host=unix://$sock
pidfile=$dockerd_dir/dockerd.pid

docker_cli() { /usr/bin/docker -H "$host" "$@"; }

cleanup() {
  local ids pid
  ids=$(docker_cli ps -aq 2>/dev/null || true)
  [ -z "$ids" ] || docker_cli rm -f $ids >/dev/null 2>&1 || true
  if pid=$(cat "$pidfile" 2>/dev/null); then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  # What is still mounted below the scratch directory (overlays, netns
  # files, the CPI's disk mounts), deepest first, then the directories.
  awk -v d="$scratch/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
  umount -l /run/containerd /run/docker 2>/dev/null || true
  rm -rf "$dockerd_dir"
}
trap cleanup EXIT

# The cgroup parent keeps the containers' cgroups apart from the machine's
# dockerd's (/docker).
dockerd --host "$host" --data-root "$dockerd_dir/data" --exec-root "$dockerd_dir/exec" \
  --pidfile "$pidfile" --config-file "$dockerd_dir/daemon.json" \
  --cgroup-parent /bosh-libvirt-cpi-createenv --bridge none --storage-driver overlay2 \
  >"$scratch/dockerd.log" 2>&1 &
for _ in $(seq 1 150); do
  docker_cli version >/dev/null 2>&1 && break
  sleep 0.2
done
docker_cli version >/dev/null 2>&1 || { tail -n 30 "$scratch/dockerd.log" >&2; die "private dockerd did not answer at $host within 30 s"; }

BOSH_LIBVIRT_CPI_DOCKER=$host "$@"
