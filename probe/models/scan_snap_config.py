"""`ScanSnapConfig` lives in `probe.config` (the data model and the model both read it, and probe/data must not
import probe/models); this module keeps the old import path working."""

from probe.config import ScanSnapConfig

__all__ = ["ScanSnapConfig"]
