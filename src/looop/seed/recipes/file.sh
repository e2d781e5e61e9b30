#!/usr/bin/env bash
# looop:interval=@INTERVAL@
@WATCH@
# looop sensor pack · file: whether a path changed. A file is fingerprinted by its content; a
# directory by its entries' names, types, sizes and modification times. The signal is the
# fingerprint (it moves only when the path does); the size and time are detail.
# Written by `looop sensor add file`; it is yours now, edit freely.
set -u
TARGET=@PATH@

js() { local s; s=$(printf '%s' "$1" | tr -d '\000-\037'); s=${s//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }
if [ -d "$TARGET" ]; then
  kind=dir measure=entries
  listing=$(cd -- "$TARGET" && find . -mindepth 1 -printf '%p %y %s %T@\n' 2>/dev/null | LC_ALL=C sort)
  print=$(printf '%s' "$listing" | sha256sum | cut -c1-16)
  size=$(printf '%s\n' "$listing" | grep -c .)
elif [ -e "$TARGET" ]; then
  kind=file measure=size
  print=$(sha256sum <"$TARGET" 2>/dev/null | cut -c1-16)
  size=$(stat -c %s -- "$TARGET" 2>/dev/null || echo 0)
else
  kind=missing measure=size print="" size=0
fi
when=$(stat -c %y -- "$TARGET" 2>/dev/null || echo "")
printf '{"signal":{"path":%s,"kind":"%s","fingerprint":"%s"},"detail":{"%s":%s,"modified":%s}}\n' \
  "$(js "$TARGET")" "$kind" "$print" "$measure" "$((size))" "$(js "$when")"
