"""Sphinx configuration for rconv's documentation (``make docs``).

The build is offline: no intersphinx. References to NumPy, SciPy, torch and Dask render as
literals; ``nitpick_ignore_regex`` below lists those names only, so any other broken
reference is an error under ``-W``. The notebooks are rendered by myst-nb with the outputs
kept in the repository (they are not executed here; the test suite executes them).

The site reads offline too: sphinx-mathjax-offline copies MathJax 3 and its fonts into
``_static/mathjax`` and points ``mathjax_path`` there, instead of Sphinx's CDN default.
``make docs`` then runs ``check_offline.py``, which fails on any script, style sheet or font
the built pages would fetch from the network.
"""

import sys

import rconv

project = "rconv"
author = "the rconv developers"
copyright = "2026, the rconv developers"
release = rconv.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_nb",
    "sphinx-mathjax-offline",  # MathJax in _static/mathjax, not from a CDN (the name has dashes)
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "notebooks/figures"]
templates_path = ["_templates"]

# --- API reference: autosummary pages, numpydoc rendering and validation
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc sections carry the types
numpydoc_show_class_members = False  # the class template lists the methods once
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# numpydoc's validation of every rendered docstring; a failure is a warning, so an error
# under -W. Skipped checks, with the reason:
#   ES01  an extended summary is not required of every function;
#   SA01  See Also sections are not required;
#   RT02  numpydoc wants the bare type for a single unnamed return; we name returns.
#   GL08  the object has no docstring: only the dunder/inherited members autodoc may list.
numpydoc_validation_checks = {"all", "ES01", "SA01", "RT02", "GL08"}
numpydoc_validation_exclude = {r"\.__init__$", r"\.__call__$", r"\.__repr__$"}


def _public_bases(app, name, obj, options, bases):
    """Show a private base (``rconv.optim._Optimizer``) as its own public bases, and a base
    defined in a submodule of a documented package under the package's name
    (``rconv.nn.module.Module`` as ``rconv.nn.Module``, the name the API pages have)."""
    i = 0
    while i < len(bases):
        b = bases[i]
        if isinstance(b, type) and b.__module__.startswith("rconv"):
            if b.__name__.startswith("_"):
                bases[i : i + 1] = list(b.__bases__)
                continue
            pkg = b.__module__.rsplit(".", 1)[0]
            if pkg in _DOCUMENTED and getattr(sys.modules[pkg], b.__name__, None) is b:
                bases[i] = f":py:class:`{pkg}.{b.__name__}`"
        i += 1


# the modules the API reference documents (their names in docs/api/index.rst)
_DOCUMENTED = {"rconv", "rconv.nn", "rconv.nn.functional", "rconv.optim", "rconv.kernels"}


def setup(app):
    app.connect("autodoc-process-bases", _public_bases)


# --- offline references: these packages' names render as literals
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|scipy|torch|dask|da|distributed|threadpoolctl)(\..*)?"),
    (r"py:.*", r"(array_like|array-like|ndarray|scalar|dtype|optional|callable)"),
]

# --- notebooks: rendered with their stored outputs
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# --- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"rconv {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "navbar_align": "left",
    "header_links_before_dropdown": 6,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_show_sourcelink = False
