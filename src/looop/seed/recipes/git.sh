#!/usr/bin/env bash
# looop:interval=@INTERVAL@
@WATCH@
# looop sensor pack · git: a repository's branch, whether it is dirty, how far it is ahead of
# and behind its upstream, and its last commit. The signal holds states only (never a time),
# so it changes when the repository does; the commit's subject, author and date are detail,
# and so is the branch again: the worker whose worktree is on it gets this as its news.
# Written by `looop sensor add git`; it is yours now, edit freely.
set -u
export GIT_OPTIONAL_LOCKS=0 # git status never rewrites the index this sensor watches
REPO=@REPO@
FETCH=@FETCH@ # yes: fetch the upstream first (network), so "behind" is current

js() { # one JSON string: control characters dropped, \ and " escaped
  local s
  s=$(printf '%s' "$1" | tr -d '\000-\037')
  s=${s//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

cd -- "$REPO" 2>/dev/null || { echo "git sensor: no directory $REPO" >&2; exit 1; }
git rev-parse --git-dir >/dev/null 2>&1 || { echo "git sensor: $REPO is not a git repository" >&2; exit 1; }
if [ "$FETCH" = yes ]; then timeout 30 git fetch --quiet >/dev/null 2>&1 || true; fi
branch=$(git symbolic-ref --short -q HEAD) || branch="(detached)"
changed=$(git status --porcelain 2>/dev/null | wc -l)
dirty=false
[ "$((changed))" -gt 0 ] && dirty=true
upstream=$(git rev-parse --abbrev-ref --symbolic-full-name '@{upstream}' 2>/dev/null) || upstream=""
ahead=null behind=null
if [ -n "$upstream" ]; then
  read -r ahead behind < <(git rev-list --left-right --count 'HEAD...@{upstream}' 2>/dev/null || echo null null)
fi
head=$(git rev-parse --short HEAD 2>/dev/null) || head=""
subject=$(git log -1 --format=%s 2>/dev/null) || subject=""
author=$(git log -1 --format=%an 2>/dev/null) || author=""
date=$(git log -1 --format=%cI 2>/dev/null) || date=""

printf '{"signal":{"branch":%s,"dirty":%s,"upstream":%s,"ahead":%s,"behind":%s,"head":%s},' \
  "$(js "$branch")" "$dirty" "$(js "$upstream")" "$ahead" "$behind" "$(js "$head")"
owner="" # whose news this is (issue 57): a branch, never a detached HEAD
[ "$branch" = "(detached)" ] || owner=",\"branch\":$(js "$branch")"
printf '"detail":{"repo":%s,"changed_files":%s,"subject":%s,"author":%s,"date":%s%s}}\n' \
  "$(js "$REPO")" "$((changed))" "$(js "$subject")" "$(js "$author")" "$(js "$date")" "$owner"
