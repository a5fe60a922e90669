#!/usr/bin/env bash
# Installs what nslab's demo and `cargo test --workspace` need on Debian 12 (bookworm), and nothing
# more. Idempotent: a rerun installs only what is missing and changes nothing when nothing is.
#
#   bash scripts/setup.sh             the demo and every test (the README's two commands)
#   bash scripts/setup.sh --bench     also the peers the benchmarks compare with (dnsperf, Mininet)
#   bash scripts/setup.sh --vagrant   also vagrant, for `vagrant validate` of the Vagrantfile (CI)
#
# cargo-nextest is not installed here: scripts/nextest-partition.sh (the CI step that shards with
# it) installs it when missing, and the README's nextest section says how.
#
# Used by the README, .ci/run and the Vagrant VM's provisioning. Needs root (re-runs itself with
# sudo). Server packages (nginx, redis, knot, nsd, ...) are installed for the programs the labs run
# inside their namespaces: the system's own instances are never started or enabled.
set -euo pipefail

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
trap 'printf "setup: error: failed (exit %s) at line %s: %s\n" "$?" "$LINENO" "$BASH_COMMAND" >&2' ERR

WANT_BENCH=false
WANT_VAGRANT=false
for a in "$@"; do
    case $a in
        --bench) WANT_BENCH=true ;;
        --vagrant) WANT_VAGRANT=true ;;
        *) die "unknown argument '$a' (expected --bench or --vagrant)" ;;
    esac
done

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
    iproute2 procps strace
    # Clients the tests drive.
    curl bind9-dnsutils python3
    # Python clients of scenarios/stale-dns (run with /usr/bin/python3: a pyenv shim has no requests).
    python3-requests
    # Servers the labs run inside hosts (never as system services; see below): nginx, gunicorn and
    # redis in the bind scenarios, knot and nsd as DNS servers, tayga for ipv6-only-nat64.
    gunicorn nginx-light redis-server knot nsd tayga
    # PostgreSQL 15 server of scenarios/bind (initdb, postgres in /usr/lib/postgresql/15/bin).
    postgresql-15
    # Caching resolvers of scenarios/resolvers (nslab::lab::resolver), run inside lab hosts only.
    # systemd-resolved is not among them: see RESOLVED below.
    unbound knot-resolver pdns-recursor
    # IPv6 provisioning by the real protocols (nslab::lab::provision): radvd and kea's DHCPv6 server
    # in router hosts, ISC dhclient as the DHCPv6 client, rdisc6 (ndisc6) to read what a host hears.
    radvd kea-dhcp6-server isc-dhcp-client ndisc6
    # nft: the PMTUD black hole preset of router hosts (nslab::lab::segment) and random loss of link
    # conditions (nslab::lab::link); iptables/ip6tables: the NFQUEUE rules of delayed and bursty-loss
    # links (nft's own queue statement is missing on such kernels). Run in lab namespaces only.
    nftables iptables
    # tshark reads the trials' capture.pcapng in tests/capture.rs (never captures: nslab does,
    # with AF_PACKET). Its "non-root users capture?" question is answered no below, before install.
    tshark
    # Building the workspace (cargo links with cc).
    gcc libc6-dev ca-certificates git
)
# Peers of the benchmarks (not of any test): dnsperf (dns_perf), Mininet with a Linux bridge
# (lab_build; it drives it with brctl).
if $WANT_BENCH; then
    PACKAGES+=(dnsperf mininet bridge-utils)
fi
# `vagrant validate` of the Vagrantfile in CI (without recommends: 80 MB, not 600 MB).
if $WANT_VAGRANT; then
    PACKAGES+=(vagrant)
fi
# A JDK only when there is none: the JVM's DNS caching is one of the behaviours under test.
if ! command -v java >/dev/null || ! command -v javac >/dev/null; then
    PACKAGES+=(openjdk-17-jdk-headless)
fi

# System services the packages above ship; kept stopped and disabled. A name without a unit
# suffix is a .service. unbound-resolvconf would hand the machine's resolv.conf to resolvconf.
SERVICES=(nginx redis-server knot nsd tayga postgresql
    unbound unbound-resolvconf pdns-recursor kresd kresd.target kres-cache-gc
    radvd kea-dhcp6-server)

# systemd-resolved for the labs, never installed as a package: Debian's package turns the machine's
# /etc/resolv.conf into a symbolic link to its stub (postinst), enables and starts its service and
# pins the machine's systemd to its own version. Its files are unpacked instead into $RESOLVED, with
# the libsystemd-shared of the same version (the lab runs it with LD_LIBRARY_PATH pointing there),
# and no maintainer script runs.
RESOLVED=/opt/nslab/systemd-resolved
RESOLVED_PACKAGES=(systemd-resolved libsystemd-shared)

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
    # wireshark-common asks whether non-root users may capture: no (no setuid dumpcap), unasked.
    if command -v debconf-set-selections >/dev/null; then
        echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
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
    unit=$s
    [[ $unit == *.* ]] || unit=$s.service
    [[ -e /lib/systemd/system/$unit || -e /etc/init.d/${s%.*} ]] || continue
    if $systemd_running; then
        if systemctl is-active --quiet "$unit"; then
            log "stopping $s"
            systemctl stop "$unit"
        fi
    fi
    # Works without a running systemd too: it only removes the enablement links.
    if systemctl is-enabled --quiet "$unit" 2>/dev/null; then
        log "disabling $s"
        # Also removes the SysV rc links (through systemd-sysv-install).
        systemctl disable --quiet "$unit"
    fi
    # A SysV script whose systemd unit is masked (kresd) keeps its start links: turn them off too.
    if [[ -e /etc/init.d/${s%.*} ]] && compgen -G "/etc/rc[2-5].d/S??${s%.*}" >/dev/null; then
        log "disabling ${s%.*} (SysV links)"
        update-rc.d "${s%.*}" disable >/dev/null
    fi
