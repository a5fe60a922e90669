#!/usr/bin/env bash
# The README's two commands on a truly fresh Debian 12 machine: the check to run before a release.
#
# Builds a fresh Debian 12 root with mmdebstrap (from this machine's apt sources), enters it in
# private mount, PID, IPC and UTS namespaces with pivot_root (not chroot: setns and user
# namespaces do not work from a chroot), with /proc, /sys, /dev, /run as a real machine has them,
# gives it this machine's Rust toolchain read-only (rustup's toolchains; cargo's registry cache and
# installed binaries start empty in the fresh root) and its package-registry settings (apt sources
# and Acquire options, CA certificates, cargo configuration, proxy variables), clones this
# repository's HEAD into /root/main (/root mode 0700, as Debian makes it), and runs the two commands
# the README starts with, verbatim:
#   - command 1 (set-up + demo) in the foreground;
#   - command 2 (set-up + every test) as a background job of a non-interactive script, which starts
#     it with SIGINT and SIGQUIT ignored and stdin from /dev/null, as CI wrappers and `cmd &` in a
#     script do. That is the harder of the two ways to start it (a test that relies on SIGINT's
#     default action, or waits on a child that inherited the ignore, fails or hangs only there);
#     the foreground way is what `.ci/run`'s own test step does, so it is not run a second time.
# It prints each command's exit status, wall time and test totals, and exits non-zero when either
# fails. Everything it makes (the tree, mounts, namespaces, processes) is removed on every exit
# path: the namespaces die with their last process, every process is in the PID namespace, which
# dies with the script (even under kill -9), and the tree is deleted on exit; a tree left by a run
# that was killed with -9 is deleted by the next run.
#
# Usage (as root, from anywhere): bash scripts/fresh-machine.sh [COMMAND1 COMMAND2]
# (two commands given replace the README's, to try a change of them).
# Needs: Linux, root, network access to the apt sources and crates.io. Installs mmdebstrap when
# missing. Takes ~30 s for the root, then as long as the two commands take.
set -euo pipefail

log() { printf 'fresh-machine: %s\n' "$*"; }
die() { printf 'fresh-machine: error: %s\n' "$*" >&2; exit 2; }

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
BASE=/var/tmp               # on disk, like a real machine's root: the fresh tree grows to a few GB
PREFIX=nslab-fresh-machine.

