"""Sign-in and sign-out pages (only when API keys are configured), and the packaged static files."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from .auth import MAX_AGE_SECONDS, safe_next
from .context import Dashboard, Form, page_route
from .throttle import SignInThrottle


def routes(dash: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False, route_class=page_route(dash, signed_in=False))
    renderer = dash.renderer
    throttle = SignInThrottle()

    @router.get("/login")
    def login_page(request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        if (refused := dash.refusal(request)) is not None:
            return refused
        if not dash.auth.enabled or dash.auth.signed_in(request):
            return RedirectResponse(renderer.url(request, target), status_code=303)
        return renderer.render(request, "login.html", next=target, error=None)

    @router.post("/login")
    def login(request: Request, form: Form) -> Response:
        target = safe_next(form.get("next"))
        if (refused := dash.refusal(request)) is not None:
            return refused
        if not dash.auth.enabled:
            return RedirectResponse(renderer.url(request, target), status_code=303)
        address = request.client.host if request.client else ""
        wait = throttle.wait_seconds(address)
        if wait:
            error = f"Too many failed sign-ins from your address; try again in {wait} s."
            page = renderer.render(request, "login.html", status_code=429, next=target, error=error)
            page.headers["Retry-After"] = str(wait)
            return page
        key = form.get("api_key", "").strip()
        token = dash.auth.issue(key) if key else None
        if token is None:
            if key:
                throttle.failed(address)
            error = "That key is not valid for this task hub." if key else "Enter an API key."
            return renderer.render(request, "login.html", status_code=401, next=target, error=error)
        response = RedirectResponse(renderer.url(request, target), status_code=303)
        response.set_cookie(
            dash.auth.cookie_name(request),
            token,
            max_age=MAX_AGE_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=renderer.url(request, "/") or "/",
        )
        return response

    @router.post("/logout")
    def logout(request: Request) -> Response:
        if (refused := dash.refusal(request)) is not None:  # another site must not sign you out
            return refused
        response = RedirectResponse(renderer.url(request, "/login"), status_code=303)
        dash.auth.sign_out(request)
        cookie = dash.auth.cookie_name(request)
        response.delete_cookie(cookie, path=renderer.url(request, "/") or "/", httponly=True, samesite="strict")
        return response

    @router.get("/static/{name}")
    def static_file(request: Request, name: str) -> Response:
        file = renderer.static.get(name)
        if file is None:
            return Response("Not found", status_code=404, media_type="text/plain")
        versioned = request.query_params.get("v") == file.version
        cache = "public, max-age=31536000, immutable" if versioned else "public, max-age=300"
        return Response(file.content, media_type=file.media_type, headers={"Cache-Control": cache})

    return router
