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

OXH_HEAD=
oxh_scan_payload
[ -n "$OXH_SID" ] || exit 0
if [ "$OXH_STOP_ACTIVE" = 1 ]; then
  oxh_mark idle
  exit 0
fi
oxh_candidates
if [ ${#OXH_PIDS[@]} -gt 0 ] && oxh_deliver stop; then
  exit 0
fi
oxh_mark idle
exit 0
