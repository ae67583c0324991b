#!/usr/bin/env bash
# Boots a minimal Debian with systemd as PID 1 (in its own PID and mount
# namespaces; no systemd is needed on this machine), installs the .deb in
# it as an operator would, enables the unit, and checks that the hardened
# unit runs: `systemctl is-active qu`, root's `qu status` through the
# unit's socket, an ICMP check that goes up. Usage: test-systemd-boot.sh DEB
# (root). The root file system is cached under /var/cache.
set -euo pipefail
deb=$(realpath "$1")
fail() { echo "test-systemd-boot: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (namespaces, chroot, debootstrap)"
command -v debootstrap >/dev/null 2>&1 ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap ||
  fail "cannot install debootstrap with apt-get"

cache=/var/cache/qu-systemd-root
if [ ! -x "$cache/lib/systemd/systemd" ]; then
  rm -rf "$cache.new"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps,iproute2 \
    bookworm "$cache.new" http://deb.debian.org/debian >/dev/null ||
    fail "debootstrap of a minimal bookworm from deb.debian.org"
  mv "$cache.new" "$cache"
fi
root=$(mktemp -d /var/tmp/qu-boot.XXXXXX)
trap 'umount -R "$root/proc" 2>/dev/null || true; rm -rf "$root"' EXIT
cp -a "$cache/." "$root/"
cp "$deb" "$root/root/qu.deb"

# Installed as an operator would: the package with its dependencies.
mount -t proc proc "$root/proc"
chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /root/qu.deb' >/dev/null ||
  fail "apt-get install of the .deb in the booted image"
chroot "$root" runuser -u quptime -- qu --dir /var/lib/quptime init --advertise 127.0.0.1:9001 >/dev/null ||
  fail "qu init as quptime"
umount "$root/proc"

# Runs once qu.service has started (Type=notify: after READY=1) and powers
# the machine off; what it saw is left in /root/result.
cat >"$root/etc/systemd/system/qu-selftest.service" <<'EOF'
[Unit]
After=qu.service
Wants=qu.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c '{ echo "active=$(systemctl is-active qu)"; qu status; qu check add icmp lo 127.0.0.1 --interval 1s; i=0; until qu check list | grep -q " up "; do i=$((i+1)); [ $i -gt 60 ] && break; sleep 0.5; done; qu check list; echo "restarts=$(systemctl show qu -p NRestarts --value)"; journalctl -u qu --no-pager | tail -n 20; } >/root/result 2>&1; systemctl poweroff'
[Install]
WantedBy=multi-user.target
EOF
chroot "$root" systemctl enable qu qu-selftest >/dev/null 2>&1 || fail "systemctl enable qu"

# systemd as PID 1; the root must be a mount point for its sandboxing.
timeout 180 unshare --pid --fork --mount --uts --ipc bash -c "
  mount --make-rprivate / && mount --bind '$root' '$root' &&
  mount -t proc proc '$root/proc' && mount --rbind /sys '$root/sys' &&
  mount --rbind /dev '$root/dev' && mount -t tmpfs tmpfs '$root/run' &&
  mount -t tmpfs tmpfs '$root/tmp' &&
  exec chroot '$root' /usr/bin/env container=qu-test /lib/systemd/systemd --system" \
  >/dev/null 2>&1 || true
[ -f "$root/root/result" ] || fail "the booted machine did not run its check (no systemd boot here?)"
cat "$root/root/result"
grep -q '^active=active$' "$root/root/result" || fail "qu.service is not active under systemd"
grep -q ' up ' "$root/root/result" || fail "the ICMP check did not go up under the unit"
grep -q '^restarts=0$' "$root/root/result" || fail "qu.service restarted"
echo "test-systemd-boot: the unit runs under systemd"
