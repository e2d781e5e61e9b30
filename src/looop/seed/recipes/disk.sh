#!/usr/bin/env bash
# looop:interval=@INTERVAL@
# looop sensor pack · disk: how full the file system holding a path is, as a bucket (tens of
# percent, then 90-95% and 95-100%), so the signal moves when it crosses a line, not with every
# byte written; the exact numbers are detail.
# Written by `looop sensor add disk`; it is yours now, edit freely.
set -u
TARGET=@PATH@

row=$(df -P -k -- "$TARGET" 2>/dev/null | awk 'NR == 2 { sub(/%/, "", $5); print $5, $4, $6 }')
[ -n "$row" ] || { echo "disk sensor: df cannot read $TARGET" >&2; exit 1; }
read -r pct avail mount <<<"$row"
pct=$((10#$pct))
if [ "$pct" -ge 95 ]; then bucket="95-100%"
elif [ "$pct" -ge 90 ]; then bucket="90-95%"
else bucket="$((pct / 10 * 10))-$((pct / 10 * 10 + 10))%"; fi
js() { local s; s=$(printf '%s' "$1" | tr -d '\000-\037'); s=${s//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }
printf '{"signal":{"path":%s,"used":"%s"},"detail":{"used_pct":%s,"avail_kib":%s,"mount":%s}}\n' \
  "$(js "$TARGET")" "$bucket" "$pct" "$((avail))" "$(js "$mount")"
