#!/usr/bin/env bash
# Make the external bases of the project's images locally, for hosts that reach the Debian and
# PyPI package archives but no image registry (air-gapped CI, mirrors, proxies):
#
#   DEBIAN_IMAGE  Debian bookworm (debootstrap --variant=minbase, with bookworm's updates) and
#                 ca-certificates: stands in for debian:bookworm-slim.
#   PYTHON_IMAGE  the same plus Debian's Python 3.11 with venv support; /usr/local/bin/python3.11
#                 points at it, the interpreter path of python:3.11-slim-bookworm, which it
#                 stands in for.
#   UV_IMAGE      /uv and /uvx from PyPI's uv wheel, the layout of ghcr.io/astral-sh/uv.
#
# Each image is tagged with a hash of this script and its settings, so a second run finds them
# and returns at once. Prints the build arguments that select them, one KEY=VALUE per line, or,
# with --build-args, as `docker build` options:
#
#   docker build $(deploy/docker/local-base.sh --build-args) -f services/frontend/Dockerfile .
#
# Needs root, debootstrap, python3 with pip, and a running Docker engine. Settings (environment):
#   DEBIAN_MIRROR    default http://deb.debian.org/debian
#   DEBIAN_SECURITY  default http://deb.debian.org/debian-security
#   UV_VERSION       default the version the Dockerfiles pin
#   DOCKER           the docker client, default `docker`
set -euo pipefail

SUITE=bookworm
PYTHON=python3.11
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
UV_VERSION=${UV_VERSION:-0.13.9}
DOCKER=${DOCKER:-docker}
REPOSITORY=restaurant-sentiment-local

format=lines
case ${1:-} in
    "") ;;
    --build-args) format=options ;;
    *)
        echo "usage: $0 [--build-args]" >&2
        exit 2
        ;;
esac

say() { echo "local-base: $*" >&2; }

key=$({
    cat "${BASH_SOURCE[0]}"
    echo "$SUITE $DEBIAN_MIRROR $DEBIAN_SECURITY $UV_VERSION $(uname -m)"
} | sha256sum | cut -c1-12)
debian_image=$REPOSITORY/debian:$SUITE-$key
python_image=$REPOSITORY/python:3.11-$SUITE-$key
uv_image=$REPOSITORY/uv:$UV_VERSION-$key

exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

work=
cleanup() { [[ -z $work ]] || rm -rf "$work"; }
trap cleanup EXIT

# Run a command inside the root file system with a clean environment.
in_root() {
    chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c "$2" >>"$work/apt.log" 2>&1 || {
        tail -n 30 "$work/apt.log" >&2
        exit 1
    }
}

# Import the root file system as an image, without package lists, caches, logs and docs.
import_root() {
    local root=$1 image=$2 message=$3
    shift 3
    say "importing $image"
    tar --numeric-owner -C "$root" \
        --exclude='./var/lib/apt/lists/*' --exclude='./var/cache/apt/*' --exclude='./var/log/*' \
        --exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' \
        --exclude='./usr/share/info/*' --exclude='./usr/share/locale/*' --exclude='./tmp/*' \
        -c . | "$DOCKER" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' "$@" --message "$message" - "$image" >/dev/null
}

make_debian_and_python() {
    if [[ $(id -u) -ne 0 ]]; then
        say "making the base images needs root (debootstrap creates device files and owners)"
        exit 4
    fi
    command -v debootstrap >/dev/null || {
        say "debootstrap is not installed (apt-get install debootstrap)"
        exit 3
    }
    work=$(mktemp -d)
    local root=$work/rootfs
    say "debootstrap $SUITE from $DEBIAN_MIRROR (one to three minutes)"
    debootstrap --variant=minbase "$SUITE" "$root" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 || {
        tail -n 30 "$work/debootstrap.log" >&2
        exit 1
    }
    # Security updates, as the published Debian images carry them; apt inside the root file
    # system resolves the packages' dependencies.
    cat >"$root/etc/apt/sources.list" <<SOURCES
deb $DEBIAN_MIRROR $SUITE main
deb $DEBIAN_MIRROR $SUITE-updates main
deb $DEBIAN_SECURITY $SUITE-security main
SOURCES
    # The host's resolver serves apt in the root file system and is emptied before each import:
    # Docker gives every container its own resolver and name.
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    : >"$root/etc/hostname"
    say "applying $SUITE's updates"
    in_root "$root" "apt-get update -qq && apt-get -y -qq upgrade \
        && apt-get install -y -qq --no-install-recommends ca-certificates && apt-get clean"
    : >"$root/etc/resolv.conf"
    import_root "$root" "$debian_image" "debootstrap --variant=minbase $SUITE" \
        --change 'CMD ["bash"]'

    say "installing $PYTHON"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    in_root "$root" "apt-get install -y -qq --no-install-recommends $PYTHON $PYTHON-venv \
        && apt-get clean"
    : >"$root/etc/resolv.conf"
    # The interpreter where python:3.11-slim has it, plus its usual short names.
    for name in "$PYTHON" python3 python; do
        ln -sf "/usr/bin/$PYTHON" "$root/usr/local/bin/$name"
    done
    import_root "$root" "$python_image" "debootstrap --variant=minbase $SUITE + $PYTHON" \
        --change 'CMD ["python3"]'
    rm -rf "$work"
    work=
}

make_uv() {
    work=$(mktemp -d)
    say "uv $UV_VERSION from PyPI"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" \
        "uv==$UV_VERSION"
    python3 - "$work" <<'PY'
import pathlib, sys, zipfile

work = pathlib.Path(sys.argv[1])
wheel = next(work.glob("uv-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    for name in ("uv", "uvx"):
        member = next(m for m in archive.namelist() if m.endswith(f".data/scripts/{name}"))
        target = work / "image" / name
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(archive.read(member))
        target.chmod(0o755)
PY
    "$work/image/uv" --version >&2
    say "importing $uv_image"
    tar --owner=0 --group=0 -C "$work/image" -c uv uvx | "$DOCKER" import \
        --change 'ENTRYPOINT ["/uv"]' --message "uv $UV_VERSION from PyPI" - "$uv_image" >/dev/null
    rm -rf "$work"
    work=
}

if ! exists "$debian_image" || ! exists "$python_image"; then
    make_debian_and_python
fi
exists "$uv_image" || make_uv

if [[ $format == options ]]; then
    echo "--build-arg DEBIAN_IMAGE=$debian_image --build-arg PYTHON_IMAGE=$python_image" \
        "--build-arg UV_IMAGE=$uv_image"
else
    echo "DEBIAN_IMAGE=$debian_image"
    echo "PYTHON_IMAGE=$python_image"
    echo "UV_IMAGE=$uv_image"
fi
