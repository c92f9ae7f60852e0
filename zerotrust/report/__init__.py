"""The plan's reports, each imported only by the format that prints it: ``text`` for people, ``markdown`` for
pull-request comments (every string from the stack's files or a capture escaped by ``escape``), ``data``
for machines (``--format json``), and the ``sections`` they share."""
