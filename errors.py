"""Errors caused by what a user asked for: shown as one line, never as a traceback."""


class UserError(Exception):
    """Bad input (config, path, dataset, checkpoint); the message names the problem."""


class ConfigError(UserError, ValueError):
    """An unknown or impossible config value; the message names the key."""


class NonFiniteLoss(UserError):
    """Training diverged; the last good checkpoint is kept."""


def check(ok: bool, key: str, message: str) -> None:
    """A ConfigError naming the config `key` unless `ok`: the form of every config check."""
    if not ok:
        raise ConfigError(f"config key {key}: {message}")
