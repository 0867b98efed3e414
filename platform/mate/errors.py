"""The base of every error a user can fix (bad config, bad data, bad model folder): the CLI prints its message in
one line and exits 2, never a traceback."""


class UserError(ValueError):
    pass
