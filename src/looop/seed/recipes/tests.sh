#!/usr/bin/env bash
# looop:interval=@INTERVAL@
@WATCH@
# looop sensor pack · tests: a test command's pass or fail and the names of the tests that fail
# (pytest's FAILED/ERROR lines, go's --- FAIL:, cargo's "test … FAILED"). It runs at its own
# interval (above); a run longer than sensor_timeout (config) is killed, so raise that for a
# slow suite. The signal is the result and the failing names; the output's tail is detail, and
# so is the branch checked out in the directory: the worker on that branch gets this as its news.
# Written by `looop sensor add tests`; it is yours now, edit freely.
set -u
DIR=@DIR@
CMD=@CMD@

js() { local s; s=$(printf '%s' "$1" | tr -d '\000-\011\013-\037'); s=${s//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "${s//$'\n'/\\n}"; }
cd -- "$DIR" 2>/dev/null || { echo "tests sensor: no directory $DIR" >&2; exit 1; }
out=$(bash -c "$CMD" </dev/null 2>&1)
code=$?
result=pass
[ "$code" -eq 0 ] || result=fail
names=""
while IFS= read -r name; do
  [ -n "$name" ] && names="$names${names:+,}$(js "$name")"
done < <(printf '%s\n' "$out" \
  | sed -nE 's/^(FAILED|ERROR) ([^ ]+).*/\2/p; s/^[[:space:]]*--- FAIL: ([^ ]+).*/\1/p; s/^test ([^ ]+) \.\.\. FAILED.*/\1/p' \
  | LC_ALL=C sort -u | head -n 50)
tail=$(printf '%s\n' "$out" | tail -n 30 | tail -c 3000)
branch=$(git symbolic-ref --quiet --short HEAD 2>/dev/null) && branch=",\"branch\":$(js "$branch")"
printf '{"signal":{"result":"%s","failing":[%s]},"detail":{"exit_code":%s,"command":%s,"tail":%s%s}}\n' \
  "$result" "$names" "$code" "$(js "$CMD")" "$(js "$tail")" "${branch:-}"
