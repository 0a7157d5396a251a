"""docs/check_offline.py, the check ``make docs`` runs on the built site, on small trees.

The checker is loaded from its file: it is not a package module, and it needs only the
standard library (this environment has no docs extra, so no Sphinx).
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

CHECKER = pathlib.Path(__file__).resolve().parents[2] / "docs" / "check_offline.py"


def _load():
    spec = importlib.util.spec_from_file_location("check_offline", CHECKER)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


check_offline = _load()

PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8" />
  <title>page</title>
  <link rel="stylesheet" href="_static/site.css?v=1" />
  <link rel="preload" as="font" href="_static/fonts/body.woff2" />
  <link rel="icon" href="_static/favicon.png" />
  <link rel="next" title="Next" href="https://example.org/next.html" />
  <link rel="canonical" href="https://example.org/page.html" />
  <script src="_static/app.js"></script>
  <script defer src="_static/mathjax/tex-chtml.js"></script>
  <script>window.MathJax = {"url": "https://example.org/not-a-load"}</script>
  <style>
    /* the font is from https://fonts.example.org/, bundled */
    body { background: url("data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg'/>"); }
  </style>
  {extra_head}
</head>
<body>
  <p>See <a href="https://example.org/">the web site</a> and <a href="//example.org/">this</a>.</p>
  <p><a href="other.html#part">another page</a>, <img src="_static/logo.png" alt="logo" /></p>
  <div class="math">\\[ y = \\sum_i x_i \\]</div>
  {extra_body}
</body>
</html>
"""

CSS = """/*! Licence: https://example.org/licence
 * @import url("https://fonts.example.org/css2?family=Lato");
 */
@import "local.css";
@font-face { font-family: Body; src: url(fonts/body.woff2) format("woff2"); }
.icon { background: url('data:image/svg+xml;utf8,<svg xmlns="http://www.w3.org/2000/svg"/>'); }
{extra_css}
"""


def make_tree(tmp_path, extra_head="", extra_body="", extra_css="", extra_js=""):
    """A small built site: one page, in a subfolder too, with its local files present."""
    root = tmp_path / "html"
    static = root / "_static"
    for d in (static / "fonts", static / "mathjax", root / "sub" / "_static"):
        d.mkdir(parents=True, exist_ok=True)
    page = PAGE.replace("{extra_head}", extra_head).replace("{extra_body}", extra_body)
    (root / "index.html").write_text(page)
    (root / "other.html").write_text(PAGE.replace("{extra_head}", "").replace("{extra_body}", ""))
    (static / "site.css").write_text(CSS.replace("{extra_css}", extra_css))
    (static / "local.css").write_text("p { color: black; }\n")
    (static / "app.js").write_text(
        'import { f } from "./lib.js";\nconst u = "https://example.org/api";\n' + extra_js
    )
    for name in ("fonts/body.woff2", "favicon.png", "logo.png", "mathjax/tex-chtml.js"):
        (static / name).write_bytes(b"")
    return root


def test_clean_tree_passes(tmp_path, capsys):
    root = make_tree(tmp_path)
    assert check_offline.check_tree(root) == []
    assert check_offline.main([str(root)]) == 0
    assert "nothing from the network, nothing missing" in capsys.readouterr().out


def test_web_links_are_not_loads(tmp_path):
    body = '<a href="https://cdn.example.org/lib.js">lib.js</a> <a href="http://example.org">x</a>'
    root = make_tree(tmp_path, extra_body=body)
    assert check_offline.check_tree(root) == []


REMOTE_HTML = [
    ("script", '<script src="https://cdn.example.org/mathjax@4/tex-mml-chtml.js"></script>'),
    ("script-http", '<script defer src="http://cdn.example.org/a.js"></script>'),
    ("script-protocol-relative", '<script src="//cdn.example.org/a.js"></script>'),
    ("stylesheet", '<link rel="stylesheet" href="https://cdn.example.org/theme.css" />'),
    ("stylesheet-no-quotes", "<link rel=stylesheet href=//fonts.example.org/css>"),
    ("alternate-stylesheet", '<link rel="alternate stylesheet" href="https://x.org/a.css">'),
    ("preload-font", '<link rel="preload" as="font" href="https://x.org/f.woff2" crossorigin>'),
    ("modulepreload", '<link rel="modulepreload" href="https://x.org/m.js">'),
    ("icon", '<link rel="shortcut icon" href="https://x.org/favicon.ico">'),
    ("preconnect", '<link rel="preconnect" href="https://fonts.example.org">'),
    ("style-import", '<style>@import url("https://fonts.example.org/css2?family=Lato");</style>'),
    ("style-font", "<style>@font-face { src: url(https://x.org/f.woff2); }</style>"),
    ("style-attribute", "<div style=\"background: url('//x.org/bg.png')\"></div>"),
    ("img", '<img src="https://x.org/badge.svg" alt="badge">'),
    ("img-srcset", '<img src="_static/logo.png" srcset="_static/logo.png 1x, //x.org/2x.png 2x">'),
    ("iframe", '<iframe src="https://x.org/embed"></iframe>'),
    ("base", '<base href="https://x.org/docs/">'),
]


