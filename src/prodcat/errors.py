"""Errors a user can cause.

Each one carries a single line that names the file, column or row at fault.
The CLI catches `ProdcatError` once, prints that line and exits non-zero;
anything else escaping is a bug in prodcat and keeps its traceback.
"""


class ProdcatError(Exception):
    """Base class of every error caused by input, options or a model directory."""

    exit_code = 2


class CatalogError(ProdcatError):
    """A catalog file cannot be read: missing, empty, binary, not UTF-8, malformed."""


class EmptyCatalogError(CatalogError):
    """A catalog file holds no product: empty, or a header (a schema) alone."""


class ColumnError(CatalogError):
    """A column named by the field mapping is not in the catalog."""


class LabelError(CatalogError):
    """Labels are missing, unparseable, or too few classes to learn."""


class ConfigError(ProdcatError):
    """Options or a field config file are inconsistent or unknown."""


class ModelDirError(ProdcatError):
    """A model directory is missing, incomplete, corrupt or in a newer model format."""


class SavedSettingsError(ModelDirError):
    """A model's saved settings are invalid or do not fit its saved weights (a hand-edited manifest).

    The model knows the setting but not the file it was read from: whoever
    read the settings puts the file in front of the message.
    """


class NotFittedError(ProdcatError, AttributeError):
    """A Categorizer used before `fit` or `load`.

    Also an AttributeError, as scikit-learn's NotFittedError is: `hasattr(clf,
    "classes_")` and `getattr(clf, "classes_", None)` then say "not fitted"
    instead of raising.
    """


class UnknownModelError(ConfigError):
    """No model is registered under the requested name."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C that left something to go on from (a checkpoint, the best model so far):
    the message says what and where. Still a KeyboardInterrupt, so a script stops."""
