"""Hypothesis keeps caches (local constants, unicode tables) under ``.hypothesis`` even without
an example database; for the fuzz run they go to a temporary directory, not the work tree."""

from __future__ import annotations

import tempfile

from hypothesis.configuration import set_hypothesis_home_dir

_HOME = tempfile.TemporaryDirectory(prefix="fuzz-hypothesis-")  # removed at exit
set_hypothesis_home_dir(_HOME.name)