@pytest.mark.parametrize("snippet", [s for _, s in REMOTE_HTML], ids=[i for i, _ in REMOTE_HTML])
def test_each_remote_load_in_html_is_caught(tmp_path, snippet):
    root = make_tree(tmp_path, extra_head=snippet)
    found = check_offline.check_tree(root)
    assert len(found) == 1, found
    (f,) = found
    assert f.kind == "remote"
    assert f.path == root / "index.html"
    assert check_offline.is_remote(f.url)
    assert f.url in snippet


REMOTE_CSS = [
    ("import-string", '@import "https://fonts.example.org/css2?family=Lato";'),
    ("import-url", "@import url(//fonts.example.org/css2?family=Lato);"),
    ("font-face", '@font-face { font-family: X; src: url("https://x.org/x.woff2"); }'),
    ("background", "body { background-image: url( 'http://x.org/bg.png' ); }"),
    ("uppercase", "body { background: URL(HTTPS://X.ORG/BG.PNG); }"),
]


@pytest.mark.parametrize("css", [s for _, s in REMOTE_CSS], ids=[i for i, _ in REMOTE_CSS])
def test_each_remote_load_in_css_is_caught(tmp_path, css):
    root = make_tree(tmp_path, extra_css=css)
    found = check_offline.check_tree(root)
    assert [f.kind for f in found] == ["remote"], found
    assert found[0].path == root / "_static" / "site.css"
    assert found[0].line == 7  # the line after CSS's six
    assert found[0].url in css


@pytest.mark.parametrize(
    "js",
    [
        'import confetti from "https://cdn.example.org/confetti.mjs";',
        "import 'https://cdn.example.org/side-effect.js';",
        'const m = await import("//cdn.example.org/m.js");',
        "importScripts('https://cdn.example.org/worker.js');",
    ],
)
def test_obvious_remote_loads_in_js_are_caught(tmp_path, js):
    root = make_tree(tmp_path, extra_js=js)
    found = check_offline.check_tree(root)
    assert [(f.kind, f.what) for f in found] == [("remote", "js import")], found


def test_each_finding_is_reported_with_its_line(tmp_path, capsys):
    head = '<script src="https://a.org/a.js"></script>\n<link rel=stylesheet href="//b.org/b.css">'
    root = make_tree(tmp_path, extra_head=head)
    found = check_offline.check_tree(root)
    lines = (root / "index.html").read_text().splitlines()
    assert [f.url for f in found] == ["https://a.org/a.js", "//b.org/b.css"]
    for f in found:
        assert f.url in lines[f.line - 1]
    assert check_offline.main([str(root)]) == 1
    out = capsys.readouterr().out
    assert f"{root / 'index.html'}:{found[0].line}: remote <script src>: https://a.org/a.js" in out
    assert "2 load(s) that need a network or are missing" in out


def test_a_missing_local_file_is_caught(tmp_path):
    root = make_tree(tmp_path)
    (root / "_static" / "mathjax" / "tex-chtml.js").unlink()
    (root / "_static" / "fonts" / "body.woff2").unlink()
    found = {(f.path.name, f.kind, f.url) for f in check_offline.check_tree(root)}
    assert found == {
        ("index.html", "missing", "_static/mathjax/tex-chtml.js"),
        ("other.html", "missing", "_static/mathjax/tex-chtml.js"),
        ("index.html", "missing", "_static/fonts/body.woff2"),
        ("other.html", "missing", "_static/fonts/body.woff2"),
        ("site.css", "missing", "fonts/body.woff2"),  # relative to the style sheet
    }


def test_a_page_in_a_subfolder_resolves_from_its_folder(tmp_path):
    root = make_tree(tmp_path)
    sub = root / "sub" / "page.html"
    sub.write_text('<script src="../_static/app.js"></script><script src="_static/app.js">')
    found = check_offline.check_tree(root)
    assert [(f.path, f.kind, f.url) for f in found] == [(sub, "missing", "_static/app.js")]


def test_no_tree_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        check_offline.check_tree(tmp_path / "absent")


def test_the_checker_runs_without_sphinx(tmp_path):
    """As a script, with Sphinx and docutils made unimportable: it needs neither."""
    root = make_tree(tmp_path, extra_head='<script src="https://a.org/a.js"></script>')
    block = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('sphinx', 'docutils'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"sys.argv = ['check_offline.py', {str(root)!r}]\n"
        f"exec(compile(open({str(CHECKER)!r}).read(), 'check_offline.py', 'exec'),"
        " {'__name__': '__main__'})\n"
    )
    res = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True)
    assert res.returncode == 1, res.stderr
    assert "remote <script src>: https://a.org/a.js" in res.stdout
