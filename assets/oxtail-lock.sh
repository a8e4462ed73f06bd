# oxtail-lock.sh — the oxtail mkdir owner-token lock, bash side.
#
# Sourceable library (bash 3.2+). Sourcing it only defines functions; it runs
# nothing, sets no options and changes no variables.
#
# Protocol (shared with every oxtail server, see messaging.md §4): a lock L is
# the directory L (always empty), the holder's token lives in the sidecar file
# L.owner beside it, and L.steal is a single-winner marker taken by whoever
# clears a stale L. A lock is stale when L's mtime is more than
# OXTAIL_LOCK_STALE_S seconds (default 30) in the past. Clearing is
# compare-and-clear: the owner read before taking L.steal must still be the
# owner after taking it. Release removes L only when L.owner holds our token.
#
# API (fixed; the hooks call it):
#   oxtail_lock_acquire LOCKPATH        -> 0 and sets OXTAIL_LOCK_TOKEN, or 1
#   oxtail_lock_release LOCKPATH TOKEN  -> always 0
#
# The uncontended acquire costs one external process (mkdir); everything else
# on that path is a builtin. stat/date/sleep/rm run only under contention.

# Seconds after which a lock directory (or steal marker) counts as abandoned.
_oxtail_lock_stale_s() {
  case "${OXTAIL_LOCK_STALE_S:-}" in
    '' | *[!0-9]*) printf '%s' 30 ;;
    *) printf '%s' "$OXTAIL_LOCK_STALE_S" ;;
  esac
}

# Read a file's first line into _OXTAIL_LOCK_READ; return 1 if it cannot be
# opened (absent). Builtins only; tokens never contain a newline.
_oxtail_lock_read_owner() {
  _OXTAIL_LOCK_READ=
  [ -f "${1:-}" ] || return 1
  { IFS= read -r _OXTAIL_LOCK_READ || :; } 2>/dev/null <"$1" || return 1
  return 0
}

# Age test: 0 when PATH's mtime is more than STALE seconds before now.
# A path whose mtime cannot be read is never stale.
_oxtail_lock_older_than() {
  local path=${1:-} stale=${2:-30} mtime now
  mtime=$(stat -c %Y "$path" 2>/dev/null) || mtime=$(stat -f %m "$path" 2>/dev/null) || mtime=
  case "$mtime" in '' | *[!0-9]*) return 1 ;; esac
  now=$(date +%s 2>/dev/null)
  case "$now" in '' | *[!0-9]*) return 1 ;; esac
  [ $((now - mtime)) -gt "$stale" ]
}

# Remove owner sidecar then the lock dir (recursive fallback for a foreign,
# non-empty lock dir).
_oxtail_lock_remove() {
  [ -n "${1:-}" ] || return 0
  rm -f -- "$1.owner" 2>/dev/null || :
  rmdir -- "$1" 2>/dev/null || rm -rf -- "$1" 2>/dev/null || :
  return 0
}

# Stale-clear routine (§4.4). Returns 0 when it did clearing work (caller
# retries at once), 1 otherwise (caller sleeps, then retries).
_oxtail_lock_clear_stale() {
  local lock=${1:-} stale observed
  stale=$(_oxtail_lock_stale_s)
  [ -e "$lock" ] || return 1
  _oxtail_lock_older_than "$lock" "$stale" || return 1
  _oxtail_lock_read_owner "$lock.owner" || :
  observed=$_OXTAIL_LOCK_READ
  if ! mkdir "$lock.steal" 2>/dev/null; then
    if [ -d "$lock.steal" ] && _oxtail_lock_older_than "$lock.steal" "$stale"; then
      rmdir -- "$lock.steal" 2>/dev/null || :
    fi
    return 1
  fi
  _oxtail_lock_read_owner "$lock.owner" || :
  # Still stale too: an absent owner is also what a successor's brand-new
  # lock looks like between its mkdir and its owner write.
  if [ "$_OXTAIL_LOCK_READ" = "$observed" ] && _oxtail_lock_older_than "$lock" "$stale"; then
    _oxtail_lock_remove "$lock"
  fi
  rmdir -- "$lock.steal" 2>/dev/null || :
  return 0
}

# oxtail_lock_acquire LOCKPATH
# 0 + OXTAIL_LOCK_TOKEN set on success; 1 after 50 attempts (10 ms apart, no
# sleep after a stale-clear that did work), when the parent dir is missing, or
# when the owner token cannot be written (the lock is removed again).
oxtail_lock_acquire() {
  local lock=${1:-} token parent attempt=0
  OXTAIL_LOCK_TOKEN=
  [ -n "$lock" ] || return 1
  case "$lock" in
    */*) parent=${lock%/*} ;;
    *) parent=. ;;
  esac
  [ -n "$parent" ] || parent=/
  # Token <$$>.<12 lowercase hex>; printf -v keeps it fork-free.
  printf -v token '%s.%04x%04x%04x' "$$" "$RANDOM" "$RANDOM" "$RANDOM"
  while [ "$attempt" -lt 50 ]; do
    attempt=$((attempt + 1))
    if mkdir "$lock" 2>/dev/null; then
      # A lock without its owner record could not be released by us (e.g.
      # on a full disk): give it back at once and report failure.
      if ! { printf '%s' "$token" >"$lock.owner"; } 2>/dev/null; then
        _oxtail_lock_remove "$lock"
        return 1
      fi
      OXTAIL_LOCK_TOKEN=$token
      return 0
    fi
    # mkdir failed and there is no lock dir: the parent is missing or not
    # writable (or the holder released this instant; a retry sorts that out).
    if [ ! -e "$lock" ] && [ ! -d "$parent" ]; then
      return 1
    fi
    if ! _oxtail_lock_clear_stale "$lock"; then
      sleep 0.01 2>/dev/null || :
    fi
  done
  return 1
}

# oxtail_lock_release LOCKPATH TOKEN
# Removes L.owner and L only if L.owner equals TOKEN (or TOKEN is empty).
# An absent owner file with a non-empty TOKEN leaves the lock: a successor may
# be between its mkdir and its owner write.
oxtail_lock_release() {
  local lock=${1:-} token=${2:-}
  [ -n "$lock" ] || return 0
  if [ -n "$token" ]; then
    _oxtail_lock_read_owner "$lock.owner" || return 0
    [ "$_OXTAIL_LOCK_READ" = "$token" ] || return 0
  fi
  # One process when rm knows -d (GNU, BSD, macOS); two otherwise.
  rm -f -d -- "$lock.owner" "$lock" 2>/dev/null ||
    { rm -f -- "$lock.owner" 2>/dev/null || :; rmdir -- "$lock" 2>/dev/null || :; }
  return 0
}
