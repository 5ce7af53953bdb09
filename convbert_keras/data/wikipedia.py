"""Plain text from a MediaWiki XML dump (the packaged English sample)."""

import bz2
import html
import re
import xml.etree.ElementTree as ElementTree

from convbert_keras.data.package_data import fetch

_INNERMOST_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_INNERMOST_TABLE = re.compile(r"\{\|(?:(?!\{\||\|\}).)*\|\}", re.S)
_PLAIN_LINK = re.compile(r"\[\[(?![^\]|]*:)(?:[^\[\]|]*\|)?([^\[\]]*)\]\]")
_NAMESPACED_LINK = re.compile(r"\[\[[^\[\]]*\]\]")
_EXTERNAL_LINK = re.compile(r"\[(?:https?:)?//[^\s\]]+\s?([^\]]*)\]")
_REFERENCE = re.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_TAG = re.compile(r"<[^>]+>")
_EMPHASIS = re.compile(r"'{2,}")


def _remove_nested(pattern, text):
    # Nested structures go from the inside out, one layer per pass.
    while True:
        text, count = pattern.subn("", text)
        if count == 0:
            return text


def wikitext_to_paragraphs(wikitext, min_length=40):
    """Readable paragraphs of an article's wikitext.

    Drops templates, tables, references, comments, files and categories,
    headings and list markup; keeps the label of every link. A rough
    cleaner for pretraining text, not a full MediaWiki parser. Paragraphs
    shorter than `min_length` characters (captions, stubs) are left out.
    """
    text = _COMMENT.sub("", wikitext)
    text = _REFERENCE.sub("", text)
    text = _remove_nested(_INNERMOST_TEMPLATE, text)
    text = _remove_nested(_INNERMOST_TABLE, text)
    while True:
        text, count = _PLAIN_LINK.subn(r"\1", text)
        if count == 0:
            break
    text = _remove_nested(_NAMESPACED_LINK, text)
    text = _EXTERNAL_LINK.sub(r"\1", text)
    text = _TAG.sub("", text)
    text = _EMPHASIS.sub("", html.unescape(text))
    paragraphs = []
    for line in text.split("\n"):
        line = line.strip().lstrip("*#:;").strip()
        if line.startswith("=") or line.startswith("|") or len(line) < min_length:
            continue
        paragraphs.append(re.sub(r"\s+", " ", line))
    return paragraphs


def read_wikipedia_dump(path, min_length=40):
    """`(title, paragraphs)` for each article (namespace 0, not a redirect)
    of a MediaWiki XML dump, plain or `.bz2`."""
    opener = bz2.open if str(path).endswith(".bz2") else open
    articles = []
    with opener(path, "rb") as f:
        for _, element in ElementTree.iterparse(f):
            if not element.tag.endswith("}page"):
                continue
            namespace = element.find("{*}ns").text
            redirect = element.find("{*}redirect") is not None
            title = element.find("{*}title").text
            text = element.find("{*}revision/{*}text").text or ""
            if namespace == "0" and not redirect:
                paragraphs = wikitext_to_paragraphs(text, min_length)
                if paragraphs:
                    articles.append((title, paragraphs))
            element.clear()
    return articles


def load_wikipedia_sample(cache_dir=None):
    """The English Wikipedia sample packaged with gensim: a list of
    `(title, paragraphs)`, about a hundred articles."""
    return read_wikipedia_dump(fetch("enwiki_sample", cache_dir))
