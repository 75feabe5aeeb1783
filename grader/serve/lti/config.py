"""The platform's registration as the LMS gave it, and the tool's URLs an LMS asks for.

One platform registration per class folder (a course in Moodle or Canvas), kept in
``.gradelab/lti/platform.json`` (mode 0600): ``gradelab lti register`` writes it, the server reads
it at start. Without it the LTI routes answer 404 and token login is the only way in.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grader.atomic import write_atomic
from grader.errors import UsageError

LTI_DIR = "lti"
PLATFORM_FILE = "platform.json"


class Platform(BaseModel):
    """What the LMS gives back when the tool is registered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(description="The platform's issuer id (Moodle: its site URL; Canvas: https://canvas.instructure.com).")
    client_id: str = Field(min_length=1, description="The client id the LMS gave the tool.")
    deployment_ids: tuple[str, ...] = Field(min_length=1, description="Deployment ids accepted in a launch.")
    auth_login_url: str = Field(description="The platform's OIDC authorization endpoint (the launch's redirect).")
    jwks_url: str = Field(description="The platform's public keyset URL.")
    token_url: str = Field(description="The platform's OAuth2 access token URL (for NRPS and AGS).")
    token_audience: str | None = Field(None, description="The aud of the tool's client assertion (default: the token URL).")

    @field_validator("auth_login_url", "jwks_url", "token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("an http(s) URL")
        return value

    def service_hosts(self) -> set[str]:
        """The hosts the platform's services may be on: its token and keyset URLs' and the issuer's."""
        return {urlsplit(u).netloc.lower() for u in (self.token_url, self.jwks_url, self.auth_login_url, self.issuer)}


def lti_dir(state_dir: Path) -> Path:
    path = Path(state_dir) / LTI_DIR
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def load_platform(state_dir: Path) -> Platform | None:
    path = Path(state_dir) / LTI_DIR / PLATFORM_FILE
    try:
        return Platform.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot be read ({type(exc).__name__}); run `gradelab lti register` again") from None


def save_platform(state_dir: Path, platform: Platform) -> Path:
    path = lti_dir(state_dir) / PLATFORM_FILE
    # write_atomic's file is 0600 (mkstemp) in a 0700 folder; never os.umask: it is the whole
    # process's, and a thread making a folder meanwhile (a sandbox's) would get it too
    write_atomic(path, platform.model_dump_json(indent=2))
    return path


def platform_from_user(**values: object) -> Platform:
    """A registration typed by a person: a value not accepted is one line naming the option."""
    try:
        return Platform.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "registration"
        raise UsageError(f"{name} {err.get('input')!r} is not accepted: {err['msg']}") from None


def tool_urls(public_url: str) -> dict[str, str]:
    """The URLs an LMS asks for, from the address students use."""
    base = public_url.rstrip("/")
    return {"tool_url": f"{base}/lti/launch", "login_url": f"{base}/lti/login",
            "redirect_uris": f"{base}/lti/launch", "jwks_url": f"{base}/lti/jwks.json",
            "deep_link_url": f"{base}/lti/launch"}


def canvas_developer_key(public_url: str, title: str) -> str:
    """Canvas's developer key JSON (Admin → Developer Keys → + LTI Key → Paste JSON)."""
    urls = tool_urls(public_url)
    host = urlsplit(public_url).netloc
    doc = {
        "title": title, "description": "gradelab: automated grading and feedback for deep-learning labs",
        "oidc_initiation_url": urls["login_url"], "target_link_uri": urls["tool_url"],
        "public_jwk_url": urls["jwks_url"],
        "scopes": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                   "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                   "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                   "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                   "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"],
        "extensions": [{"domain": host, "platform": "canvas.instructure.com", "privacy_level": "public",
                        "settings": {"placements": [
                            {"placement": "assignment_selection", "message_type": "LtiDeepLinkingRequest",
                             "target_link_uri": urls["tool_url"]},
                            {"placement": "link_selection", "message_type": "LtiResourceLinkRequest",
                             "target_link_uri": urls["tool_url"]}]}}],
        "custom_fields": {},
    }
    return json.dumps(doc, indent=2)
