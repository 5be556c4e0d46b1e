"""One exception root, so callers can catch everything the library raises on purpose."""


class AudiorecError(Exception):
    """Base class of every error audiorec raises deliberately."""


class ParameterError(AudiorecError, ValueError):
    """A function or config value is invalid; the message names the parameter and the value received."""


class AudioError(AudiorecError):
    """An audio file cannot be decoded into a usable signal; the message names the file."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class SchemaError(AudiorecError):
    """A table on disk does not follow its contract (missing columns, wrong types)."""
