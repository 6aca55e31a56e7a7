#!/usr/bin/env bash
# The TUI replaying a large flow file in a real terminal (tmux): seconds until every line is read,
# peak memory, and how long SIGINT takes to end it (terminal restored) once it is read.
# Then again: `?` (help) one second into the load, how long until it shows, then SIGINT.
# No cluster (an empty $KUBECONFIG and a home without ~/.kube): a file is replayed unscoped.
# Needs tmux. Usage: benches/tui_file_load.sh [BINARY]   (figures in docs/performance.md)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
binary=$(realpath "${1:-target/release/flowtrace}")
flows=/tmp/flowtrace-bench-big/flows.jsonl
[ -f "$flows" ] || target/release/flowtrace demo --export /tmp/flowtrace-bench-big --flows 400000 >/dev/null
lines=$(wc -l < "$flows" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta')
state=$(mktemp -d)
socket="flowtrace-bench-$$"
trap 'tmux -L "$socket" kill-server 2>/dev/null || true; rm -rf "$state"' EXIT
start=$(date +%s.%N)
tmux -L "$socket" new-session -d -s bench -x 160 -y 48 \
    -e XDG_STATE_HOME="$state" -e XDG_CONFIG_HOME="$state" -e KUBECONFIG= -e HOME="$state" \
    "exec $binary --source file:$flows"
pid=$(tmux -L "$socket" display -p -t bench '#{pane_pid}')
until tmux -L "$socket" capture-pane -p -t bench | head -1 | grep -q "$lines read"; do sleep 0.05; done
echo "$lines lines read in $(echo "$(date +%s.%N) - $start" | bc) s"
grep VmHWM "/proc/$pid/status"
tmux -L "$socket" capture-pane -p -t bench | head -1
interrupt() {
    signalled=$(date +%s.%N)
    kill -INT "$pid"
    # Until it has exited (a zombie waiting for tmux to reap it has).
    while [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do
        sleep 0.01
    done
    echo "SIGINT to exit, $1: $(echo "$(date +%s.%N) - $signalled" | bc) s"
}
interrupt "once read"
tmux -L "$socket" kill-server 2>/dev/null || true
tmux -L "$socket" new-session -d -s bench -x 160 -y 48 \
    -e XDG_STATE_HOME="$state" -e XDG_CONFIG_HOME="$state" -e KUBECONFIG= -e HOME="$state" \
    "exec $binary --source file:$flows"
pid=$(tmux -L "$socket" display -p -t bench '#{pane_pid}')
sleep 1
pressed=$(date +%s.%N)
tmux -L "$socket" send-keys -t bench '?'
until tmux -L "$socket" capture-pane -p -t bench | grep -q "Help · keymap"; do sleep 0.01; done
echo "a key while reading, shown in: $(echo "$(date +%s.%N) - $pressed" | bc) s"
tmux -L "$socket" capture-pane -p -t bench | head -1
interrupt "while reading"
