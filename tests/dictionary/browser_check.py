#!/usr/bin/python3
"""The feature browser in a real browser (Debian's headless chromium).

Usage: browser_check.py WRITER [OUT_FOLDER]

WRITER is a program that writes a feature browser to the path given as its first argument
(tests/dictionary/write_browser_sample.cpp). The script runs it, opens the page at
#feature=17 in headless chromium, and checks the DOM after the page's script ran:

- the count element shows every feature of the embedded report ("2000 features");
- the list renders one page of rows, not all of them (lazy rendering);
- feature 17's detail is shown, with its top example's tokens as the page writes them;
- chromium's console log has no error from the page (and a deliberately broken page shows
  that such errors are seen at all).

It saves a screenshot of #feature=17 at 1280x900 as OUT_FOLDER/feature_browser.png (default:
a temporary folder). Without /usr/bin/chromium it prints one line and exits 77 (meson's
skip code). Standard library only.
"""
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

CHROMIUM = "/usr/bin/chromium"
FEATURE = 17
PAGE_SIZE = 100  # write_browser_sample's page_size


def chromium(url, profile, *extra):
    """Runs headless chromium on url with a fresh profile; returns (stdout, stderr)."""
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0", *extra, url]
    done = subprocess.run(command, capture_output=True, timeout=180, check=False)
    if done.returncode != 0:
        raise SystemExit("chromium failed (%d): %s" % (done.returncode, done.stderr.decode(errors="replace")[-2000:]))
    return done.stdout.decode("utf-8", errors="replace"), done.stderr.decode("utf-8", errors="replace")


def console_errors(log):
    """Console lines (the page's messages) that report an error."""
    lines = [line for line in log.splitlines() if re.search(r":CONSOLE[(:]", line)]
    return [line for line in lines if "Uncaught" in line or "Error" in line or "Refused" in line]


class Dom(html.parser.HTMLParser):
    """Texts by element id, the text of every element, and counts of classes."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []  # (tag, id, classes)
        self.by_id = {}
        self.classes = {}
        self.text = []  # visible text, in order, outside script/style/template

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        for c in classes:
            self.classes[c] = self.classes.get(c, 0) + 1
        if tag in self.VOID:
            return
        self.stack.append((tag, attrs.get("id"), classes))
        if attrs.get("id"):
            self.by_id.setdefault(attrs["id"], [])

    def handle_endtag(self, tag):
        while self.stack:
            top = self.stack.pop()
            if top[0] == tag:
                break

    def handle_data(self, data):
        if any(t in ("script", "style", "template", "title") for t, _, _ in self.stack):
            return
        for _, ident, _ in self.stack:
            if ident:
                self.by_id[ident].append(data)
        self.text.append(data)


def token_text(s):
    """The page's rendering of a token string (tokenText in the page's script)."""
    return s.replace("\n", "\u21b5").replace("\t", "\u2192").replace(" ", "\u00b7")


def embedded_report(page):
    match = re.search(r'<script type="application/json" id="mint-report">(.*?)</script>', page, re.S)
    if not match:
        raise SystemExit("the page has no embedded report")
    return json.loads(match.group(1))


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    if not os.path.exists(CHROMIUM):
        print("chromium not installed: browser test skipped")
        return 77
    writer = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="mint_browser_check_")
    out = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else work
    os.makedirs(out, exist_ok=True)
    failures = []

    def check(ok, what):
        print(("ok    " if ok else "FAIL  ") + what)
        if not ok:
            failures.append(what)

    try:
        page_path = os.path.join(work, "feature_browser.html")
        subprocess.run([writer, page_path], check=True, timeout=600, stdout=subprocess.DEVNULL)
        with open(page_path, encoding="utf-8") as f:
            page = f.read()
        report = embedded_report(page)
        features = report["features"]
        byindex = {f["index"]: f for f in features}
        print("page: %s (%.1f MB, %d features)" % (page_path, len(page) / 1e6, len(features)))
        check(not re.search(r"https?://|<link|\ssrc=", page), "the page loads nothing from outside (no URL, <link> or src=)")

        # The DOM after the page's script ran, at #feature=17.
        url = "file://" + page_path + "#feature=%d" % FEATURE
        dom_text, log = chromium(url, os.path.join(work, "profile-dom"), "--dump-dom")
        dom = Dom()
        dom.feed(dom_text)
        count = "".join(dom.by_id.get("count", [])).strip()
        check(count == "%d features" % len(features), "count element shows every feature: %r" % count)
        rows = dom.classes.get("item", 0)
        check(rows == min(PAGE_SIZE, len(features)), "the list renders one page of rows: %d of %d" % (rows, len(features)))
        more = "".join(dom.by_id.get("more", [])).strip()
        check(more.startswith("show %d more" % PAGE_SIZE), "a 'show more' button for the rest: %r" % more)
        detail = "".join(dom.by_id.get("detail", []))
        title = "".join(dom.by_id.get("detail-title", [])).strip()
        check(title == "Feature %d" % FEATURE, "feature %d's detail is shown: %r" % (FEATURE, title))
        top = byindex[FEATURE]["top_examples"][0]
        expected = "".join(token_text(s) for s in top["strings"])
        check(expected in detail, "its top example's tokens appear: %r" % expected)
        check(dom.classes.get("hit", 0) == len(byindex[FEATURE]["top_examples"]),
              "one highlighted token per top example (%d)" % dom.classes.get("hit", 0))
        check("</script><b>" not in dom_text.split('id="mint-report"')[0], "no token string broke the page's markup")
        errors = console_errors(log)
        check(not errors, "no JavaScript error in chromium's console log" + ("".join("\n      " + e for e in errors)))

        # The console check can see errors at all: a page that throws.
        broken = os.path.join(work, "broken.html")
        with open(broken, "w", encoding="utf-8") as f:
            f.write("<!DOCTYPE html><html><body><script>null.oops;</script></body></html>")
        _, broken_log = chromium("file://" + broken, os.path.join(work, "profile-broken"), "--dump-dom")
        check(bool(console_errors(broken_log)), "a throwing page's error is seen in the log (the check is not vacuous)")

        # The screenshot.
        shot = os.path.join(out, "feature_browser.png")
        if os.path.exists(shot):
            os.remove(shot)
        chromium(url, os.path.join(work, "profile-shot"), "--screenshot=" + shot, "--window-size=1280,900",
                 "--hide-scrollbars")
        with open(shot, "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", "screenshot saved: " + shot)
    finally:
        shutil.rmtree(os.path.join(work, "profile-dom"), ignore_errors=True)
        shutil.rmtree(os.path.join(work, "profile-broken"), ignore_errors=True)
        shutil.rmtree(os.path.join(work, "profile-shot"), ignore_errors=True)
        if out != work:
            shutil.rmtree(work, ignore_errors=True)

    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all browser checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
