#!/usr/bin/env bash
# Deeting's one entry point for people and CI.
#   ./dev.sh run [ARGS…]   set up, install the official plugins, run deeting
#   ./dev.sh test [PYTEST ARGS…]   set up with dev extras, lint, run the whole test suite
#   ./dev.sh bench         set up with bench extras, print the benchmark figures
# Idempotent: re-running only installs what is missing. Works as root with no stdin.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${DEETING_VENV:-.venv}"
PY="${PYTHON:-python3}"

need_python() {
    if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "dev.sh: Python 3.11 or newer is needed (found: $("$PY" --version 2>&1))" >&2
        exit 2
    fi
}

# A repeat run starts no Python here: the stamp says the venv holds this pyproject's packages.
setup() {  # $1: extras, e.g. "dev" or "dev,bench"
    local stamp="$VENV/.deeting-$1-$(sha256sum pyproject.toml | cut -c1-16)"
    if [ -x "$VENV/bin/python" ] && [ -e "$stamp" ]; then
        return 0
    fi
    need_python
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    if [ ! -e "$stamp" ]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$1]"
        touch "$stamp"
    fi
}

# The browser faces' libraries (frontend/package.json, pinned by its package-lock.json) are built
# into deeting_tui/web/vendor with the machine's node and npm: `npm ci` checks every package's
# integrity hash. Rebuilt only when the lock, the build script or its entries change.
build_frontend() {
    local stamp="deeting_tui/web/vendor/.built-$(cat frontend/package-lock.json frontend/build.mjs \
        frontend/entries/* | sha256sum | cut -c1-16)"
    [ -e "$stamp" ] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        echo "dev.sh: npm is missing, so the browser faces (deeting view) can't be built;" \
            "install Node.js 20+ and npm" >&2
        return 0
    fi
    (cd frontend && npm ci --no-audit --no-fund --loglevel=error </dev/null >/dev/null &&
        node build.mjs >/dev/null)
    touch "$stamp"
}

# The official plugins as the signed registry the wheel carries (deeting_tui/bundled, see
# registry_tools/bundle.py): what a fresh home installs on its first run, and what plugin list
# offers as available. Rebuilt only when a file under plugins/ changes.
build_bundle() {
    local stamp="deeting_tui/bundled/.dev-$(find plugins -type f ! -path '*/__pycache__/*' \
        ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
    [ -e "$stamp" ] && return 0
    local said
    if ! said="$("$VENV/bin/python" -m registry_tools.bundle 2>&1 </dev/null)"; then
        echo "dev.sh: could not build the bundled plugins (plugin list will not offer them):" >&2
        printf '%s\n' "$said" | tail -3 >&2
        return 0
    fi
    touch "$stamp"
}

