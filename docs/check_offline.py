"""Check that a built HTML tree works without a network (``make docs`` runs it).

``python docs/check_offline.py [DIR]`` (default ``docs/_build/html``) scans every ``.html``,
``.css`` and ``.js`` file under DIR and prints one line per problem, exiting 1 if there is any:

* ``remote``: a load from off the site (``http:``, ``https:`` or a protocol-relative ``//``):
  in HTML a ``<script src>``, a ``<link href>`` whose ``rel`` loads something (stylesheet,
  preload, icon, preconnect, ...; ``next``/``prev``/``canonical`` and the like do not), an
  ``<img>``/``<iframe>``/``<source>``/... ``src``, a ``<base href>``, and the CSS of
  ``<style>`` elements and ``style=`` attributes; in CSS an ``@import`` or a ``url(...)``
  (fonts included); in JavaScript only the obvious ones, a string literal given to
  ``import``, ``import(...)`` or ``importScripts(...)``. Links (``<a href>``) are not loads.
* ``missing``: a relative load of the same kinds whose file is not in the tree (MathJax not
  copied into ``_static``, say), so the page would lack it offline too.

Comments in CSS (licence notes with URLs) and ``data:`` URLs are not loads. The scan is
static: what a script builds at run time (the font URLs MathJax derives from its own path)
is not seen here; opening the pages in a browser with the network blocked shows those.

Only the standard library is used: the tests import this module without Sphinx installed.
"""

from __future__ import annotations

import html.parser
import pathlib
import re
import sys
import urllib.parse
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

# <link rel> values that only name a related page: its href is not fetched
NAVIGATION_RELS = frozenset(
    "alternate author bookmark canonical chapter contents copyright edit external first "
    "glossary help index last license me next nofollow noopener noreferrer prev previous "
    "search section start subsection tag top up".split()
)
# elements whose src (or data, poster, srcset) the browser fetches as the page loads
SRC_TAGS = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "source": ("src", "srcset"),
    "track": ("src",),
    "audio": ("src",),
    "video": ("src", "poster"),
    "input": ("src",),
    "object": ("data",),
}

