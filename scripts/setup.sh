#!/usr/bin/env bash
# Installs everything nslab's tests and scenarios need on Debian 12 (bookworm). Idempotent: a
# rerun installs only what is missing and changes nothing when nothing is.
#
# Used by .ci/run and by the Vagrant VM's provisioning. Needs root (re-runs itself with sudo).
# Server packages (nginx, redis, knot, nsd, dnsmasq, ...) are installed for the programs the
# labs run inside their namespaces: the system's own instances are never started or enabled.
set -euo pipefail

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
trap 'printf "setup: error: failed (exit %s) at line %s: %s\n" "$?" "$LINENO" "$BASH_COMMAND" >&2' ERR

if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "run as root (sudo is not installed)"
    exec sudo --preserve-env=PATH,CARGO_HOME,RUSTUP_HOME bash "$0" "$@"
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# shellcheck source=/dev/null
[[ -r /etc/os-release ]] && . /etc/os-release
if [[ ${ID:-} != debian || ${VERSION_ID:-} != 12 ]]; then
    log "warning: written for Debian 12; this is ${PRETTY_NAME:-an unknown system}, trying anyway"
fi

# --- Debian packages --------------------------------------------------------------------------
PACKAGES=(
    # Kernel configuration and inspection inside namespaces.
    iproute2 procps kmod nftables iptables tcpdump strace
    # Clients the tests drive.
    curl iputils-ping netcat-openbsd socat bind9-dnsutils dnsperf python3
    # Python clients of scenarios/stale-dns (run with /usr/bin/python3: a pyenv shim has no requests).
    python3-requests
    # Servers the labs run inside hosts (never as system services; see below).
    gunicorn nginx-light redis-server dnsmasq knot nsd tayga
    # PostgreSQL 15 server of scenarios/bind (initdb, postgres in /usr/lib/postgresql/15/bin).
    postgresql-15
    # Peers of the lab-build benchmark: Mininet with a Linux bridge (it drives it with brctl).
    mininet bridge-utils
    # `vagrant validate` of the Vagrantfile in CI (without recommends: 80 MB, not 600 MB).
    vagrant
    # Building the workspace (cargo links with cc).
    gcc libc6-dev ca-certificates git
)
# A JDK only when there is none: the JVM's DNS caching is one of the behaviours under test.
if ! command -v java >/dev/null || ! command -v javac >/dev/null; then
    PACKAGES+=(openjdk-17-jdk-headless)
fi

# System services the packages above ship; kept stopped and disabled.
SERVICES=(nginx redis-server knot nsd dnsmasq tayga nftables postgresql)

