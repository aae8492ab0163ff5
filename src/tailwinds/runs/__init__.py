"""The application core: admitting a prediction, running it, storing its turn, aborting and
shutting down, and chatflows calling chatflows. It knows nothing of HTTP (no FastAPI or
Starlette here); where the run's events go is a `Transport` chosen once at start."""
