"""Reading catalogs, mapping their fields, inspecting and splitting them."""

from prodcat.catalog.fields import PRESETS, FieldMapping

__all__ = ["PRESETS", "FieldMapping"]
