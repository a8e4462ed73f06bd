#!/usr/bin/env bash
# oxtail UserPromptSubmit hook: marks this session busy
# (~/.oxtail/activity/<session id>), so peers do not wake it mid-turn, and
# records the session in the client record when SessionStart did not.
# Prints nothing, always exits 0.

[ -n "${HOME:-}" ] || exit 0
[ -t 0 ] && exit 0
case "${BASH_SOURCE[0]}" in
  */*) _oxh_d=${BASH_SOURCE[0]%/*} ;;
  *) _oxh_d=. ;;
esac
. "$_oxh_d/oxtail-hook-common.sh" || exit 0

oxh_read_head
[ -n "$OXH_SID" ] || oxh_scan_payload
oxh_mark busy
# A missed SessionStart (/clear, /resume): record this session for the server.
oxh_follow UserPromptSubmit
exit 0
