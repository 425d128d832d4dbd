"""Settings schema (msgspec Structs) and loader (TOML + VOICENODE_* environment overrides)."""

from config.loader import ConfigError, load_settings
from config.schema import Settings

__all__ = ["ConfigError", "Settings", "load_settings"]
