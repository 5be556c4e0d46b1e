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


class DatasetError(AudiorecError):
    """A dataset's files cannot be turned into the workflow's tables; the message names the file and the problem."""


class DownloadError(AudiorecError):
    """A declared file cannot be fetched, fails its checksum, or an archive is unsafe to extract."""


class TrainingError(AudiorecError):
    """Training a model went wrong (a non-finite loss); the message names the model, the epoch and the value."""


class ContractError(AudiorecError):
    """A backbone or recommender broke its contract (output shape or width, non-finite values, heard items in a
    ranking); the message names the kind and the problem, so a plugin's author knows what to fix."""
