"""The prediction routes, served as plain Starlette routes.

A FastAPI route costs ~65 µs of CPU a request more than a Starlette route calling the
same endpoint (its dependency solving, its exit stacks, its nested routers; measured in
one process on this 2-core machine, FastAPI 0.165): a tenth of a short prediction's whole
fixed cost (bench: the fixed cost of a prediction, issue 25). Each busy endpoint keeps
its FastAPI declaration, which the OpenAPI document is made of; a Starlette route in
front of every other serves it, with what that declaration would have given it: its
path parameters as strings (none is typed otherwise) and the app's services.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from tailwinds.server.state import State

Endpoint = Callable[..., Awaitable[Response]]

_DIRECT: set[Endpoint] = set()


def direct(endpoint: Endpoint) -> Endpoint:
    """Mark an endpoint to be served directly (`direct_routes`). It may take its path's
    parameters (`str`), `request: Request` and `state: State`, and nothing else: no
    body model, no other dependency, which a direct route would not give it."""
    _DIRECT.add(endpoint)
    return endpoint


def direct_routes(routers: list[APIRouter]) -> list[DirectRoute]:
    """A Starlette route for each marked endpoint of `routers`, its path and methods as
    declared (raises `TypeError` for one that takes what a direct route cannot give, or
    has dependencies of its own or of its router). The routers must be included with no
    prefix or dependencies of their own: a direct route knows only their declarations."""
    routes = []
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.endpoint in _DIRECT:
                _check(route)
                routes.append(
                    DirectRoute(
                        route.path,
                        route.endpoint,
                        methods=list(route.methods or ()),
                        name=route.name,
                        include_in_schema=False,
                    )
                )
    return routes


class DirectRoute(Route):
    def __init__(self, path: str, declared: Endpoint, **kwargs: Any) -> None:
        super().__init__(path, _serve(declared), **kwargs)
        self.declared = declared

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            # as FastAPI's routes do: the route template labels metrics and traces
            child_scope["route"] = self
            child_scope["endpoint"] = self.declared
        return match, child_scope


def _check(route: APIRoute) -> None:
    parameters = inspect.signature(route.endpoint, eval_str=True).parameters
    path = set(route.param_convertors)
    given = {"request": Request, "state": State}
    for name, parameter in parameters.items():
        if name in path and parameter.annotation is str:
            continue
        if name in given and parameter.annotation == given[name]:
            continue
        raise TypeError(
            f"{route.path}: a direct route gives its endpoint str path parameters, the "
            f"request (Request) and the app's services (State), not {name!r}"
        )
    if route.dependencies:  # the route's or its router's: a guard would be skipped
        raise TypeError(f"{route.path}: a direct route runs no dependencies")


def _serve(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    names = set(inspect.signature(endpoint).parameters)

    async def serve(request: Request) -> Response:
        kwargs: dict[str, Any] = dict(request.path_params)
        if "request" in names:
            kwargs["request"] = request
        if "state" in names:
            kwargs["state"] = request.app.state.tailwinds
        return await endpoint(**kwargs)

    return serve
