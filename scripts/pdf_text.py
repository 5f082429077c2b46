#!/usr/bin/env python3
"""Print the text of a PDF as pypdf reads it, strictly (exit 1 if pypdf refuses the
file). Used by the integration tests on the PDFs Parcours writes."""
import sys

try:
    from pypdf import PdfReader
except ImportError:  # pragma: no cover
    sys.exit("pypdf missing: pip install pypdf")


def main(path):
    reader = PdfReader(path, strict=True)
    for page in reader.pages:
        print(page.extract_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
