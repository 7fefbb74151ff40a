"""LaTeX → MathML for the math sheet (latex2mathml, an optional dependency).

`to_mathml` never raises: it returns either MathML that browsers render
natively or, for LaTeX it cannot trust, the reason, so the page can show the
raw source of that one term and the command can warn about it.

Beyond latex2mathml's own exceptions, the checks catch what it lets through
silently: unbalanced braces, unknown commands (left as text), and a
fraction, root or script with a missing argument. MathML Core (what
Chromium and Firefox render) ignores `mathvariant` except on single
letters, so bold, blackboard, sans-serif and monospace letters become the
Unicode mathematical alphanumeric characters.

The sheet is inert (docs/security.md): math comes from a stranger's spec, so
whatever latex2mathml makes of it must pass an allow-list of MathML Core
presentation elements and attributes with plain values before it reaches the
page. `\\href`, `\\url`, `\\style` and friends are refused up front (the term
shows its LaTeX as escaped text); an element or attribute outside the list
(a `<script>` out of `\\text{...}`, an `href`, an `on...` handler, an `id`
that would shadow the page's own) refuses the whole formula the same way.
"""
from __future__ import annotations

import dataclasses
import re
import unicodedata
import xml.etree.ElementTree as ET

MATHML_NS = "http://www.w3.org/1998/Math/MathML"
# MathML Core presentation elements (https://www.w3.org/TR/mathml-core/): none links, scripts or embeds
# (no semantics/annotation-xml, which can carry HTML; no maction).
ALLOWED_ELEMENTS = frozenset({
    "math", "mi", "mn", "mo", "ms", "mspace", "mtext", "mrow", "mfrac", "msqrt", "mroot", "mstyle", "merror",
    "mpadded", "mphantom", "msub", "msup", "msubsup", "munder", "mover", "munderover", "mmultiscripts",
    "mprescripts", "none", "mtable", "mtr", "mtd", "menclose", "mfenced"})
ALLOWED_ATTRIBUTES = frozenset({
    "display", "displaystyle", "scriptlevel", "mathvariant", "mathsize", "mathcolor", "mathbackground", "dir",
    "stretchy", "symmetric", "largeop", "movablelimits", "accent", "accentunder", "fence", "separator", "form",
    "lspace", "rspace", "minsize", "maxsize", "width", "height", "depth", "voffset", "linethickness",
    "columnalign", "rowalign", "columnspacing", "rowspacing", "columnlines", "rowlines", "frame", "framespacing",
    "equalrows", "equalcolumns", "columnspan", "rowspan", "notation", "open", "close", "separators", "align",
    "numalign", "denomalign", "bevelled"})
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9 .,%#+\-]*")  # keywords, lengths, colours: no ':', '(', quotes or '<'
_REFUSED_COMMAND = re.compile(r"\\(href|url|style|class|cssId|html[A-Za-z]*|require|unicode|data[A-Za-z]*|"
                              r"includegraphics|mmlToken|toggle|mathtip|texttip|tooltip)(?![A-Za-z])")
_ARITY = {"mfrac": 2, "msub": 2, "msup": 2, "msubsup": 3, "mroot": 2, "munder": 2, "mover": 2, "munderover": 3}


@dataclasses.dataclass(frozen=True)
class MathResult:
    latex: str
    mathml: str | None  # None when the LaTeX could not be converted
    problem: str = ""  # why not, for the warning


def available() -> bool:
    try:
        import latex2mathml.converter  # noqa: F401
    except ImportError:
        return False
    return True


