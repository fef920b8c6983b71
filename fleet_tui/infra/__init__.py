"""The outside world (git, tmux, docker, forges, agents, channels), each behind a Protocol."""
