"""Sphinx configuration: furo, MyST Markdown, and the command reference generated from the
parsers (``_ext/clireference.py``).  Built by ``.ci/run`` with warnings as errors:
``sphinx-build -W --keep-going -b html docs build/docs``."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE / "_ext"))

import reloadscope  # noqa: E402

project = "reloadscope"
author = "The reloadscope developers"
copyright = "the reloadscope developers"
release = version = reloadscope.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "clireference"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
autodoc_typehints = "description"
autodoc_member_order = "bysource"
nitpicky = False

html_theme = "furo"
html_title = f"reloadscope {release}"
smartquotes = False  # option names keep their two hyphens
