# oxtail-lock.sh — the oxtail mkdir owner-token lock, bash side.
#
# Sourceable library (bash 3.2+). Sourcing it only defines functions; it runs
# nothing, sets no options and changes no variables.
#
# Protocol (shared with every oxtail server, see messaging.md §4 and
# src/store/lock.rs, which this mirrors): a lock L is the directory L (always
# empty), the holder's token lives in the sidecar file L.owner beside it, and
# L.steal (an empty directory) is a single-winner marker taken by whoever
# clears an abandoned L; the clearer's token sits beside it in L.steal.owner.
#
# L (or L.steal) is abandoned when its mtime is more than OXTAIL_LOCK_STALE_S
# seconds (default 30) in the past, or at once when its owner is provably
# dead: the token has the shape <pid>.<lowercase hex>, the sidecar is not
# older than the directory beside it (so it is not a leftover of an earlier
# lock), and the pid does not exist. A live pid (kill -0 succeeds, or the pid
# exists under another user), a malformed or absent token keep the 30 s rule.
# Clearing is compare-and-clear: once L.steal is ours, L.owner must still be
# what we read before and L must still be abandoned. A dead clearer's L.steal
# is removed by the one process whose mv took its L.steal.owner away.
# Release removes L only when L.owner holds our token.
#
# Sidecars are never written or read through a symlink: a write unlinks
# whatever sits at the name and creates the file afresh under noclobber
# (O_EXCL), a read refuses links and non-regular files. A symlink at L or
# L.steal is never a lock: the link itself is removed, never followed.
#
# API (fixed; the hooks call it):
#   oxtail_lock_acquire LOCKPATH        -> 0 and sets OXTAIL_LOCK_TOKEN, or 1
#   oxtail_lock_release LOCKPATH TOKEN  -> always 0
# The token names $$: hold a lock in the shell whose $$ it is, never in a
# background job or subshell that may outlive that shell.
#
# The uncontended acquire costs one external process (mkdir); everything else
# on that path is a builtin. stat/date/sleep/rm/mv run only under contention.

# Sets _OXTAIL_LOCK_STALE: seconds after which a lock directory (or steal
# marker) counts as abandoned whatever its owner.
_oxtail_lock_stale_s() {
  case "${OXTAIL_LOCK_STALE_S:-}" in
    '' | *[!0-9]*) _OXTAIL_LOCK_STALE=30 ;;
    *) _OXTAIL_LOCK_STALE=$OXTAIL_LOCK_STALE_S ;;
  esac
}

# Read a sidecar's first line into _OXTAIL_LOCK_READ; return 1 if it is
# absent, a symlink or not a regular file. Builtins only; tokens never
# contain a newline.
_oxtail_lock_read_owner() {
  _OXTAIL_LOCK_READ=
  [ -f "${1:-}" ] && [ ! -L "$1" ] || return 1
  { IFS= read -r _OXTAIL_LOCK_READ || :; } 2>/dev/null <"$1" || return 1
  return 0
}

# _oxtail_lock_put TOKEN FILE: create FILE afresh holding TOKEN. Whatever
# sits at the name (an orphaned sidecar, a symlink, a fifo) is unlinked
# first, never followed; noclobber makes the write O_EXCL, so a link planted
# meanwhile is not followed either. 1 when FILE cannot be written.
_oxtail_lock_put() {
  local clobber=
  if [ -e "$2" ] || [ -L "$2" ]; then
    rm -f -- "$2" 2>/dev/null || return 1
  fi
  case $- in *C*) ;; *) clobber=1 && set -C ;; esac
  if { printf '%s' "$1" >"$2"; } 2>/dev/null; then
    [ -z "$clobber" ] || set +C
    return 0
  fi
  [ -z "$clobber" ] || set +C
  return 1
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

# _oxtail_lock_holder_dead OBJECT SIDECAR TOKEN: 0 when TOKEN, read from
# SIDECAR beside OBJECT (L or L.steal), proves its holder dead.
_oxtail_lock_holder_dead() {
  local pid=${3%%.*} hex=${3#*.} rc=0
  case "$3" in *.*) ;; *) return 1 ;; esac
  case "$pid" in '' | 0* | *[!0-9]*) return 1 ;; esac
  case "$hex" in '' | *[!0-9a-f]*) return 1 ;; esac
  [ ${#pid} -le 10 ] && [ "$pid" -le 2147483647 ] || return 1
  # A sidecar older than its object names the holder of an earlier one.
  [ "$1" -nt "$2" ] && return 1
  kill -0 "$pid" 2>/dev/null && return 1
  # kill -0 also fails when the pid exists under another user: only a pid
  # that does not exist at all is dead.
  if [ -d /proc/self ]; then
    [ ! -e "/proc/$pid" ]
    return
  fi
  ps -p "$pid" >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 1 ]
}

# _oxtail_lock_abandoned LOCK OWNER: 0 when LOCK's owner OWNER is provably
# dead or LOCK is older than the stale window. Needs _OXTAIL_LOCK_STALE.
_oxtail_lock_abandoned() {
  if [ -n "$2" ] && _oxtail_lock_holder_dead "$1" "$1.owner" "$2"; then
    return 0
  fi
  _oxtail_lock_older_than "$1" "$_OXTAIL_LOCK_STALE"
}

