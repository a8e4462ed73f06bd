# oxtail-hook-deliver.sh — delivery half of the oxtail hooks: lock this
# session's mailboxes, render them (oxtail-hook.awk), print, then empty or
# rewrite each mailbox, release. Sourced after oxtail-hook-common.sh, only
# when there is mail to deliver. Bash 3.2+.
#
# What it defends:
# - a mailbox is read, rendered, printed and only then emptied, while its lock
#   is held; a mailbox whose lock is not provably ours any more (owner token
#   changed after a long stall) is left alone;
# - a delivery receipt is written only after the print succeeded, so a
#   receipt never claims a delivery that did not happen;
# - nothing is emptied when the write to stdout failed;
# - one hook never spins on a lock while it already holds another one.

. "$OXH_LIB/oxtail-lock.sh" || return 1

# oxh_lock_all: lock the candidates. Free-looking locks are tried first; once
# one lock is held, a mailbox whose lock dir exists is skipped (left for the
# next hook run) so we never spin while holding a lock. Sets OXH_FILES /
# OXH_LOCKS / OXH_TOKENS (parallel arrays).
oxh_lock_all() {
  OXH_FILES=()
  OXH_LOCKS=()
  OXH_TOKENS=()
  local pid f l busy ordered
  busy=()
  ordered=()
  for pid in "${OXH_PIDS[@]}"; do
    if [ -d "$OXH_DIR/mailboxes/$pid.jsonl.lock" ]; then busy+=("$pid"); else ordered+=("$pid"); fi
  done
  [ ${#busy[@]} -eq 0 ] || ordered+=("${busy[@]}")
  for pid in "${ordered[@]}"; do
    f=$OXH_DIR/mailboxes/$pid.jsonl
    l=$f.lock
    if [ ${#OXH_LOCKS[@]} -gt 0 ] && [ -d "$l" ]; then continue; fi
    if oxtail_lock_acquire "$l"; then
      OXH_FILES+=("$f")
      OXH_LOCKS+=("$l")
      OXH_TOKENS+=("$OXTAIL_LOCK_TOKEN")
    fi
  done
}

oxh_release_all() {
  local i=0
  while [ "$i" -lt ${#OXH_LOCKS[@]} ]; do
    oxtail_lock_release "${OXH_LOCKS[$i]}" "${OXH_TOKENS[$i]}"
    i=$((i + 1))
  done
}

# oxh_still_ours INDEX: the owner sidecar still holds our token (a > 30 s
# stall can let another process steal the lock; then we must not touch it).
oxh_still_ours() {
  local cur=
  { IFS= read -r cur || :; } <"${OXH_LOCKS[$1]}.owner" 2>/dev/null || return 1
  [ -n "$cur" ] && [ "$cur" = "${OXH_TOKENS[$1]}" ]
}

# ------------------------------------------------------------- receipts ----

# oxh_now_ms: OXH_NOW_MS = milliseconds since the epoch from bash 5's
# EPOCHREALTIME (no process); empty on older bash (awk then uses its own
# clock, in whole seconds).
oxh_now_ms() {
  OXH_NOW_MS=
  local t=${EPOCHREALTIME:-} s f
  case "$t" in
    *[!0-9.]* | '' | *.*.*) return 0 ;;
  esac
  s=${t%.*}
  f=${t#*.}000
  OXH_NOW_MS=$s${f:0:3}
}

# oxh_split_render OUT: split the renderer's output in one linear pass (bash
# prefix/suffix patterns are quadratic when the match is far from the start)
# into OXH_PLAN (first line), OXH_RECEIPTS (array of "<id>\t<json>") and
# OXH_JSON (the envelope, last line, the only one starting with "{"; "T"
# when the idle watcher's text went to OXH_TEXT_OUT).
oxh_split_render() {
  local IFS=$'\n' parts n glob=
  case $- in *f*) ;; *) glob=1; set -f ;; esac
  parts=($1)
  [ -z "$glob" ] || set +f
  n=${#parts[@]}
  OXH_PLAN=${parts[0]}
  OXH_JSON=
  OXH_RECEIPTS=()
  [ "$n" -gt 1 ] || return 0
  case "${parts[n - 1]}" in '{'* | T) OXH_JSON=${parts[n - 1]} ;; esac
  [ "$n" -gt 2 ] && OXH_RECEIPTS=("${parts[@]:1:n-2}")
  return 0
}

# oxh_write_receipts: append one receipt per OXH_RECEIPTS line to the day
# log ~/.oxtail/receipts/<day>.jsonl (day = whole UTC days since the epoch,
# store/daylog.rs), one line per write so concurrent appenders never
# interleave; never through a symlink; builtins only. Best effort.
oxh_write_receipts() {
  [ ${#OXH_RECEIPTS[@]} -gt 0 ] || return 0
  local d=$OXH_DIR/receipts line id day= t f
  [ -d "$d" ] || mkdir -p -m 700 "$d" 2>/dev/null || return 0
  [ -L "$d" ] && return 0
  if [ -n "${OXH_NOW_MS:-}" ]; then
    day=$((OXH_NOW_MS / 86400000))
  else
    # bash < 5: the renderer's clock, from the first receipt's seconds.
    t=${OXH_RECEIPTS[0]#*\"delivered_at\":}
    t=${t%%[!0-9]*}
    [ -n "$t" ] && day=$((t / 86400))
  fi
  [ -n "$day" ] || return 0
  f=$d/$day.jsonl
  { [ -L "$f" ] || { [ -e "$f" ] && [ ! -f "$f" ]; }; } && return 0
  # Created private by the append below (common.sh set umask 077).
  {
    for line in "${OXH_RECEIPTS[@]}"; do
      id=${line%%$'\t'*}
      case "$id" in '' | *[!0-9a-f]*) continue ;; esac
      printf '%s\n' "${line#*$'\t'}"
    done
  } >>"$f" 2>/dev/null
  return 0
}

# ------------------------------------------------------------ rendering ----


# oxh_emit: print what the renderer produced: the envelope on stdout, or, for
# the idle watcher ("T"), the decoded text from OXH_TEXT_OUT on stderr (what
# Claude Code shows the model when an asyncRewake hook exits 2). Fails when
# the write fails.
oxh_emit() {
  if [ "$1" != T ]; then
    printf '%s' "$1" 2>/dev/null
    return
  fi
  local text=
  IFS= read -r -d '' text 2>/dev/null <"$OXH_TEXT_OUT"
  rm -f "$OXH_TEXT_OUT" 2>/dev/null
  [ -n "$text" ] && printf '%s' "$text" >&2
}

# oxh_deliver EVENT [payload]: lock, render, print, then empty (or rewrite)
# each mailbox while still holding its lock, release. With "payload", the rest
# of stdin (read before locking) is parsed in the same awk run (one process
# fewer on the hot path). EVENT idlewatch renders text (OXH_TEXT_OUT, a file
# path to use) and skips a notice about OXH_SKIP_HELD; OXH_HELD is then the
# id of a message too large to show (or empty).
# Returns 0 when something was printed.
oxh_deliver() {
  local event=$1 out json plan item idx action f printed=1 i=0 tmp rest=
  OXH_HELD=
  # Read the rest of the payload before taking any lock (builtin, bounded):
  # a client that never closed stdin must not keep a mailbox locked.
  if [ "${2:-}" = payload ]; then
    IFS= read -r -d '' -t 5 rest || :
  fi
  oxh_lock_all
  [ ${#OXH_FILES[@]} -gt 0 ] || return 1
  oxh_now_ms
  tmp=.tmp.$$.hook$RANDOM
  if [ "${2:-}" = payload ]; then
    out=$(OXH_MODE=render OXH_PAYLOAD=1 OXH_HEAD=$OXH_HEAD OXH_SID=$OXH_SID OXH_EVENT=$event \
      OXH_TMP=$tmp OXH_NOW_MS=$OXH_NOW_MS exec "$OXH_AWKBIN" -f "$OXH_AWK" - "${OXH_FILES[@]}" 2>/dev/null <<<"$rest")
  else
    out=$(OXH_MODE=render OXH_SID=$OXH_SID OXH_EVENT=$event OXH_TMP=$tmp OXH_NOW_MS=$OXH_NOW_MS \
      OXH_TEXT_OUT=${OXH_TEXT_OUT:-} OXH_SKIP_HELD=${OXH_SKIP_HELD:-} \
      exec "$OXH_AWKBIN" -f "$OXH_AWK" "${OXH_FILES[@]}" 2>/dev/null </dev/null)
  fi
  oxh_split_render "$out"
  plan=$OXH_PLAN
  json=$OXH_JSON
  if [ -n "$json" ]; then
    # Drain only when the write reached stdout (a closed stdout keeps the
    # mail); receipts only for what reached it.
    if oxh_emit "$json"; then
      printed=0
      oxh_write_receipts
    else
      plan=
    fi
  fi
  for item in $plan; do
    case "$item" in held:*)
      OXH_HELD=${item#held:}
      continue
      ;;
    esac
    idx=$((${item%%:*} - 1))
    action=${item#*:}
    f=${OXH_FILES[$idx]}
    [ "$action" = none ] && continue
    if ! oxh_still_ours "$idx"; then
      rm -f "$f$tmp" 2>/dev/null
      continue
    fi
    case "$action" in
      drain) : >"$f" ;;
      keep) mv -f "$f$tmp" "$f" 2>/dev/null || rm -f "$f$tmp" 2>/dev/null ;;
    esac
  done
  # Survivor files of a plan we did not apply.
  if [ -z "$plan" ]; then
    while [ "$i" -lt ${#OXH_FILES[@]} ]; do
      [ -f "${OXH_FILES[$i]}$tmp" ] && rm -f "${OXH_FILES[$i]}$tmp" 2>/dev/null
      i=$((i + 1))
    done
  fi
  oxh_release_all
  return $printed
}
