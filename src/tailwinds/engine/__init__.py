"""The flow engine: events, flows, the node registry and the runner. Never imports the
server or the node modules."""