# Remove owner sidecar then the lock dir (recursive fallback for a foreign,
# non-empty lock dir).
_oxtail_lock_remove() {
  [ -n "${1:-}" ] || return 0
  rm -f -- "$1.owner" 2>/dev/null || :
  rmdir -- "$1" 2>/dev/null || rm -rf -- "$1" 2>/dev/null || :
  return 0
}

# _oxtail_lock_take_steal LOCK TOKEN: 0 when we now hold LOCK.steal (TOKEN
# written beside it); 2 when we removed a dead clearer's marker or a symlink
# (retry at once); 1 otherwise (another clearer holds it, or it was older
# than the window and we removed it the original's way: "no work").
_oxtail_lock_take_steal() {
  local steal=$1.steal dead claimed
  if mkdir "$steal" 2>/dev/null; then
    _oxtail_lock_put "$2" "$steal.owner" || :
    return 0
  fi
  if [ -L "$steal" ]; then
    rm -f -- "$steal" 2>/dev/null || :
    return 2
  fi
  [ -d "$steal" ] || return 1
  if _oxtail_lock_read_owner "$steal.owner" &&
    _oxtail_lock_holder_dead "$steal" "$steal.owner" "$_OXTAIL_LOCK_READ"; then
    # Compare-and-take: one mv of the dead clearer's sidecar succeeds; the
    # winner removes the marker only if it took that dead token, written for
    # this marker (a live clearer's marker loses its sidecar at worst).
    dead=$_OXTAIL_LOCK_READ
    claimed=$steal.reap.$2
    mv -f -- "$steal.owner" "$claimed" 2>/dev/null || return 1
    if _oxtail_lock_read_owner "$claimed" && [ "$_OXTAIL_LOCK_READ" = "$dead" ] &&
      [ ! -L "$steal" ] && ! [ "$steal" -nt "$claimed" ]; then
      rm -f -d -- "$claimed" "$steal" 2>/dev/null ||
        { rm -f -- "$claimed" 2>/dev/null || :; rmdir -- "$steal" 2>/dev/null || :; }
      return 2
    fi
    rm -f -- "$claimed" 2>/dev/null || :
    return 1
  fi
  if _oxtail_lock_older_than "$steal" "$_OXTAIL_LOCK_STALE"; then
    rmdir -- "$steal" 2>/dev/null || :
  fi
  return 1
}

# _oxtail_lock_drop_steal LOCK TOKEN: release LOCK.steal, unless its sidecar
# names another clearer now.
_oxtail_lock_drop_steal() {
  local steal=$1.steal
  if _oxtail_lock_read_owner "$steal.owner"; then
    [ "$_OXTAIL_LOCK_READ" = "$2" ] || return 0
    rm -f -d -- "$steal.owner" "$steal" 2>/dev/null ||
      { rm -f -- "$steal.owner" 2>/dev/null || :; rmdir -- "$steal" 2>/dev/null || :; }
  else
    rmdir -- "$steal" 2>/dev/null || :
  fi
  return 0
}

# _oxtail_lock_clear_stale LOCK [TOKEN] (§4.4 with the dead-holder rule).
# Returns 0 when it did clearing work (caller retries at once), 1 otherwise
# (caller sleeps, then retries).
_oxtail_lock_clear_stale() {
  local lock=${1:-} token=${2:-} observed rc=0
  [ -n "$lock" ] || return 1
  if [ -L "$lock" ]; then
    # Never a lock (every side creates L with mkdir): remove the link itself.
    rm -f -- "$lock" 2>/dev/null || :
    return 0
  fi
  [ -e "$lock" ] || return 1
  _oxtail_lock_stale_s
  _oxtail_lock_read_owner "$lock.owner" || :
  observed=$_OXTAIL_LOCK_READ
  _oxtail_lock_abandoned "$lock" "$observed" || return 1
  [ -n "$token" ] || printf -v token '%s.%04x%04x%04x' "$$" "$RANDOM" "$RANDOM" "$RANDOM"
  _oxtail_lock_take_steal "$lock" "$token" || rc=$?
  case "$rc" in
    0) ;;
    2) return 0 ;;
    *) return 1 ;;
  esac
  _oxtail_lock_read_owner "$lock.owner" || :
  # Still abandoned too: an absent owner is also what a successor's brand-new
  # lock looks like between its mkdir and its owner write.
  if [ "$_OXTAIL_LOCK_READ" = "$observed" ] && _oxtail_lock_abandoned "$lock" "$observed"; then
    _oxtail_lock_remove "$lock"
  fi
  _oxtail_lock_drop_steal "$lock" "$token"
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
      if ! _oxtail_lock_put "$token" "$lock.owner"; then
        _oxtail_lock_remove "$lock"
        return 1
      fi
      OXTAIL_LOCK_TOKEN=$token
      return 0
    fi
    # mkdir failed and there is no lock dir: the parent is missing or not
    # writable (or the holder released this instant; a retry sorts that out).
    if [ ! -e "$lock" ] && [ ! -L "$lock" ] && [ ! -d "$parent" ]; then
      return 1
    fi
    if ! _oxtail_lock_clear_stale "$lock" "$token"; then
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
