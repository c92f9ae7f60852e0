"""Markdown that shows what it is given, and nothing more: for pull-request comments.

Every string that comes from a stack file, a level file, an exceptions file or a capture goes
through one of these before it reaches markdown. A string a pull request controls must not
open a heading, a list, a link, a mention (``@team``), an HTML tag or comment (``<!--``, which
would hide what follows), nor close the code span or fence it sits in.

- ``text``: every ASCII punctuation character backslash-escaped (CommonMark lets any of them
  be), ``<`` and ``&`` as entities, line breaks as spaces: the string renders as itself.
- ``code``: an inline code span whose backtick fence is longer than any run inside (CommonMark
  6.1), padded when the text starts or ends with a backtick; line breaks as spaces, since a line
  that starts a block would end the span.
- ``fence``: a fenced block whose fence is longer than any backtick run inside.
"""

from __future__ import annotations

import re
import string

_PUNCTUATION = frozenset(string.punctuation)
_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
_RUNS = re.compile(r"`+")


def _one_line(value: object) -> str:
    return _BREAKS.sub(" ", str(value))


def text(value: object) -> str:
    """Plain text: renders as the characters given."""
    out = []
    for ch in _one_line(value):
        if ch == "<":
            out.append("&lt;")
        elif ch == "&":
            out.append("&amp;")
        elif ch in _PUNCTUATION:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _longest_run(value: str) -> int:
    return max((len(m) for m in _RUNS.findall(value)), default=0)


def code(value: object) -> str:
    """An inline code span holding ``value`` literally (one line)."""
    body = _one_line(value) or " "  # an empty span would be two literal backticks
    fence = "`" * (_longest_run(body) + 1)
    if body.startswith("`") or body.endswith("`") or (body.startswith(" ") and body.endswith(" ") and body.strip()):
        body = f" {body} "
    return f"{fence}{body}{fence}"


def fence(lines: list[str], info: str = "") -> list[str]:
    """A fenced code block holding ``lines`` literally."""
    longest = max((_longest_run(line) for line in lines), default=0)
    marks = "`" * max(3, longest + 1)
    return [f"{marks}{info}", *lines, marks]
