#!/usr/bin/env bash
# `make test-debian13`: the README's `make test` on Debian 13 "trixie" (QGIS 3.40 LTR, Python 3.13,
# GDAL 3.10, numpy 2), from a Debian 12 host, in a chroot built with debootstrap.
#
# The root file system is cached under build/debian13/rootfs (debootstrap, about 2 minutes, once;
# the Debian packages `make setup` installs stay in it too). Each run clones the committed HEAD
# afresh into the chroot and runs `make test` there, exactly as a newcomer would: a new venv, so
# PyPI's torch for Python 3.13 (with its CUDA libraries: 4.6 GB in the venv) is fetched every run.
# Needs root (debootstrap, chroot, bind mounts) and the Debian mirror that apt already uses.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
root=${DEBIAN13_ROOT:-$top/build/debian13/rootfs}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=trixie

if [ "$(id -u)" != 0 ]; then
  echo "test-debian13: needs root (debootstrap and chroot); run it with sudo" >&2
  exit 1
fi
if grep -q '^VERSION_CODENAME=trixie' /etc/os-release 2>/dev/null; then
  echo "test-debian13: this machine is Debian 13 already: plain 'make test' does the same job" >&2
  exec make test
fi
command -v debootstrap >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
}

mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() {  # bind-mount a host path into the chroot for the duration of this script
  mkdir -p "$root$1"
  mount --bind "$1" "$root$1"
  mounted+=("$root$1")
}

if [ ! -f "$root/.mscam-bootstrapped" ]; then
  echo "test-debian13: building a Debian 13 root file system in $root"
  rm -rf "$root"
  mkdir -p "$root"
  debootstrap --variant=minbase --include=ca-certificates,make,git,sudo "$suite" "$root" "$mirror"
  touch "$root/.mscam-bootstrapped"
fi

# What makes downloads work as on the host: name resolution, the CA bundle, pip's configuration.
cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/host-ca-certificates.crt"
{
  echo "[global]"
  echo "cert = /etc/ssl/certs/host-ca-certificates.crt"
  echo "timeout = 180"
} >"$root/etc/pip.conf"
bind /proc
bind /sys
bind /dev
bind /dev/pts

# A fresh clone of what is committed, as CI and a newcomer see it.
rm -rf "$root/root/mscam"
git clone -q --no-hardlinks "$top" "$root/root/mscam"
echo "test-debian13: running 'make test' in a fresh clone on Debian 13 ($(git rev-parse --short HEAD))"
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  PIP_CERT=/etc/ssl/certs/host-ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/host-ca-certificates.crt \
  ${CI:+CI=$CI} bash -c 'cd /root/mscam && make test'
