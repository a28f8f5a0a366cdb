"""Sphinx configuration of the skvae documentation."""

import re
from pathlib import Path

from sphinx.util import logging

import skvae

# -- Project ------------------------------------------------------------------
project = "skvae"
copyright = "skvae developers"
author = "skvae developers"
release = skvae.__version__
version = ".".join(release.split(".")[:2])

# -- General ------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "literal"

# -- API reference ------------------------------------------------------------
# One page per public name, written to gen_modules/ (a build output). The
# class template lists the methods itself, so numpydoc does not add a second
# table of members.
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- Gallery ------------------------------------------------------------------
# The examples run with skvae's own choice of threads (the user guide's
# "Speed tips"), as a reader's copy of them would.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skvae",),
    "reference_url": {"skvae": None},
    "backreferences_dir": "gen_modules/backreferences",
    "download_all_examples": False,
    "remove_config_comments": True,
}

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skvae {version}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_sidebars = {"index": []}
html_show_sourcelink = False


# -- Checks -------------------------------------------------------------------
def _check_api_coverage(app):
    """Warn about public names that the API reference does not list."""
    text = (Path(app.srcdir) / "api.rst").read_text()
    listed = set(re.findall(r"^   (\w+)$", text, flags=re.MULTILINE))
    missing = sorted(set(skvae.__all__) - listed - {"__version__"})
    if missing:
        logging.getLogger(__name__).warning(
            "skvae.__all__ names missing from docs/api.rst: %s", ", ".join(missing)
        )


def setup(app):
    app.connect("builder-inited", _check_api_coverage)
