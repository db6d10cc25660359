"""Exit codes and the error every command raises for a failure the user can fix."""

EXIT_OK, EXIT_VIOLATIONS, EXIT_USAGE = 0, 1, 2


class UserError(Exception):
    """A failure the user can fix; its message is printed as it is, on one line."""
