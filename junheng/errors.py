"""Exit codes and the error every command raises for a failure the user can fix."""

EXIT_OK, EXIT_VIOLATIONS, EXIT_USAGE = 0, 1, 2
#: Nothing found violated, but some rules could not be evaluated for want of data: a script
#: reading the exit code must not be told "all well" when it is not known (0 said so).
EXIT_INCOMPLETE = 3


class UserError(Exception):
    """A failure the user can fix; its message is printed as it is, on one line."""