done

if [[ ! -x $RESOLVED/lib/systemd/systemd-resolved ]]; then
    log "unpacking ${RESOLVED_PACKAGES[*]} into $RESOLVED (not installed: see RESOLVED)"
    command -v apt-get >/dev/null || die "apt-get is needed to fetch ${RESOLVED_PACKAGES[*]}"
    resolved_tmp=$(mktemp -d)
    (cd "$resolved_tmp" && chown _apt "$resolved_tmp" 2>/dev/null; apt-get -q download "${RESOLVED_PACKAGES[@]}") ||
        { apt-get -q update && (cd "$resolved_tmp" && apt-get -q download "${RESOLVED_PACKAGES[@]}"); }
    install -d -m 755 "$(dirname "$RESOLVED")"
    resolved_new=$(mktemp -d "$RESOLVED.new.XXXXXX")
    for deb in "$resolved_tmp"/*.deb; do dpkg-deb -x "$deb" "$resolved_new"; done
    chmod 755 "$resolved_new"
    rm -rf "$resolved_tmp" "$RESOLVED"
    mv "$resolved_new" "$RESOLVED"
fi
# Every library it needs must be found (libsystemd-shared from $RESOLVED, the rest from the machine).
if LD_LIBRARY_PATH=$RESOLVED/usr/lib/x86_64-linux-gnu/systemd ldd "$RESOLVED/lib/systemd/systemd-resolved" | grep -q 'not found'; then
    die "$RESOLVED/lib/systemd/systemd-resolved misses libraries: $(LD_LIBRARY_PATH=$RESOLVED/usr/lib/x86_64-linux-gnu/systemd ldd "$RESOLVED/lib/systemd/systemd-resolved" | grep 'not found' | tr -s ' \n' ' ')"
fi

if ((${#PYPI_PACKAGES[@]})); then
    [[ -x $PYPI_VENV/bin/python3 ]] || /usr/bin/python3 -m venv "$PYPI_VENV"
    "$PYPI_VENV/bin/python3" -m pip install -q --upgrade "${PYPI_PACKAGES[@]}"
fi

# --- Rust toolchain ---------------------------------------------------------------------------
# Not installed here: Debian 12's rustc (1.63) is too old, and the toolchain comes from rustup
# (the Vagrantfile installs it before running this script).
need_rust=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$REPO/Cargo.toml" | head -n1)
need_rust=${need_rust:-1.85}
for d in "${CARGO_HOME:-$HOME/.cargo}/bin" ${SUDO_USER:+"$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin"}; do
    [[ -x $d/cargo ]] && [[ :$PATH: != *":$d:"* ]] && PATH=$d:$PATH
done
RUSTUP_INSTALL="curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
then open a new shell (or: . \"\$HOME/.cargo/env\") and rerun $0"
if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then
    die "no Rust toolchain (cargo, rustc); nslab needs Rust >= $need_rust. Install it with rustup:
    $RUSTUP_INSTALL"
fi
have_rust=$(rustc --version | awk '{print $2}')
if [[ $(printf '%s\n%s\n' "$need_rust" "${have_rust%%-*}" | sort -V | head -n1) != "$need_rust" ]]; then
    # The advice depends on how this rustc was installed.
    rustc_path=$(readlink -f "$(command -v rustc)")
    if command -v rustup >/dev/null && rustup which rustc >/dev/null 2>&1; then
        die "rustc $have_rust (rustup toolchain $(rustup show active-toolchain 2>/dev/null | awk '{print $1}')) is older than the $need_rust nslab needs: run \`rustup update stable\` (or \`rustup default stable\`)"
    elif pkg=$(dpkg-query -S "$rustc_path" 2>/dev/null | cut -d: -f1 | head -n1) && [[ -n $pkg ]]; then
        die "rustc $have_rust is Debian's package $pkg ($rustc_path), older than the $need_rust nslab needs, and Debian 12 has no newer one. Install Rust with rustup (its ~/.cargo/bin comes first on PATH; \`apt-get remove rustc cargo\` is optional):
    $RUSTUP_INSTALL"
    else
        die "rustc $have_rust ($rustc_path, installed neither by rustup nor by a Debian package) is older than the $need_rust nslab needs: upgrade it the way it was installed, or install Rust with rustup:
    $RUSTUP_INSTALL"
    fi
fi

# --- Summary ----------------------------------------------------------------------------------
log "versions:"
for p in "${PACKAGES[@]}"; do
    printf '  %-24s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo '?')"
done
printf '  %-24s %s\n' systemd-resolved "$(LD_LIBRARY_PATH=$RESOLVED/usr/lib/x86_64-linux-gnu/systemd "$RESOLVED/lib/systemd/systemd-resolved" --version 2>/dev/null | head -n1 || echo '?') ($RESOLVED)"
printf '  %-24s %s\n' java "$(java -version 2>&1 | head -n1)"
printf '  %-24s %s\n' python3 "$(python3 --version 2>&1)"
if $WANT_VAGRANT; then printf '  %-24s %s\n' vagrant "$(vagrant --version 2>/dev/null || echo 'not found')"; fi
printf '  %-24s %s\n' rustc "$(rustc --version)"
printf '  %-24s %s\n' cargo "$(cargo --version)"
if ((${#PYPI_PACKAGES[@]})); then
    "$PYPI_VENV/bin/python3" -m pip list --format=freeze 2>/dev/null | sed 's/^/  pypi /'
fi
log "done"
