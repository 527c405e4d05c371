#!/bin/sh
# install-deps.sh - install the Debian packages that building, testing and
# running Postern need; only the missing ones. As root it runs apt-get; as
# another user it prints the command to run and fails if anything is missing.
#
# Used by "make run", "make test", "make fuzz" and "make bench".
set -eu

# Build: compilers (clang for libFuzzer and as the second compiler), make.
# Tests: Debian's python3 with pytest, swaks as a real SMTP client.
# System tools the tests and "postern init" use: procps (ps), passwd (useradd).
PACKAGES="make gcc clang libclang-rt-14-dev libc6-dev liblmdb-dev libpcre2-dev python3 python3-pytest swaks procps passwd strace"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages:$missing" >&2
    echo "install-deps: run as root: apt-get update && apt-get install -y$missing" >&2
    exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists once if they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
    apt-get update -q
fi
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
