"""Model replies and user messages as safe HTML: Markdown (fenced code, tables) with Pygments
highlighting, then nh3 with an allow-list. Nothing a model or a user writes can add script, event
handlers, styles, images or non-http(s) links: nh3 drops every tag, attribute and URL scheme not
listed here (the text of a dropped tag stays, escaped)."""

import re

import markdown as md
import nh3

TAGS = {
    "p",
    "br",
    "hr",
    "strong",
    "em",
    "b",
    "i",
    "del",
    "s",
    "code",
    "pre",
    "span",
    "div",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "sup",
    "sub",
    "kbd",
}
# Pygments marks tokens with classes only (noclasses=False), so "class" is the one styling hook
ATTRIBUTES = {
    "a": {"href", "title"},
    "span": {"class"},
    "div": {"class"},
    "code": {"class"},
    "pre": {"class"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}
EXTENSIONS = ["fenced_code", "codehilite", "tables", "sane_lists"]
PRE = re.compile(r"<pre(?=[ >])")
EXTENSION_CONFIGS = {"codehilite": {"css_class": "hl", "guess_lang": False, "linenums": False}}


def to_html(text: str) -> str:
    """Markdown → sanitised HTML (safe to mark_safe in a template)."""
    html = md.markdown(
        text or "", extensions=EXTENSIONS, extension_configs=EXTENSION_CONFIGS, output_format="html"
    )
    clean = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
    # a code block scrolls sideways on a narrow screen: keyboard users reach it (added after nh3,
    # which keeps no tabindex of its own; every "<pre" left is a tag nh3 wrote, text's "<" is escaped)
    return PRE.sub('<pre tabindex="0"', clean)
