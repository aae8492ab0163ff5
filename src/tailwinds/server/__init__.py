"""The HTTP API: routes, streaming responses, authorization and error mapping."""
