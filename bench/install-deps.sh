#!/bin/sh
# bench/install-deps.sh - install the Debian packages that only the benchmarks
# need (never the build or the tests); only the missing ones.
#
#   postfix   the reference MTA, plus smtp-source / smtp-sink, the load tools
#   strace    system call counts per message
#   procps    ps, for CPU time of the instance processes
#
# Installing postfix must not disturb the machine:
#   - debconf is preseeded with "No configuration", so the package writes no
#     main.cf and asks nothing;
#   - service starts are refused for the duration of the install through a
#     temporary /usr/sbin/policy-rc.d (exit 101), unless one already exists;
#     with systemd the unit is also left disabled and stopped;
#   - if another MTA package is installed (exim4, sendmail, opensmtpd, ...),
#     apt would remove it to make room for postfix: we refuse instead.
# The benchmark then runs Postfix only as a private instance (its own
# config_directory and queue_directory in a temp dir, loopback only).
#
# As root it runs apt-get; as another user it prints what is missing and
# exits 1 (receive.sh then skips what it cannot run).
set -eu

PACKAGES="postfix strace procps"

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
    echo "bench/install-deps: missing Debian packages:$missing" >&2
    echo "bench/install-deps: run as root: sh bench/install-deps.sh" >&2
    exit 1
fi

case " $missing " in
    *" postfix "*)
        # Another MTA would be replaced (removed) by postfix: not our call.
        other=$(dpkg-query -W -f='${Package} ${Status} ${Provides}\n' 2>/dev/null \
                | awk '/install ok installed/ && /mail-transport-agent/ && $1 != "postfix" {print $1}' \
                | tr '\n' ' ')
        if [ -n "$other" ]; then
            echo "bench/install-deps: another MTA is installed ($other); installing postfix" >&2
            echo "bench/install-deps: would remove it. Install postfix by hand if that is what you want." >&2
            exit 1
        fi
        ;;
esac

echo "bench/install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

# Refuse service starts while apt runs, if nothing does so already.
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from postern bench/install-deps.sh\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    made_policy=1
fi
cleanup() {
    if [ -n "$made_policy" ]; then rm -f "$policy"; fi
}
trap cleanup EXIT INT TERM

if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
    apt-get update -q
fi
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing

# With systemd the package may have enabled its unit: keep the system Postfix
# off (with "No configuration" it has no main.cf and would not run anyway).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now postfix.service >/dev/null 2>&1 || true
fi
exit 0
