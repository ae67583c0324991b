#!/usr/bin/env bash
# Packaging checks (root; scripts/test.sh runs them as root, CI always):
#  1. the static build: `file` and `ldd` prove it static; the CLI tests,
#     the packaging tests (sd_notify, journald, completion, man pages, DNS
#     from /etc/hosts and from dnsmasq), SMTP STARTTLS with a CA from
#     SSL_CERT_FILE and two one-node check tests run against that binary;
#  2. the unit: systemd-analyze verify and security (exposure score);
#  3. scripts/install.sh twice (idempotent), into a scratch prefix;
#  4. the .deb: dpkg -i, qu --version and qu init as the quptime user, the
#     installed unit verified, dpkg -r leaves no binary, dpkg -P no user.
#  5. the .deb installed (with its dependencies) on a minimal Debian booted
#     with systemd as PID 1: the hardened unit starts, stays up, serves
#     root's qu and probes (scripts/test-systemd-boot.sh).
# Says which step failed and why.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
step() { echo "test-packaging: == $*"; }
fail() { echo "test-packaging: FAILED: $*" >&2; exit 1; }
started=$(date +%s)

if [ "$(id -u)" != 0 ]; then
  fail "needs root (dpkg -i, a system user, mount namespaces, dnsmasq on port 53)"
fi

# This script installs and purges the qu package and the quptime user:
# never on a machine where an operator installed them.
if dpkg-query -W -f='${Status}' qu 2>/dev/null | grep -q "install ok installed"; then
  fail "the qu package is installed on this machine; this script would purge it (dpkg -P qu first, if that is what you want)"
fi
if getent passwd quptime >/dev/null && [ -e /var/lib/quptime/node.yaml ]; then
  fail "a quptime node lives in /var/lib/quptime on this machine; this script would wipe it"
fi

