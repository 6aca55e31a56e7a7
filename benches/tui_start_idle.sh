#!/usr/bin/env bash
# The TUI on the demo source, in a real terminal (tmux): time from start to the first frame (from
# the log), then CPU used while idle (no keys; the demo's 15 s windows keep arriving) over 30 s.
# Needs tmux. Usage: benches/tui_start_idle.sh   (figures in docs/performance.md)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
state=$(mktemp -d)
socket="flowtrace-bench-$$"
trap 'tmux -L "$socket" kill-server 2>/dev/null || true; rm -rf "$state"' EXIT
tmux -L "$socket" new-session -d -s bench -x 160 -y 48 \
    -e XDG_STATE_HOME="$state" -e XDG_CONFIG_HOME="$state" \
    "exec target/release/flowtrace"
for _ in $(seq 100); do
    grep -q "first frame" "$state/flowtrace/flowtrace.log" 2>/dev/null && break
    sleep 0.1
done
grep "first frame" "$state/flowtrace/flowtrace.log" | sed 's/.*elapsed=/start to first frame: /'
pid=$(tmux -L "$socket" display -p -t bench '#{pane_pid}')
sleep 5 # let the backfill settle
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
sleep 30
after=$(ticks)
echo "idle CPU over 30 s: $(echo "scale=2; ($after - $before) * 100 / $hz / 30" | bc) %"