def to_mathml(latex: str, display: str = "block") -> MathResult:
    latex = latex.strip()
    if not latex:
        return MathResult(latex, None, "empty math")
    control = next((c for c in latex if unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n"), None)
    if control is not None:
        return MathResult(latex, None, f"control character U+{ord(control):04X} in the math")
    refused = _REFUSED_COMMAND.search(latex)
    if refused:
        return MathResult(latex, None, f"\\{refused[1]} is refused on the sheet (no links, styles or markup from a spec)")
    problem = _brace_problem(latex)
    if problem:
        return MathResult(latex, None, problem)
    try:
        from latex2mathml.converter import convert
    except ImportError:
        return MathResult(latex, None, "latex2mathml is not installed (pip install 'omgen[doc]')")
    try:
        mathml = convert(latex, display=display)
    except Exception as exc:  # latex2mathml raises many exception types, some bare
        name = type(exc).__name__
        detail = str(exc).strip()
        return MathResult(latex, None, _explain(name) + (f": {detail}" if detail else ""))
    try:
        root = ET.fromstring(mathml)
    except ET.ParseError as exc:
        return MathResult(latex, None, f"latex2mathml produced invalid MathML ({exc})")
    problem = _unsafe_markup(root) or _tree_problem(root)
    if problem:
        return MathResult(latex, None, problem)
    _unicode_variants(root)
    _merge_upright_words(root)
    for element in root.iter():
        if element.text in _OPERATOR_FIXES:  # latex2mathml's choice of character, or <mi> for a binary operator
            element.text = _OPERATOR_FIXES[element.text]
            element.tag = element.tag.rsplit("}", 1)[0] + "}mo"
    root.set("alttext", latex)
    ET.register_namespace("", MATHML_NS)
    text = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    return MathResult(latex, _non_ascii_as_references(text))


def _explain(exception_name: str) -> str:
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", exception_name.removesuffix("Error")).lower()
    return words or "cannot parse"


def _brace_problem(latex: str) -> str:
    depth = 0
    i = 0
    while i < len(latex):
        char = latex[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                return f"unbalanced braces: '}}' at column {i + 1} closes nothing"
        i += 1
    if depth > 0:
        return f"unbalanced braces: {depth} '{{' never closed"
    return ""


def _unsafe_markup(root: ET.Element) -> str:
    """Why this MathML may not reach the page ('' when every element and attribute is on the allow-list)."""
    for element in root.iter():
        namespace, _, tag = element.tag.rpartition("}")
        if namespace != "{" + MATHML_NS or tag not in ALLOWED_ELEMENTS:
            return f"the MathML element <{tag}> is not allowed on the sheet"
        for name, value in element.attrib.items():
            if name not in ALLOWED_ATTRIBUTES:
                return f"the MathML attribute {name.rpartition('}')[2]}= on <{tag}> is not allowed on the sheet"
            if not _PLAIN_VALUE.fullmatch(value):
                return f"the value of {name}= on <{tag}> is not a plain keyword, length or colour"
    return ""


def _tree_problem(root: ET.Element) -> str:
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        text = (element.text or "").strip()
        if tag in ("mi", "mo", "mn") and re.match(r"\\[A-Za-z]+", text):
            return f"unknown command {text}"
        if tag in _ARITY and len(element) != _ARITY[tag]:
            return f"missing argument ({tag} with {len(element)} of {_ARITY[tag]} parts)"
    return ""


def _offsets(base: int, holes: dict[str, int] | None = None):
    def mapper(char: str) -> str:
        if holes and char in holes:
            return chr(holes[char])
        if "A" <= char <= "Z":
            return chr(base + ord(char) - ord("A"))
        if "a" <= char <= "z":
            return chr(base + 26 + ord(char) - ord("a"))
        return char
    return mapper


_OPERATOR_FIXES = {"\u29f5": "\u2216"}  # \\setminus: REVERSE SOLIDUS OPERATOR → SET MINUS (what fonts have)
_DOUBLE_STRUCK_HOLES = {"C": 0x2102, "H": 0x210D, "N": 0x2115, "P": 0x2119, "Q": 0x211A, "R": 0x211D, "Z": 0x2124}
_VARIANTS = {
    "bold": (_offsets(0x1D400), 0x1D7CE),
    "double-struck": (_offsets(0x1D538, _DOUBLE_STRUCK_HOLES), 0x1D7D8),
    "sans-serif": (_offsets(0x1D5A0), 0x1D7E2),
    "bold-sans-serif": (_offsets(0x1D5D4), 0x1D7EC),
    "monospace": (_offsets(0x1D670), 0x1D7F6),
}


def _unicode_variants(root: ET.Element) -> None:
    for element in root.iter():
        variant = element.get("mathvariant")
        if variant not in _VARIANTS or element.tag.rsplit("}", 1)[-1] not in ("mi", "mn", "mtext"):
            continue
        letters, digit_base = _VARIANTS[variant]
        text = element.text or ""
        element.text = "".join(chr(digit_base + ord(c) - ord("0")) if "0" <= c <= "9" else letters(c) for c in text)
        del element.attrib["mathvariant"]
        if element.tag.endswith("mi") and len(element.text) == 1:
            element.set("mathvariant", "normal")  # no automatic italic on an already styled letter


def _merge_upright_words(root: ET.Element) -> None:
    """`\\mathrm{mean}` arrives as four upright letters; one multi-letter <mi> spaces like an operator name."""
    for parent in root.iter():
        children = list(parent)
        index = 0
        while index < len(children):
            run = index
            while (run < len(children) and children[run].tag.endswith("}mi") and len(children[run]) == 0
                   and children[run].get("mathvariant") == "normal" and len(children[run].attrib) == 1
                   and re.fullmatch(r"[A-Za-z]", children[run].text or "") and not (children[run].tail or "").strip()):
                run += 1
            if run - index > 1:
                first = children[index]
                first.text = "".join(c.text for c in children[index:run])
                del first.attrib["mathvariant"]
                for extra in children[index + 1:run]:
                    parent.remove(extra)
                children = list(parent)
            index += 1


def _non_ascii_as_references(text: str) -> str:
    return "".join(c if ord(c) < 128 else f"&#x{ord(c):05X};" for c in text)