# ./dev.sh run keeps folder (dev) installs of plugins/, so an edit there is what runs (reinstall
# with --force). One deeting process for all of them (one per plugin cost ~0.4 s each on every
# run): --missing leaves alone a plugin installed at any version. DEETING_BUNDLE= keeps a fresh
# home's first run from installing the bundled copies first; once these are installed the home
# is no longer fresh. A plugin that fails to install is said and does not keep the chat from
# starting.
install_official_plugins() {
    DEETING_BUNDLE= "$VENV/bin/deeting" plugin install --missing plugins/*/ </dev/null || true
}

# tests/integration/test_tmux_chat.py drives the real chat in tmux (skipped without it). As root
# with apt-get (CI's clean Debian), install it when missing: quietly, never asking; the package
# lists are refreshed only when the first try fails.
ensure_tmux() {
    command -v tmux >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 tmux)
        if "${apt[@]}" >/dev/null 2>&1 </dev/null ||
            { apt-get update -qq </dev/null >/dev/null && "${apt[@]}" >/dev/null </dev/null; }; then
            return 0
        fi
        echo "dev.sh: could not install tmux; the end-to-end chat test will be skipped" >&2
    else
        echo "dev.sh: tmux is missing, so the end-to-end chat test will be skipped" \
            "(install tmux, e.g. apt-get install tmux, or run ./dev.sh test as root)" >&2
    fi
}

# tests/web drives the browser faces in Debian's Chromium through Playwright (skipped without
# it; `playwright install` needs a download this network refuses). As root, install it.
ensure_chromium() {
    local path
    for path in /usr/bin/chromium-headless-shell /usr/bin/chromium; do
        [ -x "$path" ] && return 0
    done
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0
            chromium-headless-shell)
        if "${apt[@]}" >/dev/null 2>&1 </dev/null ||
            { apt-get update -qq </dev/null >/dev/null && "${apt[@]}" >/dev/null </dev/null; }; then
            return 0
        fi
        echo "dev.sh: could not install chromium-headless-shell; the browser tests will be skipped" >&2
    else
        echo "dev.sh: Chromium is missing, so the browser tests will be skipped" \
            "(apt-get install chromium-headless-shell, or run ./dev.sh test as root)" >&2
    fi
}

# tests/sandbox/test_unprivileged.py re-runs the escape suite as an unprivileged user, who cannot
# reach /root (where our interpreter may live) nor anything else private to root. So it gets its
# own venv, "the kit": made from a system Python that others can run, at a world-readable place,
# with the libraries that suite needs pinned to the versions in $VENV. Built as root on Linux only.
KIT="${DEETING_UNPRIV_KIT:-/var/tmp/deeting-unpriv-kit}"
# rich: test_escape_terminal.py draws script mode's cards on a pseudo-terminal, as a user sees them.
KIT_PACKAGES=(orjson pyyaml jsonschema jsonschema-rs pynacl platformdirs httpx cffi google-re2 rich packaging installer mcp pytest pytest-asyncio)
# Exits 0 if this Python is 3.11+, can make venvs, and others can run it and read its stdlib.
KIT_PYTHON_CHECK='
import os, sys, sysconfig
if sys.version_info < (3, 11):
    sys.exit(1)
import ensurepip, venv
def reachable(path):
    path = os.path.realpath(path)
    if os.stat(path).st_mode & 0o005 != 0o005:
        return False
    while path != "/":
        path = os.path.dirname(path)
        if not os.stat(path).st_mode & 0o001:
            return False
    return True
sys.exit(not (reachable(sys.executable) and reachable(sysconfig.get_paths()["stdlib"])))
'
# Every distribution in $VENV as name==version (not deeting itself): the kit's constraints.
KIT_PINS='
import importlib.metadata as m
pins = {f"{d.name}=={d.version}" for d in m.distributions()}
print("\n".join(sorted(p for p in pins if not p.lower().startswith("deeting=="))))
'

unprivileged_kit() {
    if [ "$(uname -s)" != Linux ] || [ "$(id -u)" != 0 ]; then
        return 0
    fi
    local base="" candidate
    for candidate in /usr/bin/python3 /usr/local/bin/python3 /usr/bin/python3.1[1-9] \
        /usr/local/bin/python3.1[1-9]; do
        if [ -x "$candidate" ] && "$candidate" -c "$KIT_PYTHON_CHECK" 2>/dev/null; then
            base="$(readlink -f "$candidate")"
            break
        fi
    done
    if [ -z "$base" ]; then
        export DEETING_UNPRIV_SKIP="dev.sh found no Python 3.11+ outside /root that others can run"
        echo "dev.sh: $DEETING_UNPRIV_SKIP; the unprivileged escape run will be skipped" >&2
        return 0
    fi
    # Root runs pip in there: only in a directory that is ours (or new), never through a link.
    if [ -L "$KIT" ] || { [ -e "$KIT" ] && { [ "$(stat -c %u "$KIT")" != 0 ] ||
        { [ -n "$(ls -A "$KIT")" ] && [ ! -e "$KIT/.deeting-unpriv-kit" ]; }; }; }; then
        echo "dev.sh: $KIT exists and is not a root-owned deeting kit; not touching it" >&2
        export DEETING_UNPRIV_SKIP="$KIT is not a root-owned deeting kit (set DEETING_UNPRIV_KIT)"
        return 0
    fi
    local pins
    pins="$("$VENV/bin/python" -c "$KIT_PINS")"
    local stamp="$KIT/.deeting-kit-$(printf '%s\n' "$base" "${KIT_PACKAGES[*]}" "$pins" |
        sha256sum | cut -c1-16)"
    if [ ! -e "$stamp" ]; then
        if [ ! -x "$KIT/bin/python" ] || [ "$(readlink -f "$KIT/bin/python")" != "$base" ]; then
            "$base" -m venv --clear "$KIT"
        fi
        touch "$KIT/.deeting-unpriv-kit"
        printf '%s\n' "$pins" >"$KIT/constraints.txt"
        "$KIT/bin/python" -m pip install --quiet --disable-pip-version-check \
            -c "$KIT/constraints.txt" --upgrade pip
        "$KIT/bin/python" -m pip install --quiet --disable-pip-version-check \
            -c "$KIT/constraints.txt" "${KIT_PACKAGES[@]}"
        chmod -R a+rX "$KIT"
        rm -f "$KIT"/.deeting-kit-*
        touch "$stamp"
    fi
    export DEETING_UNPRIV_PYTHON="$KIT/bin/python"
}

# Tests of plugin dependencies (tests/wheel_index.py) serve a small fixed set of real wheels from
# 127.0.0.1, never the internet: tabulate (pure) and orjson (native, older than deeting's own, so
# a test can tell the plugin's copy from deeting's), for every Python and platform the registry's
# default targets name. Fetched once, wheels only; the stamp makes repeat runs do nothing.
WHEELHOUSE=tests/.wheelhouse
TEST_WHEELS=(tabulate==0.9.0 orjson==3.11.4)
TEST_WHEEL_PYTHONS=(3.11 3.12 3.13 3.14)
TEST_WHEEL_PLATFORMS=(manylinux_2_17_x86_64 manylinux_2_17_aarch64)

fetch_test_wheels() {
    local stamp="$WHEELHOUSE/.fetched-$(printf '%s\n' "${TEST_WHEELS[*]}" "${TEST_WHEEL_PYTHONS[*]}" \
        "${TEST_WHEEL_PLATFORMS[*]}" | sha256sum | cut -c1-16)"
    [ -e "$stamp" ] && return 0
    local tmp="$WHEELHOUSE.part" py platform
    rm -rf "$tmp"
    mkdir -p "$tmp"
    for py in "${TEST_WHEEL_PYTHONS[@]}"; do
        for platform in "${TEST_WHEEL_PLATFORMS[@]}"; do
            if ! "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check \
                --only-binary :all: --no-deps --dest "$tmp" --python-version "$py" \
                --implementation cp --abi "cp${py/./}" --platform "$platform" \
                "${TEST_WHEELS[@]}" </dev/null; then
                echo "dev.sh: could not download the test wheels; the plugin dependency tests" \
                    "will be skipped" >&2
                rm -rf "$tmp"
                return 0
            fi
        done
    done
    rm -rf "$WHEELHOUSE"
    mv "$tmp" "$WHEELHOUSE"
    touch "$stamp"
}

cmd="${1:-run}"
[ $# -gt 0 ] && shift
case "$cmd" in
    run)
        setup dev
        build_frontend
        build_bundle
        install_official_plugins
        exec "$VENV/bin/deeting" "$@"
        ;;
    test)
        setup "dev,bench"
        unprivileged_kit
        ensure_tmux
        ensure_chromium
        build_frontend
        fetch_test_wheels
        "$VENV/bin/ruff" check deeting_tui ci registry_tools plugins tests bench
        "$VENV/bin/ruff" format --check deeting_tui ci registry_tools plugins tests bench
        "$VENV/bin/mypy" deeting_tui
        exec "$VENV/bin/python" -m pytest -q "$@" </dev/null
        ;;
    bench)
        setup "dev,bench"
        ensure_chromium
        build_frontend
        exec "$VENV/bin/python" -m bench "$@"
        ;;
    *)
        echo "usage: ./dev.sh run|test|bench [ARGS…]" >&2
        exit 2
        ;;
esac
