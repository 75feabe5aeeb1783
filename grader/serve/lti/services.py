"""Calls to the platform's services (NRPS, AGS): an access token by the OAuth2 client-credentials
grant with a signed client assertion (LTI Security Framework), then JSON over HTTPS.

Only URLs on the platform's own hosts (``Platform.service_hosts``) are called: a launch cannot point
the tool's bearer token, or a student's score, at another server.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import jwt

from grader.serve.lti.config import Platform
from grader.serve.lti.keys import ToolKeys

TIMEOUT_S = 10.0
MAX_BODY = 4 * 1024 * 1024


class ServiceError(Exception):
    """A call to the platform that failed (down, refused, not JSON); ``status`` when it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def allowed(platform: Platform, url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("https", "http") and parts.netloc.lower() in platform.service_hosts()


class Services:
    def __init__(self, platform: Platform, keys: ToolKeys) -> None:
        self.platform, self.keys = platform, keys
        self._tokens: dict[str, tuple[float, str]] = {}

    def token(self, scopes: list[str]) -> str:
        scope = " ".join(sorted(scopes))
        cached = self._tokens.get(scope)
        if cached and cached[0] > time.time() + 30:
            return cached[1]
        kid, key = self.keys.signing()
        now = int(time.time())
        assertion = jwt.encode({"iss": self.platform.client_id, "sub": self.platform.client_id,
                                "aud": self.platform.token_audience or self.platform.token_url, "iat": now,
                                "exp": now + 300, "jti": secrets.token_urlsafe(16)}, key, algorithm="RS256",
                               headers={"kid": kid})
        form = {"grant_type": "client_credentials", "client_assertion": assertion, "scope": scope,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
        answer = self._call("POST", self.platform.token_url, urllib.parse.urlencode(form).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            raise ServiceError("the platform's token endpoint gave no access token")
        expires = answer.get("expires_in")
        token = str(answer["access_token"])
        self._tokens[scope] = (time.time() + (expires if isinstance(expires, int) else 3600), token)
        return token

    def get(self, url: str, scopes: list[str], accept: str) -> Any:
        return self._call("GET", url, None, {"Accept": accept, "Authorization": f"Bearer {self.token(scopes)}"})

    def post(self, url: str, scopes: list[str], doc: dict[str, Any], content_type: str) -> Any:
        return self._call("POST", url, json.dumps(doc).encode(), {
            "Content-Type": content_type, "Accept": "application/json", "Authorization": f"Bearer {self.token(scopes)}"})

    def _call(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Any:
        if not allowed(self.platform, url):
            raise ServiceError(f"{url!r} is not on the platform's hosts: not called")
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                data = response.read(MAX_BODY + 1)
        except urllib.error.HTTPError as exc:
            raise ServiceError(f"{method} {url}: HTTP {exc.code}", exc.code) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise ServiceError(f"{method} {url}: {exc}") from None
        if len(data) > MAX_BODY:
            raise ServiceError(f"{method} {url}: the answer is too long")
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except ValueError:
            raise ServiceError(f"{method} {url}: the answer is not JSON") from None
