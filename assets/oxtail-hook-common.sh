# oxtail-hook-common.sh — what every oxtail hook needs once it has work to do:
# the session id, this session's non-empty mailboxes, the activity marker.
#
# Sourced by pretooluse.sh, stop.sh and userpromptsubmit.sh (installed side by
# side in ~/.oxtail/hooks/ with oxtail-hook-deliver.sh, oxtail-hook.awk and
# oxtail-lock.sh). Bash 3.2+. Kept small: it is parsed on every hook run that
# finds any mail at all. Sourcing defines functions, sets umask 077 (markers
# and survivor files are private) and LC_ALL=C (byte semantics everywhere).
#
# What it defends: only a top-level "session_id" made of [A-Za-z0-9_-] is used
# (spaces around the colon allowed, nested tool_input keys ignored); finding
# mailboxes uses builtins only; markers are written atomically (temp + rename).

umask 077
# Bytes everywhere: awk lengths, bash pattern matching (fast on large strings).
LC_ALL=C
export LC_ALL

OXH_DIR=$HOME/.oxtail
OXH_SID=

# Directory holding this file (the installed hooks dir).
case "${BASH_SOURCE[0]}" in
  */*) OXH_LIB=${BASH_SOURCE[0]%/*} ;;
  *) OXH_LIB=. ;;
esac

# ---------------------------------------------------------------- stdin ----

# oxh_read_head: read at most 128 bytes of stdin (builtin, no process) into
# OXH_HEAD and take session_id from it when it is the first key.
oxh_read_head() {
  OXH_HEAD=
  IFS= read -r -d '' -n 128 OXH_HEAD || :
  local re='^[[:space:]]*[{][[:space:]]*"session_id"[[:space:]]*:[[:space:]]*"([A-Za-z0-9_-]+)"'
  if [[ $OXH_HEAD =~ $re ]]; then
    OXH_SID=${BASH_REMATCH[1]}
  fi
}

# The awk program beside this file (scan and render modes).
OXH_AWK=$OXH_LIB/oxtail-hook.awk

# oxh_scan_payload: full top-level parse of OXH_HEAD + the rest of stdin.
# Sets OXH_SID (if valid), OXH_AGENT, OXH_STOP_ACTIVE.
oxh_scan_payload() {
  local out sid rest
  out=$(OXH_MODE=scan OXH_HEAD=$OXH_HEAD exec awk -f "$OXH_AWK" 2>/dev/null)
  sid=${out%%$'\t'*}
  rest=${out#*$'\t'}
  OXH_AGENT=${rest%%$'\t'*}
  OXH_STOP_ACTIVE=${rest#*$'\t'}
  case "$sid" in
    '' | *[!A-Za-z0-9_-]*) OXH_SID= ;;
    *) OXH_SID=$sid ;;
  esac
}

# ------------------------------------------------------------ mailboxes ----

# oxh_candidates: OXH_PIDS = pids whose mailbox is non-empty and whose
# registry file names this session (builtins only).
oxh_candidates() {
  OXH_PIDS=()
  [ -n "$OXH_SID" ] || return 0
  [ -d "$OXH_DIR/sessions" ] && [ -d "$OXH_DIR/mailboxes" ] || return 0
  local f pid reg re
  re='"session_id"[[:space:]]*:[[:space:]]*"'"$OXH_SID"'"'
  for f in "$OXH_DIR"/mailboxes/*.jsonl; do
    [ -s "$f" ] || continue
    # Never read or empty a mailbox that is a symlink (it may point outside
    # ~/.oxtail); the servers refuse it too.
    [ -L "$f" ] && continue
    pid=${f##*/}
    pid=${pid%.jsonl}
    case "$pid" in '' | *[!0-9]*) continue ;; esac
    [ -f "$OXH_DIR/sessions/$pid.json" ] || continue
    reg=
    IFS= read -r -d '' reg <"$OXH_DIR/sessions/$pid.json" 2>/dev/null
    [[ $reg =~ $re ]] || continue
    OXH_PIDS+=("$pid")
  done
}

# ------------------------------------------------------------- activity ----

# oxh_mark busy|idle: atomic, private write of this session's marker.
oxh_mark() {
  [ -n "$OXH_SID" ] || return 0
  local d=$OXH_DIR/activity t
  t=$d/.$OXH_SID.tmp.$$
  [ -d "$d" ] || mkdir -p -m 700 "$d" 2>/dev/null || return 0
  if { printf '%s' "$1" >"$t"; } 2>/dev/null; then
    mv -f "$t" "$d/$OXH_SID" 2>/dev/null || rm -f "$t" 2>/dev/null
  fi
  return 0
}
