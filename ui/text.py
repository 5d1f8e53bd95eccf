"""Text that reaches Streamlit's Markdown: user-supplied strings are shown literally.

Streamlit renders Markdown in ``st.markdown``, captions, alerts, subheaders, metric and widget
labels, tab and expander titles. A file name, a class name of a user's model, a CSV label or a
link parameter can contain Markdown (``[x](javascript:…)``), Streamlit's own directives
(``:red[…]``, ``:material/icon:``, emoji shortcodes) or bare URLs that GitHub-flavoured Markdown
turns into links. :func:`md` neutralises all of them; every user-supplied string that the UI puts
into Markdown goes through it (measured in a real browser: no links, colours or icons survive).
"""

from __future__ import annotations

import re

# CommonMark lets any ASCII punctuation be escaped with a backslash; these are the ones that
# start Markdown syntax (emphasis, code, links, headings, lists, tables, math, HTML, entities).
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$&=^\"'])")
# Streamlit resolves ``:red[…]``, ``:material/…:`` and ``:smile:`` after the escapes, and
# GitHub-flavoured Markdown links bare ``http://``, ``www.`` and e-mail addresses: an invisible
# WORD JOINER (U+2060) after every ':' and '@', and between "www" and its dot, breaks each of
# them without changing what the reader sees.
# Joiners go after every ':' (Streamlit's icon syntax also matches a closing ':' alone, measured)
# and after an '@' before text; names without ':' or '@' copy and paste unchanged.
_JOINER = "\u2060"
_WWW = re.compile(r"(?i)(www)(\\\.)")
_BEFORE_TEXT = re.compile(r"(:|@(?=\S))")


def md(value: object) -> str:
    """``value`` as Markdown that renders exactly as its text (one line; newlines become spaces)."""
    text = " ".join(str(value).splitlines())
    text = _SPECIAL.sub(r"\\\1", text)
    text = _BEFORE_TEXT.sub(r"\1" + _JOINER, text)
    return _WWW.sub(r"\1" + _JOINER + r"\2", text)


# In messages (ours, quoting user input), a joiner only where a Streamlit directive, icon or emoji
# could start: a ':' directly before a letter, digit, '[' or '-'. URLs, commands and paths stay
# free of invisible characters, so a user can copy them.
_DIRECTIVE = re.compile(r":(?=[A-Za-z0-9_\[+-])")


def md_message(value: object) -> str:
    """A message (an error, a hint) as Markdown that shows its text literally: Markdown syntax and
    Streamlit's directives are neutralised like :func:`md`, but bare URLs stay links and nothing
    invisible is put into URLs or commands, so they can be copied."""
    text = " ".join(str(value).splitlines())
    text = _SPECIAL.sub(r"\\\1", text)
    return _DIRECTIVE.sub(":" + _JOINER, text)


def shorten(value: object, limit: int = 60) -> str:
    """``value`` as text of at most ``limit`` characters (an ellipsis marks a cut)."""
    text = str(value)
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def safe_filename(value: object, limit: int = 60) -> str:
    """A download file-name part: letters, digits, '.', '_' and '-' only (no spaces or brackets)."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-.") or "image"
    return text[:limit].rstrip("-.") or "image"
