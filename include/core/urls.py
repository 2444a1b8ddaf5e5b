"""URLs as people may see them: credentials removed before a URL reaches a log, a page or an alert."""

from __future__ import annotations

import re

_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s?#]*@")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&](?:password|passwd|pwd|token|access_token|secret|api_key|key|sig|signature)=)[^&\s]+",
    re.IGNORECASE,
)


def redact_url(text: str) -> str:
    """`text` with any `user:password@` of a URL removed and secret-looking query values masked.

    Why in core: credentials sit in the URLs of every server (the tracking URI, the Feast registry,
    the prediction log), and whatever shows one (a model card, the on-call page, a log line, an
    alert) must not leak them."""
    text = _CREDENTIALS.sub(lambda m: m.group("scheme"), str(text))
    return _SECRET_QUERY.sub(lambda m: m.group("key") + "***", text)
