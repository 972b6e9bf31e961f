#!/usr/bin/env bash
# The two Stripe simulators the payment adapter's tests start
# (payments/tests/stripe.rs), installed once into $DISPATCH_STRIPE_CACHE
# (default ~/.cache/dispatch-stripe):
#   - localstripe, stateful (PyPI), into a virtualenv, started with the
#     Connect objects it lacks (accounts, account links, transfers) added by
#     localstripe_connect.py beside this script;
#   - stripe-mock, Stripe's own stateless one (Go module proxy), by `go install`.
# Python and Go run only these test servers; the product is Rust.
#
#   deploy/stripe/simulators.sh install   # then: export PATH="$(deploy/stripe/simulators.sh path):$PATH"
#   deploy/stripe/simulators.sh path      # the directory holding both commands
set -euo pipefail

cache="${DISPATCH_STRIPE_CACHE:-$HOME/.cache/dispatch-stripe}"
bin="$cache/bin"
localstripe_version=1.15.10

install() {
  mkdir -p "$bin"
  if [ ! -x "$cache/venv/bin/localstripe" ]; then
    python3 -m venv "$cache/venv"
    "$cache/venv/bin/pip" install -q "localstripe==$localstripe_version"
  fi
  # The command the tests start: localstripe with Connect, from this checkout's script.
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  cp "$here/localstripe_connect.py" "$cache/localstripe_connect.py"
  rm -f "$bin/localstripe"
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$cache/venv/bin/python" "$cache/localstripe_connect.py" > "$bin/localstripe"
  chmod +x "$bin/localstripe"
  if [ ! -x "$bin/stripe-mock" ]; then
    if command -v go >/dev/null 2>&1; then
      GOBIN="$bin" go install github.com/stripe/stripe-mock@latest
    else
      echo "stripe: no Go toolchain; the stripe-mock test will say it is skipped" >&2
    fi
  fi
  echo "stripe: simulators in $bin"
}

case "${1:-}" in
  install) install ;;
  path) echo "$bin" ;;
  *) echo "usage: $0 install|path" >&2; exit 2 ;;
esac
