#!/usr/bin/env bash
# Makes the base images the Dockerfile's FROM lines name, locally, for a
# machine that reaches Debian's archive but no container registry: each is a
# Debian bookworm root file system made by mmdebstrap and imported into
# podman under that very name. An image that already exists under its name is
# kept (a rerun takes a second); `podman rmi NAME` makes it again.
#   debian:bookworm-slim    minbase, without docs, man pages or apt lists
#   golang:<X.Y>-bookworm   the same + gcc, make, git + this machine's Go X.Y
set -euo pipefail
cd "$(dirname "$0")/../.."
podman=${PODMAN:-podman}

# The debian.org image's dpkg settings: no docs but copyright, no man pages or
# translations, also for whatever is installed in it later; slim-hook.sh
# does the rest (no apt cache, no perl but perl-base).
slim=(--variant=minbase --format=tar --aptopt='APT::Install-Recommends "false"'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --customize-hook="$PWD/tools/image/slim-hook.sh")
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

for name in $(awk 'toupper($1) == "FROM" { print $2 }' Dockerfile | sort -u); do
  if $podman image exists "$name"; then echo "base image $name: present"; continue; fi
  start=$SECONDS
  case $name in
    debian:bookworm-slim)
      mmdebstrap "${slim[@]}" bookworm - | $podman import --change "CMD [\"bash\"]" - "$name" >/dev/null ;;
    golang:*-bookworm)
      want=${name#golang:}; want=${want%-bookworm}
      goroot=$(go env GOROOT); have=$(go env GOVERSION)
      case $have in go"$want"|go"$want".*) ;; *)
        echo "base image $name needs Go $want, this machine has $have" >&2; exit 1 ;; esac
      mmdebstrap "${slim[@]}" --include=ca-certificates,gcc,libc6-dev,make,git,pkg-config \
        --customize-hook="mkdir -p \"\$1/usr/local/go\" && cp -a '$goroot/.' \"\$1/usr/local/go/\"" \
        bookworm - |
        $podman import --change "ENV PATH=/go/bin:/usr/local/go/bin:$path" --change "ENV GOPATH=/go" \
          --change "ENV GOTOOLCHAIN=local" --change "WORKDIR /go" --change 'CMD ["bash"]' - "$name" >/dev/null ;;
    *) echo "no recipe for base image $name: pull it, or add one to $0" >&2; exit 1 ;;
  esac
  echo "base image $name: made in $((SECONDS - start)) s"
done