_REMOTE = re.compile(r"^\s*(?:(?:https?|ftp|wss?):|[/\\]{2})", re.IGNORECASE)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CSS_URL = re.compile(r"""\burl\(\s*(?:"([^"]*)"|'([^']*)'|([^)"'\s]*))\s*\)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_JS_IMPORT = re.compile(
    r"""(?:\bimport\s*\(\s*|\bimportScripts\s*\(\s*|\bimport\s+(?:[\w*{}\s,$]+\s+from\s+)?)"""
    r"""(["'`])((?:https?:)?//[^"'`]+)\1"""
)


@dataclass(frozen=True)
class Finding:
    """One load that would need a network (``remote``) or fails offline (``missing``)."""

    path: pathlib.Path
    line: int
    kind: str  # "remote" or "missing"
    what: str  # e.g. "<script src>", "css url()"
    url: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind} {self.what}: {self.url}"


def is_remote(url: str) -> bool:
    """Whether ``url`` points off the site (a scheme with a host, or ``//host/...``)."""
    return bool(_REMOTE.match(url))


def _local_target(url: str, base: pathlib.Path) -> Optional[pathlib.Path]:
    """The file a relative ``url`` names, from the directory ``base``; None if not a file."""
    url = url.strip()
    if not url or url.startswith("#") or "{{" in url or "{%" in url:
        return None  # a fragment, or a template's placeholder (the theme's macros in _static)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme or parts.netloc:
        return None  # data:, blob:, javascript:, mailto: ...: nothing to find on disk
    path = urllib.parse.unquote(parts.path)
    if not path:
        return None
    return (base / path) if not path.startswith("/") else None


def _srcset_urls(value: str) -> List[str]:
    return [c.strip().split()[0] for c in value.split(",") if c.strip()]


def _read(path: pathlib.Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def css_urls(css: str) -> Iterator[Tuple[int, str, str]]:
    """``(offset, what, url)`` for each ``@import`` and ``url(...)`` of a style sheet."""
    # blank the comments out, keeping the offsets (and so the line numbers) of the rest
    css = _CSS_COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), css)
    for m in _CSS_URL.finditer(css):
        url = next(g for g in m.groups() if g is not None)
        yield m.start(), "css url()", url
    for m in _CSS_IMPORT.finditer(css):
        yield m.start(), "css @import", m.group(1) if m.group(1) is not None else m.group(2)


def check_css(css: str, path: pathlib.Path, base: pathlib.Path, line0: int = 1) -> List[Finding]:
    """The remote and missing loads of the style sheet text ``css`` (found in ``path``).

    ``base`` is the directory its relative URLs resolve from; ``line0`` the line where the
    text starts in the file (a ``<style>`` element's).
    """
    found = []
    for offset, what, url in css_urls(css):
        line = line0 + _line_at(css, offset) - 1
        if is_remote(url):
            found.append(Finding(path, line, "remote", what, url))
        else:
            target = _local_target(url, base)
            if target is not None and not target.is_file():
                found.append(Finding(path, line, "missing", what, url))
    return found


class _PageScanner(html.parser.HTMLParser):
    def __init__(self, path: pathlib.Path):
        super().__init__(convert_charrefs=True)
        self.path = path
        self.base = path.parent
        self.found: List[Finding] = []
        self._style_line: Optional[int] = None
        self._style_text: List[str] = []

    def _load(self, what: str, url: str, check_local: bool = True) -> None:
        line = self.getpos()[0]
        if is_remote(url):
            self.found.append(Finding(self.path, line, "remote", what, url))
        elif check_local:
            target = _local_target(url, self.base)
            if target is not None and not target.is_file():
                self.found.append(Finding(self.path, line, "missing", what, url))

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "link" and a.get("href"):
            rels = set(a.get("rel", "").lower().split())
            if not rels or not rels <= NAVIGATION_RELS:
                # a stylesheet, preload, icon, manifest, preconnect...: fetched by the page
                # (preconnect and dns-prefetch name a host, not a file: no local check)
                local = not rels & {"preconnect", "dns-prefetch"}
                self._load(f"<link rel={a.get('rel', '')!r} href>", a["href"], local)
        elif tag == "base" and a.get("href"):
            self._load("<base href>", a["href"], check_local=False)
        for attr in SRC_TAGS.get(tag, ()):
            if a.get(attr):
                urls = _srcset_urls(a[attr]) if attr == "srcset" else [a[attr]]
                for url in urls:
                    self._load(f"<{tag} {attr}>", url)
        if a.get("style"):
            self.found += check_css(a["style"], self.path, self.base, self.getpos()[0])
        if tag == "style":
            self._style_line = self.getpos()[0]
            self._style_text = []

    def handle_data(self, data: str) -> None:
        if self._style_line is not None:
            self._style_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._style_line is not None:
            css = "".join(self._style_text)
            self.found += check_css(css, self.path, self.base, self._style_line)
            self._style_line = None


def check_html(path: pathlib.Path) -> List[Finding]:
    """The remote and missing loads of the HTML page ``path``."""
    scanner = _PageScanner(path)
    scanner.feed(_read(path))
    scanner.close()
    return scanner.found


def check_js(path: pathlib.Path) -> List[Finding]:
    """The obvious remote loads of a script: an absolute URL given to an import."""
    text = _read(path)
    return [
        Finding(path, _line_at(text, m.start()), "remote", "js import", m.group(2))
        for m in _JS_IMPORT.finditer(text)
    ]


def check_tree(root: pathlib.Path) -> List[Finding]:
    """Every remote or missing load of the ``.html``, ``.css`` and ``.js`` files under root."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no built HTML tree at {root}")
    found: List[Finding] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        if suffix in (".html", ".htm"):
            found += check_html(path)
        elif suffix == ".css":
            found += check_css(_read(path), path, path.parent)
        elif suffix in (".js", ".mjs"):
            found += check_js(path)
    return found


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = pathlib.Path(args[0] if args else "docs/_build/html")
    found = check_tree(root)
    for f in found:
        print(f)
    pages = sum(1 for _ in root.rglob("*.html"))
    if found:
        print(f"check_offline: {len(found)} load(s) that need a network or are missing, in {root}")
        return 1
    print(f"check_offline: {pages} pages under {root}: nothing from the network, nothing missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
