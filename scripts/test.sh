#!/usr/bin/env bash
# Install what the tests need and run them.  Run as root on Debian 12:
#   bash scripts/test.sh [pytest args...]
# Needs: Debian's llvm-19/clang-19 (oracles: llvm-objdump, llvm-readelf; compiling
# probes), bpftool and libbpf-dev (oracles only; the library never uses them),
# gcc (offsetof probes).  Mounts tracefs and bpffs when they are not mounted.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
for pair in clang-19:clang-19 llvm-objdump-19:llvm-19 bpftool:bpftool gcc:gcc objdump:binutils ip:iproute2; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
[ -f /usr/include/bpf/bpf_helpers.h ] || need_pkgs+=(libbpf-dev)
[ -f /usr/include/linux/bpf.h ] || need_pkgs+=(linux-libc-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -m pip install -q -e '.[test]'

if [ "$(id -u)" = 0 ]; then
    mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing || true
    mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || true
fi

exec "$PYTHON" -m pytest -q -W error::ResourceWarning "$@"
