#!/usr/bin/env bash
# looop:interval=@INTERVAL@
# looop sensor pack · http: a URL's status and how fast it answered, as a bucket (fast < 300 ms,
# ok < 1 s, slow < 3 s, very-slow), so the signal moves when the service does, not with every
# millisecond; the exact time is detail.
# Written by `looop sensor add http`; it is yours now, edit freely.
set -u
URL=@URL@

command -v curl >/dev/null || { echo "http sensor: needs curl on PATH" >&2; exit 1; }
out=$(curl -sS -o /dev/null --max-time 10 -w '%{http_code} %{time_total}' --url "$URL" 2>/dev/null)
read -r code secs <<<"${out:-000 0}"
ms=$(awk -v s="${secs:-0}" 'BEGIN { printf "%d", s * 1000 }')
if [ "$code" = 000 ]; then
  status='"down"' latency=null
else
  status=$((10#$code))
  if [ "$ms" -lt 300 ]; then latency='"fast"'
  elif [ "$ms" -lt 1000 ]; then latency='"ok"'
  elif [ "$ms" -lt 3000 ]; then latency='"slow"'
  else latency='"very-slow"'; fi
fi
url=$(printf '%s' "$URL" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g')
printf '{"signal":{"status":%s,"latency":%s},"detail":{"url":"%s","ms":%s}}\n' \
  "$status" "$latency" "$url" "$ms"
