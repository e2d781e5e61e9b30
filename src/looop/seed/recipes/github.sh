#!/usr/bin/env bash
# looop:interval=@INTERVAL@
# looop sensor pack · github: a repository's open pull requests — each one's checks (pass,
# fail, pending, none) and review state — and the issues assigned to you, through the GitHub
# CLI `gh` (logged in with `gh auth login`). The signal holds states only; titles and the
# failing checks' names are detail, and so are the pull requests' branches: the worker on one
# gets this as its news. Without gh the signal says so.
# Written by `looop sensor add github`; it is yours now, edit freely.
set -u
REPO=@REPO@ # OWNER/NAME; empty: the repository gh finds in DIR
DIR=@DIR@

if ! command -v gh >/dev/null; then
  printf '{"signal":{"gh":"missing"},"detail":{"hint":"install the GitHub CLI (gh) and run gh auth login"}}\n'
  exit 0
fi
cd -- "$DIR" 2>/dev/null || { echo "github sensor: no directory $DIR" >&2; exit 1; }
where=()
[ -n "$REPO" ] && where=(--repo "$REPO")

# gh's --jq prints each string as it is: the first line is the signal's list, the second the
# detail's, the third the branches.
pr_jq='def checks: [.statusCheckRollup[]? | (.conclusion // .state // "") | ascii_upcase] as $c
  | if ($c | length) == 0 then "none"
    elif any($c[]; IN("FAILURE", "ERROR", "CANCELLED", "TIMED_OUT", "ACTION_REQUIRED", "STARTUP_FAILURE")) then "fail"
    elif any($c[]; IN("", "PENDING", "EXPECTED", "QUEUED", "IN_PROGRESS", "WAITING")) then "pending"
    else "pass" end;
  def failing: [.statusCheckRollup[]? | select(((.conclusion // .state // "") | ascii_upcase)
    | IN("FAILURE", "ERROR", "CANCELLED", "TIMED_OUT", "ACTION_REQUIRED", "STARTUP_FAILURE"))
    | (.name // .context // "?")];
  sort_by(.number)
  | ([.[] | {number, branch: .headRefName, draft: .isDraft, checks: checks,
             review: ((.reviewDecision // "") | if . == "" then "none" else ascii_downcase end)}]
     | tojson),
    ([.[] | {number, title, failing_checks: failing}] | tojson),
    ([.[] | .headRefName | strings] | unique | tojson)'
issue_jq='sort_by(.number) | ([.[] | .number] | tojson), ([.[] | {number, title}] | tojson)'

prs=$(gh pr list "${where[@]}" --state open --limit 50 \
  --json number,title,headRefName,isDraft,reviewDecision,statusCheckRollup --jq "$pr_jq") \
  || { echo "github sensor: gh pr list failed" >&2; exit 1; }
issues=$(gh issue list "${where[@]}" --assignee @me --state open --limit 50 \
  --json number,title --jq "$issue_jq") \
  || { echo "github sensor: gh issue list failed" >&2; exit 1; }
{ read -r pr_signal; read -r pr_detail; read -r pr_branches; } <<<"$prs"
{ read -r issue_signal; read -r issue_detail; } <<<"$issues"
printf '{"signal":{"pull_requests":%s,"assigned_issues":%s},"detail":{"pull_requests":%s,"assigned_issues":%s,"branch":%s}}\n' \
  "${pr_signal:-[]}" "${issue_signal:-[]}" "${pr_detail:-[]}" "${issue_detail:-[]}" "${pr_branches:-[]}"
