"""LTI Deep Linking: an instructor adds the lab to a course from the LMS's activity chooser.

The platform launches the tool with an ``LtiDeepLinkingRequest`` (validated as any launch; only an
instructor's is accepted); the tool answers with a page whose one button posts a signed
``LtiDeepLinkingResponse`` back to the platform's ``deep_link_return_url``: one ``ltiResourceLink``
to this lab, with a line item of the lab's full points (so grades have their column at once).
The JWT is PyJWT's, signed with the tool's current key.
"""

from __future__ import annotations

import secrets
import time
from html import escape
from typing import Any

import jwt
from starlette.responses import HTMLResponse

from grader.serve.lti.keys import ToolKeys

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
C = "https://purl.imsglobal.org/spec/lti/claim/"


def response_jwt(claims: dict[str, Any], keys: ToolKeys, client_id: str, issuer: str, *, title: str, url: str,
                 lab_id: str, full_points: float) -> str:
    settings = claims.get(DL + "deep_linking_settings")
    data = settings.get("data") if isinstance(settings, dict) else None
    now = int(time.time())
    item = {"type": "ltiResourceLink", "title": title, "url": url,
            "lineItem": {"scoreMaximum": full_points, "label": title, "resourceId": lab_id, "tag": "gradelab"}}
    payload: dict[str, Any] = {
        "iss": client_id, "aud": issuer, "iat": now, "exp": now + 300, "nonce": secrets.token_urlsafe(16),
        C + "deployment_id": claims.get(C + "deployment_id"), C + "message_type": "LtiDeepLinkingResponse",
        C + "version": "1.3.0", DL + "content_items": [item]}
    if data is not None:  # opaque to the tool, sent back as it came (a string by the spec)
        payload[DL + "data"] = data
    kid, key = keys.signing()
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def return_url(claims: dict[str, Any]) -> str | None:
    settings = claims.get(DL + "deep_linking_settings")
    url = settings.get("deep_link_return_url") if isinstance(settings, dict) else None
    return url if isinstance(url, str) else None


def page(return_to: str, token: str, title: str, csp: str) -> HTMLResponse:
    """The page with one button: the form posts to the platform, which the usual CSP
    (``form-action 'self'``) forbids, so this page carries its own policy naming that one target."""
    body = (f'<!doctype html><title>Add {escape(title)}</title>'
            f'<form method="post" action="{escape(return_to)}"><input type="hidden" name="JWT" value="{escape(token)}">'
            f'<p>Add the lab <b>{escape(title)}</b> to this course, graded out of its full points.</p>'
            f'<button type="submit">Add {escape(title)}</button></form>')
    return HTMLResponse(body, headers={"content-security-policy": csp})
