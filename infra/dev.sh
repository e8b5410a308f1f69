#!/usr/bin/env bash
# The README's dev command: the whole service on loopback (moto, Zoom sandbox, local gateway on
# $PORT, default 3000), with curl examples and fresh dev tokens. Ctrl-C stops everything.
#
#   bash infra/dev.sh              # the stack
#   bash infra/dev.sh --receiver   # and beside it a platform's event receiver (infra/event-receiver,
#                                  # port $RECEIVER_PORT, default a free one) that verifies every
#                                  # delivery with the standardwebhooks library and prints one line
#                                  # per event
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
receiver=0
for arg in "$@"; do
  case "$arg" in
    --receiver) receiver=1 ;;
    *) echo "usage: bash infra/dev.sh [--receiver]" >&2; exit 2 ;;
  esac
done
bash infra/venv.sh >/dev/null
cargo build --quiet --bin local-gateway --bin local-stack
if ((receiver == 0)); then
  exec target/debug/local-stack
fi

# The receiver's first line is its URL; the rest (one line per verified event) streams to the
# terminal beside the stack's output. Both stop on Ctrl-C (one process group) or on exit.
exec 3< <(exec .venv/bin/python -u infra/event-receiver/receiver.py --port "${RECEIVER_PORT:-0}")
receiver_pid=$!
trap 'kill "$receiver_pid" 2>/dev/null || true' EXIT
read -r first <&3 || { echo "the event receiver did not start" >&2; exit 1; }
url="${first#listening on }"
cat <&3 &
api="http://127.0.0.1:${PORT:-3000}"
# PORT=0: the gateway picks its port; the banner below names it.
if [[ "${PORT:-3000}" == 0 ]]; then api="API_URL"; fi
cat <<TEXT

Event receiver  $url   (verifies with the standardwebhooks library; one line per event)
  Subscribe clinic-1 (a service token from the banner below), then give the receiver the secret
  the answer shows once:
curl -sS -X POST $api/org/webhooks -H 'Authorization: Bearer SERVICE_TOKEN' -H 'Content-Type: application/json' -d '{"url":"$url/events","events":["meeting.*","participant.*","conversation.call"]}'
curl -sS -X POST $url/_control/secret -H 'Content-Type: application/json' -d '{"secret":"WHSEC_FROM_THE_ANSWER"}'
  What arrived: curl -sS $url/_control/deliveries
TEXT
target/debug/local-stack
