"""An LTI 1.3 platform for the tests, made of the ``lti1p3platform`` package (PyPI, not this
project's): its registration signs the id_tokens and access tokens and publishes the platform's
JWKS, its OIDC login and message launch build the login initiation and the launch, and its AGS and
NRPS service classes answer the tool's calls (they check the bearer token themselves). What the
package leaves to a framework adapter is here, on Starlette, served by uvicorn on 127.0.0.1: the
routes, the storage of line items, scores and members, and an auto-submitting launch form.

``fail_scores`` makes the score endpoint answer 503 that many times first (a platform that is down).
"""

from __future__ import annotations

import html
import socket
import threading
import time
import typing as t

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.membership import Context
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request as LtiRequest
from lti1p3platform.score import UpdateScoreStatus
from lti1p3platform.service_connector import (
    AssignmentsGradesService,
    NamesRoleProvisioningService,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "gradelab-client"
DEPLOYMENT = "deployment-1"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
USERS = {"u-alice": ("Alice Martin", "alice@example.org", LEARNER),
         "u-zoe": ("Zoé Nguyen", "zoe@example.org", LEARNER),
         "u-teacher": ("Prof. Ada", "ada@example.org", INSTRUCTOR)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_pem() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


class Dict(LtiRequest):
    def build_metadata(self, request: t.Any) -> t.Any:
        return request


class Platform:
    """The platform's state and its server."""

    def __init__(self, tool_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.issuer = self.url
        self.tool_url = tool_url
        self.private, self.public = new_pem()
        self.items: dict[str, dict[str, t.Any]] = {}
        self.scores: list[dict[str, t.Any]] = []
        self.fail_scores = 0
        self.score_calls = 0
        self.linked: list[t.Any] = []
        self.members = [{"user_id": sub, "name": n, "email": e, "roles": [r], "status": "Active"}
                        for sub, (n, e, r) in USERS.items()]
        self.members.append({"user_id": "u-carl", "name": "Carl Old", "email": "carl@example.org",
                             "roles": [LEARNER], "status": "Active"})
        self.members.append({"user_id": "u-bob", "name": "Robert Chen", "email": "rc@other.example",
                             "lis_person_sourcedid": "bob", "roles": [LEARNER], "status": "Active"})
        self._server: uvicorn.Server | None = None

    # the package's abstract classes, filled in
    def conf(self) -> LTI1P3PlatformConfAbstract:
        platform = self

        class Conf(LTI1P3PlatformConfAbstract):
            def init_platform_config(self, **kwargs: t.Any) -> None:
                pass

            def get_registration_by_params(self, **kwargs: t.Any) -> Registration:
                reg = Registration()
                reg.set_iss(platform.issuer).set_client_id(CLIENT_ID).set_deployment_id(DEPLOYMENT)
                reg.set_oidc_login_url(f"{platform.tool_url}/lti/login").set_launch_url(f"{platform.tool_url}/lti/launch")
                reg.set_platform_private_key(platform.private).set_platform_public_key(platform.public)
                reg.set_tool_key_set_url(f"{platform.tool_url}/lti/jwks.json")
                reg.set_deeplink_launch_url(f"{platform.tool_url}/lti/launch")
                return reg

        conf = Conf()
        conf.get_registration()
        return conf

    def sign(self, claims: dict[str, t.Any], expiration: int = 300) -> str:
        """An id_token as the platform signs it (the tests' tampered launches start here)."""
        return self.conf().get_registration().platform_encode_and_sign(dict(claims), expiration=expiration)

    def launch_claims(self, sub: str, nonce: str) -> dict[str, t.Any]:
        """The claims of a resource link launch for ``sub`` (what ``authorize`` signs)."""
        launch = self._launch(Dict({"get_data": {}, "form_data": {}}), sub)
        launch._registration = launch._platform_config.get_registration()
        claims = launch.get_launch_message()
        claims["nonce"] = nonce
        return claims

    def _launch(self, request: t.Any, sub: str) -> LTIAdvantageMessageLaunchAbstract:
        class Launch(LTIAdvantageMessageLaunchAbstract):
            def get_preflight_response(self) -> dict[str, t.Any]:
                return dict(request.get_data)

            def render_launch_form(self, launch_data: dict[str, t.Any], **kwargs: t.Any) -> Response:
                fields = "".join(f'<input type="hidden" name="{k}" value="{html.escape(str(v))}">'
                                 for k, v in launch_data.items() if k != "launch_url")
                return HTMLResponse(f'<form id="f" method="post" action="{html.escape(launch_data["launch_url"])}">'
                                    f'{fields}</form><script>document.getElementById("f").submit()</script>')

        launch = Launch(request, self.conf())
        name, email, role = USERS[sub]
        launch.set_user_data(sub, [role], name, email)
        launch.set_resource_link_claim("link-1", title="CIFAR-10 ConvNet")
        launch.set_launch_context_claim("course-1", context_title="Deep learning", context_label="DL")
        launch.set_ags(f"{self.url}/lineitems", None)
        launch.set_nrps(f"{self.url}/members")
        return launch

    # routes
    async def start_launch(self, request: Request) -> Response:
        sub = request.query_params["user"]
        platform = self

        class Login(OIDCLoginAbstract):
            def set_lti_message_hint(self, **kwargs: t.Any) -> None:
                self._lti_message_hint = kwargs.get("hint", "link-1")

            def get_redirect(self, url: str) -> Response:
                return RedirectResponse(url, 302)

        login = Login(Dict({}), platform.conf())
        login.set_lti_message_hint(hint="deep-link" if request.query_params.get("dl") else "link-1")
        return login.initiate_login(sub)  # type: ignore[no-any-return]

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        launch = self._launch(Dict({"get_data": params, "form_data": {}}), params["login_hint"])
        if params.get("lti_message_hint") == "deep-link":
            launch.set_dl(f"{self.url}/deep-link-return", title="Add a lab", accept_types={"ltiResourceLink"},
                          extra_data={"data": "opaque-42"})
        return launch.lti_launch()  # type: ignore[no-any-return]

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.conf().get_jwks())

    async def token(self, request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        try:
            return JSONResponse(dict(self.conf().get_access_token(form)))
        except Exception as exc:
            return JSONResponse({"error": "invalid_client", "detail": str(exc)}, status_code=400)

    async def _lti_request(self, request: Request) -> Dict:
        body = await request.body()
        import json

        return Dict({"method": request.method, "get_data": dict(request.query_params), "form_data": {},
                     "headers": request.headers, "content_type": request.headers.get("content-type"),
                     "path": request.url.path, "json": json.loads(body) if body else None})

    @staticmethod
    def _answer(resp: t.Any) -> Response:
        if resp.result is None:
            return JSONResponse({"message": resp.message}, status_code=resp.code)
        return JSONResponse(resp.result, status_code=resp.code, media_type=resp.media_type)

    def _ags(self, lti_request: Dict) -> AssignmentsGradesService:
        platform = self

        class Ags(AssignmentsGradesService):
            def find_lineitems(self, page: int = 1, limit: t.Any = None, line_item_id: t.Any = None,
                               resource_link_id: t.Any = None, resource_id: t.Any = None, tag: t.Any = None) -> t.Any:
                items = [i for i in platform.items.values() if resource_id in (None, i.get("resourceId"))]
                return {"content": items, "has_next": False}

            def find_lineitem(self, line_item_id: str) -> t.Any:
                return platform.items[line_item_id]

            def create_lineitem(self, creation_data: t.Any) -> t.Any:
                key = str(len(platform.items) + 1)
                item = {**creation_data, "id": f"{platform.url}/lineitems/{key}"}
                platform.items[key] = item
                return item

            def update_lineitem(self, update_data: t.Any) -> t.Any:
                raise NotImplementedError

            def delete_lineitem(self, line_item_id: str) -> None:
                raise NotImplementedError

            def update_score(self, line_item_id: str, score: t.Any) -> UpdateScoreStatus:
                platform.scores.append({"lineitem": line_item_id, **score})
                return UpdateScoreStatus.SUCCESS

            def get_results(self, line_item_id: str, page: int = 1, limit: t.Any = None, user_id: t.Any = None) -> t.Any:
                return {"content": [], "has_next": False}

        return Ags(lti_request, self.conf(), f"{self.url}/lineitems")

    async def lineitems(self, request: Request) -> Response:
        ags = self._ags(await self._lti_request(request))
        handler = ags.handle_get_lineitems if request.method == "GET" else ags.handle_create_lineitem
        return self._answer(ags.handle_resp(handler))

    async def score(self, request: Request) -> Response:
        self.score_calls += 1
        if self.fail_scores > 0:
            self.fail_scores -= 1
            return JSONResponse({"message": "down for maintenance"}, status_code=503)
        ags = self._ags(await self._lti_request(request))
        key = request.path_params["key"]
        if key not in self.items:
            return JSONResponse({"message": "Not found"}, status_code=404)
        return self._answer(ags.handle_resp(ags.handle_update_score, line_item_id=key))

    async def deep_link_return(self, request: Request) -> Response:
        """The package validates the tool's response (its signature by the tool's keyset) and
        gives back the content items."""
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        conf = self.conf()
        self.linked = conf.validate_deeplinking_resp(form)
        return HTMLResponse(f"added {len(self.linked)}")

    async def members_route(self, request: Request) -> Response:
        platform = self

        class Nrps(NamesRoleProvisioningService):
            def get_member_data_page(self, page: int = 1, limit: t.Any = None, role: t.Any = None,
                                     since: t.Any = None) -> t.Any:
                return {"content": [dict(m) for m in platform.members], "has_next": False}

            def get_context_by_id(self) -> Context:
                return Context(id="course-1", label="DL", title="Deep learning")

        nrps = Nrps(await self._lti_request(request), self.conf(), f"{self.url}/members")
        return self._answer(nrps.handle_resp(nrps.handle_get_members))

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/launch", self.start_launch), Route("/authorize", self.authorize),
            Route("/jwks", self.jwks), Route("/token", self.token, methods=["POST"]),
            Route("/lineitems", self.lineitems, methods=["GET", "POST"]),
            Route("/lineitems/{key}/scores", self.score, methods=["POST"]),
            Route("/members", self.members_route),
            Route("/deep-link-return", self.deep_link_return, methods=["POST"])])

    def registration(self) -> dict[str, t.Any]:
        """What ``gradelab lti register`` is given for this platform."""
        return {"issuer": self.issuer, "client_id": CLIENT_ID, "deployment_ids": [DEPLOYMENT],
                "auth_login_url": f"{self.url}/authorize", "jwks_url": f"{self.url}/jwks",
                "token_url": f"{self.url}/token"}

    def __enter__(self) -> Platform:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        threading.Thread(target=self._server.run, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the test platform did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
