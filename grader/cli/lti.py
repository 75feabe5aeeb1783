"""``gradelab lti …``: what Moodle and Canvas ask for when gradelab is registered as an LTI 1.3
tool, and storing what they give back (``grader.serve.lti``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from grader.cli.common import console, user_errors

lti_app = typer.Typer(help="LTI 1.3: register gradelab with Moodle or Canvas (launch, roster, grades).",
                      no_args_is_help=True)
ClassOpt = Annotated[Path, typer.Option("--class", help="The class folder `gradelab serve` serves.")]


def tool(
    url: Annotated[str, typer.Option("--url", help="The address students use (https://…), as `serve --public-url`.")],
    title: Annotated[str, typer.Option("--title", help="The tool's name in the LMS.")] = "gradelab",
    canvas: Annotated[bool, typer.Option("--canvas", help="Print only Canvas's developer key JSON.")] = False,
) -> None:
    """Print what the LMS asks for: Moodle's "External tool" fields and Canvas's developer key JSON."""
    from grader.serve.lti.config import canvas_developer_key, tool_urls

    if canvas:
        console.print_json(canvas_developer_key(url, title))
        return
    urls = tool_urls(url)
    table = Table(title="Moodle: Site administration → Plugins → External tool → Manage tools → configure a "
                        "tool manually", show_lines=False)
    table.add_column("field")
    table.add_column("value")
    for field, value in (("Tool name", title), ("Tool URL", urls["tool_url"]), ("LTI version", "LTI 1.3"),
                         ("Public key type", "Keyset URL"), ("Public keyset", urls["jwks_url"]),
                         ("Initiate login URL", urls["login_url"]), ("Redirection URI(s)", urls["redirect_uris"]),
                         ("Supports Deep Linking (Content-Item Message)", "yes"),
                         ("Content Selection URL", urls["deep_link_url"]),
                         ("IMS LTI Assignment and Grade Services", "Use this service for grade sync and column "
                                                                     "management"),
                         ("IMS LTI Names and Role Provisioning", "Use this service to retrieve members' information"),
                         ("Share launcher's name / email", "Always"), ("Default launch container", "New window")):
        table.add_row(field, value)
    console.print(table)
    console.print("Canvas: Admin → Developer Keys → + Developer Key → + LTI Key → Method: Paste JSON:")
    console.print_json(canvas_developer_key(url, title))


def register(
    class_dir: ClassOpt,
    issuer: Annotated[str, typer.Option("--issuer", help="Platform ID / issuer (Moodle: the site URL).")],
    client_id: Annotated[str, typer.Option("--client-id", help="The client id the LMS gave the tool.")],
    deployment_id: Annotated[list[str], typer.Option("--deployment-id", help="A deployment id (repeat for more).")],
    auth_url: Annotated[str, typer.Option("--auth-url", help="Authentication request URL (the OIDC endpoint).")],
    jwks_url: Annotated[str, typer.Option("--jwks-url", help="The platform's public keyset URL.")],
    token_url: Annotated[str, typer.Option("--token-url", help="The access token URL.")],
    token_audience: Annotated[str | None, typer.Option(
        "--token-audience", help="The aud of the tool's assertions, when the LMS says one (default: the token URL).")] = None,
) -> None:
    """Store the platform's values given back by the LMS (one platform per class folder)."""
    from grader.serve.lti.config import platform_from_user, save_platform
    from grader.serve.lti.keys import ToolKeys

    with user_errors():
        platform = platform_from_user(issuer=issuer, client_id=client_id, deployment_ids=tuple(deployment_id),
                                      auth_login_url=auth_url, jwks_url=jwks_url, token_url=token_url,
                                      token_audience=token_audience)
        state = class_dir / ".gradelab"
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = save_platform(state, platform)
        kid = ToolKeys(state).ensure()
    console.print(f"Stored {path}; the tool's key {kid} is published at /lti/jwks.json. Restart `gradelab serve`.",
                  soft_wrap=True)


def rotate_key(class_dir: ClassOpt) -> None:
    """Make a new signing key (the previous one stays published until the next rotation)."""
    from grader.serve.lti.keys import ToolKeys

    kid = ToolKeys(class_dir / ".gradelab").rotate()
    console.print(f"New key {kid}: it signs from now on; the keyset lists it and the previous one.")


def register_commands(app: typer.Typer) -> None:
    lti_app.command("tool")(tool)
    lti_app.command("register")(register)
    lti_app.command("rotate-key")(rotate_key)
    app.add_typer(lti_app, name="lti")
