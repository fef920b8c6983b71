"""CLI verbs. Each module here defines `register(subparsers)`, adding its parser(s) with
`set_defaults(handler=fn)` where fn(args) -> exit code. cli.py discovers them all, so a
new verb is a new module, with no edit elsewhere."""