# --- PyPI packages: none yet ------------------------------------------------------------------
# Add names here when a test needs one; they go into a venv at $PYPI_VENV, never into Debian's
# Python (PEP 668), and the tests find them at $PYPI_VENV/bin/python3.
PYPI_PACKAGES=()
PYPI_VENV=/opt/nslab/venv
if ((${#PYPI_PACKAGES[@]})); then
    PACKAGES+=(python3-venv)
fi

missing=()
for p in "${PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) != installed ]]; then
        missing+=("$p")
    fi
done

POLICY=/usr/sbin/policy-rc.d
POLICY_BACKUP=
restore_policy() {
    if [[ -n $POLICY_BACKUP ]]; then
        if [[ $POLICY_BACKUP == none ]]; then
            rm -f "$POLICY"
        else
            mv -f "$POLICY_BACKUP" "$POLICY"
        fi
        POLICY_BACKUP=
    fi
}
trap restore_policy EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ((${#missing[@]})); then
    log "installing ${#missing[@]} package(s): ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    APT=(apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    # Only when something is missing: a fresh box may have no lists, or stale ones.
    "${APT[@]}" update
    # No service may start during the install: invoke-rc.d asks policy-rc.d, and 101 means no.
    if [[ -e $POLICY ]]; then
        POLICY_BACKUP=$(mktemp "$POLICY.nslab.XXXXXX")
        cp -p "$POLICY" "$POLICY_BACKUP"
    else
        POLICY_BACKUP=none
    fi
    printf '#!/bin/sh\n# Written by nslab scripts/setup.sh for the duration of an install.\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    "${APT[@]}" install --no-install-recommends "${missing[@]}"
    restore_policy
else
    log "all ${#PACKAGES[@]} Debian packages present"
fi

# Stopped and disabled, also on reruns: the labs start their own instances in namespaces, and a
# system nftables service would load its ruleset into the machine's own namespace.
systemd_running=false
[[ -d /run/systemd/system ]] && systemd_running=true
for s in "${SERVICES[@]}"; do
    [[ -e /lib/systemd/system/$s.service || -e /etc/init.d/$s ]] || continue
    if $systemd_running; then
        if systemctl is-active --quiet "$s.service"; then
            log "stopping $s"
            systemctl stop "$s.service"
        fi
    fi
    # Works without a running systemd too: it only removes the enablement links.
    if systemctl is-enabled --quiet "$s.service" 2>/dev/null; then
        log "disabling $s"
        # Also removes the SysV rc links (through systemd-sysv-install).
        systemctl disable --quiet "$s.service"
    fi
done

if ((${#PYPI_PACKAGES[@]})); then
    [[ -x $PYPI_VENV/bin/python3 ]] || /usr/bin/python3 -m venv "$PYPI_VENV"
    "$PYPI_VENV/bin/python3" -m pip install -q --upgrade "${PYPI_PACKAGES[@]}"
fi

# --- Rust toolchain ---------------------------------------------------------------------------
# Not installed here: Debian 12's cargo (1.63) is too old, and the toolchain comes from rustup
# (the Vagrantfile installs it before running this script).
need_rust=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$REPO/Cargo.toml" | head -n1)
need_rust=${need_rust:-1.85}
for d in "${CARGO_HOME:-$HOME/.cargo}/bin" ${SUDO_USER:+"$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin"}; do
    [[ -x $d/cargo ]] && [[ :$PATH: != *":$d:"* ]] && PATH=$d:$PATH
done
if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then
    die "no Rust toolchain (cargo, rustc); nslab needs Rust >= $need_rust. Install it with rustup:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
then open a new shell (or: . \"\$HOME/.cargo/env\") and rerun $0"
fi
have_rust=$(rustc --version | awk '{print $2}')
if [[ $(printf '%s\n%s\n' "$need_rust" "${have_rust%%-*}" | sort -V | head -n1) != "$need_rust" ]]; then
    die "rustc $have_rust is older than the $need_rust nslab needs: run \`rustup update stable\`"
fi

# --- cargo-nextest ----------------------------------------------------------------------------
# CI shards the scenario suite with it (scripts/nextest-partition.sh). Built from crates.io with
# its own lock file, only when missing. Measured: 21 minutes (333 crates, release build) on 2
# cores that other builds kept busy (load 8); expect less on an idle machine.
if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest (cargo install --locked cargo-nextest; this takes minutes)"
    cargo install --locked cargo-nextest
else
    log "cargo-nextest present: $(cargo nextest --version 2>/dev/null | head -n1)"
fi

# --- Summary ----------------------------------------------------------------------------------
log "versions:"
for p in "${PACKAGES[@]}"; do
    printf '  %-24s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo '?')"
done
printf '  %-24s %s\n' java "$(java -version 2>&1 | head -n1)"
printf '  %-24s %s\n' python3 "$(python3 --version 2>&1)"
printf '  %-24s %s\n' vagrant "$(vagrant --version 2>/dev/null || echo 'not found')"
printf '  %-24s %s\n' rustc "$(rustc --version)"
printf '  %-24s %s\n' cargo "$(cargo --version)"
printf '  %-24s %s\n' cargo-nextest "$(cargo nextest --version 2>/dev/null | head -n1)"
if ((${#PYPI_PACKAGES[@]})); then
    "$PYPI_VENV/bin/python3" -m pip list --format=freeze 2>/dev/null | sed 's/^/  pypi /'
fi
log "done"
