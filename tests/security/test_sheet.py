"""The math sheet is inert: hostile math and text from a spec never become markup that runs, links or loads.

Three layers, each tested on its own: the MathML allow-list (unit cases and hypothesis over arbitrary text),
the page (every element and attribute checked by an HTML parser, the Content-Security-Policy hash equal to the
page's one script), and a headless Chromium that loads a page built from hostile math, and the same page with a
script spliced in by hand, and finds that nothing but the page's own self-check ran.
"""
from __future__ import annotations

import base64
import hashlib
import html.parser
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omgen.doc import mathml

from .conftest import base_spec, run_omgen, write_yaml

pytest.importorskip("latex2mathml", reason="the 'doc' extra (latex2mathml) is not installed")

MARK = "document.documentElement.setAttribute('data-ran', 'y' + 'es')"  # 'yes' appears only if it ran
HOSTILE_MATH = [
    rf"\text{{<script>{MARK}</script>}}",
    r"\href{javascript:alert(1)}{x}",
    r"\url{javascript:alert(1)}",
    r"\style{background:url(http://example.com/x)}{x}",
    r"\class{om-selfcheck}{x}",
    r"\cssId{om-terms}{x}",
    r"\color{url(javascript:alert(1))}{x}",
    rf"\text{{<img src=x onerror=\"{MARK}\">}}",
    rf"\mathrm{{<svg onload={MARK}>}}",
    r"\text{<a href='javascript:alert(1)'>x</a>}",
    r"\text{<math><semantics><annotation-xml encoding='text/html'><script>1</script></annotation-xml></semantics></math>}",
]


@pytest.mark.parametrize("latex", HOSTILE_MATH)
def test_hostile_math_is_refused_or_plain(latex):
    result = mathml.to_mathml(latex)
    if result.mathml is not None:  # rendered: then only as allowed elements with plain attributes
        _assert_allowed(result.mathml)
    assert result.mathml is None or "<script" not in result.mathml and "href" not in result.mathml


@pytest.mark.parametrize("command", ["href", "url", "style", "class", "cssId", "htmlData"])
def test_link_and_style_commands_are_refused_with_their_name(command):
    result = mathml.to_mathml(rf"\{command}{{a}}{{b}}")
    assert result.mathml is None and f"\\{command} is refused" in result.problem


def test_plain_math_still_renders():
    for latex in (r"\color{red}{x}", r"\frac{a}{b}", r"\begin{matrix}a & b \\ c & d\end{matrix}",
                  r"\mathrm{arg\,max}_i \sigma(x_i)", r"\text{if } x > 0"):
        result = mathml.to_mathml(latex)
        assert result.mathml is not None, (latex, result.problem)
        _assert_allowed(result.mathml)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("\\{}<>&\"'=:/ ()_^abcdehlnoprstuxy;#\n\u2028\x00")), max_size=60)
       | st.text(max_size=40))
def test_any_math_converts_to_allowed_markup_or_nothing(latex):
    result = mathml.to_mathml(latex)
    if result.mathml is not None:
        _assert_allowed(result.mathml)


def _assert_allowed(markup: str) -> None:
    root = ET.fromstring(markup)
    for element in root.iter():
        namespace, _, tag = element.tag.rpartition("}")
        assert namespace == "{" + mathml.MATHML_NS and tag in mathml.ALLOWED_ELEMENTS, tag
        for name in element.attrib:
            assert name == "alttext" or name in mathml.ALLOWED_ATTRIBUTES, name
            assert not name.startswith("on") and "href" not in name


# ------------------------------------------------------------------ the page

class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict, str]] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.csp: list[str] = []
        self._script: dict | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            self.attributes.append((tag, name, value or ""))
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp.append(attrs.get("content") or "")
        if tag == "script":
            self._script, self._text = attrs, []

    def handle_data(self, data):
        if self._script is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._text)))
            self._script = None


