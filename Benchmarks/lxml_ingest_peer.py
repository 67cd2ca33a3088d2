#!/usr/bin/env python3
"""Peer for the ingest benchmark: lxml.etree.iterparse extraction of the same PubMed fields
SelfSpec's ingester extracts (PMID + version, title, abstract sections, journal, ISO abbreviation,
year, language, publication types, MeSH headings with qualifiers, keywords, DOI, PMC id).
It stores nothing: it only parses and builds one dict per article.

usage: lxml_ingest_peer.py FILE.xml[.gz] [--json]
"""
import gzip, json, re, sys, time, resource
from lxml import etree

def text_of(el):
    return " ".join("".join(el.itertext()).split()) if el is not None else ""

def year_of(pubdate):
    if pubdate is None:
        return None
    y = pubdate.findtext("Year")
    if y:
        return int(y)
    m = re.search(r"(1[89]\d\d|20\d\d)", pubdate.findtext("MedlineDate") or "")
    return int(m.group(1)) if m else None

def article(el):
    mc = el if el.tag == "MedlineCitation" else el.find("MedlineCitation")
    pmid = mc.find("PMID")
    art = mc.find("Article")
    journal = art.find("Journal") if art is not None else None
    doc = {
        "pmid": int(pmid.text), "version": int(pmid.get("Version", "1")),
        "title": text_of(art.find("ArticleTitle")) if art is not None else "",
        "abstract": [(a.get("Label") or "abstract", text_of(a)) for a in mc.iterfind("Article/Abstract/AbstractText")],
        "journal": journal.findtext("Title") if journal is not None else None,
        "iso": journal.findtext("ISOAbbreviation") if journal is not None else None,
        "year": year_of(journal.find("JournalIssue/PubDate")) if journal is not None else None,
        "language": mc.findtext("Article/Language"),
        "pubtypes": [t.text for t in mc.iterfind("Article/PublicationTypeList/PublicationType")],
        "mesh": [(h.findtext("DescriptorName"), h.find("DescriptorName").get("UI"),
                  h.find("DescriptorName").get("MajorTopicYN") == "Y",
                  [q.text for q in h.iterfind("QualifierName")]) for h in mc.iterfind("MeshHeadingList/MeshHeading")],
        "keywords": [text_of(k) for k in mc.iterfind("KeywordList/Keyword")],
        "doi": None, "pmc": None,
    }
    for aid in el.iterfind("PubmedData/ArticleIdList/ArticleId"):
        if aid.get("IdType") == "doi": doc["doi"] = aid.text
        if aid.get("IdType") == "pmc": doc["pmc"] = aid.text
    return doc

def main():
    path = sys.argv[1]
    t0 = time.perf_counter()
    src = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
    n = 0
    for _, el in etree.iterparse(src, events=("end",), tag=("PubmedArticle", "MedlineCitation")):
        if el.tag == "MedlineCitation" and el.getparent() is not None and el.getparent().tag == "PubmedArticle":
            continue
        article(el)
        n += 1
        el.clear()
        while el.getprevious() is not None:
            del el.getparent()[0]
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = {"peer": "lxml.etree.iterparse", "articles": n, "seconds": round(dt, 3),
           "articles_per_s": round(n / dt, 1), "peak_rss_mb": round(rss, 1)}
    print(json.dumps(res) if "--json" in sys.argv else f"{n} articles in {dt:.2f}s = {n/dt:.0f} articles/s, peak RSS {rss:.0f} MB")

if __name__ == "__main__":
    main()
