#!/usr/bin/env bash
# oxtail idle watcher: a Claude Code Stop hook registered with
# "asyncRewake": true, so it runs in the background once the turn has ended
# and wakes the model when it exits 2. It waits for mail addressed to this
# session and then delivers it exactly as stop.sh would (same lock, same
# renderer, same receipts) but as plain text on stderr, which Claude Code
# shows the model as a Stop hook notification; then exits 2.
#
# It arms only in the interactive TUI (CLAUDE_CODE_ENTRYPOINT=cli: in
# `claude -p` the hook would run synchronously and block the run), only once
# stop.sh let the stop happen (activity marker `idle`), and disarms (exit 0)
# when the agent is busy again, when a newer instance took over the session
# (~/.oxtail/idlewatch/<session>: newest wins), when its Claude Code process
# is gone, or at its deadline (OXTAIL_IDLE_WATCH_MAX_S, default 3300 s,
# inside the 3600 s hook timeout install-hook sets). The waiting itself is
# `oxtail wait-mail` (file-change notifications, no polling); without the
# binary it falls back to stat checks with a sleep backoff (0.1 s to 2 s).
# Whenever it cannot deliver, the mail stays queued. OXTAIL_IDLE_WATCH=off
# disables it.

[ -n "${HOME:-}" ] || exit 0
[ -t 0 ] && exit 0
[ "${CLAUDE_CODE_ENTRYPOINT:-}" = cli ] || exit 0
case "${OXTAIL_IDLE_WATCH:-}" in [Oo][Ff][Ff] | 0 | [Ff][Aa][Ll][Ss][Ee]) exit 0 ;; esac
case "${BASH_SOURCE[0]}" in
  */*) _oxh_d=${BASH_SOURCE[0]%/*} ;;
  *) _oxh_d=. ;;
esac
. "$_oxh_d/oxtail-hook-common.sh" || exit 0
. "$OXH_LIB/oxtail-hook-deliver.sh" || exit 0

oxh_read_head
# The whole payload is read (Claude Code writes it before the hook is
# backgrounded), and a payload whose session_id is not the first key is parsed.
oxh_scan_payload
[ -n "$OXH_SID" ] || exit 0

OXW_REC=$OXH_DIR/idlewatch/$OXH_SID
OXW_TOKEN=$$.$RANDOM$RANDOM

# oxw_now_ms: OXW_NOW = ms since the epoch (bash 5 builtin, else date).
oxw_now_ms() {
  oxh_now_ms
  OXW_NOW=$OXH_NOW_MS
  [ -n "$OXW_NOW" ] || OXW_NOW=$(($(date +%s) * 1000))
}

# oxw_publish: write this instance's record (atomic), taking the session
# over from any older instance.
oxw_publish() {
  local d=$OXH_DIR/idlewatch t
  [ -d "$d" ] || mkdir -p -m 700 "$d" 2>/dev/null || return 0
  t=$d/.$OXH_SID.tmp.$$
  OXW_BODY="{\"schema_version\":1,\"session_id\":\"$OXH_SID\",\"token\":\"$OXW_TOKEN\",\"pid\":$$,\"client_pid\":$OXW_CLIENT,\"armed_at_ms\":$OXW_NOW,\"until_ms\":$OXW_UNTIL}"
  if { printf '%s' "$OXW_BODY" >"$t"; } 2>/dev/null; then
    mv -f "$t" "$OXW_REC" 2>/dev/null || rm -f "$t" 2>/dev/null
  fi
}

# oxw_mine: the record is (still) ours; a missing record is rewritten.
oxw_mine() {
  local cur=
  if [ ! -f "$OXW_REC" ]; then
    oxw_publish
    return 0
  fi
  IFS= read -r -d '' cur 2>/dev/null <"$OXW_REC"
  [ "$cur" = "$OXW_BODY" ]
}

oxw_quit() {
  oxw_mine && [ -f "$OXW_REC" ] && rm -f "$OXW_REC" 2>/dev/null
  [ -n "${OXH_TEXT_OUT:-}" ] && rm -f "$OXH_TEXT_OUT" 2>/dev/null
  exit "$1"
}

# oxw_marker: OXW_STATE = the activity marker's word (empty if none).
oxw_marker() {
  OXW_STATE=
  IFS= read -r OXW_STATE 2>/dev/null <"$OXH_DIR/activity/$OXH_SID"
  :
}

# oxw_bin: the oxtail binary: $OXTAIL_BIN, the path install-hook recorded
# beside the hooks, or oxtail on PATH (empty: poll in bash).
oxw_bin() {
  OXW_BIN=${OXTAIL_BIN:-}
  if [ -z "$OXW_BIN" ] && [ -f "$OXH_LIB/oxtail-bin.path" ]; then
    IFS= read -r OXW_BIN 2>/dev/null <"$OXH_LIB/oxtail-bin.path"
  fi
  [ -n "$OXW_BIN" ] && [ -x "$OXW_BIN" ] && return 0
  OXW_BIN=$(command -v oxtail 2>/dev/null)
  [ -n "$OXW_BIN" ] && [ -x "$OXW_BIN" ] || OXW_BIN=
}

# oxw_poll_wait: the bash fallback of `oxtail wait-mail` (same exit codes):
# stat checks with a sleep backoff.
oxw_poll_wait() {
  local nap=0.1 n=0
  while :; do
    oxw_now_ms
    [ "$OXW_NOW" -lt "$OXW_UNTIL" ] || return 6
    [ "$OXW_CLIENT" = 0 ] || kill -0 "$OXW_CLIENT" 2>/dev/null || return 5
    oxw_mine || return 4
    oxw_marker
    [ "$OXW_STATE" = busy ] && return 3
    if [ -z "$OXW_AFTER" ]; then
      oxh_candidates
      [ ${#OXH_PIDS[@]} -gt 0 ] && return 0
    fi
    sleep "$nap" 2>/dev/null || return 6
    n=$((n + 1))
    case $n in 5) nap=0.5 ;; 15) nap=1 ;; 30) nap=2 ;; esac
    # After a held notice: only a new message counts; re-check from now on.
    [ $((n % 30)) -eq 0 ] && OXW_AFTER=
  done
}

# oxw_wait: wait for mail; returns the wait-mail exit code.
oxw_wait() {
  if [ -n "$OXW_BIN" ]; then
    local rc
    if [ -n "$OXW_AFTER" ]; then
      "$OXW_BIN" wait-mail --session "$OXH_SID" --token "$OXW_TOKEN" \
        --client-pid "$OXW_CLIENT" --until-ms "$OXW_UNTIL" --after-change </dev/null >/dev/null 2>&1
    else
      "$OXW_BIN" wait-mail --session "$OXH_SID" --token "$OXW_TOKEN" \
        --client-pid "$OXW_CLIENT" --until-ms "$OXW_UNTIL" </dev/null >/dev/null 2>&1
    fi
    rc=$?
    case $rc in 0 | 3 | 4 | 5 | 6) return $rc ;; esac
    OXW_BIN=
  fi
  oxw_poll_wait
}

oxw_now_ms
OXW_MAX=3300
case "${OXTAIL_IDLE_WATCH_MAX_S:-}" in '' | *[!0-9]*) ;; *) OXW_MAX=$OXTAIL_IDLE_WATCH_MAX_S ;; esac
[ "$OXW_MAX" -le 3500 ] || OXW_MAX=3500
OXW_UNTIL=$((OXW_NOW + OXW_MAX * 1000))
# The Claude Code process to outlive: CLAUDE_PID, else the parent of the
# `sh -c` wrapper (oxh_client_pid; 0 = unknown, not checked).
oxh_client_pid ps
OXW_CLIENT=${OXH_CPID:-0}
oxw_publish
oxw_bin

# Arm: stop.sh runs at the same Stop; once it let the stop happen the marker
# says idle. Still busy after a few seconds means it blocked the stop to
# deliver (the turn goes on, and the next Stop starts a new watcher).
_oxw_i=0
while :; do
  oxw_marker
  [ "$OXW_STATE" = busy ] || break
  _oxw_i=$((_oxw_i + 1))
  [ "$_oxw_i" -le 50 ] || oxw_quit 0
  oxw_mine || exit 0
  sleep 0.1 2>/dev/null || oxw_quit 0
done

# A message too large for any hook is announced once (its id is kept in
# <record>.held across instances), never at every Stop: a wake loop.
OXW_HELD_FILE=$OXW_REC.held
OXW_HELD_SEEN=
IFS= read -r OXW_HELD_SEEN 2>/dev/null <"$OXW_HELD_FILE"
OXW_AFTER=
_oxw_nap=0
while :; do
  oxw_wait
  [ $? -eq 0 ] || oxw_quit 0
  oxw_mine || exit 0
  oxw_marker
  [ "$OXW_STATE" = busy ] && oxw_quit 0
  oxh_candidates
  if [ ${#OXH_PIDS[@]} -gt 0 ]; then
    OXH_TEXT_OUT=$OXH_DIR/idlewatch/.text.$$.$RANDOM
    OXH_SKIP_HELD=$OXW_HELD_SEEN
    if oxh_deliver idlewatch; then
      if [ -n "$OXH_HELD" ]; then
        { printf '%s\n' "$OXH_HELD" >"$OXW_HELD_FILE"; } 2>/dev/null
      else
        rm -f "$OXW_HELD_FILE" 2>/dev/null
      fi
      oxw_quit 2
    fi
    if [ -n "$OXH_HELD" ]; then
      # Announced already: wait for the mailboxes to change.
      OXW_AFTER=1
      continue
    fi
  fi
  # Nothing deliverable right now (a lock held elsewhere, a torn line):
  # back off, then look again.
  case $_oxw_nap in 0) _oxw_nap=0.2 ;; 0.2) _oxw_nap=0.5 ;; *) _oxw_nap=2 ;; esac
  sleep "$_oxw_nap" 2>/dev/null || oxw_quit 0
done