def hostile_spec() -> dict:
    spec = base_spec()
    terms = spec["blocks"]["Prediction"]["terms"]
    terms["heat_pred"]["math"] = HOSTILE_MATH[0]
    terms["heat_pred"]["doc"] = f"<script>{MARK}</script><img src=x onerror=\"{MARK}\">"
    terms["peaks"]["math"] = HOSTILE_MATH[7]
    spec["blocks"]["Losses"]["terms"]["loss"]["math"] = r"\href{javascript:alert(1)}{L}"
    spec["doc"] = "</title><script>1</script><style>*{display:none}</style>"
    spec["config"]["threshold"]["doc"] = "\" onmouseover=\"alert(1)"
    spec["mixins"]["oracle-heat"]["terms"]["heat_pred"]["math"] = HOSTILE_MATH[2]
    spec["allow"] = {"print": "</li><script>1</script> for a probe"}
    return spec


@pytest.fixture(scope="module")
def hostile_page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    path = write_yaml(folder / "toy.yaml", hostile_spec())
    status, _, err = run_omgen("doc", str(path), "-o", str(folder / "doc"))
    assert status == 0, err
    return folder / "doc" / "toy"


def test_the_page_has_no_markup_from_the_spec(hostile_page):
    for page in sorted(hostile_page.glob("*.html")):
        parsed = _Page()
        parsed.feed(page.read_text(encoding="utf-8"))
        assert len(parsed.csp) == 1 and "default-src 'none'" in parsed.csp[0], page.name
        for tag, name, value in parsed.attributes:
            assert not name.startswith("on"), (page.name, tag, name)
            assert not value.strip().lower().startswith(("javascript:", "data:text")), (page.name, tag, name)
        if page.name == "index.html":
            assert parsed.scripts == []
            continue
        executable = [text for attrs, text in parsed.scripts if attrs.get("type") != "application/json"]
        assert len(executable) == 1 and "om-selfcheck" in executable[0], page.name
        digest = base64.b64encode(hashlib.sha256(executable[0].encode()).digest()).decode()
        assert f"script-src 'sha256-{digest}'" in parsed.csp[0]
        assert "unsafe-inline" not in parsed.csp[0].split("script-src", 1)[1].split(";")[0]


def test_allowances_show_as_a_warning_panel(hostile_page):
    text = (hostile_page / "base.html").read_text(encoding="utf-8")
    panel = re.search(r'<section class="wide trust" id="allowances">(.*?)</section>', text, re.S)
    assert panel and "<code>print</code>" in panel[1] and "&lt;script&gt;" in panel[1]


def test_refused_math_is_shown_as_escaped_source_with_the_reason(hostile_page):
    text = (hostile_page / "base.html").read_text(encoding="utf-8")
    assert "math not rendered: \\href is refused on the sheet" in text
    assert "math not rendered: the MathML element &lt;script&gt; is not allowed" in text


# ------------------------------------------------------------------ in a browser

def _browser():
    from tests.test_doc_browser import CHROMIUM, console_messages, run_chromium

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/install-chromium.sh installs Debian's package; CI runs it)")
    return run_chromium, console_messages


def _load(page) -> tuple[str, list[str]]:
    run_chromium, console_messages = _browser()
    dom, err = run_chromium("--virtual-time-budget=3000", "--window-size=1200,900", "--dump-dom", page.as_uri())
    return dom, console_messages(err)


def test_nothing_from_hostile_math_runs_in_chromium(hostile_page):
    dom, console = _load(hostile_page / "base.html")
    assert 'data-ran="yes"' not in dom
    assert re.search(r'<pre id="om-selfcheck">[^<]+</pre>', dom), "the page's own, hashed script did not run"
    assert console == [], "a hostile page that is escaped right logs no CSP refusal either"


def test_the_policy_stops_a_script_that_got_into_the_page(hostile_page, tmp_path):
    """Defence in depth: were the escaping ever wrong, the Content-Security-Policy still blocks the script."""
    text = (hostile_page / "base.html").read_text(encoding="utf-8")
    spliced = text.replace("</main>", f"<script>{MARK}</script><img src=x onerror=\"{MARK}\"></main>", 1)
    page = tmp_path / "spliced.html"
    page.write_text(spliced, encoding="utf-8")
    dom, console = _load(page)
    assert 'data-ran="yes"' not in dom
    assert re.search(r'<pre id="om-selfcheck">[^<]+</pre>', dom)
    assert any("Content Security Policy" in line for line in console), console
