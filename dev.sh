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

setup() {  # $1: extras, e.g. "dev" or "dev,bench"
    need_python
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV"
    fi
    local stamp="$VENV/.deeting-$1-$(sha256sum pyproject.toml | cut -c1-16)"
    if [ ! -e "$stamp" ]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$1]"
        touch "$stamp"
    fi
}

install_official_plugins() {
    for plugin in plugins/*/; do
        name="$(basename "$plugin")"
        if ! "$VENV/bin/deeting" plugin info "$name" >/dev/null 2>&1; then
            "$VENV/bin/deeting" plugin install "$plugin" </dev/null || true
        fi
    done
}

cmd="${1:-run}"
[ $# -gt 0 ] && shift
case "$cmd" in
    run)
        setup dev
        install_official_plugins
        exec "$VENV/bin/deeting" "$@"
        ;;
    test)
        setup "dev,bench"
        "$VENV/bin/ruff" check deeting_tui ci plugins tests bench
        "$VENV/bin/ruff" format --check deeting_tui ci plugins tests bench
        "$VENV/bin/mypy" deeting_tui
        exec "$VENV/bin/python" -m pytest -q "$@" </dev/null
        ;;
    bench)
        setup "dev,bench"
        exec "$VENV/bin/python" -m bench "$@"
        ;;
    *)
        echo "usage: ./dev.sh run|test|bench [ARGS…]" >&2
        exit 2
        ;;
esac
