"""Build resources/wiki-code.jsonl.gz, the embedded default's corpus: web-like text with its low-entropy parts.

Why a second corpus: the paper's data are web text, where much of what models memorize is naturally
low-entropy (lists, citation lines, tables, boilerplate, code) and seen once. The prose-only corpus
(resources/enwiki-gensim.jsonl.gz, make_corpus.py) removed exactly that text, so no sample could be
memorized for what it is. This one keeps it, from two public sources:

1. The same 97 Wikipedia articles (gensim 4.4.0 wheel's shortened dump, CC BY-SA 3.0), rendered with
   their structure: prose paragraphs, headings, bullet and numbered lists, tables (one row per line,
   cells joined by " | "), and a numbered "References" section made of the article's citation
   templates (author, year, title, venue: the templated lines every web crawl is full of).
2. Python source code: the 56 modules of networkx 3.4.2's `networkx/algorithms/` package (tests
   excluded), BSD-3-Clause, each file one document. Code with numpydoc docstrings (Parameters,
   Returns, Examples, References sections) is the boilerplate-rich text web-trained models see.

Each record: doc_id, source (enwiki | networkx), title, text. Only the standard library is needed;
pip fetches the two wheels from PyPI once. The output is byte-identical across rebuilds (gzip mtime 0,
files in sorted order).

Usage:
    python resources/make_corpus_mixed.py
    python resources/make_corpus_mixed.py --dump X.bz2 --networkx networkx-3.4.2-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from make_corpus import (  # noqa: E402
    _BOLD,
    _COMMENT,
    _EXTLINK,
    _FILE,
    _LINK,
    _SPACES,
    _TAG,
    _TAGGED,
    _strip_templates,
    articles,
    fetch_dump,
)

OUT = Path(__file__).with_name("wiki-code.jsonl.gz")
NETWORKX = "networkx==3.4.2"
CODE_DIR = "networkx/algorithms/"

_REF_BLOCK = re.compile(r"<ref([^>/]*)>(.*?)</ref>", re.S | re.I)
_REF_EMPTY = re.compile(r"<ref[^>]*/>", re.I)
_HEADING = re.compile(r"^(={2,6})\s*(.*?)\s*\1\s*$")
_CITE = re.compile(r"\{\{\s*cite\s+(\w+)(.*?)\}\}", re.S | re.I)
_BR = re.compile(r"<br\s*/?>", re.I)


def inline(text: str) -> str:
    """Wiki markup of one line or cell -> plain text."""
    t = _strip_templates(text)
    t = _FILE.sub("", t)
    t = _LINK.sub(r"\1", t)
    t = _EXTLINK.sub(lambda m: m.group(1) or "", t)
    t = _BR.sub(" ", t)
    t = _TAG.sub("", t)
    t = _BOLD.sub("", t)
    t = _SPACES.sub(" ", t).strip()
    return re.sub(r"\(\s*[,;]?\s*\)", "", t).replace(" ,", ",").replace(" .", ".")


def cite_fields(body: str) -> dict[str, str]:
    fields = {}
    for part in re.split(r"\|(?![^\[]*\]\])", body):
        if "=" in part:
            k, v = part.split("=", 1)
            fields[k.strip().lower()] = inline(v)
    return fields


def citation(ref: str) -> str:
    """One reference's content -> a citation line: 'Author (year). Title. Venue.' or its plain text."""
    m = _CITE.search(ref)
    if not m:
        return inline(ref)
    f = cite_fields(m.group(2))
    author = f.get("author") or ", ".join(x for x in (f.get("last"), f.get("first")) if x)
    year = f.get("year") or f.get("date", "")
    title = f.get("title", "")
    venue = f.get("journal") or f.get("work") or f.get("website") or f.get("publisher", "")
    parts = [f"{author} ({year})." if author and year else (f"{author}." if author else (f"({year})." if year else ""))]
    parts += [f"{title}." if title else "", f"{venue}." if venue else ""]
    if f.get("pages") or f.get("page"):
        parts.append(f"p. {f.get('pages') or f.get('page')}.")
    return " ".join(p for p in parts if p).replace("..", ".")


def table(block: str) -> list[str]:
    """A {| ... |} wikitable -> one line per row, cells joined by ' | ' (attributes dropped)."""
    rows: list[list[str]] = [[]]
    lines = []
    for ln in block.split("\n")[1:]:
        s = ln.strip()
        if s.startswith("|}"):
            break
        if s.startswith("|+"):
            lines.append(inline(s[2:].split("|")[-1]))
        elif s.startswith("|-"):
            rows.append([])
        elif s.startswith(("|", "!")):
            for cell in re.split(r"\|\||!!", s[1:]):
                # 'style="..." | content': the content is after the last bar outside links.
                pieces = re.split(r"\|(?![^\[]*\]\])", cell)
                rows[-1].append(inline(pieces[-1]))
        elif rows[-1]:
            rows[-1][-1] += " " + inline(s)
    lines += [" | ".join(c for c in r if c) for r in rows if any(r)]
    return [ln for ln in lines if ln]


