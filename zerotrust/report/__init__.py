"""The plan's reports: ``text`` for people, ``markdown`` for pull-request comments (every string from the
stack's files or a capture escaped by ``escape``), ``data`` for machines, and the ``sections`` they share."""

from zerotrust.report.data import as_json, errors_json
from zerotrust.report.markdown import as_markdown, errors_markdown
from zerotrust.report.text import print_text

__all__ = ["as_json", "as_markdown", "errors_json", "errors_markdown", "print_text"]
