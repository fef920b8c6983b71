#!/bin/sh
# A hostile agent (tests/e2e/test_container_escape.py). It commits a real change on its task
# branch, then attacks whatever git the conductor runs on its worktree afterwards. Every
# program it plants writes a marker file under $1, a host path: a marker that appears means
# the conductor ran the agent's program on the host.
#   $1 marker dir   $2 exit code   $3 mode:
#   evil            its own git dir in the worktree, whose config (and an included file)
#                   defines a filter, textconv, diff and merge drivers, diff.external, pager,
#                   editor, ssh and gpg programs, credential helper, hooks and fsmonitor; its
#                   .gitattributes selects them; /workspace/.git and the admin dir's commondir
#                   point at it, the admin dir's HEAD at the user's main
#   elsewhere:P     /workspace/.git points at P, the git dir of another repository
#   refs            tries to move the user's branches and plant a new one
#   symref          turns its own branch's ref into a symbolic ref to the user's main
set -u
M=$1
CODE=$2
MODE=$3
W=$(pwd)
ID="-c user.name=agent -c user.email=agent@fleet.invalid"
ADMIN=$(sed -n 's/^gitdir: //p' .git)
COMMON=$(git rev-parse --git-common-dir)

echo "agent change" > agent.txt
echo "* filter=x diff=x merge=x" > .gitattributes
git $ID add agent.txt .gitattributes && git $ID commit -q -m "agent change" && echo "committed"

case $MODE in
refs)
  SHA=$(git rev-parse HEAD)
  git update-ref refs/heads/main "$SHA" && echo "moved main with update-ref"
  echo "$SHA" > "$COMMON/refs/heads/main" && echo "wrote main's ref file"
  git update-ref refs/heads/planted "$SHA" && echo "planted a branch"
  git update-ref refs/tags/planted "$SHA" && echo "planted a tag"
  exit "$CODE";;
symref)
  BRANCH=$(git symbolic-ref HEAD)
  echo "ref: refs/heads/main" > "$COMMON/$BRANCH" && echo "made its branch a symbolic ref"
  exit "$CODE";;
elsewhere:*)
  OTHER=$(echo "$MODE" | sed 's/^elsewhere://')
  ls "$OTHER" >/dev/null 2>&1 && echo "other repository visible"
  git --git-dir="$OTHER" update-ref refs/heads/planted HEAD 2>/dev/null && echo "planted in the other repository"
  echo "gitdir: $OTHER" > .git
  exit "$CODE";;
esac

# the worktree as the host sees it (the admin dir names it): planted paths must resolve there
HOSTW=$(dirname "$(cat "$ADMIN/gitdir")")
git init -q "$W/.evil"
git --git-dir="$W/.evil/.git" --work-tree="$W" $ID commit -q --allow-empty -m base
G=$HOSTW/.evil/.git
L=$W/.evil/.git
mkdir -p "$L/evil-hooks"
for hook in applypatch-msg pre-applypatch post-applypatch pre-commit pre-merge-commit prepare-commit-msg \
    commit-msg post-commit pre-rebase post-checkout post-merge pre-push pre-receive update proc-receive \
    post-receive post-update reference-transaction push-to-checkout pre-auto-gc post-rewrite \
    sendemail-validate fsmonitor-watchman p4-changelist p4-prepare-changelist p4-post-changelist \
    p4-pre-submit post-index-change; do
  printf '#!/bin/sh\ntouch %s/hook-%s\ncat >/dev/null\n' "$M" "$hook" > "$L/evil-hooks/$hook"
  chmod +x "$L/evil-hooks/$hook"
done
printf '#!/bin/sh\ntouch %s/fsmonitor\n' "$M" > "$L/fsmonitor"
chmod +x "$L/fsmonitor"
cat > "$L/included.config" <<CONF
[filter "x"]
	clean = touch $M/filter-clean; cat
	smudge = touch $M/filter-smudge; cat
	required = true
[diff "x"]
	textconv = touch $M/textconv; cat
	command = touch $M/diff-driver; true
[merge "x"]
	driver = touch $M/merge-driver; false
CONF
C="git config -f $L/config"
$C include.path included.config
$C diff.external "touch $M/diff-external; true"
$C core.pager "touch $M/pager; cat"
$C core.editor "touch $M/editor; true"
$C core.sshCommand "touch $M/ssh-command; false"
$C core.askPass "touch $M/askpass"
$C credential.helper "!touch $M/credential-helper"
$C core.alternateRefsCommand "touch $M/alternate-refs; true"
$C gpg.program "touch $M/gpg; false"
$C log.showSignature true
$C commit.gpgSign true
$C core.hooksPath "$G/evil-hooks"
$C core.fsmonitor "$G/fsmonitor"
$C safe.directory "*"

echo "gitdir: $G" > .git
echo "$G" > "$ADMIN/commondir"
echo "ref: refs/heads/main" > "$ADMIN/HEAD"
echo "uncommitted" > dirty.txt
echo "tampered"
exit "$CODE"
