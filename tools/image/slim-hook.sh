#!/bin/sh
# mmdebstrap customize hook for tools/image/base-images.sh ($1: the new root
# file system): what the debian.org slim image does beyond minbase.
set -eu
root=$1
# apt keeps no package cache in any layer (80 MB per `apt-get update`).
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
# No perl beyond the essential perl-base (~35 MB).
perl=$(chroot "$root" dpkg-query -W -f '${Package}\n' | grep -E 'perl([-.0-9]|$)' | grep -vx perl-base || true)
[ -z "$perl" ] || chroot "$root" apt-get purge -y -q $perl >/dev/null
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
