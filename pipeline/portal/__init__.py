"""The web portal: a static single-page app served by the same ASGI app as the APIs."""
