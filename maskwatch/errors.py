"""The one exception type that the command-line tools turn into a clean one-line error."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, bad config): printed as one line, exit code 2."""

    exit_code = 2


class ConfigError(UserError):
    """A bad config file, key or value."""
