#!/usr/bin/env bash
# oxtail Stop hook: at turn end, delivers this session's queued peer messages
# by blocking the stop ({"decision":"block","reason":…}); otherwise marks the
# session idle (~/.oxtail/activity/<session id>). A stop that is already a
# continuation forced by a Stop hook (stop_hook_active true) never blocks
# again. Always exits 0; prints nothing or one JSON line.

[ -n "${HOME:-}" ] || exit 0
[ -t 0 ] && exit 0
case "${BASH_SOURCE[0]}" in
  */*) _oxh_d=${BASH_SOURCE[0]%/*} ;;
  *) _oxh_d=. ;;
esac
. "$_oxh_d/oxtail-hook-common.sh" || exit 0

# Session id from the first key (builtins); full parse when it is elsewhere.
oxh_read_head
_oxh_scanned=
if [ -z "$OXH_SID" ]; then
  oxh_scan_payload
  _oxh_scanned=1
fi
[ -n "$OXH_SID" ] || exit 0
# A missed SessionStart (/clear, /resume): record this session for the server.
oxh_follow Stop
# Nothing queued: the stop happens whatever stop_hook_active says.
oxh_candidates
if [ ${#OXH_PIDS[@]} -eq 0 ]; then
  oxh_mark idle
  exit 0
fi
# Loop guard: a stop that is already a Stop-hook continuation never blocks.
[ -n "$_oxh_scanned" ] || oxh_scan_payload
if [ "$OXH_STOP_ACTIVE" = 1 ] || [ -z "$OXH_SID" ]; then
  oxh_mark idle
  exit 0
fi
if . "$OXH_LIB/oxtail-hook-deliver.sh" && oxh_deliver stop; then
  exit 0
fi
oxh_mark idle
exit 0
