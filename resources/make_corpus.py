"""Build resources/enwiki-gensim.jsonl.gz, kdmem's embedded corpus, from its public source.

Provenance: the gensim 4.4.0 wheel on PyPI ships a shortened English Wikipedia dump as test data:
``gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2``
(206 pages, 2016 revisions). Wikipedia text is CC BY-SA 3.0 (see resources/LICENSE-corpus.md).

This script only needs the standard library. It turns wiki markup into plain prose paragraphs:
redirects and non-article pages are dropped, templates, references, tables, files, categories,
HTML and headings are removed, links keep their label. Only paragraphs that read as prose are kept
(at least 200 characters, start with a letter or digit), because kdmem studies memorization of
natural text, and list or table debris would make an easy, unnatural target.

Usage (needs pip and the PyPI registry, once; the output is committed):
    python resources/make_corpus.py            # downloads the wheel with pip into a temp dir
    python resources/make_corpus.py --dump X.bz2   # or use a dump you already have
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import html
import json
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

DUMP = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
OUT = Path(__file__).with_name("enwiki-gensim.jsonl.gz")

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_REF = re.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", re.S | re.I)
_TAGGED = re.compile(r"<(math|gallery|timeline|score|syntaxhighlight|source|code)[^>]*>.*?</\1>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")
_FILE = re.compile(r"\[\[(?:File|Image|Category|[a-z]{2,3}(?:-[a-z]+)?):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", re.I)
_LINK = re.compile(r"\[\[(?:[^\]|]*\|)?([^\]]*)\]\]")
_EXTLINK = re.compile(r"\[(?:https?|ftp)://[^\s\]]+(?: ([^\]]*))?\]")
_BOLD = re.compile(r"'{2,5}")
_SPACES = re.compile(r"[ \t]+")


def _strip_templates(text: str) -> str:
    """Remove {{...}} and {|...|} blocks, which nest, so a regex alone cannot do it."""
    out, depth, i = [], 0, 0
    while i < len(text):
        two = text[i : i + 2]
        if two in ("{{", "{|"):
            depth += 1
            i += 2
        elif two in ("}}", "|}") and depth:
            depth -= 1
            i += 2
        else:
            if not depth:
                out.append(text[i])
            i += 1
    return "".join(out)


def clean(wikitext: str) -> list[str]:
    """Wiki markup of one article -> its prose paragraphs."""
    t = html.unescape(wikitext)
    t = _COMMENT.sub("", t)
    t = _REF.sub("", t)
    t = _TAGGED.sub("", t)
    t = _strip_templates(t)
    t = _FILE.sub("", t)
    t = _LINK.sub(r"\1", t)
    t = _EXTLINK.sub(lambda m: m.group(1) or "", t)
    t = _TAG.sub("", t)
    t = _BOLD.sub("", t)
    paras = []
    for block in re.split(r"\n\s*\n", t):
        lines = [ln.strip() for ln in block.split("\n")]
        lines = [ln for ln in lines if ln and not ln.startswith(("=", "*", "#", ":", ";", "|", "!", "{", "}"))]
        p = _SPACES.sub(" ", " ".join(lines)).strip()
        p = re.sub(r"\(\s*[,;]?\s*\)", "", p).replace(" ,", ",").replace(" .", ".")
        if len(p) >= 200 and p[0].isalnum():
            paras.append(p)
    return paras


def articles(dump: Path):
    ns = ""
    with bz2.open(dump, "rb") as fh:
        for _, el in ET.iterparse(fh, events=("end",)):
            tag = el.tag.rsplit("}", 1)[-1]
            if tag == "page":
                ns = el.tag[: -len("page")]
                title = el.findtext(f"{ns}title") or ""
                page_ns = el.findtext(f"{ns}ns")
                page_id = el.findtext(f"{ns}id")
                text = el.findtext(f"{ns}revision/{ns}text") or ""
                el.clear()
                if page_ns != "0" or text.lstrip().upper().startswith("#REDIRECT"):
                    continue
                yield page_id, title, text


def fetch_dump(tmp: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "gensim==4.4.0", "-d", str(tmp)], check=True)
    wheel = next(tmp.glob("gensim-4.4.0-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        zf.extract(DUMP, tmp)
    return tmp / DUMP


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", type=Path, help="the .xml.bz2 dump (default: fetch the gensim 4.4.0 wheel)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dump = args.dump or fetch_dump(Path(tmp))
        n_docs = n_chars = 0
        # mtime=0 keeps the gzip byte-identical across rebuilds.
        with open(args.out, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
            for page_id, title, text in articles(dump):
                paras = clean(text)
                if not paras:
                    continue
                body = "\n\n".join(paras)
                rec = {"doc_id": f"enwiki-{page_id}", "title": title, "text": body}
                gz.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
                n_docs += 1
                n_chars += len(body)
    print(f"wrote {args.out}: {n_docs} articles, {n_chars:,} characters")


if __name__ == "__main__":
    main()
