"""The one exception type for user mistakes: entry points print its message as one line and exit."""


class DigitsError(Exception):
    """A problem the user can fix (bad config value, missing file); shown without a traceback."""

    exit_code = 2
