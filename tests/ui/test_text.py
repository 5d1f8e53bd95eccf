"""Escaping user strings and messages for Streamlit's Markdown (ui/text.py)."""

from __future__ import annotations

from ui.text import md, md_message, safe_filename

JOINER = "\u2060"


def test_names_lose_every_markup_and_link():
    text = md("[click](javascript:alert(1)) :red[x] :material/home: www.example.com a@b.org")
    assert "\\[click\\]" in text and ":" + JOINER + "red" in text and ":" + JOINER + "material" in text
    assert "www" + JOINER in text and "@" + JOINER in text


def test_messages_keep_urls_and_commands_copyable():
    hint = "download https://dl.fbaipublicfiles.com/sam.pth and set LIMA_SAM_CHECKPOINT=/x/sam.pth"
    shown = md_message(hint)
    assert JOINER not in shown
    assert shown.replace("\\", "") == hint  # what a reader sees (and copies)
    assert ":" + JOINER + "red" in md_message("a :red[b] c") and ":" + JOINER + "material" in md_message(":material/x:")


def test_download_names_are_safe():
    assert safe_filename("my photo (1).jpg") == "my-photo-1-.jpg" and safe_filename("a b") == "a-b"
    assert safe_filename("") == "image" and "/" not in safe_filename("../../etc/passwd")
