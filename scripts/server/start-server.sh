# Sourced by the scripts in scripts/server/: starts `"$VLM" serve --port 0 "${SERVE_ARGS[@]}"` on loopback with its
# stderr in $LOG, stops it on exit, and waits until it prints the port it listens on (sets $PORT and
# $SERVER). Exits with the server's log when it dies or does not start within 60 s.
LOG=$(mktemp)
"$VLM" serve --port 0 ${SERVE_ARGS[@]+"${SERVE_ARGS[@]}"} 2> "$LOG" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -f "$LOG"' EXIT
PORT=""
for _ in $(seq 1 600); do
    PORT=$(sed -n 's#.*listening on http://127.0.0.1:\([0-9]*\)/.*#\1#p' "$LOG" | head -1)
    [ -n "$PORT" ] && break
    kill -0 $SERVER 2>/dev/null || { cat "$LOG"; exit 1; }
    sleep 0.1
done
[ -n "$PORT" ] || { echo "the server did not start"; cat "$LOG"; exit 1; }
