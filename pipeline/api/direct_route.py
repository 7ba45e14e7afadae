"""A route described like any other but served without FastAPI's per-request machinery, for the hot path.

FastAPI serves a route by solving its dependencies, validating every parameter, and validating and encoding the
answer again; on the Prediction API's image routes that machinery cost about 0.45 ms of CPU per request, next to a
prediction of 6.6 ms (issue 16, item 5: bench/predict.py's in-process load of the app, General (compact)). Those
routes take nothing but strings from the path and the query string, so they gain nothing from it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from fastapi.routing import APIRoute


class DirectRoute(APIRoute):
    """An APIRoute that FastAPI still describes in the OpenAPI document from its endpoint's signature, but serves by
    calling the endpoint with the request and the path and query parameters it declares, all as the strings sent
    (None for an absent query parameter); the others (such as a router prefix's) are in `request.path_params`. The
    endpoint returns its Response itself.

    Dependencies declared on the route or its router do not run here: the endpoint makes its own checks. An error
    it raises reaches the app's exception handlers as from any route."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        endpoint = self.endpoint
        path = [(field.name, field.alias) for field in self.dependant.path_params]
        query = [(field.name, field.alias) for field in self.dependant.query_params]

        async def serve(request: Request) -> Response:
            values = {name: request.path_params[alias] for name, alias in path}
            values.update((name, request.query_params.get(alias)) for name, alias in query)
            return await endpoint(request, **values)

        return serve
