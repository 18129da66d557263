"""Errors caused by what a user asked for: shown as one line, never as a traceback."""


class UserError(Exception):
    """Bad input (config, path, dataset, checkpoint); the message names the problem."""


class ConfigError(UserError, ValueError):
    """An unknown or impossible config value; the message names the key."""


class NonFiniteLoss(UserError):
    """Training diverged; the last good checkpoint is kept."""


def describe(e: BaseException, limit: int = 200) -> str:
    """A library's exception as a fragment of a one-line message: its type and the first
    line of its text (at most `limit` characters)."""
    text = str(e).strip()
    first = text.splitlines()[0][:limit] if text else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def check(ok: bool, key: str, message: str) -> None:
    """A ConfigError naming the config `key` unless `ok`: the form of every config check."""
    if not ok:
        raise ConfigError(f"config key {key}: {message}")
