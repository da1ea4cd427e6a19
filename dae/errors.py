"""The library's errors, named for what went wrong; the scripts turn them into one line and an exit status."""


class UsageError(Exception):
    """A problem with what the user gave (a flag, a file, a folder): exit status 2."""


class Failure(Exception):
    """The work itself went wrong: exit status 1."""


class Diverged(Failure):
    """A loss that is not a finite number: training cannot go on from there."""
