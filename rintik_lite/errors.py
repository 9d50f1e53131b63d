"""Every failure rintik-lite reports on purpose.

One base class; the CLI turns any of them into a one-line message and exit code 2.
"""


class RintikError(Exception):
    """Base of every error rintik-lite raises on purpose."""


class SettingsError(RintikError):
    """A setting is unknown, has a bad value, or the configuration file cannot be read."""


class ServiceUnavailable(RintikError):
    """A service we depend on (database, broker, Keystone) cannot be reached."""


class DatabaseTooNew(RintikError):
    """The database was written by a newer rintik-lite than this one."""


class BadNotification(RintikError):
    """A message cannot be decoded or applied: the reason says which field is at fault."""


class NotFound(RintikError):
    """The id asked for does not exist."""


class InvalidInput(RintikError):
    """A value given by a user (CLI argument, API body, file) is not acceptable."""
