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

# --------------------------------------------------------------- client ----
# Beyond the original: /clear and /resume give a Claude Code session a new id
# while the process and its MCP server keep running. The hooks keep a client
# record, ~/.oxtail/clients/<client pid>.json = the session this Claude Code
# process is on now; the server whose parent is that process follows it.

# oxh_client_pid [ps]: OXH_CPID = the Claude Code process this hook runs
# under: CLAUDE_PID when set (2.1.3xx), else the parent of the `sh -c` that
# runs the hook (or our parent when it is not a shell), read from /proc; with
# "ps", `ps` stands in where /proc is missing (not on the hot path).
oxh_client_pid() {
  OXH_CPID=
  case ${CLAUDE_PID:-} in '' | *[!0-9]*) ;; *) OXH_CPID=$CLAUDE_PID; return 0 ;; esac
  local st= comm= pp= rest
  if [ -r "/proc/$PPID/stat" ]; then
    # "<pid> (<comm>) <state> <ppid> ...": field splitting stays linear.
    { read -r st comm rest pp rest <"/proc/$PPID/stat"; } 2>/dev/null || :
    comm=${comm#\(}
    comm=${comm%\)}
  elif [ "${1:-}" = ps ]; then
    { read -r pp comm; } 2>/dev/null < <(ps -o ppid= -o comm= -p "$PPID" 2>/dev/null)
    st=$pp
  fi
  [ -n "$st" ] || return 0
  comm=${comm##*/}
  case ${comm#-} in
    sh | bash | dash | zsh | ksh | mksh | ash | busybox) OXH_CPID=$pp ;;
    *) OXH_CPID=$PPID ;;
  esac
  case $OXH_CPID in '' | *[!0-9]* | 0 | 1) OXH_CPID= ;; esac
  return 0
}

# oxh_client_settled SID: the client record of OXH_CPID names SID, or was
# written by SessionStart, which then speaks for this process (a hook of the
# previous session still in flight must not undo a /clear).
oxh_client_settled() {
  local rec=
  { IFS= read -r rec <"$OXH_DIR/clients/$OXH_CPID.json"; } 2>/dev/null || :
  case $rec in *"\"session_id\":\"$1\""* | *'"event":"SessionStart"'*) return 0 ;; esac
  return 1
}

# oxh_client_served: some registry entry is a server of client OXH_CPID
# ("pid": OXH_CPID in its client object). Without one there is nothing to
# follow, and a wrong OXH_CPID (a wrapper process between Claude Code and the
# hook) writes no records. Builtins only.
oxh_client_served() {
  local f reg re
  re='"pid"[[:space:]]*:[[:space:]]*'"$OXH_CPID"'[^0-9]'
  for f in "$OXH_DIR"/sessions/*.json; do
    reg=
    { IFS= read -r -d '' reg <"$f"; } 2>/dev/null
    [[ $reg =~ $re ]] && return 0
  done
  return 1
}

# oxh_record_client SOURCE EVENT [TRANSCRIPT]: write the client record of
# OXH_CPID for OXH_SID (atomic, private). SOURCE and EVENT are plain words; a
# transcript path is kept only when it needs no JSON escaping.
oxh_record_client() {
  [ -n "$OXH_CPID" ] && [ -n "$OXH_SID" ] || return 0
  local d=$OXH_DIR/clients t tp=
  case ${3:-} in /*) case $3 in *[!A-Za-z0-9/._+,:@~=\ -]*) ;; *) tp=',"transcript_path":"'$3'"' ;; esac ;; esac
  [ -d "$d" ] || mkdir -p -m 700 "$d" 2>/dev/null || return 0
  t=$d/.$OXH_CPID.json.tmp.$$
  if { printf '{"schema_version":1,"client_pid":%s,"session_id":"%s","source":"%s","event":"%s"%s}\n' \
    "$OXH_CPID" "$OXH_SID" "$1" "$2" "$tp" >"$t"; } 2>/dev/null; then
    mv -f "$t" "$d/$OXH_CPID.json" 2>/dev/null || rm -f "$t" 2>/dev/null
  fi
  return 0
}

# oxh_follow EVENT: the fallback of the hooks other than SessionStart — when
# SessionStart has not written this process's record (hooks without it, or
# installed mid-session), the record names another session and a server of
# this client exists, write it. Claude Code only (its env names the
# session); never for a payload whose session id differs from the env's.
oxh_follow() {
  [ -n "$OXH_SID" ] && [ "${CLAUDE_CODE_SESSION_ID:-}" = "$OXH_SID" ] || return 0
  oxh_client_pid
  [ -n "$OXH_CPID" ] || return 0
  oxh_client_settled "$OXH_SID" && return 0
  oxh_client_served && oxh_record_client hook-fallback "$1"
  return 0
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
