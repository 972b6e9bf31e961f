#!/usr/bin/env bash
# schemathesis (PyPI), which gateway/tests/schemathesis.rs runs against a live
# server's OpenAPI document (/v1/openapi.json), installed once into a
# virtualenv under $DISPATCH_SCHEMATHESIS_CACHE (default
# ~/.cache/dispatch-schemathesis). Python runs only this test tool; the
# product is Rust.
#
#   deploy/api-checks/schemathesis.sh install   # then: export PATH="$(deploy/api-checks/schemathesis.sh path):$PATH"
#   deploy/api-checks/schemathesis.sh path      # the directory holding the command
set -euo pipefail

cache="${DISPATCH_SCHEMATHESIS_CACHE:-$HOME/.cache/dispatch-schemathesis}"
version=4.32.5

install() {
  if [ ! -x "$cache/venv/bin/schemathesis" ] || ! "$cache/venv/bin/schemathesis" --version | grep -q "$version"; then
    python3 -m venv "$cache/venv"
    "$cache/venv/bin/pip" install -q "schemathesis==$version"
  fi
  mkdir -p "$cache/bin"
  ln -sf "$cache/venv/bin/schemathesis" "$cache/bin/schemathesis"
  echo "schemathesis: $("$cache/bin/schemathesis" --version) in $cache/bin"
}

case "${1:-}" in
  install) install ;;
  path) echo "$cache/bin" ;;
  *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