# ---------------------------------------------------------------------------------------------
# Inside the namespaces: $2 is the fresh root, still seen from the machine's file system.
# ---------------------------------------------------------------------------------------------
if [[ ${1:-} == --inside ]]; then
    R=$2
    RUSTUP_DIR=$3
    RUSTUP_BIN=$4
    shift 4
    # Nothing mounted here may reach the machine's mount namespace.
    mount --make-rprivate /
    mount --bind "$R" "$R" # pivot_root needs the new root to be a mount point
    mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
    mount -t sysfs -o nosuid,nodev,noexec,ro sysfs "$R/sys"
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup" 2>/dev/null || true
    # /dev: a tmpfs with the machine's device nodes a program may use, as container runtimes do
    # (a devtmpfs mount would share the machine's /dev and let the fresh machine write to it).
    mount -t tmpfs -o nosuid,mode=0755,size=64k tmpfs "$R/dev"
    for d in null zero full random urandom tty net/tun; do
        [[ -e /dev/$d ]] || continue
        mkdir -p "$(dirname "$R/dev/$d")"
        touch "$R/dev/$d"
        mount --bind "/dev/$d" "$R/dev/$d"
    done
    mkdir -p "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
    mount -t devpts -o newinstance,nosuid,noexec,ptmxmode=0666,mode=0620,gid=5 devpts "$R/dev/pts"
    ln -s pts/ptmx "$R/dev/ptmx"
    mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$R/dev/shm"
    mount -t mqueue -o nosuid,nodev,noexec mqueue "$R/dev/mqueue" 2>/dev/null || true
    ln -s /proc/self/fd "$R/dev/fd"
    ln -s /proc/self/fd/0 "$R/dev/stdin"
    ln -s /proc/self/fd/1 "$R/dev/stdout"
    ln -s /proc/self/fd/2 "$R/dev/stderr"
    # /run: a tmpfs, as systemd makes it (ip netns, lock files and sockets go there).
    mount -t tmpfs -o nosuid,nodev,mode=0755 tmpfs "$R/run"
    mkdir -m 1777 "$R/run/lock"
    # The machine's Rust toolchain, read-only: rustup's directory and the rustup binary. The
    # proxies (cargo, rustc, ...) are symlinks to it in the fresh root's own ~/.cargo/bin, so that
    # `cargo install` there writes to the fresh root, not to the machine, and sees nothing the
    # machine has installed (cargo-nextest, for one).
    mkdir -p "$R/root/.rustup" "$R/root/.cargo/bin"
    mount -o bind,ro "$RUSTUP_DIR" "$R/root/.rustup"
    touch "$R/root/.cargo/bin/rustup"
    mount -o bind,ro "$RUSTUP_BIN" "$R/root/.cargo/bin/rustup"
    mkdir "$R/.fresh-machine-old-root"
    cd "$R"
    pivot_root . .fresh-machine-old-root
    cd /
    umount -l /.fresh-machine-old-root
    rmdir /.fresh-machine-old-root
    hostname fresh-machine 2>/dev/null || true

    CMDS=("$@")
    # A login shell's environment on a fresh machine, plus the registry settings passed in.
    ENVV=(HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 TERM=${TERM:-dumb}
        PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
    while IFS= read -r -d '' kv; do ENVV+=("$kv"); done < <(env -0 | grep -zE '^([a-zA-Z]+_proxy|[A-Z]+_PROXY|CARGO_(HTTP|NET|REGISTRY|REGISTRIES)_[A-Z_]+)=' || true)

    totals() {
        awk '/^test result:/ { n++; for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
             END { if (n) printf "%d passed, %d failed, %d ignored (%d test binaries)", p, f, s, n; else printf "none run" }' "$1"
    }
    mkdir -m 0700 /var/tmp/fresh-machine-logs
    results=()
    status=0
    for i in 0 1; do
        cmd=${CMDS[$i]}
        logf=/var/tmp/fresh-machine-logs/command$((i + 1)).log
        if ((i == 0)); then
            how="in the foreground"
            printf '\n==== command 1, %s: %s ====\n' "$how" "$cmd"
            start=$(date +%s.%N)
            set +e
            (cd /root/main && exec env -i "${ENVV[@]}" bash -c "$cmd") 2>&1 | tee "$logf"
            rc=${PIPESTATUS[0]}
            set -e
        else
            how="as a background job of a non-interactive script (SIGINT, SIGQUIT ignored)"
            printf '\n==== command 2, %s: %s ====\n' "$how" "$cmd"
            # The wrapper is a non-interactive bash: `cmd &` starts cmd with SIGINT and SIGQUIT
            # ignored and stdin from /dev/null. It checks the ignore took, then waits.
            # shellcheck disable=SC2016
            wrapper='bash -c "$1" &
job=$!
for _ in $(seq 50); do
    ign=$(awk "/^SigIgn:/ { print \$2 }" /proc/$job/status 2>/dev/null) || break
    (( (0x$ign & 6) == 6 )) && break
    sleep 0.1
done
if [[ -n ${ign:-} ]] && (( (0x$ign & 6) == 6 )); then
    echo "fresh-machine: the job (pid $job) runs with SIGINT and SIGQUIT ignored (SigIgn $ign)"
elif [[ -z ${ign:-} ]]; then
    echo "fresh-machine: the job (pid $job) ended before its signal dispositions could be read"
else
    echo "fresh-machine: the job (pid $job) did not show SIGINT and SIGQUIT ignored (SigIgn $ign)" >&2
fi
wait $job'
            start=$(date +%s.%N)
            set +e
            (cd /root/main && exec env -i "${ENVV[@]}" bash -c "$wrapper" wrapper "$cmd") 2>&1 | tee "$logf"
            rc=${PIPESTATUS[0]}
            set -e
        fi
        end=$(date +%s.%N)
        secs=$(awk -v a="$start" -v b="$end" 'BEGIN { s = b - a; printf "%d min %04.1f s", s / 60, s - 60 * int(s / 60) }')
        if ((i == 0)); then t="(the demo runs no tests)"; else t=$(totals "$logf"); fi
        results+=("command $((i + 1)) ($how): exit $rc, wall time $secs, tests: $t")
        ((rc == 0)) || status=1
        if ((rc != 0)); then
            grep -E '^(test .* FAILED|failures:|    [^ ].*$)' "$logf" | grep -E 'FAILED|^    [a-z]' | head -40 >&2 || true
        fi
    done
    printf '\n==== fresh-machine summary (%s) ====\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
    printf '%s\n' "${results[@]}"
    exit $status
fi

# ---------------------------------------------------------------------------------------------
# On the machine.
# ---------------------------------------------------------------------------------------------
[[ $EUID -eq 0 ]] || die "run as root (it builds a root file system and mounts in a namespace)"
[[ $(uname -s) == Linux ]] || die "needs Linux"

# The README's two commands: the first fenced block after "Set up on a fresh Debian 12 machine"
# (or two commands given as arguments, to try a change of them).
if (($# == 2)); then
    CMDS=("$1" "$2")
elif (($# == 0)); then
    readarray -t CMDS < <(awk '/^Set up on a fresh Debian 12 machine/ { want = 1 } want && /^```/ { if (inside) exit; inside = 1; next } inside && NF' "$REPO/README.md")
else
    die "usage: $0 [COMMAND1 COMMAND2]"
fi
((${#CMDS[@]} == 2)) || die "README.md: expected two commands in the first code block after \"Set up on a fresh Debian 12 machine\", found ${#CMDS[@]}"

# The Rust toolchain the fresh machine gets: this machine's rustup.
RUSTUP_DIR=${RUSTUP_HOME:-$HOME/.rustup}
RUSTUP_BIN=${CARGO_HOME:-$HOME/.cargo}/bin/rustup
[[ -d $RUSTUP_DIR/toolchains && -x $RUSTUP_BIN ]] || die "no rustup toolchain at $RUSTUP_DIR (rustup at $RUSTUP_BIN): the README requires Rust, and this check gives the fresh machine this machine's"

for t in git unshare setpriv pivot_root findmnt; do
    command -v "$t" >/dev/null || die "$t not found (git; util-linux for the others)"
done
if ! command -v mmdebstrap >/dev/null; then
    log "installing mmdebstrap"
    DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends mmdebstrap >/dev/null ||
        { apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends mmdebstrap >/dev/null; }
fi

# This machine's apt sources and registry settings.
SOURCES=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && grep -qE '^[[:space:]]*[^#[:space:]]' "$f" && SOURCES+=("$f")
done
((${#SOURCES[@]})) || die "no apt sources configured in /etc/apt/sources.list{,.d}"
grep -qw bookworm "${SOURCES[@]}" || log "warning: this machine's apt sources do not name bookworm; building Debian 12 from them anyway"
APTOPTS=()
for f in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
    # Only the settings that reach a registry (proxies, validity checks of a snapshot mirror, TLS).
    [[ -f $f ]] && grep -qE '^[[:space:]]*Acquire' "$f" && APTOPTS+=(--aptopt="$f")
done

if [[ -n $(git -C "$REPO" status --porcelain --untracked-files=no) ]]; then
    log "warning: uncommitted changes in $REPO are not checked: the fresh machine gets the committed HEAD"
fi

# Trees left by runs that were killed with -9: the owner's pid is in the name, and it is gone.
for old in "$BASE/$PREFIX"*; do
    [[ -d $old && ! -L $old && -O $old ]] || continue
    pid=${old#"$BASE/$PREFIX"}
    pid=${pid%%.*}
    [[ $pid =~ ^[0-9]+$ ]] || continue
    if kill -0 "$pid" 2>/dev/null; then continue; fi
    log "removing $old, left by a run that was killed"
    { findmnt -rn -o TARGET | grep -F "$old/" | sort -r | while read -r m; do umount -l "$m"; done; } || true
    rm -rf --one-file-system "$old" || log "warning: could not remove all of $old"
done

WORK=$(mktemp -d "$BASE/$PREFIX$$.XXXXXX")
ROOT=$WORK/root
NS_PID=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    # Every step runs, whatever the one before did (a grep that matches nothing included).
    set +e +o pipefail
    if [[ -n $NS_PID ]] && kill -0 "$NS_PID" 2>/dev/null; then
        # unshare --kill-child: its child, the PID namespace's init, gets SIGKILL with it, and the
        # kernel kills every process of the namespace.
        kill -KILL "$NS_PID" 2>/dev/null || true
        wait "$NS_PID" 2>/dev/null || true
    fi
    # mmdebstrap's own mounts, if it was interrupted (the namespace's mounts died with it).
    findmnt -rn -o TARGET | grep -F "$WORK/" | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf --one-file-system "$WORK"
    if [[ -e $WORK ]]; then
        printf 'fresh-machine: error: could not remove %s\n' "$WORK" >&2
        ((rc)) || rc=1
    else
        log "removed the fresh root and everything in it"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

t0=$(date +%s)
log "building a fresh Debian 12 root in $ROOT from ${SOURCES[*]}"
# The machine's CA certificates (a company proxy's CA) go in before ca-certificates is set up, so
# that its bundle includes them; the machine's downloaded packages seed the apt cache.
mmdebstrap --quiet --variant=important --include=ca-certificates "${APTOPTS[@]}" \
    --setup-hook='mkdir -p "$1/usr/local/share/ca-certificates" "$1/var/cache/apt/archives"' \
    --setup-hook='sync-in /usr/local/share/ca-certificates /usr/local/share/ca-certificates' \
    --setup-hook='[ ! -d /etc/apt/auth.conf.d ] || { mkdir -p "$1/etc/apt/auth.conf.d"; cp -a /etc/apt/auth.conf.d/. "$1/etc/apt/auth.conf.d/"; }' \
    --setup-hook='sync-in /var/cache/apt/archives /var/cache/apt/archives' \
    bookworm "$ROOT" "${SOURCES[@]}"
# Downloaded packages of the machine stay available to setup.sh's apt-get in the fresh root.
find /var/cache/apt/archives -maxdepth 1 -name '*.deb' -exec cp -t "$ROOT/var/cache/apt/archives/" {} + 2>/dev/null || true
# Registry settings of other clients: cargo's configuration, pip's.
for f in "${CARGO_HOME:-$HOME/.cargo}/config.toml" "${CARGO_HOME:-$HOME/.cargo}/config"; do
    [[ -f $f ]] && install -D -m 0600 "$f" "$ROOT/root/.cargo/$(basename "$f")"
done
[[ -f /etc/pip.conf ]] && install -m 0644 /etc/pip.conf "$ROOT/etc/pip.conf"
# rustup's proxies, as rustup installs them, pointing at the read-only rustup mounted inside.
mkdir -p "$ROOT/root/.cargo/bin"
for p in "$(dirname "$RUSTUP_BIN")"/*; do
    [[ -L $p && $(readlink "$p") == rustup ]] && ln -s rustup "$ROOT/root/.cargo/bin/$(basename "$p")"
done
[[ -f ${CARGO_HOME:-$HOME/.cargo}/env ]] && cp "${CARGO_HOME:-$HOME/.cargo}/env" "$ROOT/root/.cargo/env"
log "fresh root ready in $(($(date +%s) - t0)) s ($(du -sh --one-file-system "$ROOT" | cut -f1))"

git clone -q --no-hardlinks "$REPO" "$ROOT/root/main"
chmod 0700 "$ROOT/root"
log "cloned $(git -C "$ROOT/root/main" log -1 --format='%h %s' | cut -c1-100) into /root/main (/root mode $(stat -c %a "$ROOT/root"))"

# pdeathsig: if this script is killed with -9, unshare gets SIGKILL, and with it the namespace.
setpriv --pdeathsig KILL unshare --mount --pid --ipc --uts --fork --kill-child --propagation private \
    bash "$SELF" --inside "$ROOT" "$RUSTUP_DIR" "$RUSTUP_BIN" "${CMDS[@]}" &
NS_PID=$!
set +e
wait "$NS_PID"
rc=$?
set -e
NS_PID=
log "the fresh machine's last process has ended (exit $rc); total $(($(date +%s) - t0)) s"
exit "$rc"
