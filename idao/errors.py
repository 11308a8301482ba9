"""User-facing errors. The scripts print these as one line and exit with status 2."""


class IdaoError(Exception):
    """Bad input the user can fix: the message names the file and the problem."""


class DataError(IdaoError):
    """A dataset file or folder that cannot be used as it is."""


class ConfigError(IdaoError):
    """A config key or value that does not exist or does not parse."""


class CheckpointError(IdaoError):
    """A checkpoint that is unsafe, corrupt, or does not match the config."""
