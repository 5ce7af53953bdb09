"""Readers of the data formats, on small hand-made files."""

import bz2

import pytest

from convbert_keras.data import read_conll
from convbert_keras.data import read_wikipedia_dump
from convbert_keras.data import tag_vocabulary
from convbert_keras.data.wikipedia import wikitext_to_paragraphs


def test_read_conll_sentences_and_tags(tmp_path):
    path = tmp_path / "ner.txt"
    path.write_text(
        "-DOCSTART- -X- O\n\nParis NNP B-LOC\nis VBZ O\n\t\nBob\tB-PER\nsmiles O\n",
        encoding="utf-8",
    )
    sentences = read_conll(path)
    assert sentences == [(["Paris", "is"], ["B-LOC", "O"]), (["Bob", "smiles"], ["B-PER", "O"])]
    assert tag_vocabulary(sentences) == ["O", "B-LOC", "B-PER"]


def test_read_conll_bad_input_is_named(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("Paris B-LOC\nis\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: 'is' has no tag"):
        read_conll(path)
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no tagged tokens"):
        read_conll(path)


WIKITEXT = """{{Infobox city|name=Paris|pop={{formatnum:2148000}}}}
'''Paris''' is the [[capital city|capital]] of [[France]].<ref name="a">Some source.</ref> It has [http://example.org many museums] and &amp; bridges.
== History ==
[[File:Paris.jpg|thumb|The [[Seine]] in Paris]]
* A list item that is long enough to be kept as a paragraph.
{| class="wikitable"
| cell || cell
|}
Short line.
[[Category:Capitals]]"""  # noqa: E501 (one long wikitext line, as dumps have)


def test_wikitext_is_cleaned_to_paragraphs():
    assert wikitext_to_paragraphs(WIKITEXT) == [
        "Paris is the capital of France. It has many museums and & bridges.",
        "A list item that is long enough to be kept as a paragraph.",
    ]


def test_read_wikipedia_dump_keeps_articles_only(tmp_path):
    def page(title, ns, text, redirect=""):
        return (
            f"<page><title>{title}</title><ns>{ns}</ns>{redirect}"
            f"<revision><text>{text}</text></revision></page>"
        )

    body = "A sentence that is long enough to count as a paragraph of text."
    xml = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">'
        + page("Article", 0, body)
        + page("Talk:Article", 1, body)
        + page("Old name", 0, body, redirect='<redirect title="Article" />')
        + "</mediawiki>"
    )
    path = tmp_path / "dump.xml.bz2"
    path.write_bytes(bz2.compress(xml.encode("utf-8")))
    assert read_wikipedia_dump(path) == [("Article", [body])]