def _tables_out(t: str) -> tuple[str, dict[str, list[str]]]:
    """Replace each top-level table by a placeholder line (tables nest, and templates inside them)."""
    found: dict[str, list[str]] = {}
    out, i = [], 0
    while True:
        j = t.find("{|", i)
        if j < 0:
            out.append(t[i:])
            break
        depth, k = 0, j
        while k < len(t):
            if t.startswith("{|", k):
                depth += 1
                k += 2
            elif t.startswith("|}", k):
                depth -= 1
                k += 2
                if depth == 0:
                    break
            else:
                k += 1
        key = f"\n@@TABLE{len(found)}@@\n"
        found[key.strip()] = table(t[j:k])
        out += [t[i:j], key]
        i = k
    return "".join(out), found


def render(wikitext: str) -> str:
    """Wiki markup of one article -> prose, headings, lists, tables and a References section, in order."""
    t = _COMMENT.sub("", html.unescape(wikitext))
    refs: list[str] = []

    def keep_ref(m: re.Match) -> str:
        line = citation(m.group(2))
        if len(line) >= 20 and line not in refs:
            refs.append(line)
        return ""

    t = _REF_BLOCK.sub(keep_ref, t)
    t = _REF_EMPTY.sub("", t)
    t = _TAGGED.sub("", t)
    t, tables = _tables_out(t)
    t = _strip_templates(t)
    blocks: list[str] = []
    for block in re.split(r"\n\s*\n", t):
        prose: list[str] = []
        for ln in block.split("\n"):
            s = ln.strip()
            if not s:
                continue
            if s in tables:
                blocks.append("\n".join(tables[s]))
            elif h := _HEADING.match(s):
                if h.group(2).lower() in ("references", "notes", "footnotes", "external links", "see also", "further reading"):
                    continue
                blocks.append(inline(h.group(2)))
            elif s[0] in "*#;:":
                marker = "-" if s[0] in "*;:" else "1."
                item = inline(s.lstrip("*#;: "))
                if item:
                    blocks.append(f"{marker} {item}")
            elif s[0] not in "|!{}":
                prose.append(s)
        p = inline(" ".join(prose))
        if len(p) >= 40 and p[0].isalnum():
            blocks.append(p)
    # Consecutive list items form one block; everything else is its own paragraph.
    merged: list[str] = []
    for b in blocks:
        if merged and b.startswith(("- ", "1. ")) and merged[-1].split("\n")[-1].startswith(("- ", "1. ")):
            merged[-1] += "\n" + b
        else:
            merged.append(b)
    if refs:
        merged.append("References\n" + "\n".join(f"{i}. {r}" for i, r in enumerate(refs, 1)))
    return "\n\n".join(b for b in merged if b.strip())


def code_docs(wheel: Path) -> list[tuple[str, str]]:
    with zipfile.ZipFile(wheel) as zf:
        names = sorted(n for n in zf.namelist() if n.startswith(CODE_DIR) and n.endswith(".py") and n.count("/") == CODE_DIR.count("/"))
        return [(n, zf.read(n).decode("utf-8")) for n in names]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", type=Path, help="the .xml.bz2 dump (default: fetch the gensim 4.4.0 wheel)")
    ap.add_argument("--networkx", type=Path, help="the networkx 3.4.2 wheel (default: fetch it)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dump = args.dump or fetch_dump(Path(tmp))
        wheel = args.networkx
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", NETWORKX, "-d", tmp], check=True)
            wheel = next(Path(tmp).glob("networkx-3.4.2-*.whl"))
        n = {"enwiki": 0, "networkx": 0}
        chars = dict.fromkeys(n, 0)
        with open(args.out, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
            def put(rec: dict) -> None:
                gz.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
                n[rec["source"]] += 1
                chars[rec["source"]] += len(rec["text"])

            for page_id, title, text in articles(dump):
                body = render(text)
                if len(body) >= 200:
                    put({"doc_id": f"enwiki-{page_id}", "source": "enwiki", "title": title, "text": body})
            for name, src in code_docs(wheel):
                put({"doc_id": f"networkx-{name.removeprefix('networkx/').removesuffix('.py').replace('/', '.')}",
                     "source": "networkx", "title": name, "text": src})
    print(f"wrote {args.out}: " + ", ".join(f"{k} {n[k]} documents, {chars[k]:,} characters" for k in n))


if __name__ == "__main__":
    main()
