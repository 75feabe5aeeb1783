"""The LTI 1.3 launch: OIDC third-party login initiation, then the id_token validated in full, a
server-side session, and the routes (``/lti/login``, ``/lti/launch``, ``/lti/jwks.json``,
``/lti/roster``).

What a launch must pass, each a refusal that names it (403):
- the ``state`` sent back equals the one set in this browser's cookie at login initiation, and is
  a state this server issued and has not used (it is consumed: a replayed launch fails here);
- the signature, by the platform key named by ``kid`` in the platform's JWKS (``PyJWKClient``);
  ``iss`` the registered issuer, ``aud`` the client id (``azp`` too when several), ``exp``/``iat``
  with ``LEEWAY_S`` of skew; ``nonce`` the one issued with that state;
- a registered ``deployment_id``; LTI version 1.3.0 and a resource link message;
- service URLs (NRPS, AGS) on the platform's own hosts.
The session is the server's own signed cookie (as token login's), stamped with the member's stamp:
a student's launch can open only the student's pages, an instructor's (by LTI role) the
instructor's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from grader.results import SubmissionResult
from grader.serve.lti import scores
from grader.serve.lti.config import Platform, load_platform, lti_dir
from grader.serve.lti.keys import ToolKeys
from grader.serve.lti.roster import (
    Context,
    Members,
    members_of_nrps,
    merge_into,
    role_of,
)
from grader.serve.lti.services import ServiceError, Services, allowed

log = logging.getLogger(__name__)
LEEWAY_S = 60
STATE_TTL_S = 600
STATE_COOKIE = "gradelab_lti_state"
STATES_DIR = "states"
C = "https://purl.imsglobal.org/spec/lti/claim/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
NRPS_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
_MEMBERS: dict[Path, Members] = {}
_MEMBERS_LOCK = threading.Lock()


def _obj(claims: dict[str, Any], key: str) -> dict[str, Any]:
    value = claims.get(key)
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class LaunchRefused(HTTPException):
    def __init__(self, message: str) -> None:
        super().__init__(403, f"This LTI launch is refused: {message}.")


def members_for(state_dir: Path) -> Members:
    """One ``Members`` per class folder in this process (the launch writes it, sessions read it)."""
    with _MEMBERS_LOCK:
        key = Path(state_dir).resolve()
        if key not in _MEMBERS:
            _MEMBERS[key] = Members(key)
        return _MEMBERS[key]


def lti_who(room: Any, role: str, sid: str, stamp: str, who: Any) -> Any:
    """A session opened by a launch: its member must still be the one it was opened for. ``who``:
    the classroom's ``Who`` (handed in, so that this module does not import the classroom's)."""
    member = members_for(room.store.state).by_stamp(stamp)
    if member is None or member.role != role:
        return None
    if role == "instructor":
        return who("instructor")
    student = room.roster.get(sid) if member.id == sid else None
    return who("student", student) if student is not None else None


class LtiTool:
    """The LTI side of one served class."""

    def __init__(self, room: Any, *, poll_s: float = 2.0, backoff_s: float = 5.0) -> None:
        self.room = room
        self.poll_s, self.backoff_s = poll_s, backoff_s
        self.platform: Platform | None = None
        self.keys: ToolKeys | None = None
        self.sender: scores.ScoreSender | None = None
        self._services: Services | None = None
        self._jwks: jwt.PyJWKClient | None = None

    @property
    def state(self) -> Path:
        return Path(self.room.store.state)

    @property
    def members(self) -> Members:
        return members_for(self.state)

    def full_points(self) -> float:
        return float(sum(c.spec.points for c in self.room.lab.checks))

    def start(self) -> None:
        """At the server's start (the class folder is open): keys made if missing, members merged
        into the roster, the outbox's sender started (it resumes what a stopped server left)."""
        self.platform = load_platform(self.state)
        if self.platform is None:
            return
        self.keys = ToolKeys(self.state)
        self.keys.ensure()
        self._services = Services(self.platform, self.keys)
        self._jwks = jwt.PyJWKClient(self.platform.jwks_url, cache_keys=True, lifespan=300, timeout=10)
        lti_dir(self.state).joinpath(STATES_DIR).mkdir(exist_ok=True, mode=0o700)
        merge_into(self.room.roster, list(self.members.data.members.values()))
        self.sender = scores.ScoreSender(self.state, lambda: self._services, self.score_of, self.lineitem,
                                         self.full_points(), poll_s=self.poll_s, backoff_s=self.backoff_s)
        self.sender.start()

    def stop(self) -> None:
        if self.sender is not None:
            self.sender.stop()

    def services(self) -> Services:
        if self._services is None:
            raise HTTPException(404, "This course is not set up for LTI.")
        return self._services

    # --- scores and roster ---------------------------------------------------------------

    def score_of(self, sid: str) -> tuple[str, SubmissionResult] | None:
        sub = self.members.sub_of(sid)
        latest = self.room.store.latest_result(sid)
        if sub is None or latest is None:
            return None
        result = self.room.with_grades(sid, latest[1])
        return (sub, result) if result is not None else None

    def lineitem(self, services: Services) -> str:
        ctx = self.members.data.context
        if not ctx.lineitems_url and not ctx.lineitem_url:
            raise ServiceError("no launch has named the course's line items yet")
        return scores.find_or_create_lineitem(services, ctx.lineitems_url or "", ctx.lineitem_url, self.room.lab.id,
                                              self.room.lab.manifest.title, self.full_points(), self.state)

    def read_roster(self) -> int:
        """The course's members through NRPS, merged into the roster (ids kept); how many."""
        url = self.members.data.context.memberships_url
        if not url:
            raise ServiceError("no launch has named the course's membership service yet")
        doc = self.services().get(url, [NRPS_SCOPE], NRPS_TYPE)
        assert self.platform is not None
        found = members_of_nrps(doc)
        for sub, name, email, role, sourcedid in found:
            self.members.add(self.platform.issuer, sub, name, email, role, self.room.roster, sourcedid)
        return len(found)

    # --- the launch ----------------------------------------------------------------------

    def _base(self, request: Request) -> str:
        public = self.room.settings.public_url
        return (public or str(request.base_url)).rstrip("/")

    def _state_path(self, state: str) -> Path:
        return lti_dir(self.state) / STATES_DIR / (hashlib.sha256(state.encode()).hexdigest() + ".json")

    async def login(self, request: Request) -> Response:
        """OIDC third-party login initiation: the platform names itself and the user; the browser
        goes to the platform's authorization endpoint with a fresh state (in a cookie) and nonce."""
        platform = self._platform()
        params = dict(request.query_params)
        if request.method == "POST":
            form = await request.form(max_files=0, max_fields=20, max_part_size=8192)
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        if params.get("iss") != platform.issuer:
            raise LaunchRefused("the login names another platform (iss)")
        if params.get("client_id") not in (None, platform.client_id):
            raise LaunchRefused("the login names another client id")
        if not params.get("login_hint"):
            raise LaunchRefused("the login has no login_hint")
        self._forget_old_states()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        path = self._state_path(state)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"nonce": nonce, "exp": time.time() + STATE_TTL_S}, fh)
        query = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none",
                 "client_id": platform.client_id, "redirect_uri": f"{self._base(request)}/lti/launch",
                 "login_hint": params["login_hint"], "state": state, "nonce": nonce}
        if params.get("lti_message_hint"):
            query["lti_message_hint"] = params["lti_message_hint"]
        response = RedirectResponse(f"{platform.auth_login_url}?{urlencode(query)}", 302)
        secure = self.room.settings.secure_cookies
        # The launch comes back as a POST from the platform's site: a SameSite=None cookie (https
        # only) is what such a request carries; over http (a test on loopback) Lax is what there is.
        response.set_cookie(STATE_COOKIE, state, max_age=STATE_TTL_S, path="/lti/", httponly=True, secure=secure,
                            samesite="none" if secure else "lax")
        return response

    def _forget_old_states(self) -> None:
        """States of logins never finished go after their time (a folder that cannot grow unbounded)."""
        cutoff = time.time() - STATE_TTL_S
        for old in (lti_dir(self.state) / STATES_DIR).glob("*.json"):
            try:
                if old.lstat().st_mtime < cutoff:
                    old.unlink()
            except FileNotFoundError:
                continue

    def _platform(self) -> Platform:
        if self.platform is None:
            raise HTTPException(404, "This course is not set up for LTI: log in with your token.")
        return self.platform

    def _take_state(self, request: Request, state: str) -> str:
        """The nonce issued with this state; the state is used up."""
        cookie = request.cookies.get(STATE_COOKIE, "")
        if not state or not cookie or not hmac.compare_digest(cookie.encode(), state.encode()):
            raise LaunchRefused("it did not start in this browser (state)")
        path = self._state_path(state)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd) as fh:
                doc = json.load(fh)
            os.unlink(path)
        except (FileNotFoundError, ValueError):
            raise LaunchRefused("its state was already used or is unknown") from None
        if not isinstance(doc, dict) or doc.get("exp", 0) < time.time():
            raise LaunchRefused("its state has expired: launch again from the course")
        return str(doc.get("nonce", ""))

    def validate(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The id_token's claims, every check passed (``LaunchRefused`` naming the first that failed)."""
        platform = self._platform()
        assert self._jwks is not None
        try:
            key = self._jwks.get_signing_key_from_jwt(id_token)
        except jwt.PyJWKClientConnectionError:
            raise HTTPException(502, "The platform's keyset could not be read: try again in a moment.") from None
        except (jwt.PyJWKClientError, jwt.DecodeError):
            raise LaunchRefused("the token is signed with a key the platform does not publish (kid)") from None
        try:
            claims = jwt.decode(id_token, key.key, algorithms=["RS256"], audience=platform.client_id,
                                issuer=platform.issuer, leeway=LEEWAY_S,
                                options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]})
        except jwt.ExpiredSignatureError:
            raise LaunchRefused("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise LaunchRefused("the token is for another tool (aud)") from None
        except jwt.InvalidIssuerError:
            raise LaunchRefused("the token is from another platform (iss)") from None
        except jwt.InvalidSignatureError:
            raise LaunchRefused("the token's signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise LaunchRefused(f"the token is not valid ({type(exc).__name__})") from None
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != platform.client_id:
            raise LaunchRefused("the token names several audiences and not this tool as azp")
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"].encode(), nonce.encode()):
            raise LaunchRefused("the token's nonce is not the one issued with this login")
        if claims.get(C + "deployment_id") not in platform.deployment_ids:
            raise LaunchRefused("the deployment is not registered with this course")
        if claims.get(C + "version") != "1.3.0":
            raise LaunchRefused("the LTI version is not 1.3.0")
        if claims.get(C + "message_type") not in ("LtiResourceLinkRequest", "LtiDeepLinkingRequest"):
            raise LaunchRefused("only resource link and deep linking launches are accepted")
        for url in self._service_urls(claims):
            if not isinstance(url, str) or not allowed(platform, url):
                raise LaunchRefused("a service URL is not on the platform's hosts")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise LaunchRefused("the token names no user")
        return dict(claims)

    @staticmethod
    def _service_urls(claims: dict[str, Any]) -> list[Any]:
        nrps, ags = _obj(claims, NRPS_CLAIM), _obj(claims, AGS_CLAIM)
        urls = [nrps.get("context_memberships_url"), ags.get("lineitems"), ags.get("lineitem")]
        return [u for u in urls if u is not None]

    async def launch(self, request: Request) -> Response:
        self._platform()
        form = await request.form(max_files=0, max_fields=20, max_part_size=64 * 1024)
        state, id_token = form.get("state"), form.get("id_token")
        if not isinstance(state, str) or not isinstance(id_token, str):
            raise LaunchRefused("it carries no id_token and state")
        nonce = self._take_state(request, state)
        claims = await run_in_threadpool(self.validate, id_token, nonce)  # the keyset may be fetched
        assert self.platform is not None
        role = role_of(claims.get(C + "roles") or [])
        name, email = _str(claims.get("name")), _str(claims.get("email"))
        if claims.get(C + "message_type") == "LtiDeepLinkingRequest":
            return self._deep_link(request, claims, role)
        sourcedid = _str(_obj(claims, C + "lis").get("person_sourcedid"))
        member = self.members.add(self.platform.issuer, claims["sub"], name, email, role, self.room.roster, sourcedid)
        self._keep_context(claims)
        target = "/instructor" if role == "instructor" else "/"
        # A same-site page that moves on by itself: the session cookie (SameSite=Strict) is sent by
        # the next request, which a redirect chain started on the platform's site would not do.
        response = HTMLResponse(f'<!doctype html><meta http-equiv="refresh" content="0;url={escape(target)}">'
                                f'<title>gradelab</title><p><a href="{escape(target)}">Continue</a></p>')
        from grader.serve.deps import sessions

        sessions(request).start(response, role, member.id if role == "student" else "", member.stamp)
        response.delete_cookie(STATE_COOKIE, path="/lti/")
        if self.members.data.context.memberships_url:
            threading.Thread(target=self._roster_quietly, name="gradelab-lti-nrps", daemon=True).start()
        return response

    def _deep_link(self, request: Request, claims: dict[str, Any], role: str) -> Response:
        """An instructor adds this lab to the course (``grader.serve.lti.deeplink``)."""
        from grader.serve.lti import deeplink
        from grader.serve.security import CSP

        back = deeplink.return_url(claims)
        assert self.platform is not None and self.keys is not None
        if role != "instructor":
            raise LaunchRefused("only an instructor adds a lab to a course")
        if back is None or not allowed(self.platform, back):
            raise LaunchRefused("the deep linking return URL is not on the platform's hosts")
        title = self.room.lab.manifest.title
        token = deeplink.response_jwt(claims, self.keys, self.platform.client_id, self.platform.issuer, title=title,
                                      url=f"{self._base(request)}/lti/launch", lab_id=self.room.lab.id,
                                      full_points=self.full_points())
        csp = CSP.replace("form-action 'self'", f"form-action {back.split('?')[0]}")
        return deeplink.page(back, token, title, csp)

    def _keep_context(self, claims: dict[str, Any]) -> None:
        nrps, ags, ctx = _obj(claims, NRPS_CLAIM), _obj(claims, AGS_CLAIM), _obj(claims, C + "context")
        old = self.members.data.context
        new = Context(context_id=str(ctx.get("id", old.context_id)),
                      memberships_url=_str(nrps.get("context_memberships_url")) or old.memberships_url,
                      lineitems_url=_str(ags.get("lineitems")) or old.lineitems_url,
                      lineitem_url=_str(ags.get("lineitem")) or old.lineitem_url,
                      scopes=[s for s in ags.get("scope", []) if isinstance(s, str)] or old.scopes)
        if new != old:
            self.members.set_context(new)

    def _roster_quietly(self) -> None:
        try:
            self.read_roster()
        except ServiceError as exc:
            log.warning("the course's members could not be read through NRPS: %s", exc)

    async def jwks(self, request: Request) -> Response:
        self._platform()
        assert self.keys is not None
        return JSONResponse(self.keys.jwks())

    async def roster(self, request: Request) -> Response:
        """The instructor's "read the course's members now" (a form on the roster page)."""
        from grader.serve import deps

        caller = deps.instructor(request)
        await deps.form(request, caller)
        try:
            count = await run_in_threadpool(self.read_roster)  # the platform may call this server back
        except ServiceError as exc:
            raise HTTPException(502, f"The course's members could not be read: {exc}") from None
        log.info("NRPS: %d member(s) read", count)
        return RedirectResponse("/instructor", 303)


def tool(request: Request) -> LtiTool:
    found: LtiTool = request.app.state.lti
    return found


async def _login(request: Request) -> Response:
    return await tool(request).login(request)


async def _launch(request: Request) -> Response:
    return await tool(request).launch(request)


async def _jwks(request: Request) -> Response:
    return await tool(request).jwks(request)


async def _roster(request: Request) -> Response:
    return await tool(request).roster(request)


def routes() -> list[Route]:
    return [Route("/lti/login", _login, methods=["GET", "POST"], name="lti_login"),
            Route("/lti/launch", _launch, methods=["POST"], name="lti_launch"),
            Route("/lti/jwks.json", _jwks, name="lti_jwks"),
            Route("/lti/roster", _roster, methods=["POST"], name="lti_roster")]