need=()
command -v file >/dev/null 2>&1 || need+=(file)
command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
command -v man >/dev/null 2>&1 || need+=(man-db)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v useradd >/dev/null 2>&1 || need+=(passwd)
[ -e /usr/share/bash-completion/bash_completion ] || need+=(bash-completion)
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need+=(python3-aiosmtpd)
if [ ${#need[@]} -gt 0 ]; then
  echo "test-packaging: installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" ||
    fail "cannot install ${need[*]} with apt-get"
fi

step "static build"
bin=$(scripts/build-static.sh | tail -n 1)
file "$bin"
ldd "$bin" || true
case "$bin" in
  */x86_64-unknown-linux-musl/*) ;;
  *) fail "no static build (see the build-static NOTE above)" ;;
esac
case "$(file -b "$bin")" in
  *"statically linked"*|*"static-pie linked"*) ;;
  *) fail "$bin is not statically linked: $(file -b "$bin")" ;;
esac
ldd_out=$(ldd "$bin" 2>&1 || true)
case "$ldd_out" in
  *"not a dynamic executable"*|*"statically linked"*) ;;
  *) fail "ldd lists libraries for $bin: $ldd_out" ;;
esac

step "CLI and packaging tests against the static binary"
# smtp: STARTTLS against a CA trusted through SSL_CERT_FILE, i.e. the
# system root store as the static binary reads it.
QU_TEST_BIN="$bin" cargo test --locked -p qu --test cli --test packaging --test smtp ||
  fail "tests against the static binary $bin"
QU_TEST_BIN="$bin" cargo test --locked -p qu --test first_hour -- \
  a_fresh_node_is_a_working_one_node_cluster a_new_check_is_probed_at_once ||
  fail "one-node check tests against the static binary $bin"

step "systemd-analyze verify and security (packaging/qu.service)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# verify wants ExecStart's binary to exist: point a copy at the build.
sed "s#^ExecStart=/usr/bin/qu #ExecStart=$bin #" packaging/qu.service >"$scratch/qu.service"
systemd-analyze verify --man=no "$scratch/qu.service" || fail "systemd-analyze verify packaging/qu.service"
security=$(systemd-analyze security --offline=true "$scratch/qu.service" 2>&1) ||
  fail "systemd-analyze security --offline=true: $security"
score=$(printf '%s\n' "$security" | sed -n 's/.*Overall exposure level for qu.service: \([0-9.]*\).*/\1/p')
echo "test-packaging: exposure level $score (systemd-analyze security --offline=true)"
[ -n "$score" ] || fail "no exposure level in: $security"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' || fail "exposure level $score is above 2.0: $security"

step "scripts/install.sh, twice, into a scratch prefix"
prefix="$scratch/prefix"
PREFIX="$prefix" scripts/install.sh "$bin"
PREFIX="$prefix" scripts/install.sh "$bin" # idempotent: again over itself
"$prefix/bin/qu" --version
for f in bin/qu share/bash-completion/completions/qu share/zsh/site-functions/_qu \
  share/fish/vendor_completions.d/qu.fish share/man/man1/qu.1 share/man/man1/qu-check-add.1; do
  [ -e "$prefix/$f" ] || fail "install.sh did not install $prefix/$f"
done
grep -q "^ExecStart=$prefix/bin/qu serve" /etc/systemd/system/qu.service ||
  fail "the installed unit does not run $prefix/bin/qu"
systemd-analyze verify --man=no /etc/systemd/system/qu.service || fail "systemd-analyze verify of install.sh's unit"
getent passwd quptime >/dev/null || fail "install.sh created no quptime user"
[ "$(stat -c '%a %U' /var/lib/quptime)" = "700 quptime" ] || fail "/var/lib/quptime is $(stat -c '%a %U' /var/lib/quptime)"
rm -f /etc/systemd/system/qu.service

step ".deb: build, install, run as quptime, remove, purge"
deb=$(scripts/build-deb.sh | tail -n 1)
[ -f "$deb" ] || fail "build-deb.sh made no .deb ($deb)"
dpkg-deb --info "$deb"
dpkg-deb --contents "$deb"
dpkg -i "$deb" || fail "dpkg -i $deb"
[ "$(stat -c '%a %U' /var/lib/quptime)" = "700 quptime" ] || fail "after dpkg -i /var/lib/quptime is $(stat -c '%a %U' /var/lib/quptime)"
runuser -u quptime -- /usr/bin/qu --version || fail "qu --version as quptime"
# The ICMP drop-in persists a range covering the quptime group (also when
# the running value already covers it: that one may not survive a reboot).
gid=$(getent group quptime | cut -d: -f3)
dropin=/etc/sysctl.d/60-quptime-ping.conf
range=$(sed -n 's/^net.ipv4.ping_group_range = //p' "$dropin" 2>/dev/null)
[ -n "$range" ] && [ "${range%% *}" -le "$gid" ] && [ "$gid" -le "${range##* }" ] ||
  fail "after dpkg -i $dropin does not cover gid $gid: '$range'"
rm -rf /var/lib/quptime/* # the state install.sh's check may have left
runuser -u quptime -- /usr/bin/qu --dir /var/lib/quptime init --advertise 127.0.0.1:9001 ||
  fail "qu init as quptime"
[ "$(stat -c %U /var/lib/quptime/keys/private.pem)" = quptime ] || fail "the key is not quptime's"
systemd-analyze verify /lib/systemd/system/qu.service || fail "systemd-analyze verify of the installed unit"
MANPAGER=cat man qu-serve >/dev/null || fail "man qu-serve after dpkg -i"
dpkg -r qu || fail "dpkg -r qu"
[ ! -e /usr/bin/qu ] || fail "dpkg -r left /usr/bin/qu behind"
[ -e /var/lib/quptime/node.yaml ] || fail "dpkg -r removed the node's state (only purge may)"
dpkg -P qu || fail "dpkg -P qu"
! getent passwd quptime >/dev/null || fail "dpkg -P left the quptime user"
[ ! -e /var/lib/quptime ] || fail "dpkg -P left /var/lib/quptime"
[ ! -e "$dropin" ] || fail "dpkg -P left $dropin"

step "the .deb under systemd: a minimal Debian booted with systemd as PID 1"
scripts/test-systemd-boot.sh "$deb" || fail "the unit under a booted systemd"

echo "test-packaging: all passed in $(( $(date +%s) - started )) s"
