"""Shared fixtures live in tests/fixtures/, one module per room, registered here."""

pytest_plugins = [
    "tests.fixtures.db",
    "tests.fixtures.gitrepo",
    "tests.fixtures.tmux",
    "tests.fixtures.fake_gh",
    "tests.fixtures.engine",
    "tests.fixtures.agent_clis",
]
